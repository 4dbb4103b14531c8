//! Escapes to the host filesystem and host privileges, tried from inside
//! containers started by the rrun binary: /proc/1/root, /proc/*/exe,
//! inherited descriptors, `..` out of a bind mount, setuid and
//! file-capability binaries in the image, and a real fork bomb.

mod common;
mod escape_common;

use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;

use common::*;
use escape_common::*;

/// A marker only the host has: if the container can read it, it reached
/// the host's filesystem.
fn host_marker(tag: &str) -> std::path::PathBuf {
    let dir = unique_host_dir(tag);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("host-secret"), "host\n").unwrap();
    dir
}

#[test]
fn proc_1_root_and_every_proc_root_is_the_containers() {
    let dir = host_marker("procroot");
    let secret = dir.join("host-secret");
    let s = secret.display();
    let o = sh(
        &[],
        &format!(
            "for p in /proc/[0-9]*; do cat $p/root{s} 2>/dev/null && echo LEAK $p; done; \
             cat /proc/1/root{s} 2>/dev/null && echo LEAK-1; \
             cat /proc/1/cwd/..{s} 2>/dev/null && echo LEAK-cwd; \
             ls /proc/1/root/ | tr '\\n' ' '"
        ),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        !stdout(&o).contains("LEAK"),
        "reached the host: {}",
        stdout(&o)
    );
    // The root seen through /proc/1/root is the image's (busybox has no
    // /work, /boot or /lib/modules; the host does).
    assert!(stdout(&o).contains("bin"), "{}", stdout(&o));
    assert!(secret.exists());
    let _ = std::fs::remove_dir_all(dir);
}

/// CVE-2019-5736: the container must never reach the runtime's binary
/// through /proc/<pid>/exe, neither PID 1 nor a process `rrun exec` is
/// still setting up.
#[test]
fn proc_exe_never_leads_to_the_rrun_binary() {
    let rrun_len = std::fs::metadata(RRUN).unwrap().len();
    let o = sh(
        &[],
        "readlink /proc/1/exe; readlink /proc/self/exe; wc -c < /proc/1/exe; \
         (echo x >> /proc/1/exe) 2>/dev/null && echo WROTE-EXE; true",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(in_image(lines[0]), "PID 1 runs {:?}: {out}", lines[0]);
    assert!(in_image(lines[1]), "{out}");
    assert_ne!(
        lines[2].trim(),
        rrun_len.to_string(),
        "PID 1's exe is rrun-sized: {out}"
    );
    assert!(!out.contains("WROTE-EXE"), "{out}");

    // A watcher inside a detached container records every /proc/*/exe it
    // can resolve while the host runs `rrun exec` in a loop.
    let name = format!("escape-exe-{}", std::process::id());
    let o = rrun(&[
        "run", "-d", "--name", &name, "busybox", "sh", "-c",
        "while :; do for p in /proc/[0-9]*; do readlink $p/exe; done >> /tmp/seen 2>/dev/null; done",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for _ in 0..20 {
        let o = rrun(&["exec", &name, "true"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let o = rrun(&["exec", &name, "sh", "-c", "sort -u /tmp/seen"]);
    let seen = stdout(&o);
    let _ = rrun(&["rm", "-f", &name]);
    assert!(
        seen.contains("/bin/sh"),
        "the watcher saw nothing: {seen:?} {}",
        stderr(&o)
    );
    for line in seen.lines() {
        assert!(
            in_image(line),
            "a container process saw exe {line:?}:\n{seen}"
        );
    }
}

/// A busybox applet path, as the image has them; never the host's rrun.
fn in_image(exe: &str) -> bool {
    (exe.starts_with("/bin/") || exe.starts_with("/sbin/") || exe.starts_with("/usr/"))
        && !exe.contains("rrun")
}

/// A descriptor the caller leaks into rrun (here a directory fd on the
/// host's /, without CLOEXEC) must not reach the container: through it,
/// `openat(fd, "..")` walks the host.
#[test]
fn descriptors_inherited_by_rrun_do_not_reach_the_container() {
    let host_root = std::fs::File::open("/").unwrap();
    let raw = host_root.as_raw_fd();
    let mut cmd = rrun_cmd(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ls /proc/self/fd | tr '\\n' ' '; echo; ls /proc/self/fd/7/ 2>&1 | head -3",
    ]);
    // SAFETY: dup2 and fcntl are async-signal-safe; runs in the forked
    // child before exec and touches only its own descriptor table.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let o = cmd.output().unwrap();
    drop(host_root);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let fds: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    // 0-2 and the directory ls itself opened.
    assert_eq!(fds, ["0", "1", "2", "3"], "fds in the container: {out}");
    assert!(!out.contains("work"), "fd 7 lists the host's /: {out}");
    // The leak was real on our side: a plain child sees fd 7.
    let mut probe = std::process::Command::new("ls");
    probe.arg("/proc/self/fd/7/");
    let f = std::fs::File::open("/").unwrap();
    let raw = f.as_raw_fd();
    // SAFETY: as above.
    unsafe {
        probe.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    assert!(
        probe.output().unwrap().status.success(),
        "the test could not leak fd 7"
    );
}

#[test]
fn dot_dot_from_a_bind_mount_stays_in_the_rootfs() {
    let parent = host_marker("dotdot");
    let vol = parent.join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("inside"), "vol\n").unwrap();
    let o = rrun(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/data", vol.display()),
        "busybox",
        "sh",
        "-c",
        "cat /data/inside; cat /data/../host-secret 2>/dev/null && echo LEAK1; \
         cd /data && cd .. && cd .. && cd .. && cat host-secret 2>/dev/null && echo LEAK2; \
         cat /data/../../../../../..$(echo PARENT)/host-secret 2>/dev/null && echo LEAK3; \
         ls /data/.. | tr '\\n' ' '",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("vol\n"), "{out}");
    assert!(
        !out.contains("LEAK") && !out.contains("host\n"),
        "escaped the bind mount: {out}"
    );
    assert!(!out.contains("host-secret"), "{out}");
    let _ = std::fs::remove_dir_all(parent);
}

/// A symlink in the image named like the volume's target, aimed at a host
/// path and at `..`: the bind lands inside the rootfs (hostile.rs covers
/// links below the target; this is the target itself).
#[test]
fn a_volume_target_that_is_a_symlink_lands_inside_the_rootfs() {
    let host = unique_host_dir("voltarget");
    let _ = std::fs::remove_dir_all(&host);
    let abs = host.display().to_string();
    image_with(
        "escape-voltarget",
        &[
            ("data", Entry::Symlink(&abs)),
            ("up", Entry::Symlink("../../../../../../../etc/rbox-escape")),
        ],
        &[],
    );
    let vol = tempfile::tempdir().unwrap();
    std::fs::write(vol.path().join("m"), "volume\n").unwrap();
    let v = vol.path().display().to_string();
    let o = rrun(&[
        "run",
        "--rm",
        "-v",
        &format!("{v}:/data"),
        "-v",
        &format!("{v}:/up"),
        "escape-voltarget",
        "sh",
        "-c",
        "cat /data/m /up/m",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "volume\nvolume\n");
    assert!(!host.exists(), "rrun created {abs} on the host");
    assert!(
        !Path::new("/etc/rbox-escape").exists(),
        "rrun created /etc/rbox-escape on the host"
    );
}

/// CAP_SYS_ADMIN as a file capability (vfs_cap_data rev 2, effective bit).
fn cap_sys_admin_xattr() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&(0x0200_0000u32 | 1).to_le_bytes());
    v.extend_from_slice(&(1u32 << 21).to_le_bytes()); // permitted lo
    v.extend_from_slice(&0u32.to_le_bytes()); // inheritable lo
    v.extend_from_slice(&0u32.to_le_bytes()); // permitted hi
    v.extend_from_slice(&0u32.to_le_bytes()); // inheritable hi
    v
}

fn status_field(out: &str, key: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in:\n{out}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn setuid_and_file_capability_binaries_stay_within_the_bounding_set() {
    let probe = probe_binary();
    let xattr = cap_sys_admin_xattr();
    image_with(
        "escape-suid",
        &[
            ("suid", Entry::Copy(probe, 0o4755)),
            ("fcap", Entry::Copy(probe, 0o755)),
        ],
        &[("fcap", "security.capability", &xattr)],
    );
    // Default (no_new_privs off, like docker): the setuid bit works, but
    // only up to the bounding set; mount stays refused.
    let o = rrun(&[
        "run",
        "--rm",
        "-u",
        "1000",
        "escape-suid",
        "/suid",
        "status",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let bnd = status_field(&out, "CapBnd:");
    assert_eq!(bnd, "00000000a80425fb", "{out}");
    let eff = u64::from_str_radix(&status_field(&out, "CapEff:"), 16).unwrap();
    let bnd = u64::from_str_radix(&bnd, 16).unwrap();
    assert_eq!(
        eff & !bnd,
        0,
        "setuid gained caps beyond the bounding set:\n{out}"
    );
    assert!(out.contains("mount=EPERM"), "{out}");

    // Under no_new_privs the setuid bit and file capabilities give nothing.
    for bin in ["/suid", "/fcap"] {
        let o = rrun(&[
            "run",
            "--rm",
            "-u",
            "1000",
            "--security-opt",
            "no-new-privileges",
            "escape-suid",
            bin,
            "status",
        ]);
        if bin == "/fcap" && code(&o) == 126 {
            // The kernel refuses to exec a file capability it cannot grant.
            assert!(
                stderr(&o).contains("Operation not permitted"),
                "{}",
                stderr(&o)
            );
            continue;
        }
        assert_eq!(code(&o), 0, "{bin}: {}", stderr(&o));
        let out = stdout(&o);
        assert_eq!(status_field(&out, "NoNewPrivs:"), "1", "{out}");
        assert_eq!(
            status_field(&out, "Uid:"),
            "1000 1000 1000 1000",
            "{bin} changed uid:\n{out}"
        );
        assert_eq!(
            status_field(&out, "CapEff:"),
            "0000000000000000",
            "{bin}:\n{out}"
        );
        assert_eq!(
            status_field(&out, "CapPrm:"),
            "0000000000000000",
            "{bin}:\n{out}"
        );
        assert!(
            out.contains("setuid0=EPERM") && out.contains("mount=EPERM"),
            "{bin}:\n{out}"
        );
    }

    // A file capability outside the bounding set is never granted: the
    // kernel refuses the exec, or runs it without the capability.
    let o = rrun(&[
        "run",
        "--rm",
        "-u",
        "1000",
        "escape-suid",
        "/fcap",
        "status",
    ]);
    let out = stdout(&o);
    if code(&o) == 0 {
        let eff = u64::from_str_radix(&status_field(&out, "CapEff:"), 16).unwrap();
        assert_eq!(
            eff & (1 << 21),
            0,
            "CAP_SYS_ADMIN granted by a file capability:\n{out}"
        );
        assert!(out.contains("mount=EPERM"), "{out}");
    } else {
        assert!(
            code(&o) == 126 && stderr(&o).contains("Operation not permitted"),
            "the exec failed for another reason: {}",
            stderr(&o)
        );
    }
}

/// A real recursive fork bomb under --pids-limit: the container is held
/// at the limit, the host keeps forking, and `rrun` returns.
#[test]
fn a_recursive_fork_bomb_is_held_at_the_pids_limit() {
    let start = std::time::Instant::now();
    let mut child = rrun_cmd(&[
        "run",
        "--rm",
        "--pids-limit",
        "32",
        "busybox",
        "sh",
        "-c",
        "b() { b | b & }; b; sleep 3; echo pids=$(cat /sys/fs/cgroup/pids.current \
         /sys/fs/cgroup/pids/pids.current 2>/dev/null)",
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    // The host still forks while the bomb runs.
    assert!(std::process::Command::new("true")
        .status()
        .unwrap()
        .success());
    // The shell's `sleep 3; echo` may itself fail to fork at the limit;
    // the container is stopped from outside after the wait either way.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("rrun did not return 30 s after a fork bomb under --pids-limit 32");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        err.contains("can't fork") || err.contains("Resource"),
        "no fork failed: {err} {status:?}"
    );
    if let Some(n) = out.lines().find_map(|l| l.strip_prefix("pids=")) {
        let n: u64 = n.trim().parse().unwrap_or(0);
        assert!(n <= 32, "{n} pids in a cgroup limited to 32");
    }
    eprintln!("fork bomb contained in {:?}", start.elapsed());
}

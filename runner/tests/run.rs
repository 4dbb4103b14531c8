//! `rrun run` for real, as root: namespaces, rootfs, options, exit codes,
//! errors. Each test fails with what is missing when root, overlayfs or
//! cgroups are not there.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

#[test]
fn command_is_pid_1_inside_and_an_ordinary_pid_outside() {
    let host_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    let o = sh(
        &[],
        "echo $$; readlink /proc/self/ns/pid; cat /proc/1/cmdline",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "1", "the command is not PID 1: {out}");
    assert_ne!(
        lines[1],
        host_ns.to_string_lossy(),
        "same pid namespace as the host"
    );

    // The same process seen from the host: a normal pid, not 1.
    let mut child = rrun_cmd(&["run", "--rm", "busybox", "sleep", "3600"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let host_pid = loop {
        let found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
            (cmd == b"sleep\x003600\x00" && ns != host_ns && descends_from(pid, child.id()))
                .then_some(pid)
        });
        if let Some(p) = found {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "`sleep 3600` never showed up in the host's /proc"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_ne!(host_pid, 1);
    let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(
        nspid.trim_end().ends_with("\t1"),
        "inner pid is not 1: {nspid}"
    );
    // Killing rrun's container from the host ends rrun with 137.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(host_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(137));
}

/// Whether `pid`'s chain of parents reaches `ancestor` (another test, or
/// another run on the same machine, may have its own `sleep 3600`).
fn descends_from(mut pid: i32, ancestor: u32) -> bool {
    while pid > 1 {
        if pid as u32 == ancestor {
            return true;
        }
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            return false;
        };
        pid = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
    }
    false
}

#[test]
fn hostname_is_the_containers_own() {
    let host = nix::unistd::gethostname().unwrap();
    let o = sh(
        &["--hostname", "inner-box"],
        "hostname; cat /etc/hostname; grep inner-box /etc/hosts",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("inner-box\ninner-box\n"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        nix::unistd::gethostname().unwrap(),
        host,
        "the host's hostname changed"
    );
    // Default: the short id, like Docker.
    let o = sh(&[], "hostname");
    assert_eq!(stdout(&o).trim().len(), 12, "{}", stdout(&o));
}

#[test]
fn only_lo_up_in_the_network_namespace() {
    // (The default, bridge, is tested in network.rs, in a namespace of its own.)
    let o = sh(
        &["--network", "none"],
        "ls /sys/class/net; cat /sys/class/net/lo/flags",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "lo\n0x9\n",
        "expected only lo, up (0x9 = UP|LOOPBACK)"
    );
    // --network host is the host's network namespace itself (compared by
    // namespace, not by counting interfaces: other tests add and remove
    // veths in this namespace meanwhile).
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    let o = sh(&["--network", "host"], "readlink /proc/self/ns/net");
    assert_eq!(stdout(&o).trim(), ours.to_str().unwrap());
    let o = sh(&["--network", "none"], "readlink /proc/self/ns/net");
    assert_ne!(stdout(&o).trim(), ours.to_str().unwrap());
}

#[test]
fn writes_go_to_the_upper_dir_and_vanish_with_rm() {
    let root = store_root();
    let o = rrun(&[
        "run",
        "--name",
        "writer",
        "busybox",
        "sh",
        "-c",
        "echo data > /newfile; rm /bin/vi",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let containers = root.join("containers");
    let dir = std::fs::read_dir(&containers)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            std::fs::read_to_string(p.join("state.json"))
                .map(|s| s.contains("\"writer\""))
                .unwrap_or(false)
        })
        .expect("the container's directory is kept without --rm");
    assert_eq!(
        std::fs::read_to_string(dir.join("upper/newfile")).unwrap(),
        "data\n"
    );
    // The deletion is a whiteout in the upper; the image keeps its file.
    let wh = std::fs::symlink_metadata(dir.join("upper/bin/vi")).unwrap();
    use std::os::unix::fs::FileTypeExt;
    assert!(
        wh.file_type().is_char_device(),
        "no whiteout for a deleted file"
    );
    for layer in std::fs::read_dir(root.join("layers")).unwrap().flatten() {
        assert!(
            !layer.path().join("fs/newfile").exists(),
            "the write reached the image layer"
        );
        assert!(
            layer.path().join("fs/bin/vi").exists(),
            "the delete reached the image layer"
        );
    }
    assert_eq!(code(&rrun(&["rm", "writer"])), 0);
    assert!(!dir.exists(), "rm left the directory");

    // With --rm nothing of it remains.
    let o = sh(&["--name", "rm-writer"], "echo data > /newfile");
    assert_eq!(code(&o), 0);
    let left = std::fs::read_dir(&containers)
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("state.json"))
                .map(|s| s.contains("\"rm-writer\""))
                .unwrap_or(false)
        })
        .count();
    assert_eq!(left, 0, "--rm left a container directory");
}

/// `--rm` uppers are thrown away, so their overlay skips syncing them
/// (`volatile`: no journal commit while the exit is reported); a kept
/// container's upper is synced as usual.
#[test]
fn only_rm_containers_get_a_volatile_overlay() {
    let root_opts = |args: &[&str]| {
        let mut a = vec!["run"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["busybox", "sh", "-c", "grep '^overlay / ' /proc/mounts"]);
        let o = rrun(&a);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        stdout(&o)
    };
    let rm = root_opts(&["--rm"]);
    assert!(
        rm.contains("volatile"),
        "a --rm container's root overlay is not volatile: {rm}"
    );
    let kept = root_opts(&["--name", "kept-upper"]);
    assert!(
        kept.starts_with("overlay / ") && !kept.contains("volatile"),
        "a kept container's root overlay is volatile: {kept}"
    );
    assert_eq!(code(&rrun(&["rm", "kept-upper"])), 0);
}

#[test]
fn exit_codes_pass_through() {
    for (script, want) in [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 42", 42),
        ("sh -c 'kill -9 $$'; exit $?", 137),
        ("sh -c 'kill -15 $$'; exit $?", 143),
    ] {
        let o = sh(&[], script);
        assert_eq!(code(&o), want, "{script}: {}", stderr(&o));
    }
}

#[test]
fn missing_and_unexecutable_commands() {
    let o = rrun(&["run", "--rm", "busybox", "no-such-cmd"]);
    assert_eq!(code(&o), 127);
    assert_eq!(
        stderr(&o),
        "rrun: \"no-such-cmd\": executable file not found in $PATH\n"
    );
    let o = rrun(&["run", "--rm", "busybox", "/no/such"]);
    assert_eq!(code(&o), 127, "{}", stderr(&o));
    let o = rrun(&["run", "--rm", "busybox", "/etc/passwd"]);
    assert_eq!(code(&o), 126, "{}", stderr(&o));
    assert!(stderr(&o).contains("permission denied"), "{}", stderr(&o));
}

#[test]
fn bad_options_exit_125_with_the_reason_and_leave_nothing() {
    let containers = store_root().join("containers");
    let leftovers = || {
        std::fs::read_dir(&containers)
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path().join("state.json"))
                    .map(|s| s.contains("\"bad-opts\""))
                    .unwrap_or(false)
            })
            .count()
    };
    for (args, needle) in [
        (
            vec!["-m", "12q"],
            "invalid argument \"12q\" for \"-m, --memory\" flag: invalid size: '12q'",
        ),
        (vec!["--cpus", "lots"], "--cpus"),
        (vec!["--network", "container:x"], "--network"),
        (vec!["-v", "rel/ative:/x"], "absolute"),
        (vec!["--security-opt", "apparmor=x"], "--security-opt"),
        (vec!["--no-such-flag"], "no-such-flag"),
    ] {
        let mut a = vec!["run", "--rm", "--name", "bad-opts"];
        a.extend(args.iter());
        a.extend(["busybox", "true"]);
        let o = rrun(&a);
        assert_eq!(code(&o), 125, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).starts_with("rrun: "), "{}", stderr(&o));
    }
    // --pull never: tests reach only loopback, and a missing image would
    // otherwise be pulled from docker.io as `docker run` does.
    let o = rrun(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--name",
        "bad-opts",
        "no-such-image",
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert_eq!(
        stderr(&o),
        format!(
            "rrun: image \"no-such-image\" not found in {} (try: rbuild images)\n",
            store_root().display()
        )
    );
    let o = rrun(&[
        "run",
        "--rm",
        "--name",
        "bad-opts",
        "busybox",
        "no-such-cmd",
    ]);
    assert_eq!(code(&o), 127);
    assert_eq!(leftovers(), 0, "a failed start left a container directory");
}

/// Names and env entries are checked before anything is created, and
/// the message says what was wrong without echoing a huge value back.
#[test]
fn bad_names_and_env_entries_exit_125_naming_what_is_wrong() {
    let long = "a".repeat(5000);
    let nul_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(nul_file.path(), b"A=1\nB=x\0y\n").unwrap();
    let utf8_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(utf8_file.path(), b"\xffA=1\n").unwrap();
    let nul_path = nul_file.path().to_str().unwrap();
    let utf8_path = utf8_file.path().to_str().unwrap();
    let nul_msg = format!("rrun: env file {nul_path}, line 2: contains a NUL byte\n");
    let utf8_msg = format!("rrun: env file {utf8_path}, line 1: is not valid UTF-8 (at byte 0)\n");
    let cases: [(Vec<&str>, &str); 6] = [
        (
            vec!["--name", &long],
            "5000 characters, at most 253 are allowed",
        ),
        (
            vec!["--name", "../x"],
            "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
        ),
        (
            vec!["--name", "a/b"],
            "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
        ),
        (
            vec!["--name", "bad-env", "-e", "=x"],
            "rrun: invalid environment variable \"=x\": the name before '=' is empty\n",
        ),
        (vec!["--name", "bad-env", "--env-file", nul_path], &nul_msg),
        (
            vec!["--name", "bad-env", "--env-file", utf8_path],
            &utf8_msg,
        ),
    ];
    for (args, needle) in cases {
        let mut a = vec!["run", "--rm"];
        a.extend(args.iter());
        a.extend(["busybox", "true"]);
        let o = rrun(&a);
        assert_eq!(code(&o), 125, "{}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
        assert!(
            stderr(&o).len() < 300,
            "echoes too much: {}",
            stderr(&o).len()
        );
    }
    let left = std::fs::read_dir(store_root().join("containers"))
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("state.json"))
                .map(|s| s.contains("\"bad-env\"") || s.contains(&long))
                .unwrap_or(false)
        })
        .count();
    assert_eq!(left, 0, "a refused run left a container directory");
    // The longest allowed name runs.
    let o = rrun(&["run", "--rm", "--name", &"b".repeat(253), "busybox", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn env_workdir_and_user_follow_docker() {
    let envfile = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(envfile.path(), "# comment\nFROM_FILE=yes\n").unwrap();
    let o = sh(
        &[
            "-e",
            "FOO=bar",
            "--env-file",
            envfile.path().to_str().unwrap(),
            "-w",
            "/made/here",
            "-u",
            "nobody",
        ],
        "echo $FOO $FROM_FILE $HOME; pwd; id -u; id -g; echo $PATH",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "bar yes /nonexistent");
    assert_eq!(l[1], "/made/here");
    assert_eq!((l[2], l[3]), ("65534", "65534"));
    assert!(l[4].contains("/bin"));
    let o = sh(&["-u", "123:456"], "id -u; id -g");
    assert_eq!(stdout(&o), "123\n456\n");
    let o = sh(&["-u", "nosuchuser"], "true");
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("nosuchuser"), "{}", stderr(&o));
    // --entrypoint replaces the image's, and the command becomes its args.
    let o = rrun(&["run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"]);
    assert_eq!(stdout(&o), "a b\n");
}

#[test]
fn volumes_read_only_and_read_write() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("in"), "from host\n").unwrap();
    let vol = format!("{}:/data", host.path().display());
    let o = sh(&["-v", &vol], "cat /data/in; echo back > /data/out");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "from host\n");
    assert_eq!(
        std::fs::read_to_string(host.path().join("out")).unwrap(),
        "back\n"
    );

    let ro = format!("{}:/data:ro", host.path().display());
    let o = sh(&["-v", &ro], "cat /data/in; echo x > /data/out2");
    assert_ne!(code(&o), 0, "a write to a :ro volume succeeded");
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    assert!(!host.path().join("out2").exists());
    // A volume target that does not exist yet is created in the container's upper only.
    let o = sh(
        &["-v", &format!("{}:/deep/new/dir", host.path().display())],
        "cat /deep/new/dir/in",
    );
    assert_eq!(stdout(&o), "from host\n", "{}", stderr(&o));
}

#[test]
fn read_only_rootfs_and_tmpfs() {
    let o = sh(&["--read-only"], "touch /x");
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("Read-only file system"),
        "{}",
        stderr(&o)
    );
    let o = sh(
        &["--read-only", "--tmpfs", "/scratch:size=1m"],
        "echo ok > /scratch/f && cat /scratch/f && grep scratch /proc/mounts",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).starts_with("ok\n"));
    assert!(
        stdout(&o).contains("tmpfs /scratch tmpfs rw,nosuid,nodev,noexec"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn dev_proc_and_sys_are_the_containers() {
    let o = sh(
        &[],
        "ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty | cut -c1-10; readlink /dev/ptmx; \
         grep -E ' /(proc|sys|dev|dev/pts|dev/shm|dev/mqueue) ' /proc/mounts | cut -d' ' -f2,3,4 | cut -d, -f1; \
         echo hi > /dev/null && head -c 4 /dev/zero | wc -c",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(out.matches("crw-rw-rw-").count(), 6, "device modes: {out}");
    assert!(out.contains("pts/ptmx\n"));
    for m in [
        "/proc proc rw",
        "/dev tmpfs rw",
        "/dev/pts devpts rw",
        "/dev/shm tmpfs rw",
        "/dev/mqueue mqueue rw",
        "/sys sysfs ro",
    ] {
        assert!(out.contains(m), "missing mount {m}: {out}");
    }
    assert!(out.ends_with("4\n"), "{out}");
    // No descriptor of rrun leaks into the container (CVE-2024-21626): the
    // command, exec'ed as PID 1, has stdio plus the one `ls` opens itself.
    let o = rrun(&["run", "--rm", "busybox", "ls", "/proc/self/fd"]);
    assert_eq!(stdout(&o), "0\n1\n2\n3\n", "{}", stderr(&o));
}

/// A layer published unsynced long enough ago is made durable once a
/// container of its image has ended (engine::layer::marker), so it
/// survives a reboot without being unpacked again.
#[test]
fn a_run_makes_its_images_old_unsynced_layers_durable() {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let layers = store_root().join("layers");
    let mut markers = Vec::new();
    for entry in std::fs::read_dir(&layers).unwrap() {
        let dir = entry.unwrap().path();
        let marker = dir.join("complete");
        let text = std::fs::read_to_string(&marker).unwrap();
        let diff_id = text.lines().last().unwrap().to_string();
        // Atomically, as other tests run containers of this image meanwhile.
        let tmp = dir.join("complete.test");
        std::fs::write(&tmp, format!("unsynced-boot {}\n{diff_id}\n", boot.trim())).unwrap();
        let old = std::time::SystemTime::now() - Duration::from_secs(120);
        std::fs::File::options()
            .write(true)
            .open(&tmp)
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::fs::rename(&tmp, &marker).unwrap();
        markers.push((marker, diff_id));
    }
    assert!(
        !markers.is_empty(),
        "no unpacked layer in {}",
        layers.display()
    );
    let o = rrun(&["run", "--rm", "busybox", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for (marker, diff_id) in markers {
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap(),
            format!("{diff_id}\n"),
            "{} is still unsynced after a run",
            marker.display()
        );
    }
}

/// Docker's `--privileged` mounts /sys and the container's cgroup
/// read-write; without it both are read-only.
#[test]
fn privileged_makes_sys_and_the_cgroup_writable() {
    let mounts = "grep -E ' /sys(/fs/cgroup)? ' /proc/mounts | cut -d' ' -f2,4 | cut -d, -f1";
    let o = rrun(&["run", "--rm", "busybox", "sh", "-c", mounts]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let plain = stdout(&o);
    assert!(plain.contains("/sys ro"), "{plain}");
    assert!(
        !plain.contains(" rw"),
        "a writable /sys mount without --privileged: {plain}"
    );
    let o = rrun(&["run", "--rm", "--privileged", "busybox", "sh", "-c", mounts]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let privileged = stdout(&o);
    assert!(privileged.contains("/sys rw"), "{privileged}");
    assert!(
        !privileged.contains(" ro"),
        "a read-only /sys mount under --privileged: {privileged}"
    );
}

#[test]
fn signals_to_rrun_reach_the_container() {
    for (sig, code_want) in [
        (nix::sys::signal::Signal::SIGTERM, 143),
        (nix::sys::signal::Signal::SIGINT, 130),
        (nix::sys::signal::Signal::SIGHUP, 129),
    ] {
        let n = code_want - 128;
        let script =
            format!("trap 'exit {code_want}' {n}; echo ready; while :; do sleep 0.05; done");
        let mut child = rrun_cmd(&["run", "--rm", "busybox", "sh", "-c", &script])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let st = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            assert!(Instant::now() < deadline, "{sig} was not forwarded");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(st.code(), Some(code_want), "{sig}");
    }
}

/// Not root is rootless (tests/rootless.rs): root's store is refused.
#[test]
fn not_root_is_refused_roots_store_clearly() {
    // A copy anybody can reach: the checkout may sit below a 0700 directory
    // (a clone into `mktemp -d`), where uid 65534 could not exec rrun.
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let exe = dir.path().join("rrun");
    std::fs::copy(RRUN, &exe).unwrap();
    let o = std::process::Command::new(&exe)
        .arg("--root")
        .arg(store_root())
        .args(["run", "--rm", "busybox", "true"])
        .stdin(Stdio::null())
        .uid(65534)
        .output()
        .unwrap();
    assert_eq!(code(&o), 125);
    let e = stderr(&o);
    assert!(
        e.contains("belongs to another user")
            && e.contains("rootless rbox uses only its user's stores"),
        "{e}"
    );
}

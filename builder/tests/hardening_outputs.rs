//! Files rbuild writes outside its store (`save -o`, `export -o`) and what
//! a signal leaves behind: a name planted by another user in a shared
//! directory is never written through, a device stays a device, and a
//! build killed by SIGTERM, SIGINT or SIGHUP removes its temp names.

mod common;

use std::fs;
use std::os::unix::fs::{lchown, symlink, FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A directory like /tmp: sticky, everybody may write to it.
fn shared_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    fs::set_permissions(d.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    d
}

/// Plant, as nobody would, symlinks to `victim` at every name an output
/// `out` had as its temp file before (`<out minus extension>.partial-<pid>`)
/// for the pids the next processes are likely to get.
fn plant_partial_links(out: &Path, victim: &Path) {
    let last: u32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for pid in last + 1..last + 400 {
        let link = out.with_extension(format!("partial-{pid}"));
        symlink(victim, &link).unwrap();
        lchown(&link, Some(65534), Some(65534)).unwrap();
    }
}

#[test]
fn save_and_export_never_write_through_a_planted_symlink() {
    let _ = store_root();
    let dir = shared_dir();
    let victim = dir.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    for (cmd, name) in [("save", "image.tar"), ("export", "rootfs.tar")] {
        let out = dir.path().join(name);
        plant_partial_links(&out, &victim);
        let o = rbuild(&[cmd, "busybox", "-o", out.to_str().unwrap()]);
        assert!(o.status.success(), "rbuild {cmd}: {}", stderr(&o));
        assert!(
            fs::read(&victim).unwrap() == b"precious",
            "rbuild {cmd} wrote through a planted symlink"
        );
        let m = fs::symlink_metadata(&out).unwrap();
        assert!(m.is_file() && m.len() > 1024, "{cmd}: {m:?}");
    }
    // A symlink planted at the output's own name is refused, not followed.
    let out = dir.path().join("planted.tar");
    symlink(&victim, &out).unwrap();
    lchown(&out, Some(65534), Some(65534)).unwrap();
    let o = rbuild(&["save", "busybox", "-o", out.to_str().unwrap()]);
    assert!(!o.status.success(), "saved through a planted symlink");
    assert!(
        stderr(&o).contains("symlink of uid 65534"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    // Nothing else was left in the directory (the planted links are not
    // ours to remove).
    let mut left: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') || !n.contains(".partial-"))
        .collect();
    left.sort();
    assert_eq!(left, ["image.tar", "planted.tar", "rootfs.tar", "victim"]);
}

#[test]
fn an_oci_layout_dir_is_never_written_through_a_planted_symlink() {
    let _ = store_root();
    let layout = shared_dir();
    let victim = layout.path().join("victim");
    fs::write(&victim, "precious").unwrap();
    let target = format!("oci:{}", layout.path().display());
    // At the name of a layout file itself: refused.
    let planted = layout.path().join("oci-layout");
    symlink(&victim, &planted).unwrap();
    lchown(&planted, Some(65534), Some(65534)).unwrap();
    let o = rbuild(&["save", "busybox", "-o", &target]);
    assert!(
        !o.status.success(),
        "saved through a planted oci-layout symlink"
    );
    assert!(
        stderr(&o).contains("symlink of uid 65534"),
        "{}",
        stderr(&o)
    );
    assert!(
        fs::read(&victim).unwrap() == b"precious",
        "oci-layout was written through"
    );
    // At the temp names the layout's files had before: never touched.
    fs::remove_file(&planted).unwrap();
    plant_partial_links(&layout.path().join("index.json"), &victim);
    for pid_link in fs::read_dir(layout.path()).unwrap().flatten() {
        let name = pid_link.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("index.partial-") {
            let old = layout.path().join(format!("index.tmp-{pid}"));
            fs::rename(pid_link.path(), &old).unwrap();
        }
    }
    let o = rbuild(&["save", "busybox", "-o", &target]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        fs::read(&victim).unwrap() == b"precious",
        "index.json's temp was written through"
    );
    assert!(fs::symlink_metadata(layout.path().join("index.json"))
        .unwrap()
        .is_file());
}

#[test]
fn save_to_a_device_writes_it_in_place() {
    let _ = store_root();
    let dir = tempfile::tempdir().unwrap();
    let null = dir.path().join("null");
    nix::sys::stat::mknod(
        &null,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 3),
    )
    .unwrap();
    for cmd in ["save", "export"] {
        let o = rbuild(&[cmd, "busybox", "-o", null.to_str().unwrap()]);
        assert!(o.status.success(), "rbuild {cmd}: {}", stderr(&o));
        let m = fs::symlink_metadata(&null).unwrap();
        assert!(
            m.file_type().is_char_device(),
            "{cmd} replaced the device: {m:?}"
        );
    }
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        1,
        "a temp file was left"
    );
}

#[test]
fn save_to_dev_stdout_writes_the_pipe() {
    let o = rbuild(&["save", "busybox", "-o", "/dev/stdout"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A tar: "ustar" at offset 257 of the first header.
    assert!(o.stdout.len() > 1024 && &o.stdout[257..262] == b"ustar");
    assert!(fs::symlink_metadata("/dev/stdout")
        .unwrap()
        .file_type()
        .is_symlink());
}

/// Entries of the store's tmp/ that belong to process `pid`.
fn sessions_of(pid: u32) -> Vec<String> {
    fs::read_dir(store_root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&format!("{pid}-")))
        .collect()
}

#[test]
fn a_build_ended_by_a_signal_removes_its_temp_files() {
    use nix::sys::signal::{kill, Signal};
    use std::os::unix::process::ExitStatusExt;
    let _ = store_root();
    for (i, sig) in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP]
        .into_iter()
        .enumerate()
    {
        let ctx = context(&[(
            "Containerfile",
            format!("FROM busybox\nRUN sleep 60 # {i}\n"),
        )]);
        let mut cmd = Command::new(RBUILD);
        // A test run from a non-interactive shell's background job (the
        // cgroup-v2 lane) inherits SIGINT ignored, which rbuild keeps, as
        // programs should: give it the default a terminal user has.
        // SAFETY: pre_exec runs between fork and exec; signal(2) is
        // async-signal-safe.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_DFL);
                libc::signal(libc::SIGHUP, libc::SIG_DFL);
                libc::signal(libc::SIGTERM, libc::SIG_DFL);
                Ok(())
            });
        }
        let mut child = cmd
            .arg("--root")
            .arg(store_root())
            .args(["build", "--progress", "plain", "-t", "killed:1"])
            .arg(ctx.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        // Wait until the RUN step runs: its upper dir is in the session.
        let deadline = Instant::now() + Duration::from_secs(60);
        let session = loop {
            let found = sessions_of(pid).into_iter().find(|s| {
                fs::read_dir(store_root().join("tmp").join(s))
                    .map(|rd| {
                        rd.flatten()
                            .any(|e| e.file_name().to_string_lossy().starts_with("run-"))
                    })
                    .unwrap_or(false)
            });
            if let Some(s) = found {
                break s;
            }
            assert!(Instant::now() < deadline, "the RUN step never started");
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(200));
        kill(nix::unistd::Pid::from_raw(pid as i32), sig).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(sig as i32), "{sig}: {status:?}");
        assert_eq!(
            sessions_of(pid),
            Vec::<String>::new(),
            "{sig} left the session {session}"
        );
        let images = stdout(&rbuild(&["images"]));
        assert!(
            !images.contains("killed"),
            "{sig}: a killed build tagged its image"
        );
    }
}

//! CVE-2019-5736 against rrun itself: a container whose `/bin/sh` is a
//! symlink to `/proc/self/exe` makes the process rrun sends into it execute
//! rrun's binary, then opens that process's `/proc/<pid>/exe` and writes
//! through the handle once the file is no longer being executed. Each test
//! runs a copy of rrun from a second path (the "upgraded by rename, or
//! exec'ed through another path" case: nothing else executes that file, so
//! it is writable as soon as the processes running it are gone), attacks it
//! with a static C program (exeseal_attacker.c), and checks both that the
//! attacker did get handles to the binary and that the binary is
//! byte-for-byte unchanged.

mod common;
mod escape_common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::*;
use escape_common::{image_with, Entry};

const ATTACKER_SRC: &str = include_str!("exeseal_attacker.c");
const IMAGE: &str = "exeseal-attack";

fn attacker_binary() -> PathBuf {
    let dir = store_root().join("exeseal-attacker");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("attacker.c");
    std::fs::write(&src, ATTACKER_SRC).unwrap();
    let out = dir.join("attacker");
    let o = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .output()
        .expect("this test needs gcc to build its static attacker: apt-get install gcc libc6-dev");
    assert!(
        o.status.success(),
        "gcc -static failed (apt-get install libc6-dev for libc.a): {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The libraries a dynamically linked rrun needs (none for the static
/// release build), so that the container can execute it as the attack does.
fn shared_libraries(bin: &str) -> Vec<String> {
    let o = Command::new("ldd").arg(bin).output().expect("run ldd");
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(str::to_string)
        .collect()
}

/// busybox, the attacker at /attacker, `/bin/sh -> /proc/self/exe`, and
/// rrun's shared libraries if it has any.
fn attack_image() -> &'static str {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let attacker = attacker_binary();
        let libs = shared_libraries(RRUN);
        let lib_paths: Vec<(String, PathBuf)> = libs
            .iter()
            .map(|l| (l.trim_start_matches('/').to_string(), PathBuf::from(l)))
            .collect();
        let mut files: Vec<(&str, Entry)> = vec![
            ("attacker", Entry::Copy(&attacker, 0o755)),
            ("bin/sh", Entry::Symlink("/proc/self/exe")),
        ];
        for (dst, src) in &lib_paths {
            files.push((dst.as_str(), Entry::Copy(src.as_path(), 0o755)));
        }
        image_with(IMAGE, &files, &[]);
    });
    IMAGE
}

/// A copy of rrun at a path of its own: (path, its bytes).
fn second_rrun(tag: &str) -> (PathBuf, Vec<u8>) {
    let dir = store_root().join(format!("exeseal-second-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rrun");
    std::fs::copy(RRUN, &path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

fn rrun_at(bin: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.arg("--root").arg(store_root()).args(args);
    c.stdin(Stdio::null());
    c
}

fn logs(name: &str) -> String {
    stdout(&rrun(&["logs", name]))
}

fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Poll a receiver's log a little while for a successful write.
fn settle_and_read(name: &str) -> String {
    let start = Instant::now();
    loop {
        let l = logs(name);
        // Until the attack has its answer once the attacked process is gone
        // (a write, or EROFS from the clone); ETXTBSY alone only means it
        // still ran. Bounded: a loaded machine can take seconds.
        let settled = l.contains("write ok") || l.contains("reopen EROFS");
        if settled || start.elapsed() > Duration::from_secs(5) {
            return l;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_unchanged(bin: &Path, before: &[u8], log: &str) {
    let after = std::fs::read(bin).unwrap();
    assert!(
        after.len() == before.len() && after == before,
        "the container wrote to {} ({} bytes before, {} after); attacker log:\n{log}",
        bin.display(),
        before.len(),
        after.len()
    );
    assert!(!log.contains("write ok"), "attacker log:\n{log}");
}

/// `rrun exec C /bin/sh -c true` with `/bin/sh -> /proc/self/exe`, many
/// times, while the container's main process watches /proc.
#[test]
fn exec_of_proc_self_exe_cannot_write_rrun() {
    let image = attack_image();
    let (bin, before) = second_rrun("exec");
    let size = before.len().to_string();
    let name = "exeseal-exec";
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        name,
        image,
        "/attacker",
        "watch",
        &size,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for _ in 0..60 {
        // The exec'd copy of rrun gets "-c true" as its arguments and
        // exits at once; the attacker has that long to open its exe.
        // (Once the attack works, starting `bin` may fail with ETXTBSY
        // while the attacker holds it open for writing.)
        let _ = rrun_at(&bin, &["exec", name, "/bin/sh", "-c", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let log = settle_and_read(name);
    let _ = rrun(&["rm", "-f", name]);
    assert_unchanged(&bin, &before, &log);
    assert!(
        log.contains("handle "),
        "the attack never got a handle to the exec'd rrun, so it proves nothing:\n{log}"
    );
    assert!(
        log.contains("reopen EROFS"),
        "the handle should be to a read-only copy:\n{log}"
    );
}

/// A receiver container that keeps trying to write through every handle
/// another container sends it over a unix socket on a shared volume: it
/// outlives the container the handle came from, and that container's rrun.
struct Receiver {
    name: String,
    volume: PathBuf,
}

impl Receiver {
    fn start(tag: &str) -> Receiver {
        let volume = store_root().join(format!("exeseal-vol-{tag}"));
        std::fs::create_dir_all(&volume).unwrap();
        let name = format!("exeseal-{tag}-recv");
        let v = format!("{}:/shared", volume.display());
        let o = rrun(&[
            "run",
            "-d",
            "--name",
            &name,
            "-v",
            &v,
            attack_image(),
            "/attacker",
            "recv",
            "/shared/sock",
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        wait_until("the receiver to listen", Duration::from_secs(10), || {
            logs(&name).contains("listening")
        });
        Receiver { name, volume }
    }

    fn volume_arg(&self) -> String {
        format!("{}:/shared", self.volume.display())
    }

    fn wait_handle(&self) {
        wait_until(
            "the receiver to get a handle",
            Duration::from_secs(20),
            || logs(&self.name).contains("handle received"),
        );
    }

    fn finish(self) -> String {
        let log = settle_and_read(&self.name);
        let _ = rrun(&["rm", "-f", &self.name]);
        log
    }
}

/// Join `container` with the attacker sending its /proc/1/exe; it runs
/// until the container ends.
fn send_pid1_exe(container: &str, size: &str) -> Child {
    wait_until("the container to run", Duration::from_secs(10), || {
        code(&rrun(&["exec", container, "/bin/true"])) == 0
    });
    rrun_cmd(&[
        "exec",
        container,
        "/attacker",
        "send",
        "/proc/1/exe",
        "/shared/sock",
        size,
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap()
}

/// `rrun run` whose command is `/bin/sh -> /proc/self/exe`: the container's
/// PID 1 becomes rrun. It is kept alive writing a long error message to a
/// pipe nobody reads, while an attacker joins and passes /proc/1/exe to a
/// receiver that outlives the container.
#[test]
fn run_of_proc_self_exe_cannot_write_rrun() {
    let image = attack_image();
    let (bin, before) = second_rrun("run");
    let size = before.len().to_string();
    let recv = Receiver::start("run");
    let name = "exeseal-run";
    // More than a pipe holds: rrun blocks writing "unrecognized subcommand".
    let long_arg = "x".repeat(100_000);
    let mut fg = rrun_at(
        &bin,
        &[
            "run",
            "--rm",
            "--name",
            name,
            "-v",
            &recv.volume_arg(),
            image,
            "/bin/sh",
            &long_arg,
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut sender = send_pid1_exe(name, &size);
    recv.wait_handle();
    let _ = rrun(&["rm", "-f", name]);
    drop(fg.stderr.take());
    let _ = fg.wait();
    let _ = sender.wait();
    let log = recv.finish();
    assert_unchanged(&bin, &before, &log);
    // The handle was tried and refused. EROFS (the clone's read-only
    // mount) is what the fix gives once nothing runs the clone any more;
    // on some hosts the clone's inode stays busy (ETXTBSY) for the whole
    // window, which refuses the write just as well. Without the fix the
    // receiver writes ("write ok"), which assert_unchanged catches.
    assert!(
        log.contains("handle received")
            && (log.contains("reopen EROFS") || log.contains("reopen ETXTBSY")),
        "receiver log:\n{log}"
    );
}

/// `--init`: PID 1 is rrun's reaper for the container's whole life. With
/// CAP_SYS_PTRACE the container may open its /proc/1/exe (non-dumpable
/// stops the others); the handle goes to a receiver that outlives it.
#[test]
fn init_pid1_exe_cannot_write_rrun() {
    let image = attack_image();
    let (bin, before) = second_rrun("init");
    let size = before.len().to_string();
    let recv = Receiver::start("init");
    let name = "exeseal-init";
    let o = rrun_at(
        &bin,
        &[
            "run",
            "-d",
            "--init",
            "--cap-add",
            "SYS_PTRACE",
            "--name",
            name,
            "-v",
            &recv.volume_arg(),
            image,
            "/attacker",
            "send",
            "/proc/1/exe",
            "/shared/sock",
            &size,
        ],
    )
    .output()
    .unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    recv.wait_handle();
    let _ = rrun(&["rm", "-f", name]);
    // The -d supervisor (running `bin`) is gone once its container is.
    wait_until(
        "the container's supervisor to exit",
        Duration::from_secs(10),
        || !running_from(&bin),
    );
    let log = recv.finish();
    assert_unchanged(&bin, &before, &log);
    assert!(log.contains("reopen EROFS"), "receiver log:\n{log}");
}

/// Whether any process still executes `bin` (the file, by device and inode).
fn running_from(bin: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(bin).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::metadata(e.path().join("exe")).ok())
        .any(|x| x.dev() == m.dev() && x.ino() == m.ino())
}

/// `--init`'s PID 1 never execs, so close-on-exec leaves it every
/// descriptor rrun had: host files in the container, and under `run -d`
/// the pipe whose EOF the foreground rrun waits for (it then returned only
/// when the container ended).
#[test]
fn init_pid1_holds_no_host_descriptors() {
    let name = "exeseal-init-fds";
    let start = Instant::now();
    let o = rrun(&[
        "run",
        "-d",
        "--init",
        "--cap-add",
        "SYS_PTRACE",
        "--name",
        name,
        "busybox",
        "sh",
        "-c",
        "ls /proc/1/fd | tr '\\n' ' '; echo; sleep 4",
    ]);
    let took = start.elapsed();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut log = String::new();
    wait_until("the listing", Duration::from_secs(10), || {
        log = logs(name);
        log.contains('\n')
    });
    let _ = rrun(&["rm", "-f", name]);
    assert!(
        took < Duration::from_secs(3),
        "`run -d --init` returned only after {took:?}: the container held its pipe"
    );
    assert_eq!(log.trim(), "0 1 2", "descriptors of the container's PID 1");
}

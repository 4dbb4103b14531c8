//! The --init reaper as PID 1 of a fresh pid namespace: zombies reaped,
//! signals forwarded, exit status passed through, PID 1 not dumpable.

mod security_common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use engine::runtime::SecuritySpec;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use security_common::*;

const ENV: &[&str] = &["PATH=/bin:/usr/bin:/sbin:/usr/sbin", "HOME=/"];

/// Forks a child that unshares pid+mount namespaces and forks PID 1, which
/// mounts its /proc, optionally applies the default security, and calls
/// `init::run(argv)`. The child prints `init=<host pid>` and exits with PID
/// 1's status.
fn start(argv: &'static [&'static str], secure: bool) -> (Child, Pid) {
    require_root_and_busybox();
    let mut child = spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWPID).expect("unshare(CLONE_NEWPID)");
        private_mount_ns();
        // SAFETY: PID 1 below only mounts, applies security and calls init.
        match unsafe { nix::unistd::fork() }.expect("fork") {
            nix::unistd::ForkResult::Child => {
                nix::mount::mount(
                    Some("proc"),
                    "/proc",
                    Some("proc"),
                    nix::mount::MsFlags::empty(),
                    None::<&str>,
                )
                .expect("mount /proc");
                if secure {
                    runner::native::security::apply(&SecuritySpec::default())
                        .expect("security::apply");
                }
                runner::native::init::run(&cstrings(argv), &cstrings(ENV))
            }
            nix::unistd::ForkResult::Parent { child } => {
                say(&format!("init={child}\n"));
                code(nix::sys::wait::waitpid(child, None).expect("waitpid"))
            }
        }
    });
    let out = child.read_until("\n", Duration::from_secs(10)).to_string();
    let pid: i32 = out
        .lines()
        .find_map(|l| l.strip_prefix("init="))
        .and_then(|p| p.parse().ok())
        .expect("init pid");
    (child, Pid::from_raw(pid))
}

/// Host view of the processes whose parent is `parent`: pid → state letter.
fn children_of(parent: Pid) -> HashMap<i32, char> {
    let mut kids = HashMap::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so cut at ')'.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let mut f = rest.split_whitespace();
        let state = f.next().and_then(|s| s.chars().next()).unwrap_or('?');
        if f.next().and_then(|p| p.parse::<i32>().ok()) == Some(parent.as_raw()) {
            kids.insert(pid, state);
        }
    }
    kids
}

#[test]
fn init_reaps_orphaned_grandchildren() {
    // The orphan `sleep 0.3` is reparented to PID 1 when its subshell exits;
    // the command itself never waits for it.
    let (child, init) = start(
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "(/bin/busybox sleep 0.3 &); exec /bin/busybox sleep 30",
        ],
        false,
    );
    let wait_for = |what: &str, pred: &dyn Fn(&HashMap<i32, char>) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let kids = children_of(init);
            if pred(&kids) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PID 1 never had {what}: {kids:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for("the command and the adopted orphan as children", &|k| {
        k.len() == 2
    });
    // A zombie would stay in the list (state Z) until reaped.
    wait_for("its orphan reaped", &|k| {
        k.len() == 1 && !k.values().any(|s| *s == 'Z')
    });
    kill(init, Signal::SIGTERM).unwrap();
    let (st, out) = child.finish(Duration::from_secs(10));
    assert_eq!(code(st), 143, "{out}");
}

#[test]
fn init_forwards_term_to_the_command() {
    let (mut child, init) = start(
        &["/bin/busybox", "sh", "-c", "trap 'echo got-term; exit 42' TERM; echo ready; while :; do /bin/busybox sleep 0.05; done"],
        false,
    );
    child.read_until("ready", Duration::from_secs(10));
    kill(init, Signal::SIGTERM).unwrap();
    let (st, out) = child.finish(Duration::from_secs(10));
    assert!(out.contains("got-term"), "{out}");
    assert_eq!(code(st), 42, "{out}");
}

#[test]
fn death_by_signal_exits_128_plus_n() {
    for (sig, expected) in [
        (Signal::SIGTERM, 143),
        (Signal::SIGUSR1, 138),
        (Signal::SIGHUP, 129),
    ] {
        let (mut child, init) = start(
            &[
                "/bin/busybox",
                "sh",
                "-c",
                "echo ready; exec /bin/busybox sleep 30",
            ],
            false,
        );
        child.read_until("ready", Duration::from_secs(10));
        // Wait until the command has exec'd sleep (no trap can intervene).
        let deadline = Instant::now() + Duration::from_secs(5);
        while children_of(init).len() != 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(50));
        kill(init, sig).unwrap();
        let (st, out) = child.finish(Duration::from_secs(10));
        assert_eq!(code(st), expected, "{sig:?}: {out}");
    }
}

#[test]
fn exit_codes_pass_through() {
    let (child, _) = start(&["/bin/busybox", "sh", "-c", "exit 7"], false);
    assert_eq!(code(child.finish(Duration::from_secs(10)).0), 7);
    // argv[0] without '/': looked up in the command's PATH.
    let (child, _) = start(&["busybox", "true"], false);
    assert_eq!(code(child.finish(Duration::from_secs(10)).0), 0);
    let (child, _) = start(&["no-such-command-here"], false);
    let (st, out) = child.finish(Duration::from_secs(10));
    assert_eq!(code(st), 127, "{out}");
    assert!(out.contains("executable file not found"), "{out}");
    let (child, _) = start(&["/etc/hostname"], false);
    let (st, out) = child.finish(Duration::from_secs(10));
    assert_eq!(code(st), 126, "{out}");
}

/// CVE-2019-5736: PID 1 is a fork of rrun, so /proc/1/exe is rrun's host
/// binary; under the default security (no CAP_SYS_PTRACE) the command
/// cannot reach it. The command's own /proc/self/exe stays readable, so
/// the refusal is about PID 1, and PID 1 runs under the filter too.
#[test]
fn pid1_is_not_dumpable_and_runs_confined() {
    const SCRIPT: &str = "readlink /proc/1/exe; echo pid1-exe=$?; readlink /proc/self/exe >/dev/null; echo self-exe=$?; \
                  grep -E '^(Seccomp|NoNewPrivs):' /proc/1/status; echo comm=$(cat /proc/1/comm)";
    let (child, _) = start(&["/bin/busybox", "sh", "-c", SCRIPT], true);
    let (st, out) = child.finish(Duration::from_secs(10));
    assert_eq!(code(st), 0, "{out}");
    assert!(
        out.contains("pid1-exe=1"),
        "/proc/1/exe must be unreachable:\n{out}"
    );
    assert!(out.contains("self-exe=0"), "{out}");
    assert_eq!(status_field(&out, "Seccomp"), "2");
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    assert!(out.contains("comm=rrun-init"), "{out}");
}

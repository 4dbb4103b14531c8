//! Shared by the security, init and tty tests: run a closure in a forked
//! child (the way the runner's container child runs), capture what it and
//! the programs it execs print, and wait with a deadline so a hang fails.
//!
//! The test binary is multi-threaded; children keep to syscalls and exec,
//! and print with `say` (a raw write to fd 1, not Rust's captured stdout).
#![allow(dead_code)]

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

pub const BUSYBOX: &str = "/bin/busybox";

pub fn require_root_and_busybox() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (namespaces, mounts, capabilities): run it as root, as CI does"
    );
    assert!(
        std::path::Path::new(BUSYBOX).exists(),
        "this test needs {BUSYBOX}: apt-get install busybox-static"
    );
}

/// Writes to fd 1 of the calling process without Rust's stdout machinery.
pub fn say(s: &str) {
    let _ = nix::unistd::write(std::io::stdout().as_fd(), s.as_bytes());
}

pub fn cstrings(v: &[&str]) -> Vec<CString> {
    v.iter().map(|s| CString::new(*s).unwrap()).collect()
}

/// Execs busybox with `args` (argv[0] = "busybox"), never returns.
pub fn exec_busybox(args: &[&str]) -> ! {
    let mut argv = vec!["busybox"];
    argv.extend_from_slice(args);
    let argv = cstrings(&argv);
    let env = cstrings(&["PATH=/bin:/usr/bin:/sbin:/usr/sbin", "HOME=/", "TERM=xterm"]);
    let e = nix::unistd::execve(&CString::new(BUSYBOX).unwrap(), &argv, &env).unwrap_err();
    say(&format!("exec busybox failed: {e}\n"));
    exit_now(120)
}

pub fn exit_now(code: i32) -> ! {
    // SAFETY: ends a forked test child without unwinding into the harness.
    unsafe { libc::_exit(code) }
}

/// Negative errno of a raw syscall result, 0 on success.
pub fn errno_of(r: libc::c_long) -> i32 {
    if r < 0 {
        nix::Error::last() as i32
    } else {
        0
    }
}

pub struct Child {
    pub pid: Pid,
    out: OwnedFd,
    pub output: String,
}

/// Forks; the child has the capture pipe as stdout and stderr and runs `f`,
/// exiting with its result (a panic in `f` exits 101).
pub fn spawn(f: impl FnOnce() -> i32) -> Child {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
    // SAFETY: the child only makes syscalls and execs (see the module note).
    match unsafe { nix::unistd::fork() }.expect("fork") {
        ForkResult::Child => {
            // SAFETY: replacing stdout/stderr with the capture pipe.
            unsafe {
                libc::dup2(w.as_raw_fd(), 1);
                libc::dup2(w.as_raw_fd(), 2);
            }
            let code =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
                    let msg = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()));
                    say(&format!("child panicked: {msg:?}\n"));
                    101
                });
            exit_now(code)
        }
        ForkResult::Parent { child } => {
            drop(w);
            Child {
                pid: child,
                out: r,
                output: String::new(),
            }
        }
    }
}

impl Child {
    /// Reads output until `pattern` appears; panics with what was seen
    /// after `timeout`.
    pub fn read_until(&mut self, pattern: &str, timeout: Duration) -> &str {
        let deadline = Instant::now() + timeout;
        while !self.output.contains(pattern) {
            if !self.read_some(deadline) {
                let _ = kill(self.pid, Signal::SIGKILL);
                panic!(
                    "{pattern:?} never appeared (eof or timeout); output so far:\n{}",
                    self.output
                );
            }
        }
        &self.output
    }

    /// false at EOF or deadline.
    fn read_some(&mut self, deadline: Instant) -> bool {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut p = [PollFd::new(self.out.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap();
        match poll(&mut p, ms) {
            Ok(0) => return false,
            Err(nix::Error::EINTR) => return true,
            Err(e) => panic!("poll: {e}"),
            Ok(_) => {}
        }
        let mut buf = [0u8; 8192];
        match nix::unistd::read(self.out.as_raw_fd(), &mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.output.push_str(&String::from_utf8_lossy(&buf[..n]));
                true
            }
            Err(nix::Error::EINTR) => true,
            Err(e) => panic!("read: {e}"),
        }
    }

    /// Reaps the child and collects its output; kills it and panics past
    /// `timeout`. Its end is its exit, not the pipe's EOF: the test binary
    /// runs tests in threads, and a sibling test that forks while our pipe
    /// is open gives its (unexec'd) child a copy of our write end, which
    /// then keeps the pipe open as long as that child lives (waiting for
    /// EOF timed out once in CI, under load, after the child had exited).
    pub fn finish(mut self, timeout: Duration) -> (WaitStatus, String) {
        let deadline = Instant::now() + timeout;
        loop {
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)).expect("waitpid") {
                WaitStatus::StillAlive if Instant::now() < deadline => {
                    self.read_some((Instant::now() + Duration::from_millis(10)).min(deadline));
                }
                WaitStatus::StillAlive => {
                    let _ = kill(self.pid, Signal::SIGKILL);
                    let _ = waitpid(self.pid, None);
                    panic!(
                        "child did not finish within {timeout:?}; output:\n{}",
                        self.output
                    );
                }
                st => {
                    // What it wrote before exiting is in the pipe already.
                    while self.read_some(Instant::now() + Duration::from_millis(50)) {}
                    return (st, self.output);
                }
            }
        }
    }
}

/// The exit code the shell would report.
pub fn code(st: WaitStatus) -> i32 {
    match st {
        WaitStatus::Exited(_, c) => c,
        WaitStatus::Signaled(_, s, _) => 128 + s as i32,
        other => panic!("unexpected wait status {other:?}"),
    }
}

/// A private mount namespace for the calling (child) process, so nothing
/// it mounts reaches the host.
pub fn private_mount_ns() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare(CLONE_NEWNS)");
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .expect("make / private");
}

/// The value of `key:` in /proc/self/status lines captured in `out`.
pub fn status_field<'a>(out: &'a str, key: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key}: line in output:\n{out}"))
}

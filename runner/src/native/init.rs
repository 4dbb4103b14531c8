//! `--init`: a small reaper as PID 1 of the container, in the manner of
//! tini (Docker's `docker-init`).
//!
//! It forks; the child puts itself in its own process group, takes the
//! terminal's foreground if there is one, and execs the command directly.
//! The parent blocks every asynchronous signal, waits for them with
//! `sigwaitinfo`, forwards each to the command (SIGCHLD excepted), reaps
//! every zombie reparented to it, and exits with the command's status
//! (128+N for signal N).
//!
//! Security: the runner applies capabilities, no_new_privs and seccomp
//! *before* calling `run`, so both PID 1 and the command are confined (the
//! filter and no_new_privs are inherited across fork and exec; nothing the
//! reaper does is refused by the filter). PID 1 here is a fork of rrun, not
//! an exec: its `/proc/1/exe` is rrun's binary on the host. It is made
//! non-dumpable so a process in the container cannot open `/proc/1/exe`
//! (or `/proc/1/mem`, or ptrace it) without CAP_SYS_PTRACE, which is
//! CVE-2019-5736's way to overwrite the runtime. With `--privileged` or
//! `--cap-add SYS_PTRACE` that protection is gone (as in Docker).

use std::ffi::{CStr, CString};

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{ForkResult, Pid};

/// Signals that report a fault in PID 1 itself; never blocked.
const SYNCHRONOUS: [Signal; 6] = [
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
];

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Runs `argv` (argv[0] looked up in `env`'s PATH when it has no '/') under
/// a reaper and exits with its status. Call it in the container child where
/// execve would otherwise be, after all security setup.
pub fn run(argv: &[CString], env: &[CString]) -> ! {
    // SAFETY: integer arguments only. See the module comment (CVE-2019-5736).
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) };
    // PID 1 never execs, so close-on-exec does not close what rrun had
    // open: close it. Otherwise the container's PID 1 holds host files
    // (whatever rrun inherited) and, under `run -d`, the pipe on which
    // the foreground rrun waits for EOF, so that rrun would wait for the
    // container to end.
    // SAFETY: close_range takes only integers; nothing here uses a
    // descriptor above 2 from now on.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };

    // `ps` in the container shows what PID 1 is, as docker-init does.
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        libc::prctl(
            libc::PR_SET_NAME,
            c"rrun-init".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        )
    };

    let mut blocked = SigSet::all();
    for s in SYNCHRONOUS {
        blocked.remove(s);
    }
    let mut original = SigSet::empty();
    if let Err(e) = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&blocked), Some(&mut original)) {
        die(format_args!("blocking signals: {e}"), 125);
    }

    // SAFETY: PID 1 of a fresh pid namespace is single-threaded here; the
    // child only adjusts its process group and signal mask and execs.
    let child = match unsafe { nix::unistd::fork() } {
        Err(e) => die(format_args!("fork: {e}"), 125),
        Ok(ForkResult::Child) => exec_command(argv, env, &original),
        Ok(ForkResult::Parent { child }) => child,
    };
    reap_and_forward(child, &blocked)
}

fn exec_command(argv: &[CString], env: &[CString], original_mask: &SigSet) -> ! {
    // Own process group, so the terminal's job control (Ctrl-C, Ctrl-Z)
    // reaches the command and not PID 1. SIGTTOU is still blocked, so
    // taking the foreground cannot stop us.
    let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let stdin = std::io::stdin();
    match nix::unistd::tcsetpgrp(&stdin, nix::unistd::getpgrp()) {
        Ok(()) | Err(nix::Error::ENOTTY) | Err(nix::Error::ENXIO) => {}
        Err(e) => die(format_args!("taking the terminal's foreground: {e}"), 125),
    }
    // Default dispositions for the command, whatever PID 1 inherited: a
    // SIGHUP ignored by whoever started us (nohup) would otherwise make the
    // command deaf to the SIGHUP we forward.
    for sig in 1..32 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: setting a signal's disposition to the default.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(original_mask), None);
    let Some(name) = argv.first() else {
        die(format_args!("no command given"), 125)
    };
    let path = match resolve_command(name, env) {
        Some(p) => p,
        None => die(
            format_args!("{name:?}: executable file not found in $PATH"),
            127,
        ),
    };
    let err = nix::unistd::execve(&path, argv, env).unwrap_err();
    let code = if err == nix::Error::ENOENT { 127 } else { 126 };
    die(format_args!("exec {path:?}: {err}"), code)
}

/// `name` itself when it has a '/', else the first executable match in the
/// PATH of `env` (the container's environment, not ours).
fn resolve_command(name: &CStr, env: &[CString]) -> Option<CString> {
    let bytes = name.to_bytes();
    if bytes.contains(&b'/') {
        return Some(name.to_owned());
    }
    let path = env
        .iter()
        .find_map(|e| e.to_str().ok()?.strip_prefix("PATH=").map(str::to_owned))
        .unwrap_or_else(|| DEFAULT_PATH.to_owned());
    path.split(':').filter(|d| !d.is_empty()).find_map(|dir| {
        let mut candidate = dir.as_bytes().to_vec();
        candidate.push(b'/');
        candidate.extend_from_slice(bytes);
        let c = CString::new(candidate).ok()?;
        // SAFETY: `c` is a valid C string for the call.
        (unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0).then_some(c)
    })
}

fn reap_and_forward(child: Pid, blocked: &SigSet) -> ! {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid out-parameter.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `blocked` wraps a valid sigset_t; `info` is writable.
        let sig = unsafe { libc::sigwaitinfo(blocked.as_ref(), &mut info) };
        if sig < 0 {
            continue; // EINTR
        }
        if sig != libc::SIGCHLD {
            // To the command only, as tini does by default; it decides
            // what its own children get.
            // SAFETY: kill(2) with a pid we forked and a signal number.
            unsafe { libc::kill(child.as_raw(), sig) };
            continue;
        }
        // SIGCHLDs coalesce: reap until nothing is left to reap.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => exit_now(code),
                Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => exit_now(128 + s as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {} // an orphan reaped
            }
        }
    }
}

fn die(msg: std::fmt::Arguments<'_>, code: i32) -> ! {
    // A raw write to fd 2: in a forked copy of a program, Rust's stderr may
    // be redirected in-process (test harness capture), and we must not
    // depend on its lock.
    let line = format!("rrun: {msg}\n");
    let _ = nix::unistd::write(std::io::stderr(), line.as_bytes());
    exit_now(code)
}

fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process without running atexit handlers or
    // unwinding, which is what a forked copy of rrun must do.
    unsafe { libc::_exit(code) }
}

//! Dying of SIGTERM, SIGINT or SIGHUP without leaving temp names behind.
//!
//! Everything rbox writes goes to a temp name first (a store session dir,
//! an output's temp file) and is renamed into place whole. A process
//! killed by a signal used to leave those names to be reaped by the next
//! open of the store. With [`install`], such a signal instead wakes a
//! thread that removes every [`register`]ed path and then lets the signal
//! kill the process as it would have.
//!
//! A session dir is first renamed aside, so that a rename out of it still
//! in flight on another thread (a layer being published) fails instead of
//! publishing a half-removed tree; mounts under it (a builder's views, in
//! the builder's own mount namespace) are detached before it is removed.
//! What a race leaves (a file created in the dir as it was being removed)
//! still carries the session's name and is reaped by the next open.

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// The signals after which a process cleans up and dies.
pub const SIGNALS: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP];

/// What to remove if a signal ends the process.
static PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// The write end of the pipe the handler wakes the cleaner through.
static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// The process that installed the handlers: a child forked from it that
/// has not exec'd yet (a container being set up) dies of the signal as
/// usual instead of waking its parent's cleaner.
static OWNER_PID: AtomicI32 = AtomicI32::new(0);

/// Remove `path` (a file or a tree) if a signal ends the process.
pub fn register(path: &Path) {
    lock().push(path.to_path_buf());
}

/// `path` was removed or renamed into place: forget it.
pub fn unregister(path: &Path) {
    let mut paths = lock();
    if let Some(i) = paths.iter().rposition(|p| p == path) {
        paths.swap_remove(i);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    PATHS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Handlers installed by [`install`]; dropping it puts back what was
/// there before (rrun does, before it forwards signals to its container).
pub struct Guard {
    old: Vec<(Signal, SigAction)>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        for (sig, old) in &self.old {
            // SAFETY: restoring the action that was installed before ours.
            let _ = unsafe { sigaction(*sig, old) };
        }
    }
}

/// Clean up registered paths on SIGTERM, SIGINT and SIGHUP, then die of
/// the signal. Signals the caller ignores stay ignored (`nohup`).
pub fn install() -> io::Result<Guard> {
    cleaner()?;
    OWNER_PID.store(std::process::id() as i32, Ordering::Release);
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    let mut old = Vec::new();
    for sig in SIGNALS {
        // SAFETY: `on_signal` only calls write(2) and touches errno, both
        // async-signal-safe.
        let prev = unsafe { sigaction(sig, &action) }.map_err(io::Error::from)?;
        if prev.handler() == SigHandler::SigIgn {
            // SAFETY: putting back the ignore we found.
            let _ = unsafe { sigaction(sig, &prev) };
            continue;
        }
        old.push((sig, prev));
    }
    Ok(Guard { old })
}

/// The pipe and the thread that waits on it, made once per process.
fn cleaner() -> io::Result<()> {
    static MADE: OnceLock<Result<(), i32>> = OnceLock::new();
    let made = MADE.get_or_init(|| {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e as i32)?;
        // The cleaner blocks every signal, so it never takes one meant for
        // another thread (rrun's sigwait for its container's signals).
        let mut old_mask = SigSet::empty();
        let _ = nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_BLOCK,
            Some(&SigSet::all()),
            Some(&mut old_mask),
        );
        let spawned = std::thread::Builder::new()
            .name("rbox-interrupt".into())
            .spawn(move || {
                let mut sig = [0u8; 1];
                loop {
                    // SAFETY: a one-byte read into our own buffer from the
                    // pipe we own.
                    let n = unsafe { libc::read(r.as_raw_fd(), sig.as_mut_ptr().cast(), 1) };
                    if n == 1 {
                        die_cleanly(sig[0] as i32);
                    }
                    if n == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                        return; // the pipe is gone: never spin on it
                    }
                }
            });
        let _ = nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&old_mask),
            None,
        );
        spawned.map_err(|e| e.raw_os_error().unwrap_or(libc::EAGAIN))?;
        // The handler writes to it for the life of the process.
        WAKE_FD.store(w.into_raw_fd(), Ordering::Release);
        Ok(())
    });
    made.map_err(io::Error::from_raw_os_error)
}

extern "C" fn on_signal(sig: libc::c_int) {
    // SAFETY: getpid, signal and raise are async-signal-safe.
    unsafe {
        if libc::getpid() != OWNER_PID.load(Ordering::Acquire) {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
            return;
        }
    }
    let fd = WAKE_FD.load(Ordering::Acquire);
    let byte = sig as u8;
    // SAFETY: errno is this thread's; write(2) of one byte from the stack
    // is async-signal-safe, and errno is put back for the code we interrupted.
    unsafe {
        let errno = *libc::__errno_location();
        libc::write(fd, (&byte as *const u8).cast(), 1);
        *libc::__errno_location() = errno;
    }
}

fn die_cleanly(sig: i32) -> ! {
    // A second signal while we clean up kills at once, as the user wants.
    for s in SIGNALS {
        // SAFETY: installing the default action.
        let _ = unsafe {
            sigaction(
                s,
                &SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty()),
            )
        };
    }
    let paths: Vec<PathBuf> = lock().clone();
    for p in paths.iter().rev() {
        remove(p);
    }
    if let Ok(s) = Signal::try_from(sig) {
        let mut set = SigSet::empty();
        set.add(s);
        let _ = set.thread_unblock();
        let _ = nix::sys::signal::raise(s);
    }
    std::process::exit(128 + sig);
}

/// Remove `path`: a file, or a tree renamed aside first.
fn remove(path: &Path) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if !meta.is_dir() {
        let _ = std::fs::remove_file(path);
        return;
    }
    detach_mounts_under(path);
    let mut aside = path.as_os_str().to_owned();
    aside.push("-dying");
    let aside = PathBuf::from(aside);
    let target = if std::fs::rename(path, &aside).is_ok() {
        aside
    } else {
        path.to_path_buf()
    };
    // Twice: a thread still writing may have added an entry meanwhile.
    for _ in 0..2 {
        if crate::fsutil::remove_tree(&target).is_ok() {
            break;
        }
    }
}

/// Detach every mount of this mount namespace at or below `dir`.
fn detach_mounts_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    // Deepest first.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/a\040b/c\134d"), "/a b/c\\d");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/cut\04"), r"/cut\04");
    }

    #[test]
    fn registered_paths_are_forgotten_on_unregister() {
        let p = Path::new("/nonexistent/rbox-interrupt-test");
        register(p);
        assert!(lock().iter().any(|q| q == p));
        unregister(p);
        assert!(!lock().iter().any(|q| q == p));
    }
}

//! The host side of `-t`: receive the pty master the container child made,
//! put the host terminal in raw mode, and relay bytes on a thread until the
//! container's process exits. SIGWINCH arrives at the waiting thread (it is
//! blocked everywhere else), which calls `follow_window_size`.

use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::thread::JoinHandle;

use crate::native::container::LaunchError;
use crate::tty;

pub struct Relay {
    master: OwnedFd,
    host_in: RawFd,
    _raw: Option<tty::RawModeGuard>,
    thread: Option<JoinHandle<()>>,
}

struct Job {
    master: OwnedFd,
    pidfd: OwnedFd,
    host_in: RawFd,
    host_out: RawFd,
    stdin: bool,
}

/// A relay thread started early, before the caller joins another pid
/// namespace (after which it could not create threads), waiting for its work.
pub struct PendingRelay {
    tx: std::sync::mpsc::Sender<Job>,
    thread: JoinHandle<()>,
}

impl PendingRelay {
    /// Call with the forwarded signals already blocked (the thread inherits the mask).
    pub fn spawn() -> PendingRelay {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let thread = std::thread::spawn(move || {
            if let Ok(job) = rx.recv() {
                run_job(job);
            }
        });
        PendingRelay { tx, thread }
    }
}

fn run_job(job: Job) {
    // SAFETY: the caller keeps its stdio open while we relay.
    let (i, o) = unsafe {
        (
            BorrowedFd::borrow_raw(job.host_in),
            BorrowedFd::borrow_raw(job.host_out),
        )
    };
    let _ = tty::relay(
        job.master.as_fd(),
        tty::RelayFds {
            stdin: job.stdin.then_some(i),
            stdout: o,
            winsize_from: None,
            exited: Some(job.pidfd.as_fd()),
        },
    );
}

fn err(e: impl std::fmt::Display) -> LaunchError {
    LaunchError::Tty(e.to_string())
}

impl Relay {
    /// `stdio`: the caller's (None = ours); `stdin`: relay input (-i).
    pub fn start(
        sock: BorrowedFd<'_>,
        pid: i32,
        stdio: [Option<RawFd>; 3],
        stdin: bool,
    ) -> Result<Relay, LaunchError> {
        Self::start_on(None, sock, pid, stdio, stdin)
    }

    /// As `start`, on a thread spawned earlier (`PendingRelay`) if given.
    pub fn start_on(
        pending: Option<PendingRelay>,
        sock: BorrowedFd<'_>,
        pid: i32,
        stdio: [Option<RawFd>; 3],
        stdin: bool,
    ) -> Result<Relay, LaunchError> {
        let master = tty::receive_master(sock).map_err(err)?;
        let host_in = stdio[0].unwrap_or(0);
        let host_out = stdio[1].unwrap_or(1);
        // SAFETY: host_in stays open for the call.
        let host_in_fd = unsafe { BorrowedFd::borrow_raw(host_in) };
        let raw = if stdin && tty::is_terminal(host_in_fd) {
            Some(tty::RawModeGuard::new(host_in_fd).map_err(err)?)
        } else {
            None
        };
        // SAFETY: pidfd_open takes integers; the child is ours and unreaped.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if pidfd < 0 {
            return Err(err(format!(
                "pidfd_open {pid}: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: a fresh descriptor from the kernel.
        let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
        let job = Job {
            master: master.try_clone().map_err(err)?,
            pidfd,
            host_in,
            host_out,
            stdin,
        };
        let thread = match pending {
            Some(p) => {
                p.tx.send(job)
                    .map_err(|_| err("the relay thread is gone"))?;
                p.thread
            }
            None => std::thread::spawn(move || run_job(job)),
        };
        Ok(Relay {
            master,
            host_in,
            _raw: raw,
            thread: Some(thread),
        })
    }

    /// The pty master (for `rrun attach` to set the terminal's size).
    pub fn master(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }

    pub fn follow_window_size(&self) {
        // SAFETY: host_in stays open while the relay lives.
        let host = unsafe { BorrowedFd::borrow_raw(self.host_in) };
        let _ = tty::copy_winsize(host, self.master.as_fd());
    }

    /// Wait for the relay to drain; the raw mode guard restores the terminal.
    pub fn finish(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

//! The host side of `-t`: receive the pty master the container child made,
//! put the host terminal in raw mode, and relay bytes on a thread until the
//! container's process exits. SIGWINCH arrives at the waiting thread (it is
//! blocked everywhere else), which calls `follow_window_size`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::thread::JoinHandle;

use crate::container::LaunchError;
use crate::tty;

pub struct Relay {
    master: OwnedFd,
    host_in: RawFd,
    _raw: Option<tty::RawModeGuard>,
    thread: Option<JoinHandle<()>>,
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
        let m = master.try_clone().map_err(err)?;
        let thread = std::thread::spawn(move || {
            // SAFETY: the caller keeps its stdio open while we relay.
            let (i, o) = unsafe {
                (
                    BorrowedFd::borrow_raw(host_in),
                    BorrowedFd::borrow_raw(host_out),
                )
            };
            let _ = tty::relay(
                m.as_fd(),
                tty::RelayFds {
                    stdin: stdin.then_some(i),
                    stdout: o,
                    winsize_from: None,
                    exited: Some(pidfd.as_fd()),
                },
            );
        });
        Ok(Relay {
            master,
            host_in,
            _raw: raw,
            thread: Some(thread),
        })
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
        let _ = self.master.as_raw_fd();
    }
}

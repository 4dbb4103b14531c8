//! The native runner's foreground container dies with a SIGKILLed rrun
//! (PR_SET_PDEATHSIG in its child); a container an OCI runtime made
//! cannot be given that. A forked watchdog stands in: it reads a pipe
//! whose write end only rrun holds. rrun writes "done" once it has waited
//! for the container; EOF without it means rrun died, and the watchdog
//! kills the container and has the runtime delete it. The rest (state,
//! directory, cgroups) is the next rrun's reaper's, as for native.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

use anyhow::{bail, Context, Result};
use runner::external::ctl::OciContainer;
use runner::state::ProcessId;
use runner::sys;

pub struct Watchdog {
    done: Option<OwnedFd>,
}

impl Watchdog {
    /// Call while rrun is single-threaded (before the -t relay thread).
    pub fn start(ctr: &OciContainer, container: ProcessId) -> Result<Watchdog> {
        let (rd, wr) = sys::pipe().context("create the watchdog's pipe")?;
        let devnull = File::open("/dev/null").context("open /dev/null")?;
        // SAFETY: single-threaded (see above); the child runs plain code
        // and leaves with _exit.
        match unsafe { libc::fork() } {
            -1 => bail!("fork the watchdog: {}", std::io::Error::last_os_error()),
            0 => {
                drop(wr);
                // SAFETY: dup2 onto 0..2 of a descriptor we own: the
                // watchdog must not hold the caller's terminal or pipes.
                unsafe {
                    for fd in 0..=2 {
                        libc::dup2(devnull.as_raw_fd(), fd);
                    }
                }
                watch(rd, ctr, container);
                // SAFETY: _exit skips the parent's atexit work.
                unsafe { libc::_exit(0) }
            }
            _ => Ok(Watchdog { done: Some(wr) }),
        }
    }

    /// rrun waited for the container: the watchdog leaves quietly.
    pub fn finish(mut self) {
        if let Some(fd) = self.done.take() {
            let _ = sys::write_all_fd(fd.as_raw_fd(), b"done");
        }
    }
}

fn watch(rd: OwnedFd, ctr: &OciContainer, container: ProcessId) {
    // rrun's forwarded signals are blocked in this copy of it too: only
    // the pipe ends the wait.
    let mut said = Vec::new();
    let _ = File::from(rd).read_to_end(&mut said);
    if said == b"done" {
        return;
    }
    if container.alive() {
        // SAFETY: kill takes integers; identity checked by start time.
        unsafe { libc::kill(container.pid, libc::SIGKILL) };
    }
    let _ = ctr.delete();
}

//! A container of an external runtime dies with its caller, as a native
//! one does through PR_SET_PDEATHSIG in its child: the runtime's `create`
//! has exited by then, and a process re-parented to a subreaper gets no
//! death signal of its own. A forked watchdog stands in. It reads a pipe
//! whose write end only the caller holds: `finish` writes "done" once the
//! container is deleted; EOF without it means the caller died, and the
//! watchdog kills the container's process (through a pidfd taken while it
//! was the caller's child, so never another process that got its pid) and
//! execs the runtime's `delete --force`. What the caller kept about the
//! container (rrun's state, its directory) is the next reaper's, as for
//! a native container whose rrun was killed.
//!
//! Everything the child needs is prepared before the fork and the child
//! makes only raw system calls until its execve: the caller may be
//! multi-threaded (rbuild), where a forked child must not allocate.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::external::OciError;
use crate::sys;

pub struct Watchdog {
    pid: libc::pid_t,
    done: Option<OwnedFd>,
}

fn io_err(what: &'static str) -> impl FnOnce(std::io::Error) -> OciError {
    move |source| OciError::Io {
        what,
        path: PathBuf::from("/proc/self"),
        source,
    }
}

/// `binary` as execve wants it: a path, looked up in PATH if it has no '/'.
fn resolve(binary: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if binary.contains('/') {
        return Some(PathBuf::from(binary));
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| crate::DEFAULT_PATH.into());
    std::env::split_paths(&path)
        .map(|d| d.join(binary))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

impl Watchdog {
    /// Watch the container `id` of `binary` (state under `state_root`)
    /// whose first process is `pid`, the caller's unreaped child.
    pub fn start(
        binary: &str,
        state_root: &Path,
        id: &str,
        pid: libc::pid_t,
    ) -> Result<Watchdog, OciError> {
        let exe = resolve(binary).ok_or_else(|| OciError::Spawn {
            binary: binary.to_string(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
        // SAFETY: pidfd_open with integers; the result is checked.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if raw < 0 {
            return Err(io_err("open a pidfd of the container's process in")(
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: a fresh descriptor of ours.
        let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        let argv: Vec<CString> = [
            binary,
            "--root",
            &state_root.to_string_lossy(),
            "delete",
            "--force",
            id,
        ]
        .iter()
        .map(sys::cstring)
        .collect();
        let envp: Vec<CString> = std::env::vars_os()
            .map(|(k, v)| {
                let mut kv = k;
                kv.push("=");
                kv.push(v);
                sys::cstring(kv)
            })
            .collect();
        let exe = sys::cstring(&exe);
        let argv_p = sys::pointer_array(&argv);
        let envp_p = sys::pointer_array(&envp);
        let hide_unified = binary.ends_with("crun") && super::hybrid_unified_mounted();
        let (rd, wr) = sys::pipe().map_err(io_err("create the watchdog's pipe in"))?;
        let devnull = std::fs::File::open("/dev/null").map_err(io_err("open /dev/null for"))?;
        // SAFETY: the child makes raw system calls only, on data prepared
        // above, and leaves by execve or _exit.
        match unsafe { libc::fork() } {
            -1 => Err(io_err("fork the watchdog in")(
                std::io::Error::last_os_error(),
            )),
            // SAFETY: in the forked child, with pointers into the copied
            // memory of the data prepared above.
            0 => unsafe {
                watch(
                    devnull.as_raw_fd(),
                    rd.as_raw_fd(),
                    pidfd.as_raw_fd(),
                    hide_unified,
                    &exe,
                    &argv_p,
                    &envp_p,
                )
            },
            child => Ok(Watchdog {
                pid: child,
                done: Some(wr),
            }),
        }
    }

    /// The container is deleted: the watchdog leaves quietly, and is reaped.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if let Some(fd) = self.done.take() {
            let _ = sys::write_all_fd(fd.as_raw_fd(), b"done");
            drop(fd);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.end();
    }
}

/// The forked watchdog: holds nothing of the caller's but its pipe and
/// the pidfd, ignores every signal it can, waits for EOF on the pipe.
///
/// # Safety
/// Only in the child of a fork, with pointers that stay valid (the
/// parent's memory, copied).
unsafe fn watch(
    devnull: i32,
    rd: i32,
    pidfd: i32,
    hide_unified: bool,
    exe: &CString,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    // SAFETY: raw system calls on descriptors and buffers the child owns.
    unsafe {
        // Descriptors: 0..2 /dev/null, 3 the pipe, 4 the pidfd, no other:
        // the caller's pipes and terminal must close when it does.
        for fd in 0..=2 {
            libc::dup2(devnull, fd);
        }
        let (rd, pidfd) = if rd > 4 && pidfd > 4 {
            libc::dup2(rd, 3);
            libc::dup2(pidfd, 4);
            (3, 4)
        } else {
            // Low numbers (a caller without stdio): keep them as they are.
            (rd, pidfd)
        };
        let low = rd.max(pidfd).max(2) + 1;
        libc::syscall(libc::SYS_close_range, low as u32, u32::MAX, 0u32);
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigprocmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
        let mut said = [0u8; 8];
        let mut len = 0usize;
        loop {
            let n = libc::read(rd, said.as_mut_ptr().add(len).cast(), said.len() - len);
            if n > 0 {
                len = (len + n as usize).min(said.len() - 1);
            } else if n == 0 || *libc::__errno_location() != libc::EINTR {
                break;
            }
        }
        if &said[..len] == b"done" {
            libc::_exit(0);
        }
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        );
        // As `runtime_command` starts the runtime (without a rootfs).
        if libc::unshare(libc::CLONE_NEWNS) == 0 {
            libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            );
            if hide_unified {
                libc::umount2(c"/sys/fs/cgroup/unified".as_ptr(), libc::MNT_DETACH);
            }
        }
        libc::sigprocmask(libc::SIG_UNBLOCK, &all, std::ptr::null_mut());
        libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr());
        libc::_exit(127)
    }
}

//! Killing a group's members without ever hitting a process outside it.
//!
//! A pid read from `cgroup.procs` is only a number: by the time kill(2)
//! runs, that process may have exited and its pid gone to an unrelated
//! process, or it may have been moved out of the group. So a round here
//! first pins every listed pid with a pidfd, then reads `cgroup.procs`
//! again and signals, through the pidfd, only the processes still listed.
//! A pidfd never changes process; and a pid still listed after its pidfd
//! was opened names that pidfd's process unless the process died in
//! between (a pid is not reused while its process lives), in which case
//! the signal finds nobody. Either way no non-member is signalled.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::read_procs;

/// One kill round over `listed`, the pids read from `procs_file` earlier:
/// SIGKILL those still in `procs_file` now, and nobody else. Returns how
/// many processes were signalled.
pub fn kill_listed(procs_file: &Path, listed: &[i32]) -> usize {
    let pinned: Vec<(i32, OwnedFd)> = listed
        .iter()
        .filter_map(|&pid| pidfd_open(pid).map(|fd| (pid, fd)))
        .collect();
    if pinned.is_empty() {
        return 0;
    }
    let members = read_procs(procs_file);
    let mut signalled = 0;
    for (pid, fd) in &pinned {
        if !members.contains(pid) {
            continue;
        }
        // SAFETY: pidfd_send_signal takes a descriptor we own for the call,
        // a signal number and a null siginfo (the kernel fills it in).
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r == 0 {
            signalled += 1;
        }
    }
    signalled
}

/// Read the group's members and kill them (one `kill_listed` round).
pub(crate) fn kill_members(procs_file: &Path) -> usize {
    kill_listed(procs_file, &read_procs(procs_file))
}

/// A pidfd for `pid`, or None if it is gone. (pidfd_open needs Linux 5.3;
/// on an older kernel nothing is signalled and the group's removal ends
/// in `CgroupError::NotEmpty` rather than in a kill by a bare pid.)
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, both integers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a new descriptor that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

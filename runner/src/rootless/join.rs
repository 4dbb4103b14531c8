//! Joining the user namespace of a running container, for the commands
//! that address one (`exec`, `stop`, `kill`, `rm -f`).
//!
//! Each rootless `rrun run` makes a user namespace of its own; a detached
//! container (`-d`) keeps it alive through its supervisor and its
//! processes. A later rrun of the same user joins it with setns: the
//! kernel allows that to the namespace's owner (the user, from the
//! parent namespace) and to no one else, whatever pid the store's state
//! names, so a tampered state can make rrun join only a namespace the
//! user could join anyway. Then a mount namespace of its own, owned by
//! the joined one (as `enter` makes, for exeseal's bind clone).
//!
//! The process is pinned before its start time is checked: the
//! /proc/PID directory is opened once and everything is read through
//! that descriptor, which a reused pid cannot redirect to another
//! process.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the container's process {pid} is gone")]
    Gone { pid: i32 },
    #[error("open {what} of process {pid}: {source}")]
    Open {
        what: &'static str,
        pid: i32,
        #[source]
        source: io::Error,
    },
    #[error("join the user namespace of process {pid}: {source}")]
    Setns {
        pid: i32,
        #[source]
        source: io::Error,
    },
    #[error("process {pid} is not in a user namespace of yours (only the user who started the container may reach it)")]
    NotYours { pid: i32 },
    #[error("the user namespace of process {pid} does not map this user to root")]
    NotRoot { pid: i32 },
    #[error("create a mount namespace: {0}")]
    Unshare(io::Error),
}

fn openat(dir: &OwnedFd, name: &str, what: &'static str, pid: i32) -> Result<File, JoinError> {
    let c = CString::new(name).expect("no NUL");
    // SAFETY: a valid directory descriptor and C string.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let source = io::Error::last_os_error();
        return Err(match source.raw_os_error() {
            Some(libc::ENOENT | libc::ESRCH) => JoinError::Gone { pid },
            Some(libc::EACCES | libc::EPERM) => JoinError::NotYours { pid },
            _ => JoinError::Open { what, pid, source },
        });
    }
    // SAFETY: openat returned a new descriptor that we own.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Join the user namespace of `pid` if it is still the process started
/// at `start_time` (clock ticks after boot, /proc/PID/stat field 22),
/// then unshare a mount namespace. Must run before any thread starts.
pub fn join(pid: i32, start_time: u64) -> Result<(), JoinError> {
    let dir: OwnedFd = File::open(format!("/proc/{pid}"))
        .map_err(|_| JoinError::Gone { pid })?
        .into();
    let mut stat = String::new();
    openat(&dir, "stat", "stat", pid)?
        .read_to_string(&mut stat)
        .map_err(|_| JoinError::Gone { pid })?;
    if parse_start_time(&stat) != Some(start_time) {
        return Err(JoinError::Gone { pid });
    }
    let ns = rrun_namespace(openat(&dir, "ns/user", "the user namespace", pid)?, pid)?;
    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWUSER).map_err(|e| match e {
        nix::errno::Errno::EPERM => JoinError::NotYours { pid },
        e => JoinError::Setns {
            pid,
            source: e.into(),
        },
    })?;
    if !nix::unistd::geteuid().is_root() {
        return Err(JoinError::NotRoot { pid });
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| JoinError::Unshare(e.into()))
}

/// ioctl_ns(2)'s NS_GET_PARENT: _IO(0xb7, 0x2).
const NS_GET_PARENT: libc::c_ulong = 0xb702;

/// The user namespace that rrun made for the container: the process's
/// own, or its parent when the container has one nested in rrun's
/// (`--userns=keep-id`, see `keepid`). One level only: the parent must
/// be a child of ours.
fn rrun_namespace(ns: File, pid: i32) -> Result<File, JoinError> {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata("/proc/self/ns/user")
        .map(|m| (m.dev(), m.ino()))
        .map_err(|source| JoinError::Open {
            what: "our user namespace",
            pid,
            source,
        })?;
    let parent_of = |f: &File| -> Option<File> {
        // SAFETY: an ioctl on a namespace descriptor of ours; it returns
        // a new descriptor or -1.
        let fd = unsafe { libc::ioctl(f.as_raw_fd(), NS_GET_PARENT as _) };
        // SAFETY: a new descriptor that we own.
        (fd >= 0).then(|| File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
    };
    let id = |f: &File| f.metadata().map(|m| (m.dev(), m.ino())).ok();
    let Some(parent) = parent_of(&ns) else {
        return Ok(ns);
    };
    if id(&parent) == Some(ours) {
        return Ok(ns);
    }
    match parent_of(&parent) {
        Some(grand) if id(&grand) == Some(ours) => Ok(parent),
        _ => Err(JoinError::NotYours { pid }),
    }
}

/// Field 22 of /proc/PID/stat (the name, field 2, may hold spaces and ')').
fn parse_start_time(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_a_strange_name() {
        let own = std::fs::read_to_string("/proc/self/stat").unwrap();
        let me = std::process::id();
        assert_eq!(
            parse_start_time(&own),
            engine::fsutil::process_start_time(me)
        );
        let odd = "7 (a) b) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 4242 20";
        assert_eq!(parse_start_time(odd), Some(4242));
    }

    #[test]
    fn a_pid_that_is_not_the_recorded_process_is_gone() {
        let me = std::process::id() as i32;
        let t = engine::fsutil::process_start_time(me as u32).unwrap();
        assert!(matches!(join(me, t + 1), Err(JoinError::Gone { pid }) if pid == me));
        assert!(matches!(join(i32::MAX, t), Err(JoinError::Gone { .. })));
    }
}

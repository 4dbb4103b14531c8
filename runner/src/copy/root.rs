//! Where `rrun cp` resolves paths: the host (paths as given), or a
//! container's root directory, beneath which every path is resolved by
//! the kernel (openat2 `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`): an
//! absolute symlink, a `../../..` or a link swapped in while the copy runs
//! all stay inside that root, as they would for a process in the container.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::CopyError;
use crate::state::ProcessId;

/// A tree that paths are resolved in.
pub struct Root {
    /// `None`: the host, paths resolved as the kernel resolves them for us.
    fd: Option<OwnedFd>,
    /// How errors name it: `container web` or `host`.
    pub what: String,
}

impl Root {
    /// The host's filesystem: a user's own paths, trusted as given.
    pub fn host() -> Root {
        Root {
            fd: None,
            what: "host".into(),
        }
    }

    /// The root directory of a running container's first process
    /// (`/proc/<pid>/root`): the container's merged view with its volumes,
    /// as its processes see it. Checked against pid reuse after the open.
    pub fn of_process(pid: ProcessId, what: String) -> Result<Root, CopyError> {
        let p = format!("/proc/{}/root", pid.pid);
        let fd = engine::fsutil::openat2(
            cwd(),
            &CString::new(p.clone()).expect("no NUL"),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )
        .map_err(|source| CopyError::Io {
            op: "open the root of",
            path: what.clone(),
            source,
        })?;
        if !pid.alive() {
            return Err(CopyError::Stopped(what));
        }
        Ok(Root { fd: Some(fd), what })
    }

    /// A stopped container's overlay (its image's layers and its upper
    /// dir), mounted at `mnt` in a mount namespace of this process's own
    /// that dies with it: for one-shot commands only (it unshares the
    /// calling process's mount namespace).
    pub fn mount_overlay(
        lowers: &[PathBuf],
        upper: &Path,
        work: &Path,
        mnt: &Path,
        what: String,
    ) -> Result<Root, CopyError> {
        let mount_err = |e: crate::native::rootfs::StepError| CopyError::Mount {
            what: what.clone(),
            reason: e.to_string(),
        };
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| CopyError::Io {
            op: "unshare the mount namespace for",
            path: what.clone(),
            source: e.into(),
        })?;
        crate::native::rootfs::make_private().map_err(mount_err)?;
        let c = |p: &Path| crate::sys::cstring(p.as_os_str());
        let plan = crate::native::rootfs::RootfsPlan {
            lowers: lowers.iter().map(|l| c(l)).collect(),
            upper: c(upper),
            work: c(work),
            merged: c(mnt),
            readonly: false,
            volatile: false,
            steps: Vec::new(),
        };
        crate::native::rootfs::mount_overlay(&plan).map_err(mount_err)?;
        let fd = engine::fsutil::openat2(cwd(), &c(mnt), libc::O_PATH | libc::O_DIRECTORY, 0)
            .map_err(|source| CopyError::Io {
                op: "open the mounted root of",
                path: what.clone(),
                source,
            })?;
        Ok(Root { fd: Some(fd), what })
    }

    /// Whether paths are confined beneath a container's root.
    pub fn is_container(&self) -> bool {
        self.fd.is_some()
    }

    /// Open `path` (following symlinks, confined beneath the root).
    pub fn open(&self, path: &[u8], flags: i32) -> io::Result<OwnedFd> {
        match &self.fd {
            Some(root) => {
                let rel = trim_leading(path);
                let rel = if rel.is_empty() { &b"."[..] } else { rel };
                engine::fsutil::openat2(
                    root.as_fd(),
                    &cpath(rel)?,
                    flags,
                    libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
                )
                .map_err(|e| {
                    if e.raw_os_error() == Some(libc::ENOSYS) {
                        io::Error::other("rrun cp needs openat2 (Linux 5.6 or later)")
                    } else {
                        e
                    }
                })
            }
            None => {
                let p = if path.is_empty() { &b"."[..] } else { path };
                engine::fsutil::openat2(cwd(), &cpath(p)?, flags, 0)
            }
        }
    }

    /// Open `path` as a directory to read or write entries in.
    pub fn open_dir(&self, path: &[u8]) -> io::Result<OwnedFd> {
        self.open(path, libc::O_RDONLY | libc::O_DIRECTORY)
    }

    /// How errors name a path of this root: `container web:/etc` or `/etc`.
    pub fn show(&self, path: &[u8]) -> String {
        let p = String::from_utf8_lossy(path);
        if self.is_container() {
            format!("{}:{p}", self.what)
        } else {
            p.into_owned()
        }
    }
}

fn trim_leading(p: &[u8]) -> &[u8] {
    let n = p.iter().take_while(|&&b| b == b'/').count();
    &p[n..]
}

fn cpath(p: &[u8]) -> io::Result<CString> {
    CString::new(p).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

pub(crate) fn cwd() -> BorrowedFd<'static> {
    // SAFETY: AT_FDCWD is accepted wherever a directory fd is; never closed.
    unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

/// lstat of `name` in `dir`.
pub(super) fn lstatat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: a valid fd, a NUL-terminated name and an out-pointer of the right type.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat succeeded, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

/// fstat of an open file.
pub(super) fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: a valid fd and an out-pointer of the right type.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

/// openat(2) of one name in `dir`, never following it (O_NOFOLLOW).
pub(super) fn open_nofollow(dir: BorrowedFd<'_>, name: &CStr, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: a valid fd and a NUL-terminated name; the kernel returns a new fd or -1.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The target of the symlink `name` in `dir`.
pub(super) fn readlinkat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: `buf` has `buf.len()` writable bytes.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

//! Keeps the host's rrun (or rbuild) binary out of the container's reach
//! (CVE-2019-5736).
//!
//! rrun forks the processes that enter a container (the container's first
//! process, `exec`'s child, `--init`'s PID 1) instead of executing a helper,
//! so their `/proc/<pid>/exe` is the binary rrun runs from. Should the
//! container make them execute `/proc/self/exe` (its `/bin/sh` a symlink to
//! it), the host binary runs inside the container as a dumpable process of
//! the container's user, and anyone in the container can open its
//! `/proc/<pid>/exe`: a handle to the host file, writable as soon as no
//! process executes that file any more (rrun upgraded by rename, or run
//! from another path).
//!
//! So every rrun that will enter a container first re-executes itself from
//! a read-only clone of its own binary: a detached bind mount of
//! `/proc/self/exe` (`open_tree`), made read-only, nosuid and nodev
//! (`mount_setattr`) and reachable by nobody but the descriptor we execute.
//! From then on `/proc/self/exe` of rrun and of everything it forks is that
//! clone: opening it for writing fails with EROFS, and no process on the
//! host can make the mount writable again, since no mount table holds it.
//! Kernels without `mount_setattr` (before 5.12) get a sealed memfd copy
//! instead, as runc and crun do (slower: it copies the whole binary).
//!
//! runc (libcontainer/exeseal) and crun (cloned_binary.c) clone their binary
//! for the same reason; runc prefers a lower-only overlayfs, which cannot be
//! unwrapped even by a container that holds CAP_SYS_ADMIN. A bind clone
//! could be (a bind mount of it, remounted read-write), but a container with
//! CAP_SYS_ADMIN and `mount` can reach the host in easier ways; the overlay
//! costs a superblock and a lowerdir per start where the bind costs neither.
//!
//! The re-executed process finds `RBOX_EXESEAL` in its environment (set by
//! us, removed at once), checks that its binary really is the read-only
//! clone, and goes on.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// Set in the environment of the re-executed process only.
pub const MARKER: &str = "RBOX_EXESEAL";

/// What the marker says the clone is.
const KIND_BIND: &str = "ro-bind";
const KIND_MEMFD: &str = "memfd";

#[derive(Debug, thiserror::Error)]
pub enum ExesealError {
    #[error("open /proc/self/exe: {0}")]
    OpenSelf(#[source] io::Error),
    #[error("{MARKER} is set but this binary is not a sealed copy ({0}); it is rrun's own variable, unset it")]
    NotSealed(String),
    #[error("make a sealed copy of the running binary (memfd): {0}")]
    Memfd(#[source] io::Error),
    #[error("execute the read-only copy of the running binary: {0}")]
    Exec(#[source] io::Error),
}

/// Re-execute this process from a read-only clone of its binary, unless it
/// already runs from one. Call it before anything else that matters (no
/// threads, no open state): on success in the original process it does not
/// return. Does nothing when not root: nothing enters a container then.
pub fn reexec_sealed() -> Result<(), ExesealError> {
    if let Some(kind) = std::env::var_os(MARKER) {
        // Called at startup, before any thread: nothing reads the
        // environment concurrently. Our children must not inherit it.
        std::env::remove_var(MARKER);
        verify(&kind)?;
        name_after_argv0();
        return Ok(());
    }
    // SAFETY: geteuid takes nothing and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let (clone, kind) = match ro_bind_clone() {
        Ok(fd) => (fd, KIND_BIND),
        // No open_tree (before 5.2) or mount_setattr (before 5.12): the
        // copy is slower but as safe.
        Err(_) => (memfd_clone()?, KIND_MEMFD),
    };
    Err(ExesealError::Exec(exec_fd(&clone, kind)))
}

/// A detached bind mount of our own binary, read-only: an O_PATH
/// descriptor of the file, which is the mount's root.
fn ro_bind_clone() -> io::Result<OwnedFd> {
    // The path is the magic link to the file we run: nothing can swap it.
    let tree = match crate::sys::open_tree_clone_with(c"/proc/self/exe", false) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) && engine::rootless::active() => {
            rootless_bind_source()?
        }
        r => r?,
    };
    crate::sys::mount_setattr(
        tree.as_fd(),
        crate::sys::MOUNT_ATTR_RDONLY
            | crate::sys::MOUNT_ATTR_NOSUID
            | crate::sys::MOUNT_ATTR_NODEV,
        false,
    )?;
    Ok(tree)
}

/// Rootless (crate::rootless): our binary's mount is one of the host's
/// mount namespace, which we left, so it cannot be cloned (EINVAL); its
/// path in our own copy of the mounts can. Accepted only if it is still
/// the very file we run (device and inode), else the memfd copy is made.
fn rootless_bind_source() -> io::Result<OwnedFd> {
    use std::os::unix::fs::MetadataExt;
    let path = std::fs::read_link("/proc/self/exe")?;
    let tree = crate::sys::open_tree_clone_with(&crate::sys::cstring(&path), false)?;
    let ours = std::fs::metadata("/proc/self/exe")?;
    let st = nix::sys::stat::fstat(tree.as_raw_fd()).map_err(io::Error::from)?;
    if (st.st_dev, st.st_ino) != (ours.dev(), ours.ino()) {
        return Err(io::Error::other("the binary's path names another file"));
    }
    Ok(tree)
}

/// A copy of our binary in a memfd sealed against every change.
fn memfd_clone() -> Result<OwnedFd, ExesealError> {
    let mut exe = File::open("/proc/self/exe").map_err(ExesealError::OpenSelf)?;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    // SAFETY: memfd_create with a NUL-terminated name and integer flags.
    // MFD_EXEC (Linux 6.3) keeps it executable under vm.memfd_noexec=1;
    // older kernels refuse the flag and get the plain call.
    let mut fd = unsafe { libc::memfd_create(c"rbox-exeseal".as_ptr(), flags | MFD_EXEC) };
    if fd < 0 {
        // SAFETY: as above.
        fd = unsafe { libc::memfd_create(c"rbox-exeseal".as_ptr(), flags) };
    }
    if fd < 0 {
        return Err(ExesealError::Memfd(io::Error::last_os_error()));
    }
    // SAFETY: memfd_create returned a fresh descriptor that we now own.
    let mut copy = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    io::copy(&mut exe, &mut copy).map_err(ExesealError::Memfd)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our descriptor with integer arguments.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(ExesealError::Memfd(io::Error::last_os_error()));
    }
    Ok(copy.into())
}

/// execveat(fd, "", AT_EMPTY_PATH) with our argv and environment plus the
/// marker. Returns only on failure.
fn exec_fd(fd: &OwnedFd, kind: &str) -> io::Error {
    let argv: Vec<CString> = std::env::args_os().map(crate::sys::cstring).collect();
    let mut envp: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k;
            kv.push("=");
            kv.push(v);
            crate::sys::cstring(kv)
        })
        .collect();
    envp.push(crate::sys::cstring(format!("{MARKER}={kind}")));
    let argv_p = crate::sys::pointer_array(&argv);
    let envp_p = crate::sys::pointer_array(&envp);
    // SAFETY: execveat with our descriptor, an empty path, and
    // NULL-terminated arrays of NUL-terminated strings that outlive the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// The marker names a clone: check that /proc/self/exe is one.
fn verify(kind: &OsString) -> Result<(), ExesealError> {
    let exe = File::open("/proc/self/exe").map_err(ExesealError::OpenSelf)?;
    match kind.to_str() {
        Some(KIND_BIND) => {
            let st = nix::sys::statvfs::fstatvfs(&exe)
                .map_err(|e| ExesealError::NotSealed(format!("statvfs: {e}")))?;
            if !st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
                return Err(ExesealError::NotSealed("its mount is writable".into()));
            }
            Ok(())
        }
        Some(KIND_MEMFD) => {
            // SAFETY: fcntl on a descriptor we own, integer arguments.
            let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
            if seals < 0 || seals & libc::F_SEAL_WRITE == 0 {
                return Err(ExesealError::NotSealed("not a write-sealed memfd".into()));
            }
            Ok(())
        }
        _ => Err(ExesealError::NotSealed(format!("unknown kind {kind:?}"))),
    }
}

/// Executed through a descriptor, the process is named after its number
/// ("3"); `ps` should show rrun.
fn name_after_argv0() {
    let Some(arg0) = std::env::args_os().next() else {
        return;
    };
    let base = arg0.as_bytes().rsplit(|b| *b == b'/').next().unwrap_or(b"");
    let name = crate::sys::cstring(OsString::from(std::ffi::OsStr::from_bytes(
        &base[..base.len().min(15)],
    )));
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

const MFD_EXEC: libc::c_uint = 0x10;

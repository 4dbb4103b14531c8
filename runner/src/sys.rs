//! Thin wrappers over the syscalls nix does not cover: the new mount API
//! (fsopen/fsconfig/fsmount/move_mount/open_tree/mount_setattr), openat2,
//! clone3 and close_range. Each returns `io::Result` with the raw errno;
//! callers add what and where.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

pub const FSOPEN_CLOEXEC: libc::c_uint = 1;
pub const FSCONFIG_SET_FLAG: libc::c_uint = 0;
pub const FSCONFIG_SET_STRING: libc::c_uint = 1;
pub const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
pub const FSMOUNT_CLOEXEC: libc::c_uint = 1;
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
pub const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;
pub const OPEN_TREE_CLONE: libc::c_uint = 1;
pub const AT_RECURSIVE: libc::c_uint = 0x8000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

fn check(rc: libc::c_long) -> io::Result<libc::c_long> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn owned(rc: libc::c_long) -> io::Result<OwnedFd> {
    let fd = check(rc)? as RawFd;
    // SAFETY: the kernel just returned this descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A filesystem context for `fstype` (`overlay`, `tmpfs`, `proc`, …).
pub fn fsopen(fstype: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: fstype is a valid NUL-terminated string for the call's duration.
    owned(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })
}

pub fn fsconfig_string(fs: BorrowedFd<'_>, key: &CStr, value: &CStr) -> io::Result<()> {
    // SAFETY: key and value are valid C strings; aux is unused for SET_STRING.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    })
    .map(drop)
}

pub fn fsconfig_flag(fs: BorrowedFd<'_>, key: &CStr) -> io::Result<()> {
    // SAFETY: key is a valid C string; value must be NULL for SET_FLAG.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            key.as_ptr(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    })
    .map(drop)
}

/// Create the superblock and return a detached mount of it.
pub fn fs_create_mount(fs: BorrowedFd<'_>, attrs: u64) -> io::Result<OwnedFd> {
    // SAFETY: CMD_CREATE takes no pointers.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    })?;
    // SAFETY: fsmount takes only integers.
    owned(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })
}

/// Attach the detached mount `from` on the object `to` refers to (an
/// O_PATH fd resolved beneath the rootfs), without any path lookup.
pub fn move_mount_fd(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let empty = c"";
    // SAFETY: both paths are the empty C string; the fds are valid.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            empty.as_ptr(),
            to.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// Attach the detached mount `from` at `path` (looked up normally).
pub fn move_mount_path(from: BorrowedFd<'_>, path: &CStr) -> io::Result<()> {
    // SAFETY: valid C strings and fds.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_FDCWD,
            path.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })
    .map(drop)
}

/// A detached recursive copy of the mount tree at `path` (a bind source).
pub fn open_tree_clone(path: &CStr) -> io::Result<OwnedFd> {
    open_tree_clone_with(path, true)
}

/// A detached copy of the mount at `path`, with the mounts below it
/// (`recursive`: rbind) or without (bind).
pub fn open_tree_clone_with(path: &CStr, recursive: bool) -> io::Result<OwnedFd> {
    let rec = if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: path is a valid C string.
    owned(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            libc::AT_FDCWD,
            path.as_ptr(),
            OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint | rec,
        )
    })
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Set mount attributes (`MOUNT_ATTR_*`) on the mount `fd` refers to.
pub fn mount_setattr(fd: BorrowedFd<'_>, set: u64, recursive: bool) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags = libc::AT_EMPTY_PATH as libc::c_uint | if recursive { AT_RECURSIVE } else { 0 };
    // SAFETY: attr lives across the call and its size is passed.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })
    .map(drop)
}

pub use engine::fsutil::openat2;

/// The flags every lookup beneath a container's rootfs uses.
pub const RESOLVE_BENEATH_ROOT: u64 = libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS;

/// Mark every fd >= `from` close-on-exec (the error pipe must survive
/// until execve, so we cannot close them outright).
pub fn cloexec_from(from: u32) -> io::Result<()> {
    // SAFETY: close_range takes only integers.
    check(unsafe {
        libc::syscall(
            libc::SYS_close_range,
            from,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    })
    .map(drop)
}

/// Result of `clone3`: which side of the fork we are on.
pub enum Forked {
    Parent(libc::pid_t),
    Child,
}

/// clone3 without CLONE_VM: fork semantics (the child continues on a copy
/// of our stack) plus namespace flags, SIGCHLD on exit, and optionally
/// CLONE_INTO_CGROUP.
///
/// # Safety
/// As `fork`: in a multi-threaded caller the child may only do
/// async-signal-safe work until it execs; our child code prepares every
/// allocation in the parent and only makes syscalls.
pub unsafe fn clone3(flags: u64, cgroup_fd: Option<RawFd>) -> io::Result<Forked> {
    // SAFETY: clone_args is plain data.
    let mut args: libc::clone_args = unsafe { std::mem::zeroed() };
    args.flags = flags;
    // With CLONE_PARENT the kernel takes the caller's own (and refuses one).
    if flags & libc::CLONE_PARENT as u64 == 0 {
        args.exit_signal = libc::SIGCHLD as u64;
    }
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: no CLONE_VM and no stack: the kernel duplicates our address
    // space exactly as fork does; args lives across the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut libc::clone_args,
            std::mem::size_of::<libc::clone_args>(),
        )
    };
    match check(rc)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid as libc::pid_t)),
    }
}

pub fn cstring(s: impl AsRef<std::ffi::OsStr>) -> CString {
    use std::os::unix::ffi::OsStrExt;
    CString::new(s.as_ref().as_bytes()).unwrap_or_else(|_| CString::new("\u{fffd}").unwrap())
}

/// The NULL-terminated pointer array execve wants, over `strings` (which
/// must outlive it). Built before a fork: the child must not allocate.
pub fn pointer_array(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain([std::ptr::null()])
        .collect()
}

/// Raw write of a whole buffer (no allocation; usable in the child).
pub fn write_all_fd(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        // SAFETY: buf is a valid slice for the length passed.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        buf = &buf[n as usize..];
    }
    Ok(())
}

/// A pipe with both ends close-on-exec.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)
}

/// setgroups + setresgid + setresuid as raw syscalls on this thread only.
///
/// glibc's wrappers broadcast the change to every thread it knows of
/// (nptl "setxid"). A child made by a raw clone of a multi-threaded parent
/// (the builder runs stages on threads) still has the parent's thread list
/// in glibc's memory and would wait forever for threads that do not exist
/// in it; the child is single-threaded, so the per-thread syscalls are
/// exactly right.
pub fn set_ids_this_thread(
    groups: &[libc::gid_t],
    gid: libc::gid_t,
    uid: libc::uid_t,
) -> Result<(), (&'static str, io::Error)> {
    // SAFETY: plain-data syscalls; `groups` outlives the call.
    unsafe {
        if libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) != 0 {
            let e = io::Error::last_os_error();
            // A rootless single-id user namespace denies setgroups: with
            // no group to add there is nothing to do.
            if !(groups.is_empty()
                && e.raw_os_error() == Some(libc::EPERM)
                && engine::rootless::active())
            {
                return Err(("setgroups", e));
            }
        }
        if libc::syscall(libc::SYS_setresgid, gid, gid, gid) != 0 {
            return Err(("setgid", io::Error::last_os_error()));
        }
        if libc::syscall(libc::SYS_setresuid, uid, uid, uid) != 0 {
            return Err(("setuid", io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// Keeps flocks out of cloned children. A child of `spawn` shares its
/// parent's open files until its final execve (O_CLOEXEC does not help
/// before then), and a flock belongs to the open file: a child cloned
/// while another thread held one kept the lock alive after that thread
/// closed its copy, and the next attach waited on the child, which waited
/// on that attach (two RUN steps of parallel stages, seen in CI). Code
/// that holds a flock takes this shared for as long as the file is open
/// ([`hold_no_inherit`]); `spawn` takes it exclusively around the clone.
pub static NO_INHERIT: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// The shared side of [`NO_INHERIT`], held while a lock file is open.
pub fn hold_no_inherit() -> std::sync::RwLockReadGuard<'static, ()> {
    NO_INHERIT.read().unwrap_or_else(|e| e.into_inner())
}

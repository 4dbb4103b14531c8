//! Thin wrappers over the `*at` system calls the unpacker is built from.
//! Every path handed to them is either a single component (no `/`) relative
//! to a directory fd, or resolved with openat2 RESOLVE_BENEATH, so nothing
//! here ever follows a symlink an entry could have planted.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn retry<F: FnMut() -> libc::c_int>(mut f: F) -> io::Result<()> {
    loop {
        match check(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Open `path` (relative, several components) beneath `dir` as a directory,
/// refusing symlinks anywhere on the way and any escape from `dir`:
/// ELOOP for a symlink, EXDEV for an escape, ENOTDIR for a non-directory.
///
/// `path` comes from `EntryPath` (no `..`, `.` or empty components). Where
/// openat2 is missing (kernels before 5.6, or a seccomp filter refusing it)
/// the same holds by walking one O_NOFOLLOW component at a time.
pub fn open_dir_beneath(dir: BorrowedFd<'_>, path: &CStr) -> io::Result<OwnedFd> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static NO_OPENAT2: AtomicBool = AtomicBool::new(false);
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        match openat2_beneath(dir, path) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) => {
                NO_OPENAT2.store(true, Ordering::Relaxed);
            }
            other => return other,
        }
    }
    walk_beneath(dir, path)
}

/// The component walk behind [`open_dir_beneath`] (also what its tests use
/// to check the two agree).
pub fn walk_beneath(dir: BorrowedFd<'_>, path: &CStr) -> io::Result<OwnedFd> {
    let mut cur: Option<OwnedFd> = None;
    for comp in path
        .to_bytes()
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
    {
        if comp == b"." || comp == b".." {
            return Err(io::Error::from_raw_os_error(libc::EXDEV));
        }
        let name = std::ffi::CString::new(comp).expect("split of a CStr has no NUL");
        let base = cur.as_ref().map_or(dir, |f| f.as_fd());
        cur = Some(openat(
            base,
            &name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )?);
    }
    match cur {
        Some(fd) => Ok(fd),
        None => openat(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0),
    }
}

fn openat2_beneath(dir: BorrowedFd<'_>, path: &CStr) -> io::Result<OwnedFd> {
    crate::fsutil::openat2(
        dir,
        path,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
    )
}

/// openat(2) of one component; with O_NOFOLLOW callers never follow it.
pub fn openat(
    dir: BorrowedFd<'_>,
    name: &CStr,
    flags: libc::c_int,
    mode: u32,
) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: `name` is NUL-terminated; openat returns a new fd or -1.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                flags | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        if fd >= 0 {
            // SAFETY: a fresh fd from the kernel, owned by nobody else.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

pub fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: NUL-terminated name, plain integer arguments.
    retry(|| unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) })
}

pub fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32, dev: libc::dev_t) -> io::Result<()> {
    // SAFETY: NUL-terminated name, plain integer arguments.
    retry(|| unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t, dev) })
}

pub fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    // SAFETY: both strings are NUL-terminated.
    retry(|| unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
}

/// linkat without AT_SYMLINK_FOLLOW: a symlink target is linked itself,
/// never followed.
pub fn linkat(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
) -> io::Result<()> {
    // SAFETY: both names are NUL-terminated single components.
    retry(|| unsafe {
        libc::linkat(
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            0,
        )
    })
}

pub fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: NUL-terminated name.
    retry(|| unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
}

pub fn lstatat(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<libc::stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a valid out-pointer of the right type.
    retry(|| unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    // SAFETY: fstatat succeeded, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

pub fn lchownat(dir: BorrowedFd<'_>, name: &CStr, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: NUL-terminated name, plain integers.
    retry(|| unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            name.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// fchmodat on a name known not to be a symlink (we just created it).
pub fn chmodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: NUL-terminated name, plain integers.
    retry(|| unsafe { libc::fchmodat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t, 0) })
}

pub fn fchown(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: plain integers on an fd we hold.
    retry(|| unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) })
}

pub fn fchmod(fd: BorrowedFd<'_>, mode: u32) -> io::Result<()> {
    // SAFETY: plain integers on an fd we hold.
    retry(|| unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) })
}

fn times(sec: i64, nsec: u32) -> [libc::timespec; 2] {
    let t = libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: nsec as _,
    };
    [t, t]
}

/// Set atime and mtime of `name` in `dir` without following a symlink.
pub fn lutimesat(dir: BorrowedFd<'_>, name: &CStr, sec: i64, nsec: u32) -> io::Result<()> {
    let ts = times(sec, nsec);
    // SAFETY: `ts` is an array of two timespecs, as utimensat wants.
    retry(|| unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

pub fn futimens(fd: BorrowedFd<'_>, sec: i64, nsec: u32) -> io::Result<()> {
    let ts = times(sec, nsec);
    // SAFETY: `ts` is an array of two timespecs, as futimens wants.
    retry(|| unsafe { libc::futimens(fd.as_raw_fd(), ts.as_ptr()) })
}

pub fn fsetxattr(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: name is NUL-terminated; value pointer and length describe a live slice.
    retry(|| unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// Set an xattr on `name` in `dir` without following it, for entries we
/// cannot open (symlinks, devices, FIFOs): through `/proc/self/fd/<dir>/name`,
/// where the kernel jumps to exactly `dir` and `lsetxattr` does not follow
/// the last component.
pub fn lsetxattrat(dir: BorrowedFd<'_>, name: &CStr, key: &CStr, value: &[u8]) -> io::Result<()> {
    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    path.extend_from_slice(name.to_bytes());
    let path = std::ffi::CString::new(path).expect("entry names carry no NUL");
    // SAFETY: both strings NUL-terminated; value describes a live slice.
    retry(|| unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

pub fn makedev(major: u32, minor: u32) -> libc::dev_t {
    libc::makedev(major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fallback walk refuses what openat2 refuses.
    #[test]
    fn walk_refuses_symlinks_and_dotdot_like_openat2() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("a/up")).unwrap();
        let root = std::fs::File::open(dir.path()).unwrap();
        let root = root.as_fd();
        for (path, errno) in [
            (c"a/up", Some(libc::ELOOP)),
            (c"a/up/etc", Some(libc::ELOOP)),
            (c"a/../..", Some(libc::EXDEV)),
            (c"a/b", None),
        ] {
            let walk = walk_beneath(root, path)
                .map(drop)
                .map_err(|e| e.raw_os_error());
            let two = openat2_beneath(root, path)
                .map(drop)
                .map_err(|e| e.raw_os_error());
            match errno {
                None => assert!(walk.is_ok() && two.is_ok(), "{path:?}"),
                Some(n) => {
                    assert!(walk.is_err() && two.is_err(), "{path:?} must be refused");
                    if n == libc::ELOOP {
                        // O_NOFOLLOW|O_DIRECTORY on a symlink: ELOOP or ENOTDIR.
                        assert!(
                            matches!(walk, Err(Some(libc::ELOOP)) | Err(Some(libc::ENOTDIR))),
                            "{path:?}: {walk:?}"
                        );
                    }
                }
            }
        }
    }
}

//! Docker's "populate": the first time an empty volume is mounted, the
//! image's content at the mount's path is copied into it, owners and
//! modes kept.
//!
//! The image is hostile. Its tree is a read-only overlay of its layers
//! (`container_fs`), and the path is resolved beneath that overlay's root
//! by the kernel (openat2 `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`), so a
//! VOLUME path that is a symlink to `/../../etc` is the image's own /etc.
//! Below it the walk opens every name `O_NOFOLLOW` in its parent's fd and
//! creates it `O_EXCL` in the volume's, so no symlink of the image (or one
//! planted in the volume meanwhile) is ever followed on either side.
//! Symlinks are copied as symlinks, fifos as fifos; hard links become
//! separate copies; device nodes, sockets, extended attributes and times
//! are not copied. Depth is bounded ([`MAX_DEPTH`]); size is bounded by
//! what a layer may expand to (invariant 9).
//!
//! The overlay is mounted by a thread of its own, in a mount namespace
//! that thread unshares (it goes with the thread), and attached there: on
//! a detached mount (fsmount) the kernel answers EAGAIN to every
//! `RESOLVE_IN_ROOT` lookup that meets a `..`, seen on 6.18.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

/// How deep a directory tree is copied before the copy is refused.
pub const MAX_DEPTH: usize = 128;

#[derive(Debug, thiserror::Error)]
#[error("populate volume {volume} from the image's {path}: {what} {entry}: {source}")]
pub struct PopulateError {
    pub volume: String,
    pub path: String,
    pub what: &'static str,
    pub entry: String,
    #[source]
    pub source: io::Error,
}

type Fail = (&'static str, String, io::Error);

fn cvt(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn open_in(dir: BorrowedFd<'_>, name: &CStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    // SAFETY: a NUL-terminated name relative to a directory fd we hold.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            mode,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just gave us this fd.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
}

fn lstat_in(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: stat is plain integers, filled by the kernel.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid name, dir fd and out pointer.
    cvt(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(st)
}

fn fstat(fd: BorrowedFd<'_>) -> io::Result<libc::stat> {
    // SAFETY: as lstat_in.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid fd and out pointer.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// Owner, then mode (a chown clears set-id bits).
fn own(fd: BorrowedFd<'_>, st: &libc::stat) -> io::Result<()> {
    // SAFETY: plain syscalls on an fd we hold.
    cvt(unsafe { libc::fchown(fd.as_raw_fd(), st.st_uid, st.st_gid) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fchmod(fd.as_raw_fd(), st.st_mode & 0o7777) })
}

fn names(dir: BorrowedFd<'_>) -> io::Result<Vec<CString>> {
    let fd = open_in(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let mut d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(fd))?;
    let mut out = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name();
        if n != c"." && n != c".." {
            out.push(n.to_owned());
        }
    }
    Ok(out)
}

/// Copy the image's `path` (beneath `image_root`) into `dest`, if it is a
/// directory there and `dest` is empty; returns whether it copied.
pub fn copy_tree(
    image_root: BorrowedFd<'_>,
    path: &str,
    dest: BorrowedFd<'_>,
) -> Result<bool, Fail> {
    let rel = path.trim_start_matches('/');
    let rel = CString::new(if rel.is_empty() { "." } else { rel })
        .map_err(|_| ("open", path.to_string(), io::ErrorKind::InvalidInput.into()))?;
    let src = match engine::fsutil::openat2(
        image_root,
        &rel,
        libc::O_RDONLY | libc::O_DIRECTORY,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        // Nothing there (or not a directory): nothing to copy, as Docker.
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
            return Ok(false)
        }
        Err(e) => return Err(("open", path.to_string(), e)),
    };
    let existing = names(dest).map_err(|e| ("read", "the volume".to_string(), e))?;
    if !existing.is_empty() {
        return Ok(false);
    }
    copy_dir(src.as_fd(), dest, path, 0)?;
    let st = fstat(src.as_fd()).map_err(|e| ("stat", path.to_string(), e))?;
    own(dest, &st).map_err(|e| ("chown", "the volume".to_string(), e))?;
    Ok(true)
}

fn copy_dir(src: BorrowedFd<'_>, dst: BorrowedFd<'_>, at: &str, depth: usize) -> Result<(), Fail> {
    if depth >= MAX_DEPTH {
        return Err((
            "copy",
            at.to_string(),
            io::Error::other(format!("deeper than {MAX_DEPTH} directories")),
        ));
    }
    for name in names(src).map_err(|e| ("read", at.to_string(), e))? {
        let shown = format!("{}/{}", at.trim_end_matches('/'), name.to_string_lossy());
        let f = |what: &'static str| {
            let shown = shown.clone();
            move |e: io::Error| (what, shown, e)
        };
        let st = lstat_in(src, &name).map_err(f("stat"))?;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                // SAFETY: a NUL-terminated name in a directory fd we hold.
                cvt(unsafe { libc::mkdirat(dst.as_raw_fd(), name.as_ptr(), 0o700) })
                    .map_err(f("create"))?;
                let flags = libc::O_RDONLY | libc::O_DIRECTORY;
                let s = open_in(src, &name, flags, 0).map_err(f("open"))?;
                let d = open_in(dst, &name, flags, 0).map_err(f("open the copy of"))?;
                copy_dir(s.as_fd(), d.as_fd(), &shown, depth + 1)?;
                own(d.as_fd(), &st).map_err(f("chown"))?;
            }
            libc::S_IFREG => {
                let s = open_in(src, &name, libc::O_RDONLY, 0).map_err(f("open"))?;
                let d = open_in(
                    dst,
                    &name,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
                    0o600,
                )
                .map_err(f("create"))?;
                let mut from = std::fs::File::from(s);
                let mut to = std::fs::File::from(d);
                io::copy(&mut from, &mut to).map_err(f("copy"))?;
                own(to.as_fd(), &st).map_err(f("chown"))?;
            }
            libc::S_IFLNK => {
                let target = nix::fcntl::readlinkat(Some(src.as_raw_fd()), name.as_c_str())
                    .map_err(|e| f("read link")(e.into()))?;
                let target =
                    CString::new(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()))
                        .map_err(|_| f("read link")(io::ErrorKind::InvalidData.into()))?;
                // SAFETY: NUL-terminated strings, a directory fd we hold.
                cvt(unsafe { libc::symlinkat(target.as_ptr(), dst.as_raw_fd(), name.as_ptr()) })
                    .map_err(f("create"))?;
                // SAFETY: as above; the link itself, never its target.
                cvt(unsafe {
                    libc::fchownat(
                        dst.as_raw_fd(),
                        name.as_ptr(),
                        st.st_uid,
                        st.st_gid,
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                })
                .map_err(f("chown"))?;
            }
            libc::S_IFIFO => {
                // SAFETY: NUL-terminated name in a directory fd we hold.
                cvt(unsafe { libc::mkfifoat(dst.as_raw_fd(), name.as_ptr(), 0o600) })
                    .map_err(f("create"))?;
                let d = open_in(dst, &name, libc::O_PATH, 0).map_err(f("open"))?;
                // fchown/fchmod refuse O_PATH fds: through /proc/self/fd,
                // which names exactly this inode.
                let p = format!("/proc/self/fd/{}", d.as_raw_fd());
                std::os::unix::fs::chown(&p, Some(st.st_uid), Some(st.st_gid))
                    .map_err(f("chown"))?;
                std::fs::set_permissions(
                    &p,
                    std::os::unix::fs::PermissionsExt::from_mode(st.st_mode & 0o7777),
                )
                .map_err(f("chmod"))?;
            }
            // Device nodes and sockets are not copied (see the module doc).
            _ => {}
        }
    }
    Ok(())
}

/// Populate the volume `volume` (its `_data` at `data`) from the image
/// whose layers are `lowers` (top first) at `path`. `mnt`: where a kernel
/// without `lowerdir+` mounts the image, in a private mount namespace.
pub fn populate(
    volume: &str,
    lowers: &[PathBuf],
    mnt: &Path,
    path: &str,
    data: &Path,
) -> Result<bool, PopulateError> {
    let err = |(what, entry, source): Fail| PopulateError {
        volume: volume.to_string(),
        path: path.to_string(),
        what,
        entry,
        source,
    };
    let Some((top, rest)) = lowers.split_first() else {
        return Ok(false);
    };
    let (top, rest, mnt, data, path) = (
        top.clone(),
        rest.to_vec(),
        mnt.to_path_buf(),
        data.to_path_buf(),
        path.to_string(),
    );
    std::thread::spawn(move || -> Result<bool, Fail> {
        let mut layers = vec![crate::sys::cstring(&top)];
        layers.extend(rest.iter().map(crate::sys::cstring));
        let view = if layers.len() == 1 {
            engine::fsutil::openat2(
                crate::copy::root::cwd(),
                &layers[0],
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
            )
        } else {
            crate::container_fs::legacy(&layers, &mnt)
        }
        .map_err(|e| ("mount the image", path.clone(), e))?;
        let dest = engine::fsutil::openat2(
            crate::copy::root::cwd(),
            &crate::sys::cstring(&data),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        )
        .map_err(|e| ("open", data.display().to_string(), e))?;
        copy_tree(view.as_fd(), &path, dest.as_fd())
    })
    .join()
    .unwrap_or_else(|_| {
        Err((
            "copy",
            String::new(),
            io::Error::other("the populating thread panicked"),
        ))
    })
    .map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn dirfd(p: &Path) -> OwnedFd {
        std::fs::File::open(p).unwrap().into()
    }

    #[test]
    fn copies_beneath_the_image_root_and_keeps_modes() {
        let t = tempfile::tempdir().unwrap();
        let img = t.path().join("img");
        let vol = t.path().join("vol");
        std::fs::create_dir_all(img.join("etc/sub")).unwrap();
        std::fs::create_dir_all(&vol).unwrap();
        std::fs::write(img.join("etc/f"), b"hello").unwrap();
        std::fs::set_permissions(img.join("etc/f"), PermissionsExt::from_mode(0o640)).unwrap();
        std::fs::set_permissions(img.join("etc/sub"), PermissionsExt::from_mode(0o1750)).unwrap();
        std::os::unix::fs::symlink("/../../outside", img.join("etc/link")).unwrap();
        // The VOLUME path: a symlink climbing out, resolved in the image.
        std::os::unix::fs::symlink("/../../etc", img.join("v")).unwrap();
        let copied = copy_tree(dirfd(&img).as_fd(), "/v", dirfd(&vol).as_fd()).unwrap();
        assert!(copied);
        assert_eq!(std::fs::read(vol.join("f")).unwrap(), b"hello");
        let m = std::fs::metadata(vol.join("f")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640);
        let m = std::fs::symlink_metadata(vol.join("sub")).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o1750);
        assert_eq!(
            std::fs::read_link(vol.join("link")).unwrap(),
            Path::new("/../../outside")
        );
        // Not empty any more: a second populate copies nothing.
        assert!(!copy_tree(dirfd(&img).as_fd(), "/v", dirfd(&vol).as_fd()).unwrap());
        // A path that is not there: nothing to copy.
        let empty = t.path().join("e");
        std::fs::create_dir(&empty).unwrap();
        assert!(!copy_tree(dirfd(&img).as_fd(), "/nope", dirfd(&empty).as_fd()).unwrap());
    }
}

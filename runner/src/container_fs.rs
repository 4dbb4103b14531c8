//! A container's filesystem as one read-only tree, for `rrun export`: an
//! overlay whose lowers are the container's upper dir over its image's
//! layers. Its whiteouts and opaque directories apply as they do in the
//! container, and nothing the container mounted (volumes, /proc) is in
//! it. With no upper dir of its own, the overlay never writes, so it can
//! be mounted while the container runs.
//!
//! The overlay is a detached mount (fsopen/fsmount): it is reachable only
//! through the returned fd and goes when that is closed. Kernels without
//! `lowerdir+` (before 6.8) get a mount(2) at `mnt` in a mount namespace
//! of this process's own (one-shot commands only: it unshares).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
#[error("mount the filesystem of container {container} read-only: {source}")]
pub struct ViewError {
    pub container: String,
    #[source]
    pub source: io::Error,
}

/// Open the tree of `upper` over `lowers` (top first) read-only; the
/// returned directory fd is its root.
pub fn open_readonly(
    container: &str,
    upper: &Path,
    lowers: &[PathBuf],
    mnt: &Path,
) -> Result<OwnedFd, ViewError> {
    let err = |source| ViewError {
        container: container.to_string(),
        source,
    };
    let mut layers: Vec<CString> = vec![crate::sys::cstring(upper.as_os_str())];
    layers.extend(lowers.iter().map(|l| crate::sys::cstring(l.as_os_str())));
    let root = if layers.len() == 1 {
        // An image without layers: the upper dir is the whole tree.
        open_dir(&layers[0])
    } else {
        match detached(&layers) {
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {
                legacy(&layers, mnt)
            }
            r => r,
        }
    };
    root.map_err(err)
}

fn open_dir(p: &std::ffi::CStr) -> io::Result<OwnedFd> {
    engine::fsutil::openat2(
        crate::copy::root::cwd(),
        p,
        libc::O_RDONLY | libc::O_DIRECTORY,
        0,
    )
}

fn detached(layers: &[CString]) -> io::Result<OwnedFd> {
    let fs = crate::sys::fsopen(c"overlay")?;
    crate::sys::fsconfig_string(fs.as_fd(), c"source", c"overlay")?;
    for l in layers {
        crate::sys::fsconfig_string(fs.as_fd(), c"lowerdir+", l)?;
    }
    let mnt = crate::sys::fs_create_mount(fs.as_fd(), crate::sys::MOUNT_ATTR_RDONLY)?;
    engine::fsutil::openat2(mnt.as_fd(), c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)
}

/// The overlay of `layers` (top first, at least two) mounted read-only at
/// `mnt` in a mount namespace this thread unshares, its root opened.
/// Unlike a detached mount, paths resolve beneath it with `..` through
/// openat2 `RESOLVE_IN_ROOT` (on a detached mount the kernel answers
/// EAGAIN to every such lookup).
pub fn legacy(layers: &[CString], mnt: &Path) -> io::Result<OwnedFd> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    let mut opts = b"lowerdir=".to_vec();
    for (i, l) in layers.iter().enumerate() {
        if i > 0 {
            opts.push(b':');
        }
        opts.extend_from_slice(l.to_bytes());
    }
    let opts = CString::new(opts).expect("paths have no NUL");
    mount(
        Some("overlay"),
        mnt,
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(opts.as_c_str()),
    )?;
    open_dir(&crate::sys::cstring(mnt.as_os_str()))
}

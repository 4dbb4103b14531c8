//! Docker's masked and read-only paths under /proc and /sys.
//!
//! Every mount here goes through `/proc/self/fd/N` of an `O_PATH` fd opened
//! with `O_NOFOLLOW` and checked with `fstat`: the object we inspected is
//! the object we mount on (or from). The lesson of CVE-2025-31133, where
//! runc bound a `/dev/null` that the container had swapped for a symlink to
//! a writable /proc file.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{fstat, SFlag};
use nix::sys::statvfs::{fstatvfs, FsFlags};

use super::SecurityError;

/// Hidden from the container: files get /dev/null bound over them,
/// directories an empty read-only tmpfs.
pub const MASKED_PATHS: &[&CStr] = &[
    c"/proc/acpi",
    c"/proc/asound",
    c"/proc/kcore",
    c"/proc/keys",
    c"/proc/latency_stats",
    c"/proc/timer_list",
    c"/proc/timer_stats",
    c"/proc/sched_debug",
    c"/proc/scsi",
    c"/sys/firmware",
    c"/sys/devices/virtual/powercap",
];

/// Visible but read-only.
pub const READONLY_PATHS: &[&CStr] = &[
    c"/proc/bus",
    c"/proc/fs",
    c"/proc/irq",
    c"/proc/sys",
    c"/proc/sysrq-trigger",
];

/// `/proc/self/fd/N` without allocating (we run in a cloned child).
struct FdPath {
    buf: [u8; 32],
}

impl FdPath {
    fn new(fd: i32) -> FdPath {
        let mut buf = [0u8; 32];
        let prefix = b"/proc/self/fd/";
        buf[..prefix.len()].copy_from_slice(prefix);
        let mut digits = [0u8; 10];
        let (mut n, mut len) = (fd as u32, 0);
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        for i in 0..len {
            buf[prefix.len() + i] = digits[len - 1 - i];
        }
        FdPath { buf }
    }
    fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf).expect("nul-terminated by construction")
    }
}

/// Opens `path` as an `O_PATH` fd without following a final symlink;
/// `Ok(None)` when it does not exist.
fn open_path(path: &CStr) -> Result<Option<OwnedFd>, SecurityError> {
    // SAFETY: `path` is a valid C string; the returned fd is owned below.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let e = nix::Error::last();
        if e == nix::Error::ENOENT {
            return Ok(None);
        }
        return Err(SecurityError::MaskOpen {
            path: path.to_string_lossy().into_owned(),
            source: e,
        });
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

fn mount_err<'a>(
    path: &'a CStr,
    what: &'static str,
) -> impl FnOnce(nix::Error) -> SecurityError + 'a {
    move |source| SecurityError::Mask {
        path: path.to_string_lossy().into_owned(),
        what,
        source,
    }
}

/// Opens the container's `/dev/null` and proves it is the null device
/// (character device 1:3), not a symlink or a file put there.
fn verified_dev_null() -> Result<OwnedFd, SecurityError> {
    let p = c"/dev/null";
    let fd = open_path(p)?.ok_or(SecurityError::DevNull("it does not exist"))?;
    let st = fstat(fd.as_raw_fd()).map_err(mount_err(p, "fstat"))?;
    let is_chr = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR;
    if !is_chr || libc::major(st.st_rdev) != 1 || libc::minor(st.st_rdev) != 3 {
        return Err(SecurityError::DevNull("it is not the character device 1:3"));
    }
    Ok(fd)
}

/// Masks and write-protects Docker's paths. Call in the container's mount
/// namespace after pivot_root, with /proc, /sys and /dev (with a real
/// /dev/null) mounted, before dropping capabilities. Paths missing on this
/// kernel are skipped. `privileged` skips everything, as Docker does.
pub fn mask_paths(privileged: bool) -> Result<(), SecurityError> {
    if privileged {
        return Ok(());
    }
    mask_listed(MASKED_PATHS, READONLY_PATHS)
}

/// As `mask_paths` with lists of our own (an OCI bundle's
/// `linux.maskedPaths` and `linux.readonlyPaths`): absolute paths in the
/// container, missing ones skipped.
pub fn mask_listed<M: AsRef<CStr>, R: AsRef<CStr>>(
    masked: &[M],
    readonly: &[R],
) -> Result<(), SecurityError> {
    if masked.is_empty() && readonly.is_empty() {
        return Ok(());
    }
    let null = verified_dev_null()?;
    let null_path = FdPath::new(null.as_raw_fd());
    for path in masked {
        let path = path.as_ref();
        let Some(target) = open_path(path)? else {
            continue;
        };
        let st = fstat(target.as_raw_fd()).map_err(mount_err(path, "fstat"))?;
        let fmt = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
        let on = FdPath::new(target.as_raw_fd());
        if fmt == SFlag::S_IFDIR {
            mount(
                Some(c"tmpfs"),
                on.as_cstr(),
                Some(c"tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some(c"size=0,mode=0555"),
            )
            .map_err(mount_err(path, "mount an empty read-only tmpfs over"))?;
        } else {
            mount(
                Some(null_path.as_cstr()),
                on.as_cstr(),
                None::<&CStr>,
                MsFlags::MS_BIND,
                None::<&CStr>,
            )
            .map_err(mount_err(path, "bind /dev/null over"))?;
        }
    }
    for path in readonly {
        let path = path.as_ref();
        let Some(target) = open_path(path)? else {
            continue;
        };
        let fd_path = FdPath::new(target.as_raw_fd());
        mount(
            Some(fd_path.as_cstr()),
            fd_path.as_cstr(),
            None::<&CStr>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&CStr>,
        )
        .map_err(mount_err(path, "bind onto itself"))?;
        // The old fd still points below the new mount: reopen to reach it.
        let top = open_path(path)?.ok_or(SecurityError::Mask {
            path: path.to_string_lossy().into_owned(),
            what: "reopen after bind",
            source: nix::Error::ENOENT,
        })?;
        // A bind remount must repeat the locked flags or the kernel refuses
        // (in user namespaces) or clears them (nosuid/nodev/noexec).
        let vfs = fstatvfs(&top).map_err(mount_err(path, "statvfs"))?;
        let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        for (st, ms) in [
            (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
            (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
            (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        ] {
            if vfs.flags().contains(st) {
                flags |= ms;
            }
        }
        let top_path = FdPath::new(top.as_raw_fd());
        mount(
            None::<&CStr>,
            top_path.as_cstr(),
            None::<&CStr>,
            flags,
            None::<&CStr>,
        )
        .map_err(mount_err(path, "remount read-only"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::FdPath;

    #[test]
    fn fd_path_formats() {
        assert_eq!(
            FdPath::new(0).as_cstr().to_str().unwrap(),
            "/proc/self/fd/0"
        );
        assert_eq!(
            FdPath::new(1234).as_cstr().to_str().unwrap(),
            "/proc/self/fd/1234"
        );
    }
}

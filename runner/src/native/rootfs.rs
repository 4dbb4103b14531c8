//! The container's root filesystem, assembled inside the child's new mount
//! namespace: overlay, then every mount resolved *beneath* the rootfs by fd
//! (openat2 RESOLVE_IN_ROOT, then move_mount onto the fd), then pivot_root.
//!
//! Everything here runs in the cloned child before execve, so it works on
//! data the parent prepared (`RootfsPlan`, all C strings) and only makes
//! syscalls. Because every mount lives in the child's mount namespace, none
//! of them can outlive the container: the namespace dies with its last
//! process, and the host's mount table never sees them.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use engine::layer::stack::OVERLAY_MAX_LOWERS;

use crate::sys::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};

/// Where a step failed, for the one-line error the parent prints.
#[derive(Debug)]
pub struct StepError {
    pub what: &'static str,
    pub path: String,
    pub source: io::Error,
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.what, self.path, self.source)
    }
}

fn step<T>(what: &'static str, path: &CStr, r: io::Result<T>) -> Result<T, StepError> {
    r.map_err(|source| StepError {
        what,
        path: path.to_string_lossy().into_owned(),
        source,
    })
}

/// One filesystem to create: `fsopen(fstype)` plus its options.
#[derive(Debug, Clone)]
pub struct FsMount {
    pub fstype: CString,
    /// (key, Some(value)) for strings, (key, None) for flags.
    pub options: Vec<(CString, Option<CString>)>,
    pub attrs: u64,
}

#[derive(Debug, Clone)]
pub enum Step {
    /// A new filesystem at `target` (a directory, created if missing).
    Fs {
        fs: FsMount,
        target: CString,
    },
    /// A bind of a host path (opened before the pivot) at `target`.
    Bind {
        source: CString,
        target: CString,
        dir: bool,
        readonly: bool,
        /// More MOUNT_ATTR_* to set (nosuid, nodev, noexec), on every
        /// mount of the bound tree.
        attrs: u64,
        /// With the mounts below `source` (rbind), or just its own.
        recursive: bool,
    },
    /// A character device node (major, minor) at `target`, mode 0666.
    Device {
        target: CString,
        major: u32,
        minor: u32,
    },
    Symlink {
        target: CString,
        link_to: CString,
    },
    /// Make the mount at `target` read-only (after its children are mounted).
    ReadOnly {
        target: CString,
    },
}

/// Small generated files (hosts, hostname, resolv.conf) that the steps
/// bind-mount from `dir`. The child mounts a tmpfs on `dir` in its own
/// mount namespace and writes them there: the host's directory is never
/// touched, and the files vanish with the namespace.
#[derive(Debug, Clone)]
pub struct EtcFiles {
    pub dir: CString,
    /// (file name, content)
    pub files: Vec<(CString, Vec<u8>)>,
}

/// Everything the child needs to build the rootfs.
#[derive(Debug, Clone)]
pub struct RootfsPlan {
    /// The overlay's lowers. Empty: no overlay; `merged` is a directory
    /// used as it is (an OCI bundle's `root.path`), bound onto itself so
    /// that it is a mount point pivot_root accepts; `upper`, `work` and
    /// `volatile` are then unused.
    pub lowers: Vec<CString>,
    pub upper: CString,
    pub work: CString,
    pub merged: CString,
    pub readonly: bool,
    /// Mount the overlay `volatile`: it then never syncs the upper fs.
    /// Without it, unmounting the overlay (when the container's mount
    /// namespace dies, i.e. while its exit is still being reported)
    /// syncs the whole upper filesystem: a journal commit on ext4,
    /// ~1 ms of every `--rm` start-to-exit. Only for uppers nobody needs
    /// after a crash (podman does the same for `--rm`); such an upper is
    /// never mounted again (the kernel refuses a volatile upper/work
    /// pair that saw a crash, and rrun never remounts a container).
    pub volatile: bool,
    pub steps: Vec<Step>,
}

/// Make our copy of the host's mounts private, so nothing we mount
/// propagates back (and host unmounts do not reach in).
pub fn make_private() -> Result<(), StepError> {
    use nix::mount::{mount, MsFlags};
    step(
        "make mounts private",
        c"/",
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(io::Error::from),
    )
}

/// Mount the overlay at `plan.merged`: the new mount API with one
/// `lowerdir+` per layer (no one-page options limit), else mount(2).
pub fn mount_overlay(plan: &RootfsPlan) -> Result<(), StepError> {
    if plan.lowers.len() > OVERLAY_MAX_LOWERS {
        // The kernel's own refusal reads "No such file or directory" or
        // "Invalid argument"; say what is wrong instead.
        return step(
            "mount overlay at",
            &plan.merged,
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "the image has {} distinct layers and overlayfs stacks at most {OVERLAY_MAX_LOWERS} \
                     (flatten it: rbuild export, then rbuild import)",
                    plan.lowers.len()
                ),
            )),
        );
    }
    match overlay_fsopen(plan) {
        Ok(mnt) => step(
            "attach overlay at",
            &plan.merged,
            sys::move_mount_path(mnt.as_fd(), &plan.merged),
        ),
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => {
            overlay_legacy(plan)
        }
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => step(
            "mount overlay (overlayfs is not available: modprobe overlay) at",
            &plan.merged,
            Err(e),
        ),
        Err(e) => step("mount overlay at", &plan.merged, Err(e)),
    }
}

fn overlay_fsopen(plan: &RootfsPlan) -> io::Result<OwnedFd> {
    let fs = sys::fsopen(c"overlay")?;
    sys::fsconfig_string(fs.as_fd(), c"source", c"overlay")?;
    for l in &plan.lowers {
        sys::fsconfig_string(fs.as_fd(), c"lowerdir+", l)?;
    }
    sys::fsconfig_string(fs.as_fd(), c"upperdir", &plan.upper)?;
    sys::fsconfig_string(fs.as_fd(), c"workdir", &plan.work)?;
    if plan.volatile {
        sys::fsconfig_flag(fs.as_fd(), c"volatile")?;
    }
    if engine::rootless::active() {
        // In a user namespace: overlay's own xattrs under user.overlay.*
        // (trusted.* needs the initial namespace's CAP_SYS_ADMIN); the
        // rootless store's layers are unpacked that way.
        sys::fsconfig_flag(fs.as_fd(), c"userxattr")?;
    }
    sys::fs_create_mount(fs.as_fd(), 0)
}

/// Whether the kernel makes an overlay here as it would `plan`'s: a
/// superblock over its top lower and its upper dir, both as lowers, made
/// and dropped, never attached (`rootless::fuse` asks before the
/// container is cloned). Read-only, so dropping it syncs nothing (a
/// writable overlay's teardown syncs the upper filesystem: ~10 ms under
/// load). `lowerdir+` first, as `mount_overlay`; where the kernel does
/// not know it (before 6.8: EINVAL), one `lowerdir` string.
pub fn probe_overlay(plan: &RootfsPlan) -> io::Result<()> {
    let top = plan.lowers.first().ok_or(io::ErrorKind::InvalidInput)?;
    let layered = || -> io::Result<()> {
        let fs = sys::fsopen(c"overlay")?;
        sys::fsconfig_string(fs.as_fd(), c"source", c"overlay")?;
        sys::fsconfig_string(fs.as_fd(), c"lowerdir+", top)?;
        sys::fsconfig_string(fs.as_fd(), c"lowerdir+", &plan.upper)?;
        probe_create(fs.as_fd())
    };
    match layered() {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
        r => return r,
    }
    // ':' and '\' escaped, as overlayfs reads them.
    let mut lowers = Vec::new();
    for (i, dir) in [top.as_bytes(), plan.upper.as_bytes()].iter().enumerate() {
        if i > 0 {
            lowers.push(b':');
        }
        for &b in dir.iter() {
            if b == b':' || b == b'\\' {
                lowers.push(b'\\');
            }
            lowers.push(b);
        }
    }
    let lowers = std::ffi::CString::new(lowers).map_err(|_| io::ErrorKind::InvalidInput)?;
    let fs = sys::fsopen(c"overlay")?;
    sys::fsconfig_string(fs.as_fd(), c"source", c"overlay")?;
    sys::fsconfig_string(fs.as_fd(), c"lowerdir", &lowers)?;
    probe_create(fs.as_fd())
}

fn probe_create(fs: BorrowedFd<'_>) -> io::Result<()> {
    if engine::rootless::active() {
        sys::fsconfig_flag(fs, c"userxattr")?;
    }
    sys::fs_create_mount(fs, 0).map(drop)
}

/// Kernels before 6.8 (no `lowerdir+`): one `lowerdir=a:b:c` string,
/// which mount(2) takes only up to a page. Store paths are long enough
/// that this would stop at about 40 layers, so each lower is opened
/// (`O_PATH`) and named by its descriptor number, relative to
/// `/proc/self/fd` made this thread's working directory for the call
/// (`lowerdir=7:8:9`): the kernel follows those links to the directories,
/// and the string fits overlayfs's 500 layers. Public for the tests that
/// drive this path on kernels that have `lowerdir+`.
pub fn overlay_legacy(plan: &RootfsPlan) -> Result<(), StepError> {
    let absolute = |p: &CStr| p.to_bytes().first() == Some(&b'/');
    if ![&plan.upper, &plan.work, &plan.merged]
        .iter()
        .all(|p| absolute(p))
    {
        // Relative to the working directory we would change: as given.
        return overlay_legacy_paths(plan);
    }
    let lowers = plan
        .lowers
        .iter()
        .map(|l| step("open overlay lower", l, open_path_dir(l)))
        .collect::<Result<Vec<OwnedFd>, _>>()?;
    let in_fd_dir = step(
        "enter /proc/self/fd to name the overlay's lowers at",
        &plan.merged,
        ProcFdCwd::enter(),
    )?;
    let names: Vec<Vec<u8>> = lowers
        .iter()
        .map(|l| l.as_raw_fd().to_string().into_bytes())
        .collect();
    let r = overlay_legacy_named(plan, &names);
    drop(in_fd_dir);
    r
}

/// The lowers by their paths as given (short ones, or relative).
fn overlay_legacy_paths(plan: &RootfsPlan) -> Result<(), StepError> {
    let names: Vec<Vec<u8>> = plan.lowers.iter().map(|l| l.to_bytes().to_vec()).collect();
    overlay_legacy_named(plan, &names)
}

fn overlay_legacy_named(plan: &RootfsPlan, lowers: &[Vec<u8>]) -> Result<(), StepError> {
    match overlay_legacy_with(plan, lowers, plan.volatile) {
        // `volatile` is from Linux 5.10: older kernels sync the upper.
        Err(e) if plan.volatile && e.source.raw_os_error() == Some(libc::EINVAL) => {
            overlay_legacy_with(plan, lowers, false)
        }
        r => r,
    }
}

fn open_path_dir(path: &CStr) -> io::Result<OwnedFd> {
    // SAFETY: a valid C string; the returned descriptor is checked below.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by open and nothing else owns it.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// This thread's working directory is `/proc/self/fd` while it lives; the
/// previous one is restored on drop. The thread first gets its own
/// filesystem context (`unshare(CLONE_FS)`), so no other thread of the
/// process (the builder mounts views from several) sees the change.
struct ProcFdCwd {
    previous: OwnedFd,
}

impl ProcFdCwd {
    fn enter() -> io::Result<ProcFdCwd> {
        // SAFETY: unshare with a flag, no pointers.
        if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let previous = open_path_dir(c".")?;
        // SAFETY: a valid C string.
        if unsafe { libc::chdir(c"/proc/self/fd".as_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ProcFdCwd { previous })
    }
}

impl Drop for ProcFdCwd {
    fn drop(&mut self) {
        // SAFETY: `previous` is an open directory descriptor we own.
        unsafe { libc::fchdir(self.previous.as_raw_fd()) };
    }
}

fn overlay_legacy_with(
    plan: &RootfsPlan,
    lowers: &[Vec<u8>],
    volatile: bool,
) -> Result<(), StepError> {
    let mut opts = b"lowerdir=".to_vec();
    for (i, l) in lowers.iter().enumerate() {
        if i > 0 {
            opts.push(b':');
        }
        opts.extend_from_slice(l);
    }
    opts.extend_from_slice(b",upperdir=");
    opts.extend_from_slice(plan.upper.to_bytes());
    opts.extend_from_slice(b",workdir=");
    opts.extend_from_slice(plan.work.to_bytes());
    if volatile {
        opts.extend_from_slice(b",volatile");
    }
    if engine::rootless::active() {
        opts.extend_from_slice(b",userxattr");
    }
    let opts = CString::new(opts).expect("paths have no NUL");
    // SAFETY: all pointers are valid C strings for the call.
    let rc = unsafe {
        libc::mount(
            c"overlay".as_ptr(),
            plan.merged.as_ptr(),
            c"overlay".as_ptr(),
            0,
            opts.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return step(
            "mount overlay (legacy) at",
            &plan.merged,
            Err(io::Error::last_os_error()),
        );
    }
    Ok(())
}

/// Open `rel` beneath `root` (`O_PATH`), creating it (a directory, or an
/// empty file) and missing parents if needed. Every lookup stays inside the
/// root: symlinks resolve as if `root` were `/`, magic links are refused.
pub fn ensure_beneath(root: BorrowedFd<'_>, rel: &CStr, dir: bool) -> io::Result<OwnedFd> {
    ensure_beneath_depth(root, rel, dir, libc::O_PATH, 0)
}

/// As `ensure_beneath` for a directory, opened for `*at` calls in it.
fn ensure_dir_beneath(root: BorrowedFd<'_>, rel: &CStr) -> io::Result<OwnedFd> {
    ensure_beneath_depth(root, rel, true, DIR_FD, 0)
}

/// A directory descriptor `mkdirat`/`mknodat` accept (O_PATH ones they do not).
const DIR_FD: i32 = libc::O_RDONLY | libc::O_DIRECTORY;

/// A dangling symlink on the way (`/data -> /srv/data`, missing) is
/// followed the way the kernel would inside the root: its target is
/// spliced into the path, lexically clamped at the root, and creation
/// restarts from there. At most 40 links, as the kernel allows.
///
/// On the start path of every container (its mount points): one lookup
/// when `rel` exists, and when only its last component is missing (the
/// usual case) one more for the parent, one create and one open.
fn ensure_beneath_depth(
    root: BorrowedFd<'_>,
    rel: &CStr,
    dir: bool,
    final_flags: i32,
    depth: u32,
) -> io::Result<OwnedFd> {
    if depth > 40 {
        return Err(io::Error::from_raw_os_error(libc::ELOOP));
    }
    match sys::openat2(root, rel, final_flags, sys::RESOLVE_BENEATH_ROOT) {
        Ok(fd) => return Ok(fd),
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => return Err(e),
        Err(_) => {}
    }
    let comps: Vec<&[u8]> = rel
        .to_bytes()
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    let joined = |n: usize| -> CString {
        if n == 0 {
            c".".to_owned()
        } else {
            CString::new(comps[..n].join(&b'/')).expect("no NUL")
        }
    };
    // The deepest ancestor that exists, tried from the parent upwards.
    let mut first_missing = comps.len().saturating_sub(1);
    let mut parent = loop {
        match sys::openat2(
            root,
            &joined(first_missing),
            DIR_FD,
            sys::RESOLVE_BENEATH_ROOT,
        ) {
            Ok(fd) => break fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && first_missing > 0 => {
                first_missing -= 1
            }
            Err(e) => return Err(e),
        }
    };
    // Create component by component, each relative to its (already
    // resolved) parent, so a symlink swapped in cannot redirect us.
    for i in first_missing..comps.len() {
        let last = i + 1 == comps.len();
        let name = CString::new(comps[i]).expect("no NUL");
        if last && !dir {
            // SAFETY: parent is a valid directory fd; name a valid C string.
            let fd = unsafe {
                libc::openat(
                    parent.as_raw_fd(),
                    name.as_ptr(),
                    libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_WRONLY
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    0o644,
                )
            };
            if fd < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(e);
                }
            } else {
                // SAFETY: fd was just returned by openat and is ours to close.
                unsafe { libc::close(fd) };
            }
        } else {
            // SAFETY: as above.
            let rc = unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return Err(e);
                }
            }
        }
        // Resolved again from the root: what now stands there may be a
        // symlink (created meanwhile, or there before as a dangling one).
        let flags = if last { final_flags } else { DIR_FD };
        match sys::openat2(root, &joined(i + 1), flags, sys::RESOLVE_BENEATH_ROOT) {
            Ok(fd) => parent = fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                // The name exists but does not resolve: a dangling symlink.
                let target = nix::fcntl::readlinkat(Some(parent.as_raw_fd()), name.as_c_str())
                    .map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))?;
                let target = target.as_encoded_bytes();
                let mut path: Vec<&[u8]> = if target.starts_with(b"/") {
                    Vec::new()
                } else {
                    comps[..i].to_vec()
                };
                for c in target
                    .split(|b| *b == b'/')
                    .chain(comps[i + 1..].iter().copied())
                {
                    match c {
                        b"" | b"." => {}
                        b".." => {
                            path.pop();
                        }
                        c => path.push(c),
                    }
                }
                let joined = CString::new(path.join(&b'/')).expect("no NUL");
                return ensure_beneath_depth(root, &joined, dir, final_flags, depth + 1);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(parent)
}

/// Split `rel` into its parent (opened beneath root, created if missing)
/// and its last component.
fn parent_beneath(root: BorrowedFd<'_>, rel: &CStr) -> io::Result<(OwnedFd, CString)> {
    let bytes = rel.to_bytes();
    let (dir, name) = match bytes.iter().rposition(|b| *b == b'/') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (&b"."[..], bytes),
    };
    let dir = CString::new(dir).expect("no NUL");
    Ok((
        ensure_dir_beneath(root, &dir)?,
        CString::new(name).expect("no NUL"),
    ))
}

fn fs_mount(fs: &FsMount) -> io::Result<OwnedFd> {
    let ctx = sys::fsopen(&fs.fstype)?;
    // The "device" column of /proc/mounts, as mount(8) would set it.
    sys::fsconfig_string(ctx.as_fd(), c"source", &fs.fstype)?;
    for (k, v) in &fs.options {
        match v {
            Some(v) => sys::fsconfig_string(ctx.as_fd(), k, v)?,
            None => sys::fsconfig_flag(ctx.as_fd(), k)?,
        }
    }
    sys::fs_create_mount(ctx.as_fd(), fs.attrs)
}

/// Perform one step beneath the rootfs `root`.
pub fn apply_step(root: BorrowedFd<'_>, s: &Step) -> Result<(), StepError> {
    match s {
        Step::Fs { fs, target } => {
            let mnt = step("mount", &fs.fstype, fs_mount(fs))?;
            let at = step(
                "create mount point",
                target,
                ensure_beneath(root, target, true),
            )?;
            step(
                "attach mount at",
                target,
                sys::move_mount_fd(mnt.as_fd(), at.as_fd()),
            )
        }
        Step::Bind {
            source,
            target,
            dir,
            readonly,
            attrs,
            recursive,
        } => {
            let tree = step(
                "open bind source",
                source,
                sys::open_tree_clone_with(source, *recursive),
            )?;
            let set = attrs | if *readonly { MOUNT_ATTR_RDONLY } else { 0 };
            if set != 0 {
                step(
                    "set mount attributes of",
                    source,
                    sys::mount_setattr(tree.as_fd(), set, true),
                )?;
            }
            let at = step(
                "create mount point",
                target,
                ensure_beneath(root, target, *dir),
            )?;
            step(
                "bind mount at",
                target,
                sys::move_mount_fd(tree.as_fd(), at.as_fd()),
            )
        }
        Step::Device {
            target,
            major,
            minor,
        } => {
            let (dir, name) = step("open parent of", target, parent_beneath(root, target))?;
            let dev = libc::makedev(*major, *minor);
            // SAFETY: dir is a valid directory fd and name a valid C string.
            let rc = unsafe {
                libc::mknodat(dir.as_raw_fd(), name.as_ptr(), libc::S_IFCHR | 0o666, dev)
            };
            if rc != 0 {
                return step("create device", target, Err(io::Error::last_os_error()));
            }
            Ok(())
        }
        Step::Symlink { target, link_to } => {
            let (dir, name) = step("open parent of", target, parent_beneath(root, target))?;
            // SAFETY: valid fd and C strings.
            let rc = unsafe { libc::symlinkat(link_to.as_ptr(), dir.as_raw_fd(), name.as_ptr()) };
            if rc != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EEXIST) {
                    return step("create symlink", target, Err(e));
                }
            }
            Ok(())
        }
        Step::ReadOnly { target } => {
            let fd = step(
                "open",
                target,
                sys::openat2(
                    root,
                    target,
                    libc::O_PATH | libc::O_DIRECTORY,
                    sys::RESOLVE_BENEATH_ROOT,
                ),
            )?;
            step(
                "make read-only",
                target,
                sys::mount_setattr(fd.as_fd(), MOUNT_ATTR_RDONLY, false),
            )
        }
    }
}

/// Mount a tmpfs at `e.dir` (after the overlay, which has already resolved
/// its upper and work dirs by then) and write the files on it. At most
/// 1 MiB: the container can write to these files through its bind mounts.
fn write_etc_files(e: &EtcFiles) -> Result<(), StepError> {
    const SAFE: u64 = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    let fs = FsMount {
        fstype: c"tmpfs".into(),
        options: vec![
            (c"mode".into(), Some(c"755".into())),
            (c"size".into(), Some(c"1m".into())),
        ],
        attrs: SAFE,
    };
    let mnt = step("mount tmpfs for /etc files at", &e.dir, fs_mount(&fs))?;
    step(
        "attach tmpfs for /etc files at",
        &e.dir,
        sys::move_mount_path(mnt.as_fd(), &e.dir),
    )?;
    for (name, content) in &e.files {
        // SAFETY: mnt is the tmpfs root (a directory fd); name is a C string.
        let fd = unsafe {
            libc::openat(
                mnt.as_raw_fd(),
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o644,
            )
        };
        if fd < 0 {
            return step("create", name, Err(io::Error::last_os_error()));
        }
        // SAFETY: fd was just returned by openat and is ours.
        let file = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        step("write", name, sys::write_all_fd(file.as_raw_fd(), content))?;
    }
    Ok(())
}

/// Build the whole rootfs at `plan.merged` and pivot into it. On return the
/// process's `/` is the container's rootfs and the host's is detached.
/// `etc`: written after the overlay, before the steps that bind them.
pub fn assemble_and_pivot(plan: &RootfsPlan, etc: Option<&EtcFiles>) -> Result<(), StepError> {
    let root = assemble(plan, etc)?;
    seal_and_pivot(plan, root)
}

/// `assemble_and_pivot` up to the pivot: every mount made, the root not
/// yet read-only (OCI hooks run between the two halves). Returns the
/// rootfs, open.
pub fn assemble(plan: &RootfsPlan, etc: Option<&EtcFiles>) -> Result<OwnedFd, StepError> {
    make_private()?;
    if plan.lowers.is_empty() {
        bind_root(&plan.merged)?;
    } else {
        mount_overlay(plan)?;
    }
    let root = step(
        "open rootfs",
        &plan.merged,
        sys::openat2(
            // SAFETY: AT_FDCWD is a valid "descriptor" for openat2's dirfd.
            unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) },
            &plan.merged,
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        ),
    )?;
    // After the rootfs is open: a tmpfs on a directory above `merged`
    // could not hide it from us.
    if let Some(e) = etc {
        write_etc_files(e)?;
    }
    for s in &plan.steps {
        apply_step(root.as_fd(), s)?;
    }
    Ok(root)
}

/// The second half of `assemble_and_pivot`: the root made read-only if
/// asked, then the pivot.
pub fn seal_and_pivot(plan: &RootfsPlan, root: OwnedFd) -> Result<(), StepError> {
    if plan.readonly {
        step(
            "make rootfs read-only",
            &plan.merged,
            sys::mount_setattr(root.as_fd(), MOUNT_ATTR_RDONLY, false),
        )?;
    }
    pivot(root.as_fd(), &plan.merged)
}

/// `path` bound (recursively) onto itself.
fn bind_root(path: &CStr) -> Result<(), StepError> {
    let tree = step("open rootfs", path, sys::open_tree_clone(path))?;
    step(
        "bind rootfs onto itself at",
        path,
        sys::move_mount_path(tree.as_fd(), path),
    )
}

/// pivot_root(".", "."): the old root ends up stacked on the new one, and
/// a lazy unmount of "." removes it; no directory for it is needed.
fn pivot(root: BorrowedFd<'_>, path: &CStr) -> Result<(), StepError> {
    step(
        "chdir",
        path,
        nix::unistd::fchdir(root.as_raw_fd()).map_err(io::Error::from),
    )?;
    step(
        "pivot_root",
        path,
        nix::unistd::pivot_root(".", ".").map_err(io::Error::from),
    )?;
    step(
        "detach old root",
        path,
        nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH).map_err(io::Error::from),
    )?;
    step(
        "chdir",
        c"/",
        nix::unistd::chdir("/").map_err(io::Error::from),
    )
}

/// The standard container filesystems, as Docker lays them out: /sys and
/// the container's cgroup read-only, unless `privileged` (Docker's
/// `--privileged` mounts both read-write).
pub fn standard_steps(cgroup: &[crate::cgroup::InnerMount], privileged: bool) -> Vec<Step> {
    let ro = if privileged { 0 } else { MOUNT_ATTR_RDONLY };
    fn c(s: &str) -> CString {
        CString::new(s).expect("no NUL")
    }
    fn fs(fstype: &str, opts: &[(&str, Option<&str>)], attrs: u64) -> FsMount {
        FsMount {
            fstype: c(fstype),
            options: opts.iter().map(|(k, v)| (c(k), v.map(c))).collect(),
            attrs,
        }
    }
    const SAFE: u64 = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    let mut steps = vec![
        Step::Fs {
            fs: fs("proc", &[], SAFE),
            target: c("proc"),
        },
        Step::Fs {
            fs: fs(
                "tmpfs",
                &[("mode", Some("755")), ("size", Some("65536k"))],
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
            ),
            target: c("dev"),
        },
        Step::Fs {
            fs: fs(
                "devpts",
                &[
                    ("newinstance", None),
                    ("ptmxmode", Some("0666")),
                    ("mode", Some("0620")),
                    ("gid", Some("5")),
                ],
                MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
            ),
            target: c("dev/pts"),
        },
        Step::Fs {
            fs: fs(
                "tmpfs",
                &[("mode", Some("1777")), ("size", Some("65536k"))],
                SAFE,
            ),
            target: c("dev/shm"),
        },
        Step::Fs {
            fs: fs("mqueue", &[], SAFE),
            target: c("dev/mqueue"),
        },
    ];
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        steps.push(Step::Device {
            target: c(&format!("dev/{name}")),
            major,
            minor,
        });
    }
    for (link, to) in [
        ("dev/ptmx", "pts/ptmx"),
        ("dev/fd", "/proc/self/fd"),
        ("dev/stdin", "/proc/self/fd/0"),
        ("dev/stdout", "/proc/self/fd/1"),
        ("dev/stderr", "/proc/self/fd/2"),
    ] {
        steps.push(Step::Symlink {
            target: c(link),
            link_to: c(to),
        });
    }
    steps.push(Step::Fs {
        fs: fs("sysfs", &[], SAFE | ro),
        target: c("sys"),
    });
    match cgroup {
        [m] if m.fstype == "cgroup2" => steps.push(Step::Fs {
            fs: fs("cgroup2", &[], SAFE | ro),
            target: c("sys/fs/cgroup"),
        }),
        [] => {}
        v1 => {
            steps.push(Step::Fs {
                fs: fs("tmpfs", &[("mode", Some("755"))], SAFE),
                target: c("sys/fs/cgroup"),
            });
            for m in v1 {
                let opts: Vec<(&str, Option<&str>)> =
                    m.options.split(',').map(|o| (o, None)).collect();
                steps.push(Step::Fs {
                    fs: fs(m.fstype, &opts, SAFE | ro),
                    target: c(&format!("sys/fs/cgroup/{}", m.target)),
                });
                for a in &m.aliases {
                    steps.push(Step::Symlink {
                        target: c(&format!("sys/fs/cgroup/{a}")),
                        link_to: c(&m.target),
                    });
                }
            }
            if !privileged {
                steps.push(Step::ReadOnly {
                    target: c("sys/fs/cgroup"),
                });
            }
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    fn root_fd(dir: &Path) -> OwnedFd {
        std::fs::File::open(dir).expect("open root").into()
    }

    fn ensure(root: &Path, rel: &str, dir: bool) -> io::Result<OwnedFd> {
        let fd = root_fd(root);
        ensure_beneath(fd.as_fd(), &CString::new(rel).unwrap(), dir)
    }

    #[test]
    fn missing_parents_are_created_and_existing_paths_reused() {
        let t = tempfile::tempdir().unwrap();
        ensure(t.path(), "a/b/c", true).unwrap();
        assert!(t.path().join("a/b/c").is_dir());
        ensure(t.path(), "a/b/hosts", false).unwrap();
        let m = std::fs::metadata(t.path().join("a/b/hosts")).unwrap();
        assert!(m.is_file() && m.len() == 0);
        std::fs::write(t.path().join("a/b/hosts"), "kept").unwrap();
        ensure(t.path(), "a/b/hosts", false).unwrap();
        assert_eq!(std::fs::read(t.path().join("a/b/hosts")).unwrap(), b"kept");
        let fd = root_fd(t.path());
        ensure_dir_beneath(fd.as_fd(), c"a/b/d").unwrap();
        assert!(t.path().join("a/b/d").is_dir());
    }

    #[test]
    fn dangling_symlinks_are_followed_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = t.path();
        // Absolute: resolved against the container's root, not the host's.
        symlink(outside.path().join("data"), root.join("data")).unwrap();
        ensure(root, "data/x", true).unwrap();
        let inside = root.join(outside.path().strip_prefix("/").unwrap());
        assert!(
            inside.join("data/x").is_dir(),
            "not created beneath the root"
        );
        assert!(!outside.path().join("data").exists(), "created on the host");
        // Relative with more `..` than there are parents: clamped at the root.
        std::fs::create_dir(root.join("a")).unwrap();
        symlink("../../../../b", root.join("a/l")).unwrap();
        ensure(root, "a/l/c", false).unwrap();
        assert!(root.join("b/c").is_file());
        // A loop ends in ELOOP instead of recursing forever.
        symlink("/loop2", root.join("loop1")).unwrap();
        symlink("/loop1", root.join("loop2")).unwrap();
        let e = ensure(root, "loop1/x", true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
    }

    fn target_of(s: &Step) -> &str {
        match s {
            Step::Fs { target, .. }
            | Step::Bind { target, .. }
            | Step::Device { target, .. }
            | Step::Symlink { target, .. }
            | Step::ReadOnly { target } => target.to_str().unwrap(),
        }
    }

    fn fs_attrs(steps: &[Step], at: &str) -> u64 {
        steps
            .iter()
            .find_map(|s| match s {
                Step::Fs { fs, target } if target.to_str().unwrap() == at => Some(fs.attrs),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no filesystem planned at {at}"))
    }

    fn v2() -> Vec<crate::cgroup::InnerMount> {
        vec![crate::cgroup::InnerMount {
            fstype: "cgroup2",
            options: String::new(),
            target: String::new(),
            aliases: Vec::new(),
        }]
    }

    #[test]
    fn the_standard_plan_is_dockers_layout_with_sys_read_only() {
        let steps = standard_steps(&v2(), false);
        for at in ["proc", "dev/shm", "dev/mqueue", "sys", "sys/fs/cgroup"] {
            let a = fs_attrs(&steps, at);
            assert_eq!(a & MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSUID, "{at} not nosuid");
            assert_eq!(a & MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOEXEC, "{at} not noexec");
        }
        assert_ne!(fs_attrs(&steps, "sys") & MOUNT_ATTR_RDONLY, 0);
        assert_ne!(fs_attrs(&steps, "sys/fs/cgroup") & MOUNT_ATTR_RDONLY, 0);
        // Only the harmless nodes are made; the rest of /dev is links.
        let nodes: Vec<&str> = steps
            .iter()
            .filter(|s| matches!(s, Step::Device { .. }))
            .map(target_of)
            .collect();
        assert_eq!(
            nodes,
            [
                "dev/null",
                "dev/zero",
                "dev/full",
                "dev/random",
                "dev/urandom",
                "dev/tty"
            ]
        );
        // Parents are planned before what is mounted below them.
        let pos = |at: &str| steps.iter().position(|s| target_of(s) == at).unwrap();
        assert!(pos("dev") < pos("dev/pts") && pos("sys") < pos("sys/fs/cgroup"));
    }

    #[test]
    fn privileged_plans_sys_and_the_cgroup_read_write() {
        let steps = standard_steps(&v2(), true);
        assert_eq!(fs_attrs(&steps, "sys") & MOUNT_ATTR_RDONLY, 0);
        assert_eq!(fs_attrs(&steps, "sys/fs/cgroup") & MOUNT_ATTR_RDONLY, 0);
    }

    #[test]
    fn v1_hierarchies_get_a_tmpfs_their_mounts_aliases_and_a_read_only_remount() {
        let v1 = vec![
            crate::cgroup::InnerMount {
                fstype: "cgroup",
                options: "memory".into(),
                target: "memory".into(),
                aliases: Vec::new(),
            },
            crate::cgroup::InnerMount {
                fstype: "cgroup",
                options: "cpu,cpuacct".into(),
                target: "cpu,cpuacct".into(),
                aliases: vec!["cpu".into(), "cpuacct".into()],
            },
        ];
        let steps = standard_steps(&v1, false);
        let below: Vec<&str> = steps
            .iter()
            .map(target_of)
            .filter(|t| t.starts_with("sys/fs/cgroup"))
            .collect();
        assert_eq!(
            below,
            [
                "sys/fs/cgroup",
                "sys/fs/cgroup/memory",
                "sys/fs/cgroup/cpu,cpuacct",
                "sys/fs/cgroup/cpu",
                "sys/fs/cgroup/cpuacct",
                "sys/fs/cgroup",
            ]
        );
        assert!(matches!(steps.last(), Some(Step::ReadOnly { .. })));
        let cpu = steps
            .iter()
            .find_map(|s| match s {
                Step::Fs { fs, target }
                    if target.to_str().unwrap() == "sys/fs/cgroup/cpu,cpuacct" =>
                {
                    Some(fs)
                }
                _ => None,
            })
            .unwrap();
        let opts: Vec<&str> = cpu
            .options
            .iter()
            .map(|(k, _)| k.to_str().unwrap())
            .collect();
        assert_eq!(opts, ["cpu", "cpuacct"]);
        // Privileged: no read-only remount.
        let steps = standard_steps(&v1, true);
        assert!(!steps.iter().any(|s| matches!(s, Step::ReadOnly { .. })));
    }
}

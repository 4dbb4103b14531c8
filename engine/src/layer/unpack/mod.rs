//! The unpacker: a tar stream (plain, gzip or zstd) into a directory,
//! every path resolved beneath it without following symlinks.
//!
//! One thread decompresses and parses, creating directories, links and
//! special files in stream order and regular files empty; file bodies and
//! their metadata are written by the pool in `bodies`, or by the parser
//! itself while every core already runs an unpack. Directory metadata is
//! applied last, when nothing will touch their mtimes any more.
//!
//! Refusals (invariant 2): `..` components; writes through a symlink or a
//! non-directory (openat2 RESOLVE_NO_SYMLINKS, then O_NOFOLLOW walks); an
//! entry for the root that is not a directory (umoci CVE-2021-29136); hard
//! links to anything that is not an earlier non-directory entry of this
//! stream; whiteouts clashing with entries of the same layer.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::Arc;

use super::bodies::{Batch, Bodies};
use super::compression::Compression;
use super::creation::Creation;
use super::entry::{Meta, MetaError};
use super::error::LayerError;
use super::guard::{ExtensionGuard, HeaderRefused};
use super::limits::{UnpackLimits, ENV_MAX_BYTES, ENV_MAX_ENTRIES};
use super::options::{UnpackOptions, Unpacked};
use super::resolve::{cstr, remove_at, EntryPath, LayerRoot, PathRefusal, ResolveError};
use super::stream::StreamEnd;
use super::sys;

mod body;
mod whiteout;

use whiteout::WHITEOUT_PREFIX;

pub(in crate::layer) fn unpack_tar<R: StreamEnd>(
    stream: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<Unpacked, LayerError> {
    let root_fd = sys::openat(
        cwd_fd(),
        &cstr(dest.as_os_str().as_encoded_bytes()),
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
    .map_err(LayerError::io("open", dest))?;
    let creation = Creation::probe(dest)?;
    unpack_tar_at(stream, root_fd, creation, opts)
}

/// [`unpack_tar`] into a directory already open (`rrun cp`'s destination,
/// resolved beneath a container's root): nothing is assumed about what a
/// new file gets unasked, so every owner and mode is set.
pub(in crate::layer) fn unpack_tar_at<R: StreamEnd>(
    stream: R,
    root_fd: std::os::fd::OwnedFd,
    creation: Creation,
    opts: &UnpackOptions,
) -> Result<Unpacked, LayerError> {
    let label: Arc<str> = opts.label.as_str().into();
    let corrupt = |source| LayerError::Corrupt {
        layer: opts.label.clone(),
        source,
    };
    let limits = match opts.limits {
        Some(l) => l,
        None => UnpackLimits::from_env()?,
    };
    let mut archive = tar::Archive::new(ExtensionGuard::new(stream));
    let bodies = Bodies::new();
    let mut u = Unpacker {
        root: LayerRoot::new(root_fd),
        layer: label,
        whiteouts_on: opts.whiteouts,
        creation,
        owner: opts.owner,
        batch: bodies.batch(),
        bodies,
        dirs: HashMap::new(),
        seen: HashSet::new(),
        whiteouts: HashSet::new(),
        entries: 0,
        end_of_last: Some(0),
        limits,
        expanded: 0,
    };
    let parsed = (|| -> Result<(), LayerError> {
        for entry in archive.entries().map_err(corrupt)? {
            let mut entry = entry.map_err(corrupt)?;
            u.apply(&mut entry)?;
        }
        u.flush_batch()
    })();
    // Bodies in flight hold fds into `dest`: let them land (or fail) before
    // returning either way.
    let written = u.bodies.wait_idle();
    parsed.map_err(|e| match e {
        // The guard's refusals reach here as stream errors of the crate.
        LayerError::Corrupt { layer, source } if HeaderRefused::is(&source) => {
            LayerError::HeaderRefused { layer, source }
        }
        e => e,
    })?;
    written?;
    let mut rest = archive.into_inner();
    // What follows the end-of-archive blocks is hashed, not parsed: read
    // it only up to the limit.
    let allowed = limits.max_bytes.saturating_sub(rest.position());
    io::copy(
        &mut (&mut rest).take(allowed.saturating_add(1)),
        &mut io::sink(),
    )
    .map_err(corrupt)?;
    if rest.position() > limits.max_bytes {
        return Err(u.too_big("(after the end-of-archive blocks)", Limit::Stream));
    }
    let (diff_id, tar_size) = rest.into_inner().end();
    if let Some(expected) = &opts.expected_diff_id {
        if *expected != diff_id {
            return Err(LayerError::DiffIdMismatch {
                layer: opts.label.clone(),
                expected: expected.clone(),
                actual: diff_id,
            });
        }
    }
    if let Some(end) = u.end_of_last {
        if tar_size < end + 512 {
            return Err(corrupt(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the tar stream ends without its end-of-archive blocks (truncated)",
            )));
        }
    }
    u.finish_dirs()?;
    Ok(Unpacked {
        diff_id,
        compression: Compression::None,
        entries: u.entries,
        tar_size,
    })
}

fn cwd_fd() -> BorrowedFd<'static> {
    // SAFETY: AT_FDCWD is a constant the kernel accepts wherever a
    // directory fd is expected; it is never closed.
    unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

enum Kind {
    Dir,
    Regular,
    Symlink(Vec<u8>),
    HardLink(Vec<u8>),
    Device(u32, u32, u32),
    Fifo,
}

fn io_err(layer: &str, entry: &str, op: &'static str) -> impl FnOnce(io::Error) -> LayerError {
    let layer = layer.to_string();
    let entry = entry.to_string();
    move |source| LayerError::EntryIo {
        layer,
        entry,
        op,
        source,
    }
}

fn resolve_err(layer: &str, entry: &str, e: ResolveError) -> LayerError {
    match e {
        ResolveError::NotBeneath(e) => LayerError::ThroughSymlink {
            layer: layer.to_string(),
            entry: entry.to_string(),
            detail: e.to_string(),
        },
        ResolveError::Io(e) => io_err(layer, entry, "open parent directory")(e),
    }
}

struct Unpacker {
    root: LayerRoot,
    layer: Arc<str>,
    whiteouts_on: bool,
    creation: Creation,
    /// Every entry's owner instead of the tar's (`UnpackOptions::owner`).
    owner: Option<(u32, u32)>,
    bodies: Arc<Bodies>,
    /// Directory metadata, applied at the end (the last entry for a path wins).
    dirs: HashMap<Vec<u8>, Meta>,
    /// Non-directory entries created so far: the only valid hard-link targets.
    seen: HashSet<Vec<u8>>,
    /// Whiteouts created by this layer.
    whiteouts: HashSet<Vec<u8>>,
    entries: u64,
    /// Where the last entry's data ends (None after a sparse entry, whose
    /// archived size we do not track).
    end_of_last: Option<u64>,
    /// Small files read but not yet handed to a writer.
    batch: Batch,
    limits: UnpackLimits,
    /// The sizes of the regular files so far (sparse ones at full size).
    expanded: u64,
}

/// Which of [`UnpackLimits`] a layer went past.
#[derive(Debug, Clone, Copy)]
enum Limit {
    Stream,
    Files,
    Entries,
}

impl Unpacker {
    fn refused(&self, entry: &str, reason: impl Into<String>) -> LayerError {
        LayerError::Refused {
            layer: self.layer.to_string(),
            entry: entry.to_string(),
            reason: reason.into(),
        }
    }

    fn io_err(&self, entry: &str, op: &'static str) -> impl FnOnce(io::Error) -> LayerError {
        io_err(&self.layer, entry, op)
    }

    fn too_big(&self, entry: &str, which: Limit) -> LayerError {
        let bytes = |n: u64| format!("{} ({n} bytes)", super::limits::show_bytes(n));
        let (what, limit, env) = match which {
            Limit::Stream => (
                "the uncompressed stream",
                bytes(self.limits.max_bytes),
                ENV_MAX_BYTES,
            ),
            Limit::Files => (
                "the total size of the files",
                bytes(self.limits.max_bytes),
                ENV_MAX_BYTES,
            ),
            Limit::Entries => (
                "the number of entries",
                format!("{} entries", self.limits.max_entries),
                ENV_MAX_ENTRIES,
            ),
        };
        LayerError::LimitExceeded {
            layer: self.layer.to_string(),
            entry: entry.to_string(),
            what,
            limit,
            env,
        }
    }

    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let ty = entry.header().entry_type();
        self.end_of_last = if ty.is_gnu_sparse() {
            None
        } else {
            // Before the crate reads or skips the body: a header may claim
            // any size. (A GNU sparse entry's data is at most its full
            // size, which the file limit bounds below.)
            let end = entry.raw_file_position().saturating_add(entry.size());
            if end > self.limits.max_bytes {
                return Err(self.too_big(&shown, Limit::Stream));
            }
            Some(entry.raw_file_position() + entry.size().div_ceil(512) * 512)
        };
        if ty.is_pax_global_extensions() {
            return Ok(());
        }
        let mut meta = Meta::of(entry).map_err(|e| match e {
            MetaError::Io(e) => LayerError::Corrupt {
                layer: self.layer.to_string(),
                source: e,
            },
            MetaError::Invalid(why) => self.refused(&shown, why),
        })?;
        if let Some((uid, gid)) = self.owner {
            meta.uid = uid;
            meta.gid = gid;
        }
        // PAX sparse 1.0: the real name is in the records.
        let (raw, shown, sparse_size) = match &meta.sparse {
            Some(sp) => match sp.v1() {
                Ok((name, size)) => {
                    let name = name.to_vec();
                    let shown = String::from_utf8_lossy(&name).into_owned();
                    (name, shown, Some(size))
                }
                Err(why) => return Err(self.refused(&shown, why)),
            },
            None => (raw, shown, None),
        };
        let path = EntryPath::parse(&raw).map_err(|r| match r {
            PathRefusal::DotDot => LayerError::Escapes {
                layer: self.layer.to_string(),
                entry: shown.clone(),
            },
            PathRefusal::Nul => self.refused(&shown, "path contains a NUL byte"),
        })?;
        let kind = match ty {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                Kind::Regular
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| self.refused(&shown, "link without a target"))?
                    .into_owned();
                if target.contains(&0) {
                    return Err(self.refused(&shown, "link target contains a NUL byte"));
                }
                if ty == tar::EntryType::Symlink {
                    Kind::Symlink(target)
                } else {
                    Kind::HardLink(target)
                }
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let t = if ty == tar::EntryType::Char {
                    libc::S_IFCHR
                } else {
                    libc::S_IFBLK
                };
                Kind::Device(t, major, minor)
            }
            tar::EntryType::Fifo => Kind::Fifo,
            other => {
                return Err(self.refused(
                    &shown,
                    format!("unsupported entry type {:?}", other.as_byte() as char),
                ))
            }
        };
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(self.too_big(&shown, Limit::Entries));
        }
        if let Kind::Regular = kind {
            // A GNU sparse entry's size is its full size; a PAX sparse
            // one's is in its records.
            let size = sparse_size.unwrap_or(entry.size());
            self.expanded = self.expanded.saturating_add(size);
            if self.expanded > self.limits.max_bytes {
                return Err(self.too_big(&shown, Limit::Files));
            }
        }

        if path.is_root() {
            return match kind {
                Kind::Dir => {
                    self.dirs.insert(Vec::new(), meta);
                    Ok(())
                }
                _ => Err(self.refused(
                    &shown,
                    "the layer root must be a directory (a non-directory `.` would redirect everything after it; umoci CVE-2021-29136)",
                )),
            };
        }

        if self.whiteouts_on && path.name().starts_with(WHITEOUT_PREFIX) {
            return self.whiteout(&path, &shown, &meta);
        }
        if self.whiteouts.contains(path.as_bytes()) {
            // Docker applies a whiteout to lower layers only; an entry of the
            // same layer at the same path makes the layer ambiguous.
            return Err(self.refused(&shown, "this layer also has a whiteout for the same path"));
        }

        match kind {
            Kind::Dir => self.dir(&path, &shown, meta),
            Kind::Regular => match sparse_size {
                Some(size) => self.pax_sparse(entry, &path, &shown, meta, size),
                None => self.regular(entry, &path, &shown, meta),
            },
            Kind::Symlink(target) => self.special(&path, &shown, &meta, |dir, name| {
                sys::symlinkat(&cstr(&target), dir, name)
            }),
            Kind::HardLink(target) => self.hard_link(&path, &shown, &target),
            Kind::Device(t, major, minor) => self.special(&path, &shown, &meta, |dir, name| {
                sys::mknodat(
                    dir,
                    name,
                    t | (meta.mode & 0o777),
                    sys::makedev(major, minor),
                )
            }),
            Kind::Fifo => self.special(&path, &shown, &meta, |dir, name| {
                sys::mknodat(dir, name, libc::S_IFIFO | (meta.mode & 0o777), 0)
            }),
        }
    }

    /// Make room for a new non-directory at `name`: remove whatever a
    /// previous entry of the stream left there (tar's "last entry wins").
    fn clear(&mut self, path: &EntryPath, shown: &str) -> Result<(), LayerError> {
        let layer = Arc::clone(&self.layer);
        let name = cstr(path.name());
        let r = match self.root.parent_dir(path.parent()) {
            Ok(dir) => remove_at(dir, &name),
            Err(e) => return Err(resolve_err(&layer, shown, e)),
        };
        self.root.invalidate();
        self.dirs.retain(|p, _| !is_at_or_below(p, path.as_bytes()));
        r.map_err(self.io_err(shown, "remove the previous entry at this path"))
    }

    /// Create a non-directory with `make`, replacing a previous entry once.
    fn create_with(
        &mut self,
        path: &EntryPath,
        shown: &str,
        make: &mut dyn FnMut(BorrowedFd<'_>, &std::ffi::CStr) -> io::Result<()>,
    ) -> Result<(), LayerError> {
        let layer = Arc::clone(&self.layer);
        let name = cstr(path.name());
        for attempt in 0..2 {
            let dir = match self.root.parent_dir(path.parent()) {
                Ok(d) => d,
                Err(e) => return Err(resolve_err(&layer, shown, e)),
            };
            match make(dir, &name) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) && attempt == 0 => {
                    self.clear(path, shown)?;
                }
                Err(e) => return Err(self.io_err(shown, "create")(e)),
            }
        }
        unreachable!("the second attempt returns")
    }

    fn dir(&mut self, path: &EntryPath, shown: &str, meta: Meta) -> Result<(), LayerError> {
        let layer = Arc::clone(&self.layer);
        let name = cstr(path.name());
        let dir = match self.root.parent_dir(path.parent()) {
            Ok(d) => d,
            Err(e) => return Err(resolve_err(&layer, shown, e)),
        };
        match sys::mkdirat(dir, &name, 0o700) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                let st = sys::lstatat(dir, &name).map_err(self.io_err(shown, "stat"))?;
                if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
                    self.clear(path, shown)?;
                    let dir = self
                        .root
                        .parent_dir(path.parent())
                        .map_err(|e| resolve_err(&layer, shown, e))?;
                    sys::mkdirat(dir, &name, 0o700).map_err(self.io_err(shown, "mkdir"))?;
                }
            }
            Err(e) => return Err(self.io_err(shown, "mkdir")(e)),
        }
        self.seen.remove(path.as_bytes());
        self.dirs.insert(path.as_bytes().to_vec(), meta);
        Ok(())
    }

    /// Create a new regular file for `path` (never through or over a
    /// symlink) and remember the entry, for the regular and sparse cases.
    fn create_file(
        &mut self,
        path: &EntryPath,
        shown: &str,
        meta: &Meta,
    ) -> Result<File, LayerError> {
        let mut fd = None;
        self.create_with(path, shown, &mut |dir, name| {
            fd = Some(sys::openat(
                dir,
                name,
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                meta.mode & 0o777,
            )?);
            Ok(())
        })?;
        self.seen.insert(path.as_bytes().to_vec());
        Ok(File::from(fd.expect("created")))
    }

    /// Symlinks, devices, FIFOs: created here, owned/moded/timed here.
    fn special(
        &mut self,
        path: &EntryPath,
        shown: &str,
        meta: &Meta,
        mut make: impl FnMut(BorrowedFd<'_>, &std::ffi::CStr) -> io::Result<()>,
    ) -> Result<(), LayerError> {
        let layer = Arc::clone(&self.layer);
        self.create_with(path, shown, &mut make)?;
        self.seen.insert(path.as_bytes().to_vec());
        let name = cstr(path.name());
        let dir = self
            .root
            .parent_dir(path.parent())
            .map_err(|e| resolve_err(&layer, shown, e))?;
        let err = |op| io_err(&layer, shown, op);
        let st = sys::lstatat(dir, &name).map_err(err("stat"))?;
        let is_link = st.st_mode & libc::S_IFMT == libc::S_IFLNK;
        if self.creation.needs(meta).0 {
            sys::lchownat(dir, &name, meta.uid, meta.gid).map_err(err("chown"))?;
        }
        if !is_link {
            sys::chmodat(dir, &name, meta.mode & 0o7777).map_err(err("chmod"))?;
        }
        for (k, v) in &meta.xattrs {
            sys::lsetxattrat(dir, &name, k, v).map_err(err("set xattr"))?;
        }
        sys::lutimesat(dir, &name, meta.mtime, meta.mtime_nsec).map_err(err("set times"))
    }

    fn hard_link(
        &mut self,
        path: &EntryPath,
        shown: &str,
        target: &[u8],
    ) -> Result<(), LayerError> {
        let layer = Arc::clone(&self.layer);
        let target = EntryPath::parse(target).map_err(|_| LayerError::Escapes {
            layer: self.layer.to_string(),
            entry: format!("{shown} -> {}", String::from_utf8_lossy(target)),
        })?;
        if !self.seen.contains(target.as_bytes()) {
            return Err(self.refused(
                shown,
                format!(
                    "hard link to {:?}, which is not an earlier file of this layer",
                    String::from_utf8_lossy(target.as_bytes())
                ),
            ));
        }
        if target == *path {
            return Ok(());
        }
        let target_dir = self
            .root
            .open_dir(target.parent())
            .map_err(|e| resolve_err(&layer, shown, e))?;
        let target_name = cstr(target.name());
        self.create_with(path, shown, &mut |dir, name| {
            sys::linkat(target_dir.as_fd(), &target_name, dir, name)
        })?;
        self.seen.insert(path.as_bytes().to_vec());
        Ok(())
    }

    /// Owner, mode, xattrs and times of every directory, last: no entry is
    /// created any more, so no mtime can change after this.
    fn finish_dirs(&mut self) -> Result<(), LayerError> {
        // Serial: a few syscalls per directory, and directories are few.
        for (path, meta) in std::mem::take(&mut self.dirs) {
            let shown = String::from_utf8_lossy(&path).into_owned();
            let err = |op| io_err(&self.layer, &shown, op);
            let fd = self.root.open_dir(&path).map_err(|e| match e {
                ResolveError::NotBeneath(e) | ResolveError::Io(e) => err("open directory")(e),
            })?;
            let fd = fd.as_fd();
            if self.creation.needs(&meta).0 {
                sys::fchown(fd, meta.uid, meta.gid).map_err(err("chown"))?;
            }
            sys::fchmod(fd, meta.mode & 0o7777).map_err(err("chmod"))?;
            for (k, v) in &meta.xattrs {
                sys::fsetxattr(fd, k, v).map_err(err("set xattr"))?;
            }
            sys::futimens(fd, meta.mtime, meta.mtime_nsec).map_err(err("set times"))?;
        }
        Ok(())
    }
}

fn is_at_or_below(p: &[u8], base: &[u8]) -> bool {
    p == base || (p.len() > base.len() && p.starts_with(base) && p[base.len()] == b'/')
}

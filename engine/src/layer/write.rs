//! A directory tree (an overlay upperdir) to a layer blob.
//!
//! The tree is walked depth first with each directory's entries sorted by
//! their bytes, so the same tree gives the same tar, the same diff id and
//! (zstd's multi-threaded output does not depend on the thread count) the
//! same blob. Overlay whiteouts (char 0:0) become `.wh.NAME`, opaque
//! directories get a `.wh..wh..opq` entry right after their own.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use super::error::LayerError;
use super::tarfmt::{self, TarEntry};

/// Xattrs left out of layers: the overlay's own (the opaque one becomes a
/// `.wh..wh..opq` entry; rootless, `user.overlay.*`, see
/// `crate::rootless`) and SELinux labels, which are host policy, not
/// image content.
fn skipped_xattr(name: &[u8]) -> bool {
    crate::rootless::is_overlay_xattr(name) || name == b"security.selinux"
}

/// What the walk found that an unpack of the blob would not reproduce
/// byte for byte; if none, the tree itself can serve as the unpacked layer.
#[derive(Debug, Default)]
pub struct Walked {
    pub entries: u64,
    /// Sockets (not representable in tar), clamped mtimes, dropped xattrs.
    pub tree_differs: bool,
}

pub struct TreeWriter<W: Write> {
    out: W,
    source_date_epoch: Option<i64>,
    links: HashMap<(u64, u64), Vec<u8>>,
    walked: Walked,
    /// The tree being written (for error messages).
    tree: std::path::PathBuf,
    buf: Vec<u8>,
}

impl<W: Write> TreeWriter<W> {
    pub fn new(out: W, source_date_epoch: Option<i64>) -> Self {
        TreeWriter {
            out,
            source_date_epoch,
            links: HashMap::new(),
            walked: Walked::default(),
            tree: Default::default(),
            buf: Vec::new(),
        }
    }

    /// Write every entry below `tree` and the end-of-archive marker.
    pub fn write_tree(mut self, tree: &Path) -> Result<(W, Walked), LayerError> {
        self.tree = tree.to_path_buf();
        self.walk(tree, b"")?;
        tarfmt::finish(&mut self.out).map_err(LayerError::io("write layer of", tree))?;
        Ok((self.out, self.walked))
    }

    fn mtime(&mut self, m: i64) -> i64 {
        match self.source_date_epoch {
            Some(epoch) if m > epoch => {
                self.walked.tree_differs = true;
                epoch
            }
            _ => m,
        }
    }

    fn walk(&mut self, dir: &Path, rel: &[u8]) -> Result<(), LayerError> {
        let mut names: Vec<std::ffi::OsString> = fs::read_dir(dir)
            .map_err(LayerError::io("read directory", dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(LayerError::io("read directory", dir))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let path = dir.join(&name);
            let mut relp = rel.to_vec();
            relp.extend_from_slice(name.as_bytes());
            self.entry(&path, relp)?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &Path, mut relp: Vec<u8>) -> Result<(), LayerError> {
        let md = fs::symlink_metadata(path).map_err(LayerError::io("stat", path))?;
        let ft = md.file_type();
        if ft.is_socket() {
            // Sockets cannot be carried in tar; Docker drops them too.
            self.walked.tree_differs = true;
            return Ok(());
        }
        let mtime = self.mtime(md.mtime());
        let (mut xattrs, opaque) =
            read_xattrs(path).map_err(LayerError::io("read xattrs of", path))?;
        if xattrs.iter().any(|(k, _)| skipped_xattr(k)) {
            let only_opaque = xattrs
                .iter()
                .filter(|(k, _)| skipped_xattr(k))
                .all(|(k, v)| {
                    k.as_slice() == crate::rootless::opaque_xattr().as_bytes()
                        && v.as_slice() == b"y"
                });
            if !only_opaque {
                self.walked.tree_differs = true;
            }
            xattrs.retain(|(k, _)| !skipped_xattr(k));
        }
        let mode = md.mode() & 0o7777;
        let base = TarEntry {
            path: &[],
            kind: tar::EntryType::Regular,
            mode,
            uid: md.uid() as u64,
            gid: md.gid() as u64,
            mtime,
            size: 0,
            link: None,
            dev: None,
            xattrs: &xattrs,
        };
        let err = |op| LayerError::io(op, path);
        self.walked.entries += 1;

        if ft.is_dir() {
            if relp[name_start(&relp)..].starts_with(WHITEOUT_PREFIX) {
                return Err(reserved_name(&self.tree, &relp));
            }
            relp.push(b'/');
            let e = TarEntry {
                path: &relp,
                kind: tar::EntryType::Directory,
                ..base
            };
            tarfmt::write_header(&mut self.out, &e).map_err(err("write header for"))?;
            if opaque {
                let mut marker = relp.clone();
                marker.extend_from_slice(b".wh..wh..opq");
                let e = TarEntry {
                    path: &marker,
                    mode: 0o600,
                    xattrs: &[],
                    ..base
                };
                tarfmt::write_header(&mut self.out, &e).map_err(err("write header for"))?;
            }
            return self.walk(path, &relp);
        }

        if ft.is_char_device() && md.rdev() == 0 {
            // An overlay whiteout: `.wh.NAME` beside where NAME was.
            let cut = name_start(&relp);
            relp.splice(cut..cut, WHITEOUT_PREFIX.iter().copied());
            let e = TarEntry {
                path: &relp,
                ..base
            };
            return tarfmt::write_header(&mut self.out, &e).map_err(err("write header for"));
        }

        if relp[name_start(&relp)..].starts_with(WHITEOUT_PREFIX) {
            return Err(reserved_name(&self.tree, &relp));
        }

        if md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = self.links.get(&key) {
                let e = TarEntry {
                    path: &relp,
                    kind: tar::EntryType::Link,
                    link: Some(first),
                    xattrs: &[],
                    ..base
                };
                return tarfmt::write_header(&mut self.out, &e).map_err(err("write header for"));
            }
            self.links.insert(key, relp.clone());
        }

        if ft.is_file() {
            let size = md.len();
            let e = TarEntry {
                path: &relp,
                size,
                ..base
            };
            tarfmt::write_header(&mut self.out, &e).map_err(err("write header for"))?;
            let file = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(err("open"))?;
            self.copy_body(file, size, path)?;
            return tarfmt::pad(&mut self.out, size).map_err(err("write"));
        }
        if ft.is_symlink() {
            let target = fs::read_link(path).map_err(err("read link"))?;
            let e = TarEntry {
                path: &relp,
                kind: tar::EntryType::Symlink,
                link: Some(target.as_os_str().as_bytes()),
                ..base
            };
            return tarfmt::write_header(&mut self.out, &e).map_err(err("write header for"));
        }
        let (kind, dev) = if ft.is_fifo() {
            (tar::EntryType::Fifo, None)
        } else if ft.is_char_device() {
            (tar::EntryType::Char, Some(dev_parts(md.rdev())))
        } else {
            (tar::EntryType::Block, Some(dev_parts(md.rdev())))
        };
        let e = TarEntry {
            path: &relp,
            kind,
            dev,
            ..base
        };
        tarfmt::write_header(&mut self.out, &e).map_err(err("write header for"))
    }

    fn copy_body(&mut self, mut file: File, size: u64, path: &Path) -> Result<(), LayerError> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; 1 << 20];
        }
        let mut left = size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = match file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(LayerError::io("read", path)(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was being written to the layer",
                    )))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LayerError::io("read", path)(e)),
            };
            self.out
                .write_all(&self.buf[..n])
                .map_err(LayerError::io("write layer of", path))?;
            left -= n as u64;
        }
        Ok(())
    }
}

/// The prefix that makes a layer entry a whiteout (OCI image-spec,
/// layer.md): every consumer of the tar deletes NAME for `.wh.NAME`.
const WHITEOUT_PREFIX: &[u8] = b".wh.";

/// Where the last component of a tar path starts.
fn name_start(relp: &[u8]) -> usize {
    relp.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1)
}

/// A file or directory whose own name begins with `.wh.`: in a layer tar
/// it would read as a whiteout (`.wh.x` deletes `x`, `.wh..wh..opq` makes
/// its directory opaque) to us after a save and load, and to every other
/// tool. The image spec says a tree with such names cannot be expressed
/// as a layer, so the write is refused, naming the path.
fn reserved_name(tree: &Path, relp: &[u8]) -> LayerError {
    LayerError::Refused {
        layer: format!("written from {}", tree.display()),
        entry: String::from_utf8_lossy(relp).into_owned(),
        reason: "names beginning with \".wh.\" mark deletions (whiteouts) in the layer format, \
                 so a file or directory by that name cannot be stored in a layer; rename or \
                 remove it"
            .into(),
    }
}

fn dev_parts(rdev: u64) -> (u32, u32) {
    (libc::major(rdev), libc::minor(rdev))
}

/// (name, value) pairs, sorted by name.
pub type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

/// All xattrs of `path` (not following it), sorted by name; and whether the
/// overlay marks it opaque.
pub fn read_xattrs(path: &Path) -> io::Result<(Xattrs, bool)> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let names = xattr_call(|buf, len| {
        // SAFETY: `buf` points to `len` writable bytes (or is null with len 0).
        unsafe { libc::llistxattr(c.as_ptr(), buf.cast(), len) }
    })?;
    let mut out = Vec::new();
    let mut opaque = false;
    // The overlay that made the tree wrote its own name (see crate::rootless).
    let marker = crate::rootless::opaque_xattr().as_bytes();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).expect("split at NUL");
        let value = match xattr_call(|buf, len| {
            // SAFETY: as above; `cname` is NUL-terminated.
            unsafe { libc::lgetxattr(c.as_ptr(), cname.as_ptr(), buf.cast(), len) }
        }) {
            Ok(v) => v,
            // Removed between list and get: nothing to record.
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => continue,
            Err(e) => return Err(e),
        };
        if name == marker && value == b"y" {
            opaque = true;
        }
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok((out, opaque))
}

/// Call a size-probing xattr syscall until the buffer is big enough.
fn xattr_call(mut f: impl FnMut(*mut u8, usize) -> libc::ssize_t) -> io::Result<Vec<u8>> {
    loop {
        let n = f(std::ptr::null_mut(), 0);
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOTSUP) {
                return Ok(Vec::new());
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; n as usize];
        let m = f(buf.as_mut_ptr(), buf.len());
        if m >= 0 {
            buf.truncate(m as usize);
            return Ok(buf);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ERANGE) {
            return Err(e);
        }
    }
}

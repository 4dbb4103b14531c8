//! Helpers shared by the layer tests: a root check, tree snapshots that
//! compare everything a layer must carry, and hand-built tar headers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "layer tests need root (mknod, chown, trusted.* xattrs); run them as root"
    );
}

/// A scratch directory on a filesystem with trusted.* xattrs and device
/// nodes (the default temp dir; /tmp here is ext4 or tmpfs, both fine).
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("rbox-layer-test")
        .tempdir()
        .unwrap()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub kind: &'static str,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub rdev: (u32, u32),
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub content: Option<blake3::Hash>,
    pub link: Option<Vec<u8>>,
    /// The first path (in sorted order) sharing this inode: hard-link identity.
    pub inode_group: Option<Vec<u8>>,
}

pub fn xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut buf = vec![0u8; 65536];
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(
        n >= 0,
        "llistxattr {path:?}: {}",
        std::io::Error::last_os_error()
    );
    let mut out = Vec::new();
    for name in buf[..n as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
    {
        let cn = CString::new(name).unwrap();
        let mut v = vec![0u8; 65536];
        // SAFETY: v is writable for its length; both strings NUL-terminated.
        let m = unsafe { libc::lgetxattr(c.as_ptr(), cn.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        assert!(m >= 0, "lgetxattr {path:?} {name:?}");
        v.truncate(m as usize);
        out.push((name.to_vec(), v));
    }
    out.sort();
    out
}

pub fn set_xattr(path: &Path, name: &str, value: &[u8]) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    // SAFETY: strings NUL-terminated, value a live slice.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "lsetxattr {path:?} {name}: {}",
        std::io::Error::last_os_error()
    );
}

pub fn mknod(path: &Path, kind: libc::mode_t, perm: u32, major: u32, minor: u32) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: NUL-terminated path, integer args.
    let rc = unsafe { libc::mknod(c.as_ptr(), kind | perm, libc::makedev(major, minor)) };
    assert_eq!(rc, 0, "mknod {path:?}: {}", std::io::Error::last_os_error());
}

pub fn lchown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
}

pub fn set_mtime(path: &Path, secs: i64) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let t = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    // SAFETY: two timespecs, NUL-terminated path.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            [t, t].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    assert_eq!(rc, 0);
}

/// Everything under `root` (not the root itself), by relative path.
pub fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), Vec<u8>> = BTreeMap::new();
    walk(root, root, &mut out, &mut inodes);
    out
}

fn walk(
    root: &Path,
    dir: &Path,
    out: &mut BTreeMap<Vec<u8>, Node>,
    inodes: &mut BTreeMap<(u64, u64), Vec<u8>>,
) {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    for name in names {
        let p = dir.join(&name);
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let md = fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let kind = if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else if ft.is_symlink() {
            "symlink"
        } else if ft.is_char_device() {
            "char"
        } else if ft.is_block_device() {
            "block"
        } else if ft.is_fifo() {
            "fifo"
        } else {
            "socket"
        };
        let inode_group =
            if !ft.is_dir() && md.nlink() > 1 && !(ft.is_char_device() && md.rdev() == 0) {
                Some(
                    inodes
                        .entry((md.dev(), md.ino()))
                        .or_insert_with(|| rel.clone())
                        .clone(),
                )
            } else {
                None
            };
        let node = Node {
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime(),
            rdev: (libc::major(md.rdev()), libc::minor(md.rdev())),
            xattrs: xattrs(&p),
            content: ft.is_file().then(|| blake3::hash(&fs::read(&p).unwrap())),
            link: ft
                .is_symlink()
                .then(|| fs::read_link(&p).unwrap().as_os_str().as_bytes().to_vec()),
            inode_group,
        };
        out.insert(rel, node);
        if ft.is_dir() {
            walk(root, &p, out, inodes);
        }
    }
}

/// Assert two snapshots are equal, naming the first difference.
pub fn assert_same_tree(want: &BTreeMap<Vec<u8>, Node>, got: &BTreeMap<Vec<u8>, Node>) {
    for (path, w) in want {
        let shown = String::from_utf8_lossy(path);
        let g = got
            .get(path)
            .unwrap_or_else(|| panic!("{shown:?} is missing after unpack"));
        assert_eq!(w, g, "{shown:?} differs after unpack");
    }
    for path in got.keys() {
        assert!(
            want.contains_key(path),
            "unexpected {:?} after unpack",
            String::from_utf8_lossy(path)
        );
    }
}

// ------------------------------------------------------------ hostile tars

/// A tar header with raw bytes as name and link (the tar crate's setters
/// refuse `..`, which is exactly what these tests need to write).
pub fn raw_header(name: &[u8], kind: tar::EntryType, size: u64, link: &[u8]) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(size);
    h.set_entry_type(kind);
    h.set_cksum();
    h
}

/// (name, kind, body, link target)
pub type RawEntry<'a> = (&'a [u8], tar::EntryType, &'a [u8], &'a [u8]);

/// Build a tar stream from raw entries.
pub fn tar_of(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, body, link) in entries {
        out.extend_from_slice(raw_header(name, *kind, body.len() as u64, link).as_bytes());
        out.extend_from_slice(body);
        let pad = (512 - body.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

pub fn zstd_of(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// Names in a directory, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

pub fn path(p: &str) -> PathBuf {
    PathBuf::from(p)
}

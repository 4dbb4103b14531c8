//! `rrun cp`: files and trees between the host and a container, with
//! Docker's rules for what lands where, and a container treated as hostile.
//!
//! Both directions are one pipeline: the sending side walks the source by
//! fd ([`archive`]) into a tar stream, the receiving side extracts it with
//! the layer extractor (`engine::layer::unpack_stream_at`), which resolves
//! every entry beneath the destination directory without following
//! symlinks. In a container, the source and the destination directory are
//! themselves found beneath the container's root ([`root`]: openat2
//! `RESOLVE_IN_ROOT`). `-` on either side is that tar stream itself.

pub mod archive;
pub mod root;

use std::ffi::CString;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

pub use root::Root;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not find the file {0} (no such file or directory)")]
    NotFound(String),
    #[error("cannot copy the directory {src} to {dest}: it is a file (give a directory, or a path that does not exist yet)")]
    DirToFile { src: String, dest: String },
    #[error(
        "the destination directory {0} does not exist (create it first, or drop the trailing '/')"
    )]
    DestDirMissing(String),
    #[error("the destination {0} must be an existing directory to extract a tar stream into")]
    NotADirectory(String),
    #[error("invalid path {0:?}: {1}")]
    BadPath(String, &'static str),
    #[error("mount the filesystem of {what}: {reason}")]
    Mount { what: String, reason: String },
    #[error("{0} stopped while it was being opened; try again")]
    Stopped(String),
    #[error("copy to {dest}: {source}")]
    Extract {
        dest: String,
        #[source]
        source: Box<engine::layer::LayerError>,
    },
    #[error("copy from {src}: {source}")]
    Read {
        src: String,
        #[source]
        source: std::io::Error,
    },
}

/// Who owns what the copy creates: the tar's owners (`-a`), or one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    Keep,
    As(u32, u32),
}

/// A source found beneath its root.
pub struct Source {
    /// Its parent directory, and its name there; `None`: the source is the
    /// directory itself with no name of its own (`/`, `..`).
    parent: OwnedFd,
    name: Option<CString>,
    /// The name its top entry takes when nothing renames it (`None`: the
    /// root, or a path ending in `..`: only its contents are copied).
    own: Option<Vec<u8>>,
    /// A regular file reached by following a symlink (`-L`), open.
    followed_file: Option<OwnedFd>,
    is_dir: bool,
    /// `SRC/.`: the directory's contents, not the directory.
    contents: bool,
    shown: String,
}

impl Source {
    pub fn is_dir(&self) -> bool {
        self.is_dir
    }

    /// The name the top entry gets when nothing renames it.
    fn own_name(&self) -> Option<Vec<u8>> {
        self.own.clone()
    }
}

/// Lexical split of a cp path: its components (no empty or `.` ones),
/// whether it ends in `/.` (contents) and whether it ends in `/`.
struct Parsed<'a> {
    comps: Vec<&'a [u8]>,
    contents: bool,
    trailing_slash: bool,
}

fn parse(path: &[u8]) -> Parsed<'_> {
    let contents = path == b"." || path.ends_with(b"/.");
    let trailing_slash = path.ends_with(b"/") || contents;
    let comps = path
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    Parsed {
        comps,
        contents,
        trailing_slash,
    }
}

fn join(absolute: bool, comps: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    if absolute {
        v.push(b'/');
    }
    for (i, c) in comps.iter().enumerate() {
        if i > 0 {
            v.push(b'/');
        }
        v.extend_from_slice(c);
    }
    if v.is_empty() {
        v.push(b'.');
    }
    v
}

fn io_err(op: &'static str, shown: &str) -> impl FnOnce(std::io::Error) -> CopyError {
    let path = shown.to_string();
    move |source| CopyError::Io { op, path, source }
}

/// Find `path` beneath `root` as a copy source: every component but the
/// last is followed (inside the root), the last is not (a symlink is
/// copied as the link, as Docker does without `-L`).
pub fn find_source(root: &Root, path: &[u8]) -> Result<Source, CopyError> {
    find_source_as(root, path, false)
}

/// [`find_source`]; with `follow` (`-L`) a symlink named last is followed
/// (still inside the root) and what it points at is copied under the
/// link's name.
pub fn find_source_as(root: &Root, path: &[u8], follow: bool) -> Result<Source, CopyError> {
    let shown = root.show(path);
    if path.is_empty() {
        return Err(CopyError::BadPath(shown, "empty"));
    }
    let p = parse(path);
    let absolute = path.starts_with(b"/");
    let missing = |e: std::io::Error, shown: &str| match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => CopyError::NotFound(shown.to_string()),
        _ => CopyError::Io {
            op: "open",
            path: shown.to_string(),
            source: e,
        },
    };
    let own = match p.comps.last() {
        Some(last) if *last != b".." => Some(last.to_vec()),
        _ => None,
    };
    let (parent_path, name) = match p.comps.split_last() {
        Some((last, rest)) if *last != b".." && !p.trailing_slash => (
            join(absolute, rest),
            Some(CString::new(*last).expect("no NUL")),
        ),
        // `/`, `..`, `dir/`, `dir/.`: a directory, reached by following
        // the whole path (inside the root).
        _ => (path.to_vec(), None),
    };
    let parent = root
        .open_dir(&parent_path)
        .map_err(|e| missing(e, &shown))?;
    let kind = match &name {
        None => libc::S_IFDIR,
        Some(n) => {
            let st = root::lstatat(parent.as_fd(), n).map_err(|e| missing(e, &shown))?;
            st.st_mode & libc::S_IFMT
        }
    };
    let contents = p.contents || own.is_none();
    if follow && kind == libc::S_IFLNK {
        // Opened by the kernel beneath the root, following the link.
        let fd = root
            .open(path, libc::O_RDONLY | libc::O_NONBLOCK)
            .map_err(|e| missing(e, &shown))?;
        let st = root::fstat(fd.as_fd()).map_err(io_err("stat", &shown))?;
        return match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => Ok(Source {
                parent: root.open_dir(path).map_err(|e| missing(e, &shown))?,
                name: None,
                own,
                followed_file: None,
                is_dir: true,
                contents,
                shown,
            }),
            libc::S_IFREG => Ok(Source {
                parent,
                name,
                own,
                followed_file: Some(fd),
                is_dir: false,
                contents,
                shown,
            }),
            _ => Err(CopyError::BadPath(
                shown,
                "-L follows links to files and directories only",
            )),
        };
    }
    Ok(Source {
        parent,
        name,
        own,
        followed_file: None,
        is_dir: kind == libc::S_IFDIR,
        contents,
        shown,
    })
}

/// Write `src` as a tar stream with its top entry named `top` (`None`:
/// its contents at the top, with no entry of its own).
fn write_source<W: Write>(src: &Source, top: Option<&[u8]>, out: W) -> std::io::Result<W> {
    let mut t = archive::TarWriter::new(out);
    if let (Some(fd), Some(top)) = (&src.followed_file, top) {
        t.open_file(fd.try_clone()?, top)?;
        return t.finish();
    }
    match (&src.name, top) {
        (Some(name), Some(top)) => t.entry(src.parent.as_fd(), name, top)?,
        (Some(name), None) => {
            let dir =
                root::open_nofollow(src.parent.as_fd(), name, libc::O_RDONLY | libc::O_DIRECTORY)?;
            t.children(dir, b"")?
        }
        (None, Some(top)) => {
            // The directory is the fd we hold: its entry, then its children.
            let st = root::fstat(src.parent.as_fd())?;
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(st.st_mode & 0o7777);
            h.set_uid(st.st_uid as u64);
            h.set_gid(st.st_gid as u64);
            h.set_mtime(st.st_mtime.max(0) as u64);
            h.set_size(0);
            let mut p = top.to_vec();
            p.push(b'/');
            t.append_dir_header(&mut h, &p)?;
            t.children(src.parent.try_clone()?, &p)?
        }
        (None, None) => t.children(src.parent.try_clone()?, b"")?,
    }
    t.finish()
}

/// Where a copy lands: the directory extracted into and the name the
/// source's top entry takes there (`None`: the source's contents go
/// straight into the directory).
pub struct Destination {
    dir: OwnedFd,
    top: Option<Vec<u8>>,
    shown: String,
}

/// Docker's rules (docker cp's documentation): a file onto an existing
/// file replaces it, into an existing directory lands under its own name,
/// onto a missing path takes that name (its parent must exist; a trailing
/// `/` asks for a directory that must exist); a directory into an existing
/// directory lands under its own name (its contents with `SRC/.`), onto a
/// missing path becomes that path, onto a file is an error.
pub fn find_destination(root: &Root, path: &[u8], src: &Source) -> Result<Destination, CopyError> {
    let shown = root.show(path);
    if path.is_empty() {
        return Err(CopyError::BadPath(shown, "empty"));
    }
    let p = parse(path);
    let own = src.own_name();
    let top_in_dir = if src.contents { None } else { own.clone() };
    match root.open_dir(path) {
        Ok(dir) => {
            return Ok(Destination {
                dir,
                top: top_in_dir,
                shown,
            })
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
            if p.trailing_slash && !src.is_dir {
                return Err(CopyError::DestDirMissing(shown));
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
            if src.is_dir {
                return Err(CopyError::DirToFile {
                    src: src.shown.clone(),
                    dest: shown,
                });
            }
            if p.trailing_slash {
                return Err(CopyError::DestDirMissing(shown));
            }
        }
        Err(e) => return Err(io_err("open", &shown)(e)),
    }
    // Missing, or a file (or a link to one): the parent directory, and the
    // last component as the name.
    let (last, rest) = match p.comps.split_last() {
        Some((last, rest)) if *last != b".." => (*last, rest),
        _ => return Err(CopyError::BadPath(shown, "names no file")),
    };
    let parent_path = join(path.starts_with(b"/"), rest);
    let dir = root
        .open_dir(&parent_path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => {
                CopyError::DestDirMissing(root.show(&parent_path))
            }
            _ => io_err("open", &shown)(e),
        })?;
    Ok(Destination {
        dir,
        top: Some(last.to_vec()),
        shown,
    })
}

/// The existing directory `path` to extract a tar stream into (`-` as SRC).
pub fn find_directory(root: &Root, path: &[u8]) -> Result<Destination, CopyError> {
    let shown = root.show(path);
    let dir = root.open_dir(path).map_err(|e| match e.raw_os_error() {
        Some(libc::ENOENT) => CopyError::NotFound(shown.clone()),
        Some(libc::ENOTDIR) => CopyError::NotADirectory(shown.clone()),
        _ => io_err("open", &shown)(e),
    })?;
    Ok(Destination {
        dir,
        top: None,
        shown,
    })
}

fn unpack_options(dest: &Destination, owner: Ownership) -> engine::layer::UnpackOptions {
    let mut o = engine::layer::UnpackOptions::plain(format!("the copy to {}", dest.shown));
    o.owner = match owner {
        Ownership::Keep => None,
        Ownership::As(u, g) => Some((u, g)),
    };
    o
}

/// Extract a tar stream (plain or compressed) into `dest`.
pub fn extract<R: Read>(input: R, dest: Destination, owner: Ownership) -> Result<u64, CopyError> {
    let opts = unpack_options(&dest, owner);
    let shown = dest.shown.clone();
    engine::layer::unpack_stream_at(input, dest.dir, &opts)
        .map(|u| u.entries)
        .map_err(|source| CopyError::Extract {
            dest: shown,
            source: Box::new(source),
        })
}

/// Write `src` as a tar stream to `out` (`-` as DEST): its top entry
/// under its own name.
pub fn archive_to<W: Write>(src: &Source, out: W) -> Result<W, CopyError> {
    let own = src.own_name();
    let top = if src.contents { None } else { own.as_deref() };
    write_source(src, top, out).map_err(|source| CopyError::Read {
        src: src.shown.clone(),
        source,
    })
}

/// Copy `src` to `dest`: the tar is written on one thread and extracted on
/// this one, through a pipe. Returns the entries extracted.
pub fn copy(src: &Source, dest: Destination, owner: Ownership) -> Result<u64, CopyError> {
    let (reader, writer) = std::io::pipe().map_err(io_err("create a pipe for", &src.shown))?;
    let top = dest.top.clone();
    std::thread::scope(|s| {
        let sender = s.spawn(move || write_source(src, top.as_deref(), writer).map(drop));
        let received = extract(reader, dest, owner);
        let sent = sender.join().expect("the tar writer does not panic");
        match (sent, received) {
            // The reader's failure explains the writer's broken pipe, and
            // the writer's failure explains a truncated stream.
            (Err(e), _) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CopyError::Read {
                src: src.shown.clone(),
                source: e,
            }),
            (_, r) => r,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_paths_split_into_components_and_docker_suffixes() {
        let p = parse(b"/a//b/./c/");
        assert_eq!(p.comps, [&b"a"[..], b"b", b"c"]);
        assert!(p.trailing_slash && !p.contents);
        let p = parse(b"dir/.");
        assert_eq!(p.comps, [&b"dir"[..]]);
        assert!(p.trailing_slash && p.contents);
        assert!(parse(b"/").comps.is_empty());
        assert_eq!(join(true, &[b"a", b"b"]), b"/a/b");
        assert_eq!(join(false, &[]), b".");
        assert_eq!(join(true, &[]), b"/");
    }
}

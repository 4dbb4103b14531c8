//! Entry paths beneath a layer root: normalisation (refusing `..`) and
//! fd-relative resolution that never follows a symlink.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use super::sys;

/// An entry path as components joined by `/`: no empty, `.` or `..`
/// components, no leading `/`. Empty means the layer root itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryPath {
    full: Vec<u8>,
    /// Index in `full` where the last component starts.
    name_at: usize,
}

/// Why a raw path was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum PathRefusal {
    DotDot,
    Nul,
}

impl EntryPath {
    /// Docker's rule for leading `/`: the path is taken relative to the
    /// root. `..` anywhere is refused rather than clamped: a layer that
    /// needs it is hostile or broken.
    pub fn parse(raw: &[u8]) -> Result<EntryPath, PathRefusal> {
        if raw.contains(&0) {
            return Err(PathRefusal::Nul);
        }
        let mut full = Vec::with_capacity(raw.len());
        let mut name_at = 0;
        for comp in raw.split(|&b| b == b'/') {
            match comp {
                b"" | b"." => continue,
                b".." => return Err(PathRefusal::DotDot),
                _ => {
                    if !full.is_empty() {
                        full.push(b'/');
                    }
                    name_at = full.len();
                    full.extend_from_slice(comp);
                }
            }
        }
        Ok(EntryPath { full, name_at })
    }

    pub fn is_root(&self) -> bool {
        self.full.is_empty()
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.full
    }

    /// The last component.
    pub fn name(&self) -> &[u8] {
        &self.full[self.name_at..]
    }

    /// Everything before the last component (empty for top-level entries).
    pub fn parent(&self) -> &[u8] {
        if self.name_at == 0 {
            &[]
        } else {
            &self.full[..self.name_at - 1]
        }
    }

    /// The same path with the last component replaced.
    pub fn sibling(&self, name: &[u8]) -> EntryPath {
        let mut full = self.full[..self.name_at].to_vec();
        full.extend_from_slice(name);
        EntryPath {
            full,
            name_at: self.name_at,
        }
    }
}

pub fn cstr(bytes: &[u8]) -> CString {
    CString::new(bytes).expect("entry paths are checked for NUL on parse")
}

/// Failure to reach an entry's parent directory.
#[derive(Debug)]
pub enum ResolveError {
    /// A component is a symlink or not a directory (ELOOP, ENOTDIR, EXDEV).
    NotBeneath(io::Error),
    Io(io::Error),
}

fn classify(e: io::Error) -> ResolveError {
    match e.raw_os_error() {
        Some(libc::ELOOP) | Some(libc::ENOTDIR) | Some(libc::EXDEV) => ResolveError::NotBeneath(e),
        _ => ResolveError::Io(e),
    }
}

/// A layer root being filled, with the last parent directory kept open
/// (tar streams list a directory's entries together, so one slot catches
/// nearly every lookup).
pub struct LayerRoot {
    fd: OwnedFd,
    cached: Option<(Vec<u8>, OwnedFd)>,
}

impl LayerRoot {
    pub fn new(fd: OwnedFd) -> LayerRoot {
        LayerRoot { fd, cached: None }
    }

    /// Forget the cached directory: call after anything was removed, since
    /// the cached fd may name a directory no longer in the tree.
    pub fn invalidate(&mut self) {
        self.cached = None;
    }

    /// The directory `parent` beneath the root, created (0755, as Docker
    /// does for parents a tarball leaves out) if missing.
    pub fn parent_dir(&mut self, parent: &[u8]) -> Result<BorrowedFd<'_>, ResolveError> {
        if parent.is_empty() {
            return Ok(self.fd.as_fd());
        }
        let hit = matches!(&self.cached, Some((p, _)) if p.as_slice() == parent);
        if !hit {
            let fd = self.open_or_create(parent)?;
            self.cached = Some((parent.to_vec(), fd));
        }
        Ok(self.cached.as_ref().expect("just filled").1.as_fd())
    }

    /// Open an existing directory beneath the root (no creation, no cache).
    pub fn open_dir(&self, path: &[u8]) -> Result<OwnedFd, ResolveError> {
        if path.is_empty() {
            return self.fd.try_clone().map_err(ResolveError::Io);
        }
        sys::open_dir_beneath(self.fd.as_fd(), &cstr(path)).map_err(classify)
    }

    fn open_or_create(&self, path: &[u8]) -> Result<OwnedFd, ResolveError> {
        match sys::open_dir_beneath(self.fd.as_fd(), &cstr(path)) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(classify(e)),
        }
        // Some component is missing: walk one component at a time, creating
        // what is missing and opening each with O_NOFOLLOW.
        let mut cur = self.fd.try_clone().map_err(ResolveError::Io)?;
        for comp in path.split(|&b| b == b'/') {
            let name = cstr(comp);
            match sys::mkdirat(cur.as_fd(), &name, 0o755) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                Err(e) => return Err(classify(e)),
            }
            cur = sys::openat(
                cur.as_fd(),
                &name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )
            .map_err(classify)?;
        }
        Ok(cur)
    }
}

/// Remove `name` in `dir`, recursively if it is a directory, never
/// following symlinks.
pub fn remove_at(dir: BorrowedFd<'_>, name: &CStr) -> io::Result<()> {
    let st = sys::lstatat(dir, name)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return sys::unlinkat(dir, name, 0);
    }
    let sub = sys::openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )?;
    let children: Vec<CString> = {
        let d = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(sub.try_clone()?))
            .map_err(io::Error::from)?;
        let mut d = d;
        let mut v = Vec::new();
        for e in d.iter() {
            let e = e.map_err(io::Error::from)?;
            let n = e.file_name();
            if n.to_bytes() != b"." && n.to_bytes() != b".." {
                v.push(n.to_owned());
            }
        }
        v
    };
    for child in &children {
        remove_at(sub.as_fd(), child)?;
    }
    sys::unlinkat(dir, name, libc::AT_REMOVEDIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_normalises_and_refuses_dotdot() {
        let p = EntryPath::parse(b"./usr//bin/./sh").unwrap();
        assert_eq!(p.as_bytes(), b"usr/bin/sh");
        assert_eq!(p.parent(), b"usr/bin");
        assert_eq!(p.name(), b"sh");
        assert_eq!(
            EntryPath::parse(b"/etc/passwd").unwrap().as_bytes(),
            b"etc/passwd"
        );
        assert!(EntryPath::parse(b"./").unwrap().is_root());
        assert!(EntryPath::parse(b".").unwrap().is_root());
        assert_eq!(EntryPath::parse(b"a/../../b"), Err(PathRefusal::DotDot));
        assert_eq!(EntryPath::parse(b".."), Err(PathRefusal::DotDot));
        let top = EntryPath::parse(b"etc/").unwrap();
        assert_eq!((top.parent(), top.name()), (&b""[..], &b"etc"[..]));
        assert_eq!(top.sibling(b".wh.x").as_bytes(), b".wh.x");
        assert_eq!(p.sibling(b"ls").as_bytes(), b"usr/bin/ls");
    }
}

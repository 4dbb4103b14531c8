//! The sending side of `rrun cp`: a file or tree, reached by fd from a
//! directory resolved beneath its root, written as a tar stream. Nothing
//! below the starting directory is opened by path: each name is looked up
//! in its parent's fd with `O_NOFOLLOW`, so a symlink swapped in while the
//! walk runs is read as the link it is, never followed out of the tree.
//! (The tar crate only formats the stream here; nothing is extracted with
//! it: the receiving side is rbox's own extractor, invariant 2.)

use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, IntoRawFd, OwnedFd};

use super::root::{fstat, lstatat, open_nofollow, readlinkat};

/// Writes entries of trees to a tar stream (owners, modes and mtimes as
/// they are; the receiving side decides the owner).
pub struct TarWriter<W: Write> {
    b: tar::Builder<W>,
    /// (dev, ino) of files with several links → their first tar path.
    links: HashMap<(u64, u64), Vec<u8>>,
    /// What was written, for the caller's report.
    pub entries: u64,
    pub bytes: u64,
}

fn kind_of(mode: u32) -> u32 {
    mode & libc::S_IFMT
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> TarWriter<W> {
        let mut b = tar::Builder::new(out);
        b.mode(tar::HeaderMode::Complete);
        b.follow_symlinks(false);
        TarWriter {
            b,
            links: HashMap::new(),
            entries: 0,
            bytes: 0,
        }
    }

    /// The end-of-archive blocks; the writer back.
    pub fn finish(self) -> io::Result<W> {
        self.b.into_inner()
    }

    fn header(st: &libc::stat, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(st.st_uid as u64);
        h.set_gid(st.st_gid as u64);
        h.set_mtime(st.st_mtime.max(0) as u64);
        h.set_size(0);
        h
    }

    /// The entry `name` of `dir` as `path` in the tar, and everything below
    /// it if it is a directory.
    pub fn entry(&mut self, dir: BorrowedFd<'_>, name: &CStr, path: &[u8]) -> io::Result<()> {
        let st = lstatat(dir, name)?;
        match kind_of(st.st_mode) {
            libc::S_IFDIR => {
                // O_NOFOLLOW: swapped for a symlink since the stat, this fails
                // (ELOOP) instead of reading where the link points.
                let sub = open_nofollow(dir, name, libc::O_RDONLY | libc::O_DIRECTORY)?;
                let st = fstat(sub.as_fd())?;
                let mut p = path.to_vec();
                p.push(b'/');
                let mut h = Self::header(&st, tar::EntryType::Directory);
                self.b.append_data(&mut h, os(&p), io::empty())?;
                self.entries += 1;
                self.children(sub, &p)
            }
            libc::S_IFREG => self.file(dir, name, path),
            libc::S_IFLNK => {
                let target = readlinkat(dir, name)?;
                let mut h = Self::header(&st, tar::EntryType::Symlink);
                self.b.append_link(&mut h, os(path), os(&target))?;
                self.entries += 1;
                Ok(())
            }
            libc::S_IFSOCK => Ok(()), // not representable in tar; Docker drops them too
            k => {
                let kind = match k {
                    libc::S_IFIFO => tar::EntryType::Fifo,
                    libc::S_IFCHR => tar::EntryType::Char,
                    _ => tar::EntryType::Block,
                };
                let mut h = Self::header(&st, kind);
                if kind != tar::EntryType::Fifo {
                    h.set_device_major(libc::major(st.st_rdev))?;
                    h.set_device_minor(libc::minor(st.st_rdev))?;
                }
                self.b.append_data(&mut h, os(path), io::empty())?;
                self.entries += 1;
                Ok(())
            }
        }
    }

    fn file(&mut self, dir: BorrowedFd<'_>, name: &CStr, path: &[u8]) -> io::Result<()> {
        // O_NONBLOCK: a FIFO swapped in since the stat must not hang us.
        let fd = open_nofollow(dir, name, libc::O_RDONLY | libc::O_NONBLOCK)?;
        self.open_file(fd, path)
    }

    /// A regular file already open for reading (`O_NONBLOCK`), as `path`.
    pub fn open_file(&mut self, fd: OwnedFd, path: &[u8]) -> io::Result<()> {
        let st = fstat(fd.as_fd())?;
        if kind_of(st.st_mode) != libc::S_IFREG {
            return Err(io::Error::other(format!(
                "{} changed type while it was being copied",
                String::from_utf8_lossy(path)
            )));
        }
        if st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.links.get(&key) {
                let first = first.clone();
                let mut h = Self::header(&st, tar::EntryType::Link);
                self.b.append_link(&mut h, os(path), os(&first))?;
                self.entries += 1;
                return Ok(());
            }
            self.links.insert(key, path.to_vec());
        }
        let size = st.st_size as u64;
        let mut h = Self::header(&st, tar::EntryType::Regular);
        h.set_size(size);
        // Exactly `size` bytes: a file that grows is cut, one that shrinks
        // is an error (the header already promised the size).
        let mut body = File::from(fd).take(size);
        self.b
            .append_data(&mut h, os(path), &mut body)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    io::Error::other(format!(
                        "{} shrank while it was being copied",
                        String::from_utf8_lossy(path)
                    ))
                } else {
                    e
                }
            })?;
        self.entries += 1;
        self.bytes += size;
        Ok(())
    }

    /// A directory entry from a header made by the caller.
    pub fn append_dir_header(&mut self, h: &mut tar::Header, path: &[u8]) -> io::Result<()> {
        self.b.append_data(h, os(path), io::empty())?;
        self.entries += 1;
        Ok(())
    }

    /// Every entry of the open directory `dir`, as `prefix` + name, sorted.
    pub fn children(&mut self, dir: OwnedFd, prefix: &[u8]) -> io::Result<()> {
        let names = list(&dir)?;
        for n in names {
            let mut p = prefix.to_vec();
            p.extend_from_slice(n.to_bytes());
            self.entry(dir.as_fd(), &n, &p)?;
        }
        Ok(())
    }
}

/// The names in a directory, sorted by their bytes, without `.` and `..`.
fn list(dir: &OwnedFd) -> io::Result<Vec<CString>> {
    let mut d = nix::dir::Dir::from_fd(dir.try_clone()?.into_raw_fd()).map_err(io::Error::from)?;
    let mut v = Vec::new();
    for e in d.iter() {
        let e = e.map_err(io::Error::from)?;
        let n = e.file_name();
        if n.to_bytes() != b"." && n.to_bytes() != b".." {
            v.push(n.to_owned());
        }
    }
    v.sort();
    Ok(v)
}

fn os(p: &[u8]) -> &std::path::Path {
    use std::os::unix::ffi::OsStrExt;
    std::path::Path::new(std::ffi::OsStr::from_bytes(p))
}

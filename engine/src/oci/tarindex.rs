//! A tarball read in place: one pass records where each regular file's
//! bytes are, then members are read by seeking, never extracted. Used for
//! OCI layout tarballs and `docker save` archives, whose members are named
//! by path (symlinks between members, as old `docker save` writes for
//! repeated layers, are followed inside the index only).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{io_err, OciError, Result};

pub struct TarIndex {
    path: PathBuf,
    files: HashMap<String, (u64, u64)>,
    links: HashMap<String, String>,
}

fn normalise(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

impl TarIndex {
    pub fn open(path: &Path) -> Result<TarIndex> {
        let file = File::open(path).map_err(io_err("open", path))?;
        let mut archive = tar::Archive::new(io::BufReader::new(file));
        let mut files = HashMap::new();
        let mut links = HashMap::new();
        let bad = |e: io::Error| {
            OciError::Format(format!(
                "{}: not a readable tar archive: {e}",
                path.display()
            ))
        };
        for entry in archive.entries().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let name = normalise(&String::from_utf8_lossy(&entry.path_bytes()));
            let kind = entry.header().entry_type();
            if kind.is_file() {
                files.insert(name, (entry.raw_file_position(), entry.size()));
            } else if kind.is_symlink() || kind.is_hard_link() {
                if let Some(target) = entry.link_name_bytes() {
                    let target = String::from_utf8_lossy(&target).into_owned();
                    let resolved = if kind.is_symlink() {
                        let parent = Path::new(&name)
                            .parent()
                            .map(|p| p.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        normalise(&format!("{parent}/{target}"))
                    } else {
                        normalise(&target)
                    };
                    links.insert(name, resolved);
                }
            }
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            files,
            links,
        })
    }

    fn locate(&self, name: &str) -> Option<(u64, u64)> {
        let mut name = normalise(name);
        for _ in 0..16 {
            if let Some(loc) = self.files.get(&name) {
                return Some(*loc);
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }

    pub fn contains(&self, name: &str) -> bool {
        self.locate(name).is_some()
    }

    pub fn open_member(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        let (offset, size) = self.locate(name).ok_or_else(|| {
            OciError::Format(format!("{}: has no member {name:?}", self.path.display()))
        })?;
        let mut f = File::open(&self.path).map_err(io_err("open", &self.path))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(io_err("seek", &self.path))?;
        Ok(Box::new(io::BufReader::with_capacity(
            1 << 20,
            f.take(size),
        )))
    }
}

/// A directory or a tarball holding named members.
pub enum Members {
    Dir(PathBuf),
    Tar(TarIndex),
}

impl Members {
    pub fn open(path: &Path) -> Result<Members> {
        if path.is_dir() {
            Ok(Members::Dir(path.to_path_buf()))
        } else {
            Ok(Members::Tar(TarIndex::open(path)?))
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        match self {
            Members::Dir(d) => d.join(normalise(name)).is_file(),
            Members::Tar(t) => t.contains(name),
        }
    }

    pub fn read(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        match self {
            Members::Dir(d) => {
                let p = d.join(normalise(name));
                let f = File::open(&p).map_err(io_err("open", &p))?;
                Ok(Box::new(io::BufReader::with_capacity(1 << 20, f)))
            }
            Members::Tar(t) => t.open_member(name),
        }
    }

    /// A member's length, for progress (None when it is not there).
    pub fn size(&self, name: &str) -> Option<u64> {
        match self {
            Members::Dir(d) => std::fs::metadata(d.join(normalise(name)))
                .ok()
                .map(|m| m.len()),
            Members::Tar(t) => t.locate(name).map(|(_, size)| size),
        }
    }

    pub fn read_small(&self, name: &str) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.read(name)?
            .take(16 << 20)
            .read_to_end(&mut v)
            .map_err(|e| OciError::Format(format!("{name}: read failed: {e}")))?;
        Ok(v)
    }
}

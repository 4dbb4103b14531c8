//! What the kernel gives a newly created file unasked (owner from the
//! process, mode through the umask), so that fchown/fchmod can be skipped
//! when an entry wants exactly that: two syscalls fewer per file.

use std::path::Path;

use super::entry::Meta;
use super::error::LayerError;

/// What a newly created file gets without asking, so that fchown/fchmod
/// can be skipped when the entry wants exactly that.
pub struct Creation {
    /// Owner of new files, if predictable: `dest` starts empty and has no
    /// setgid bit, and directories get their modes only at the end, so no
    /// file inherits a group from a setgid parent.
    owner: Option<(u32, u32)>,
    /// The process umask, if known.
    umask: Option<u32>,
}

impl Creation {
    pub fn probe(dest: &Path) -> Result<Creation, LayerError> {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(dest).map_err(LayerError::io("stat", dest))?;
        let empty = std::fs::read_dir(dest)
            .map_err(LayerError::io("read directory", dest))?
            .next()
            .is_none();
        // SAFETY: geteuid/getegid have no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let owner = (empty && md.mode() & libc::S_ISGID == 0).then_some((uid, gid));
        // umask(2) cannot be read without setting it (racy in a threaded
        // process); /proc has it.
        let umask = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Umask:"))
                    .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            });
        Ok(Creation { owner, umask })
    }

    /// Nothing known: every owner and mode is set explicitly.
    pub fn unknown() -> Creation {
        Creation {
            owner: None,
            umask: None,
        }
    }

    /// (chown needed, chmod needed) for a file created with `mode & 0o777`.
    pub fn needs(&self, meta: &Meta) -> (bool, bool) {
        let chown = self.owner != Some((meta.uid, meta.gid));
        let want = meta.mode & 0o7777;
        let chmod = match self.umask {
            Some(u) => want != (meta.mode & 0o777 & !u),
            None => true,
        };
        (chown, chmod)
    }
}

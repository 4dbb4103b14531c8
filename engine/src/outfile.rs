//! Files rbox writes where the user asks (`save -o`, `export -o`, an OCI
//! layout directory), which may be a directory other users write to.
//!
//! A predictable temp name there (`out.tar.partial-<pid>`), opened without
//! O_EXCL, lets another user plant a symlink under that name and have root
//! overwrite any file. So an [`OutputFile`] is written to a fresh temp file
//! with a random name in the target's directory, created with
//! O_CREAT|O_EXCL (which never follows a symlink), and renamed over the
//! target when complete; a failed or interrupted write leaves the target
//! as it was.
//!
//! A target that exists and is not a regular file — `/dev/null`, a fifo,
//! `/dev/stdout` — is written in place instead: renaming over it would
//! replace the device node with a file. A symlink or such a file planted by
//! another user in a sticky world-writable directory (/tmp) is refused,
//! which is the rule the kernel's `protected_symlinks` and
//! `protected_fifos` apply (and which a host may have turned off).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A file being written for `dest`; nothing is visible at `dest` until
/// [`OutputFile::commit`] (unless `dest` is a device or fifo written in
/// place).
pub struct OutputFile {
    dest: PathBuf,
    /// Taken by `commit`.
    kind: Option<Kind>,
}

enum Kind {
    Temp(tempfile::NamedTempFile),
    InPlace(File),
}

impl OutputFile {
    /// Start writing `dest` with mode 0666 less the umask, as a plain
    /// create would.
    pub fn create(dest: &Path) -> io::Result<OutputFile> {
        Self::create_mode(dest, 0o666)
    }

    /// Start writing `dest`; a new file gets `mode` less the umask.
    pub fn create_mode(dest: &Path, mode: u32) -> io::Result<OutputFile> {
        let refuse = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
        match fs::symlink_metadata(dest) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::temp(dest, dest, mode),
            Err(e) => Err(e),
            Ok(m) if m.is_file() => Self::temp(dest, dest, mode),
            Ok(m) if m.is_dir() => Err(io::Error::from_raw_os_error(libc::EISDIR)),
            Ok(m) => {
                if planted(dest, &m) {
                    return Err(refuse(format!(
                        "{} is a {} of uid {} in a directory every user may write to; not following or writing it (remove it, or choose another path)",
                        dest.display(),
                        if m.file_type().is_symlink() { "symlink" } else { "special file" },
                        m.uid()
                    )));
                }
                if !m.file_type().is_symlink() {
                    return Self::in_place(dest, true);
                }
                // A symlink we may follow: to a regular file, write the
                // file it names through a temp beside it; to a device or
                // a pipe (/dev/stdout), write it in place.
                match fs::metadata(dest) {
                    Ok(t) if t.is_file() => Self::temp(dest, &fs::canonicalize(dest)?, mode),
                    Ok(t) if t.is_dir() => Err(io::Error::from_raw_os_error(libc::EISDIR)),
                    Ok(_) => Self::in_place(dest, false),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Err(refuse(format!(
                        "{} is a symlink to nothing; not creating its target",
                        dest.display()
                    ))),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// A temp file beside `target` (`dest` itself, or the file a symlink
    /// at `dest` names), renamed over `target` on commit.
    fn temp(_dest: &Path, target: &Path, mode: u32) -> io::Result<OutputFile> {
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".partial")
            .permissions(fs::Permissions::from_mode(mode))
            .tempfile_in(dir)?;
        crate::interrupt::register(tmp.path());
        Ok(OutputFile {
            dest: target.to_path_buf(),
            kind: Some(Kind::Temp(tmp)),
        })
    }

    fn in_place(dest: &Path, nofollow: bool) -> io::Result<OutputFile> {
        let mut o = OpenOptions::new();
        o.write(true);
        if nofollow {
            o.custom_flags(libc::O_NOFOLLOW);
        }
        let f = o.open(dest)?;
        if f.metadata()?.is_file() {
            // Swapped for a regular file since we looked: never truncate
            // in place what the temp route would have replaced.
            return Err(io::Error::other(format!(
                "{} changed while it was being opened",
                dest.display()
            )));
        }
        Ok(OutputFile {
            dest: dest.to_path_buf(),
            kind: Some(Kind::InPlace(f)),
        })
    }

    /// The file to write to.
    pub fn file(&mut self) -> &mut File {
        match self.kind.as_mut().expect("not committed") {
            Kind::Temp(t) => t.as_file_mut(),
            Kind::InPlace(f) => f,
        }
    }

    /// Where the output lands (a symlink's target when it was followed).
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Make the written file the target: fsync, rename over it, fsync its
    /// directory. For a target written in place there is nothing to do.
    pub fn commit(mut self) -> io::Result<()> {
        match self.kind.take().expect("committed once") {
            Kind::InPlace(mut f) => f.flush(),
            Kind::Temp(t) => {
                t.as_file().sync_all()?;
                let tmp_path = t.path().to_path_buf();
                let r = t.persist(&self.dest).map(drop).map_err(|e| e.error);
                crate::interrupt::unregister(&tmp_path);
                r?;
                if let Some(parent) = self.dest.parent().filter(|p| !p.as_os_str().is_empty()) {
                    crate::fsutil::fsync_dir(parent)?;
                }
                Ok(())
            }
        }
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        // An uncommitted temp file is removed by NamedTempFile's own drop.
        if let Some(Kind::Temp(t)) = &self.kind {
            crate::interrupt::unregister(t.path());
        }
    }
}

/// Whether `path` (a symlink or special file, `meta` its lstat) sits in a
/// sticky world-writable directory and belongs to neither us nor the
/// directory's owner: what another user plants in /tmp.
fn planted(path: &Path, meta: &fs::Metadata) -> bool {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(d) = fs::metadata(dir) else {
        return true;
    };
    // SAFETY: geteuid cannot fail and touches no memory.
    let euid = unsafe { libc::geteuid() };
    let shared = d.mode() & 0o1002 == 0o1002;
    shared && meta.uid() != euid && meta.uid() != d.uid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, FileTypeExt};

    fn write(dest: &Path, bytes: &[u8]) -> io::Result<()> {
        let mut o = OutputFile::create(dest)?;
        o.file().write_all(bytes)?;
        o.commit()
    }

    #[test]
    fn a_new_or_existing_file_is_replaced_whole_and_nothing_else_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.tar");
        write(&out, b"one").unwrap();
        write(&out, b"two").unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.tar")]);
        // Dropped before commit: the target is untouched, no temp is left.
        let mut o = OutputFile::create(&out).unwrap();
        o.file().write_all(b"half").unwrap();
        drop(o);
        assert_eq!(fs::read(&out).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dev_null_stays_a_device() {
        write(Path::new("/dev/null"), b"discarded").unwrap();
        assert!(fs::symlink_metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
    }

    #[test]
    fn a_symlink_another_user_planted_in_a_sticky_dir_is_refused() {
        // Making a file another user owns needs root (chown); the lib
        // tests also run as root in the host lane, where this runs.
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped without root: needs chown to another user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let out = dir.path().join("out.tar");
        symlink(&victim, &out).unwrap();
        // lchown: the link itself belongs to nobody.
        std::os::unix::fs::lchown(&out, Some(65534), Some(65534)).unwrap();
        let e = write(&out, b"image").unwrap_err();
        assert!(e.to_string().contains("symlink of uid 65534"), "{e}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        // Our own symlink to a regular file is followed: its target is
        // replaced (through a temp beside it), the link stays.
        let mine = dir.path().join("mine.tar");
        symlink(&victim, &mine).unwrap();
        write(&mine, b"image").unwrap();
        assert!(fs::symlink_metadata(&mine)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&victim).unwrap(), b"image");
    }
}

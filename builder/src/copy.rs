//! COPY and ADD: files from the build context (or another stage's root file
//! system) into a fresh layer directory, with Docker's rules for where they
//! land and who owns them.
//!
//! The layer directory is private to this build (under the store's tmp), so
//! nobody else writes into it while we do; we still refuse to create
//! anything through a symlink in it, so a symlink copied earlier in the same
//! step cannot carry a later file out of the layer.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{lchown, symlink, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("destination {0:?} would leave the image's root file system")]
    DestinationEscapes(String),
    #[error("destination {0:?} crosses a symlink inside the new layer")]
    ThroughSymlink(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CopyError + '_ {
    move |source| CopyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Owner and mode overrides (`--chown`, `--chmod`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ownership {
    /// Docker gives copied files 0:0 unless `--chown` says otherwise.
    pub uid: u32,
    pub gid: u32,
    pub mode: Option<u32>,
}

/// A path inside the image, made relative: `/a/./b` and `a/b` are `a/b`;
/// `..` may not climb above `/`.
pub fn image_relative(path: &str) -> Result<PathBuf, CopyError> {
    let mut out = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(CopyError::DestinationEscapes(path.to_string()));
                }
            }
            Component::Prefix(_) => return Err(CopyError::DestinationEscapes(path.to_string())),
        }
    }
    Ok(out)
}

/// Create `rel`'s parent directories inside `layer`, never through a symlink.
/// New directories take the metadata the image already has for them
/// (`existing`), so an overlay upper copy does not change /usr's mode.
pub fn make_parents(
    layer: &Path,
    rel: &Path,
    existing: &dyn Fn(&Path) -> Option<fs::Metadata>,
) -> Result<(), CopyError> {
    let mut cur = PathBuf::new();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for c in parent.components() {
        cur.push(c);
        let full = layer.join(&cur);
        match fs::symlink_metadata(&full) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => return Err(CopyError::ThroughSymlink(cur.clone())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&full).map_err(io_err(&full))?;
                match existing(&cur) {
                    Some(m) if m.is_dir() => {
                        fs::set_permissions(&full, fs::Permissions::from_mode(m.mode() & 0o7777))
                            .map_err(io_err(&full))?;
                        lchown(&full, Some(m.uid()), Some(m.gid())).map_err(io_err(&full))?;
                    }
                    _ => fs::set_permissions(&full, fs::Permissions::from_mode(0o755))
                        .map_err(io_err(&full))?,
                }
            }
            Err(e) => return Err(io_err(&full)(e)),
        }
    }
    Ok(())
}

/// Copy one file system object (not descending) from `src` to `dst`.
fn copy_one(src: &Path, dst: &Path, own: Ownership) -> Result<(), CopyError> {
    let meta = fs::symlink_metadata(src).map_err(io_err(src))?;
    let ft = meta.file_type();
    // Replace what an earlier source of the same step put there, as cp does;
    // but never follow a symlink that is there.
    if let Ok(old) = fs::symlink_metadata(dst) {
        if !(old.is_dir() && ft.is_dir()) {
            if old.is_dir() {
                fs::remove_dir_all(dst).map_err(io_err(dst))?;
            } else {
                fs::remove_file(dst).map_err(io_err(dst))?;
            }
        }
    }
    if ft.is_symlink() {
        let target = fs::read_link(src).map_err(io_err(src))?;
        symlink(&target, dst).map_err(io_err(dst))?;
    } else if ft.is_dir() {
        if fs::symlink_metadata(dst).is_err() {
            fs::create_dir(dst).map_err(io_err(dst))?;
        }
    } else if ft.is_file() {
        // fs::copy uses copy_file_range: no bytes through user space.
        let mut from = File::open(src).map_err(io_err(src))?;
        let mut to = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dst)
            .map_err(io_err(dst))?;
        io::copy(&mut from, &mut to).map_err(io_err(dst))?;
    } else {
        // Sockets, fifos, devices in a build context are skipped, as Docker
        // cannot send them either.
        return Ok(());
    }
    lchown(dst, Some(own.uid), Some(own.gid)).map_err(io_err(dst))?;
    if !ft.is_symlink() {
        let mode = own.mode.unwrap_or(meta.mode() & 0o7777);
        fs::set_permissions(dst, fs::Permissions::from_mode(mode)).map_err(io_err(dst))?;
        let mtime = nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec());
        nix::sys::stat::utimensat(
            None,
            dst,
            &mtime,
            &mtime,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .map_err(|e| io_err(dst)(e.into()))?;
    }
    Ok(())
}

/// Copy `src` (a file, symlink or directory; a directory's *contents* are
/// copied, as Docker does) to `dest_rel` inside `layer`. `files` lists what
/// under `src` to take (relative to `src_root`), already filtered by
/// .dockerignore and --exclude; directories come before their contents.
pub fn copy_tree(
    src_root: &Path,
    files: &[PathBuf],
    src_rel: &Path,
    layer: &Path,
    dest_rel: &Path,
    own: Ownership,
    existing: &dyn Fn(&Path) -> Option<fs::Metadata>,
) -> Result<(), CopyError> {
    make_parents(layer, &dest_rel.join("x"), existing)?;
    for f in files {
        let Ok(sub) = f.strip_prefix(src_rel) else {
            continue;
        };
        let dst_rel = if sub.as_os_str().is_empty() {
            dest_rel.to_path_buf()
        } else {
            dest_rel.join(sub)
        };
        if dst_rel.as_os_str().is_empty() {
            continue; // the root of the image itself: nothing to create
        }
        make_parents(layer, &dst_rel, existing)?;
        copy_one(&src_root.join(f), &layer.join(&dst_rel), own)?;
    }
    Ok(())
}

/// Write a file with the given content (COPY <<EOF heredocs).
pub fn write_file(
    layer: &Path,
    dest_rel: &Path,
    content: &[u8],
    own: Ownership,
    existing: &dyn Fn(&Path) -> Option<fs::Metadata>,
) -> Result<(), CopyError> {
    make_parents(layer, dest_rel, existing)?;
    let dst = layer.join(dest_rel);
    if fs::symlink_metadata(&dst).is_ok_and(|m| !m.is_file()) {
        return Err(CopyError::ThroughSymlink(dest_rel.to_path_buf()));
    }
    fs::write(&dst, content).map_err(io_err(&dst))?;
    lchown(&dst, Some(own.uid), Some(own.gid)).map_err(io_err(&dst))?;
    fs::set_permissions(&dst, fs::Permissions::from_mode(own.mode.unwrap_or(0o644)))
        .map_err(io_err(&dst))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_cannot_climb_out() {
        assert_eq!(
            image_relative("/app/../etc/x").unwrap(),
            PathBuf::from("etc/x")
        );
        assert!(image_relative("/../../x").is_err());
    }

    #[test]
    fn copies_contents_with_owner_and_mode() {
        let src = tempfile::tempdir().unwrap();
        let layer = tempfile::tempdir().unwrap();
        fs::create_dir_all(src.path().join("d/sub")).unwrap();
        fs::write(src.path().join("d/sub/f"), "hello").unwrap();
        symlink("sub/f", src.path().join("d/link")).unwrap();
        let files = vec![
            PathBuf::from("d"),
            PathBuf::from("d/link"),
            PathBuf::from("d/sub"),
            PathBuf::from("d/sub/f"),
        ];
        // As root the copy is given away to another user; without root
        // (the lib tests run unprivileged too) to ourselves, which still
        // takes the same chown path.
        let (uid, gid) = if nix::unistd::geteuid().is_root() {
            (1000, 1000)
        } else {
            (
                nix::unistd::geteuid().as_raw(),
                nix::unistd::getegid().as_raw(),
            )
        };
        let own = Ownership {
            uid,
            gid,
            // --chmod applies to directories too: keep them traversable
            // for an unprivileged run of this test.
            mode: Some(0o750),
        };
        copy_tree(
            src.path(),
            &files,
            Path::new("d"),
            layer.path(),
            Path::new("app"),
            own,
            &|_| None,
        )
        .unwrap();
        let f = layer.path().join("app/sub/f");
        assert_eq!(fs::read_to_string(&f).unwrap(), "hello");
        let m = fs::metadata(&f).unwrap();
        assert_eq!((m.uid(), m.gid(), m.mode() & 0o7777), (uid, gid, 0o750));
        assert_eq!(
            fs::read_link(layer.path().join("app/link")).unwrap(),
            PathBuf::from("sub/f")
        );
        // A later write through the copied symlink is refused.
        let err =
            write_file(layer.path(), Path::new("app/link/x"), b"", own, &|_| None).unwrap_err();
        assert!(matches!(err, CopyError::ThroughSymlink(_)), "{err}");
    }
}

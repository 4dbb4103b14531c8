//! Who may enter the store: its owner (root) only.
//!
//! Unpacked layers and containers' upper dirs hold whatever an image or a
//! container put there: setuid-root binaries, device nodes. Reachable by
//! another local user, they would hand that user root. So the store root
//! and every directory of the store's own layout are 0700, as Docker keeps
//! /var/lib/docker and containerd the directories below its root.
//!
//! Only the directories *around* the trees are private: a layer's `fs`
//! and a container's `upper`/`work` keep their own modes, which are part
//! of the image (the root directory a USER 1000 process must traverse).
//! That works because overlayfs looks up its lower and upper dirs with the
//! credentials of whoever mounted it, and the mount paths are resolved by
//! root before any container process runs.
//!
//! Opening a store checks the modes of the root and of the directories of
//! the layout (a stat each, as the open already did) and repairs a store
//! written before they were private; only then are the layer and container
//! directories one level down tightened too, once.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

use super::error::{io_err, Result, StoreError};

/// The mode of every directory of the store's layout.
pub const PRIVATE_MODE: u32 = 0o700;

/// The directories of the layout, below the root.
const LAYOUT: [&str; 8] = [
    "blobs",
    "blobs/blake3",
    "layers",
    "images",
    "containers",
    "cache",
    "tmp",
    "mnt",
];

/// Directories whose entries are trees (or hold them): tightened one level
/// down when an old store is repaired.
const TREE_HOLDERS: [&str; 3] = ["layers", "containers", "tmp"];

/// A `DirBuilder` for a private (0700) directory.
pub fn private_dir() -> DirBuilder {
    let mut b = DirBuilder::new();
    b.mode(PRIVATE_MODE);
    b
}

/// Create the store's layout under `root` as needed, each directory 0700;
/// refuse a root or layout directory owned by another user (who could
/// replace what it holds); make any that is open to others private, and
/// then the layer and container directories of that old store too.
pub fn ensure_private(root: &Path) -> Result<()> {
    let mut repaired = ensure_dir(root, true)?;
    for sub in LAYOUT {
        repaired |= ensure_dir(&root.join(sub), false)?;
    }
    if repaired {
        for holder in TREE_HOLDERS {
            let dir = root.join(holder);
            let entries = fs::read_dir(&dir).map_err(io_err("read directory", &dir))?;
            for entry in entries.flatten() {
                // Directories only (a layer's or a container's); never
                // through a symlink.
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() && meta.mode() & 0o077 != 0 {
                    let p = entry.path();
                    fs::set_permissions(&p, fs::Permissions::from_mode(PRIVATE_MODE))
                        .map_err(io_err("make private", &p))?;
                }
            }
        }
    }
    Ok(())
}

/// Make `dir` exist as a private directory of ours; returns whether its
/// mode had to be repaired. The store's root (`is_root`) gets its parents
/// made if missing, and is refused if every user may write to it: that is
/// a shared directory (/tmp, say), not a store of its own, and making it
/// private would break everybody else's use of it.
/// What a user namespace shows for an id it does not map
/// (/proc/sys/kernel/overflowuid's default).
const OVERFLOW_UID: u32 = 65534;

fn ensure_dir(dir: &Path, is_root: bool) -> Result<bool> {
    // A stat walks the path without locks; a mkdir of an existing dir
    // fails with EEXIST only after taking the parent's lock, which
    // concurrent starts then queue on.
    let meta = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir
                .parent()
                .filter(|p| is_root && !p.as_os_str().is_empty())
            {
                fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
            }
            match private_dir().create(dir) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                    return Err(io_err("create directory", dir)(e))
                }
                _ => {}
            }
            fs::metadata(dir).map_err(io_err("stat", dir))?
        }
        Err(e) => return Err(io_err("stat", dir)(e)),
    };
    if !meta.is_dir() {
        return Err(io_err("open store directory", dir)(
            io::Error::from_raw_os_error(libc::ENOTDIR),
        ));
    }
    // SAFETY: geteuid cannot fail and touches no memory.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid && crate::rootless::active() {
        // Unmapped owners all read as the overflow id: the host's is unknown.
        let owner = if meta.uid() == OVERFLOW_UID {
            "an id this user namespace does not map".to_string()
        } else {
            format!("uid {} of this user namespace", meta.uid())
        };
        return Err(StoreError::NotOursRootless {
            path: dir.to_path_buf(),
            owner,
        });
    }
    if meta.uid() != euid {
        return Err(StoreError::NotOurs {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            euid,
        });
    }
    if is_root && meta.mode() & 0o002 != 0 {
        return Err(StoreError::SharedRoot {
            path: dir.to_path_buf(),
            mode: meta.mode() & 0o7777,
        });
    }
    if meta.mode() & 0o7077 == 0 {
        return Ok(false);
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_MODE))
        .map_err(io_err("make private", dir))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::store::Store;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_new_store_is_private_and_an_old_one_is_repaired_on_open() {
        let dir = tempfile::tempdir().unwrap();
        // Missing parents are made too.
        let root = dir.path().join("parent/store");
        drop(Store::open(&root).unwrap());
        assert_eq!(mode(&root), 0o700);
        for sub in LAYOUT {
            assert_eq!(mode(&root.join(sub)), 0o700, "{sub}");
        }

        // A store as earlier versions left it: everything 0755, a layer
        // and a container directory with their trees.
        let layer = root.join("layers/abc");
        let container = root.join("containers/c1");
        for d in [layer.join("fs"), container.join("upper")] {
            fs::create_dir_all(&d).unwrap();
        }
        for d in [
            &root,
            &root.join("layers"),
            &root.join("containers"),
            &layer,
            &container,
        ] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(
            root.join("layers/abc/fs"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let s = Store::open(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("layers")), 0o700);
        assert_eq!(mode(&layer), 0o700);
        assert_eq!(mode(&container), 0o700);
        // The trees keep their own modes (the image's root directory).
        assert_eq!(mode(&layer.join("fs")), 0o755);
        assert_eq!(mode(&container.join("upper")), 0o755);
        // Temp dirs are private too.
        assert_eq!(mode(s.tmp_dir()), 0o700);
        assert_eq!(mode(&s.new_temp_dir("t").unwrap()), 0o700);
    }

    #[test]
    fn a_store_owned_by_another_user_is_refused() {
        // Making a file another user owns needs root (chown); the lib
        // tests also run as root in the host lane, where this runs.
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped without root: needs chown to another user");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        fs::create_dir(&root).unwrap();
        std::os::unix::fs::chown(&root, Some(65534), Some(65534)).unwrap();
        let e = Store::open(&root)
            .err()
            .expect("opened a store another user owns");
        assert!(matches!(e, StoreError::NotOurs { owner: 65534, .. }), "{e}");
        assert!(e.to_string().contains("owned by uid 65534"), "{e}");
    }

    #[test]
    fn a_world_writable_root_is_refused_not_made_private() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        let e = Store::open(dir.path())
            .err()
            .expect("opened a shared directory as a store");
        assert!(matches!(e, StoreError::SharedRoot { .. }), "{e}");
        assert_eq!(
            mode(dir.path()),
            0o1777,
            "the shared directory's mode was changed"
        );
    }
}

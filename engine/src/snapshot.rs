//! The `Snapshotter` seam, shaped like containerd's: it turns lower layers
//! plus an upper into a root filesystem, but only *describes* the mounts;
//! the runner decides where and when to perform them.

use std::path::{Path, PathBuf};

/// One mount, as `mount(2)` takes it (`target` relative to the rootfs for
/// container mounts, absolute for a rootfs mount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    pub fstype: String,
    pub source: PathBuf,
    pub target: PathBuf,
    pub options: Vec<String>,
}

impl MountSpec {
    pub fn bind(source: impl Into<PathBuf>, target: impl Into<PathBuf>, readonly: bool) -> Self {
        let mut options = vec!["rbind".to_string()];
        if readonly {
            options.push("ro".to_string());
        }
        MountSpec {
            fstype: "bind".into(),
            source: source.into(),
            target: target.into(),
            options,
        }
    }

    pub fn tmpfs(target: impl Into<PathBuf>, options: &[&str]) -> Self {
        MountSpec {
            fstype: "tmpfs".into(),
            source: "tmpfs".into(),
            target: target.into(),
            options: options.iter().map(|s| s.to_string()).collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub trait Snapshotter {
    /// A writable snapshot: the mounts that give `lowers` (top first) plus
    /// a fresh upper under `dir` (which must exist and be empty).
    fn prepare(&self, dir: &Path, lowers: &[PathBuf]) -> Result<Vec<MountSpec>, SnapshotError>;
    /// The directory holding the snapshot's changes (what `commit` turns
    /// into a layer).
    fn upper(&self, dir: &Path) -> PathBuf;
    /// Forget a snapshot; its mounts must already be gone.
    fn remove(&self, dir: &Path) -> Result<(), SnapshotError>;
}

/// Kernel overlayfs: `dir/upper` and `dir/work` beside the lowers.
pub struct OverlaySnapshotter;

impl Snapshotter for OverlaySnapshotter {
    fn prepare(&self, dir: &Path, lowers: &[PathBuf]) -> Result<Vec<MountSpec>, SnapshotError> {
        let upper = dir.join("upper");
        let work = dir.join("work");
        for d in [&upper, &work] {
            std::fs::create_dir_all(d).map_err(|source| SnapshotError::Io {
                op: "create directory",
                path: d.clone(),
                source,
            })?;
        }
        let mut options = Vec::with_capacity(lowers.len() + 2);
        // One lowerdir+ option per layer (kernel >= 6.8 via fsconfig) keeps
        // us clear of the one-page limit of a mount(2) options string when an
        // image has many layers; the runner falls back to lowerdir=a:b:c.
        for l in lowers {
            options.push(format!("lowerdir+={}", l.display()));
        }
        options.push(format!("upperdir={}", upper.display()));
        options.push(format!("workdir={}", work.display()));
        Ok(vec![MountSpec {
            fstype: "overlay".into(),
            source: "overlay".into(),
            target: dir.join("merged"),
            options,
        }])
    }

    fn upper(&self, dir: &Path) -> PathBuf {
        dir.join("upper")
    }

    fn remove(&self, dir: &Path) -> Result<(), SnapshotError> {
        crate::fsutil::remove_tree(dir).map_err(|source| SnapshotError::Io {
            op: "remove",
            path: dir.to_path_buf(),
            source,
        })
    }
}

//! A mount as data: what a container spec asks for (binds, tmpfs), which
//! the runner performs beneath the container's root. Describing mounts
//! instead of performing them lets the spec be built, checked and written
//! (the OCI bundle) before anything is mounted.

use std::path::PathBuf;

/// One mount, as `mount(2)` takes it (`target` relative to the rootfs for
/// container mounts, absolute for a rootfs mount).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

//! Named and anonymous volumes, as Docker's `local` driver keeps them:
//! `<store>/volumes/<name>/_data` is what containers mount, beside
//! `meta.json` (name, driver, created, labels, options). Containers record
//! which volumes they use in `containers/<id>/volumes.json` ([`Use`]), so
//! a volume in use (by a running or a stopped container) is never removed.
//!
//! Every creation and removal, and the in-use check that precedes a
//! removal, runs under one exclusive flock (`volumes/.lock`, [`lock`]): a
//! volume is made in a temp directory and renamed into place, so two rruns
//! never see a half-made one, and `rrun run` keeps the lock until its
//! container's `volumes.json` is written, so `volume rm` cannot slip in
//! between. A name is one safe path component (Docker's rule,
//! [`check_name`]); names starting with '.' are never volumes.

pub mod attach;
pub mod populate;
pub mod spec;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const DRIVER: &str = "local";

/// The longest volume name (a path component with room to spare).
const MAX_NAME: usize = 253;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("invalid volume name {0:?}: {1}")]
    BadName(String, &'static str),
    #[error("no such volume: {0}")]
    NotFound(String),
    #[error("volume {name} is in use by container {container} (remove the container first: rrun rm {container})")]
    InUse { name: String, container: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("volume {name}: unreadable metadata {path}: {source}")]
    Meta {
        name: String,
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> VolumeError {
    let path = path.to_path_buf();
    move |source| VolumeError::Io { op, path, source }
}

/// What `meta.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Meta {
    pub name: String,
    pub driver: String,
    /// Seconds since the epoch.
    pub created: u64,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Made for one container (`-v /path`, an image's VOLUME): removed
    /// with it by `rm -v` and `--rm`.
    #[serde(default)]
    pub anonymous: bool,
}

/// One volume a container mounts (`containers/<id>/volumes.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Use {
    pub name: String,
    pub destination: String,
    pub rw: bool,
    pub anonymous: bool,
}

/// Docker's rule, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`: never empty, never a
/// '/', "." or "..", so a name is always one safe path component.
pub fn check_name(n: &str) -> Result<(), VolumeError> {
    let bad = |why| Err(VolumeError::BadName(n.to_string(), why));
    let mut chars = n.chars();
    match chars.next() {
        None => return bad("a name cannot be empty"),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return bad("only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        }
        _ => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        return bad("only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    if n.len() > MAX_NAME {
        return bad("at most 253 characters are allowed");
    }
    Ok(())
}

pub fn dir(store_root: &Path) -> PathBuf {
    store_root.join("volumes")
}

/// The directory containers mount (`Mountpoint` in `volume inspect`).
pub fn data_path(store_root: &Path, name: &str) -> PathBuf {
    dir(store_root).join(name).join("_data")
}

/// A random name for an anonymous volume: 64 hex digits, as Docker's.
pub fn random_name() -> String {
    crate::lifecycle::random_hex(32)
}

/// The exclusive lock of the store's volumes (see the module doc). While
/// it is held no child is cloned (`sys::NO_INHERIT`).
pub struct Lock {
    _file: nix::fcntl::Flock<fs::File>,
    _no_inherit: std::sync::RwLockReadGuard<'static, ()>,
    root: PathBuf,
}

pub fn lock(store_root: &Path) -> Result<Lock, VolumeError> {
    let d = dir(store_root);
    // Root's only, as every directory of the store (invariant 6).
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&d)
        .map_err(io_err("create", &d))?;
    let no_inherit = crate::sys::hold_no_inherit();
    let p = d.join(".lock");
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .map_err(io_err("open", &p))?;
    let file = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| io_err("lock", &p)(e.into()))?;
    // Temp names of a killed creator or remover: nobody else holds the lock.
    if let Ok(entries) = fs::read_dir(&d) {
        for e in entries.flatten() {
            let n = e.file_name();
            let n = n.to_string_lossy();
            if n.starts_with(".tmp-") || n.starts_with(".rm-") {
                let _ = engine::fsutil::remove_tree(&e.path());
            }
        }
    }
    Ok(Lock {
        _file: file,
        _no_inherit: no_inherit,
        root: store_root.to_path_buf(),
    })
}

impl Lock {
    /// The volume `name`, made (empty) if it does not exist; the bool says
    /// whether it was made now.
    pub fn ensure(
        &self,
        name: &str,
        labels: &BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<(Meta, bool), VolumeError> {
        check_name(name)?;
        match load(&self.root, name) {
            Ok(m) => return Ok((m, false)),
            Err(VolumeError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let meta = Meta {
            name: name.to_string(),
            driver: DRIVER.into(),
            created: crate::state::now(),
            labels: labels.clone(),
            options: BTreeMap::new(),
            anonymous,
        };
        let d = dir(&self.root);
        let tmp = d.join(format!(".tmp-{}", random_name()));
        let made = (|| {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(&tmp)
                .map_err(io_err("create", &tmp))?;
            let data = tmp.join("_data");
            // As Docker's: root's, and open to the container's users.
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&data)
                .map_err(io_err("create", &data))?;
            fs::set_permissions(&data, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .map_err(io_err("chmod", &data))?;
            let m = tmp.join("meta.json");
            let body = serde_json::to_vec_pretty(&meta).expect("plain data serializes");
            fs::write(&m, body).map_err(io_err("write", &m))?;
            let to = d.join(name);
            fs::rename(&tmp, &to).map_err(io_err("rename into place", &to))
        })();
        if made.is_err() {
            let _ = engine::fsutil::remove_tree(&tmp);
        }
        made.map(|()| (meta, true))
    }

    /// Remove `name`; refused while a container uses it (even a stopped
    /// one), naming the container. `force` only skips a missing volume.
    pub fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        check_name(name)?;
        match load(&self.root, name) {
            Err(VolumeError::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(e),
            Ok(_) => {}
        }
        if let Some(c) = users(&self.root, name).into_iter().next() {
            return Err(VolumeError::InUse {
                name: name.to_string(),
                container: c,
            });
        }
        let d = dir(&self.root);
        let from = d.join(name);
        let gone = d.join(format!(".rm-{}", random_name()));
        fs::rename(&from, &gone).map_err(io_err("remove", &from))?;
        engine::fsutil::remove_tree(&gone).map_err(io_err("remove", &gone))
    }
}

pub fn load(store_root: &Path, name: &str) -> Result<Meta, VolumeError> {
    check_name(name)?;
    let p = dir(store_root).join(name).join("meta.json");
    let body = match fs::read(&p) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(VolumeError::NotFound(name.to_string()))
        }
        r => r.map_err(io_err("read", &p))?,
    };
    serde_json::from_slice(&body).map_err(|source| VolumeError::Meta {
        name: name.to_string(),
        path: p,
        source,
    })
}

/// Every volume of the store, by name.
pub fn list(store_root: &Path) -> Vec<Meta> {
    let mut out: Vec<Meta> = fs::read_dir(dir(store_root))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| load(store_root, e.file_name().to_str()?).ok())
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The names of the containers (running or not) that use volume `name`.
pub fn users(store_root: &Path, name: &str) -> Vec<String> {
    let containers = store_root.join("containers");
    let mut out = Vec::new();
    for e in fs::read_dir(&containers).into_iter().flatten().flatten() {
        if recorded(&e.path()).iter().any(|u| u.name == name) {
            let shown = crate::state::State::load(&e.path())
                .map(|s| s.name)
                .unwrap_or_else(|_| e.file_name().to_string_lossy().into_owned());
            out.push(shown);
        }
    }
    out.sort();
    out
}

const USES: &str = "volumes.json";

/// Record the volumes a container uses, before its state exists.
pub fn record(container_dir: &Path, uses: &[Use]) -> Result<(), VolumeError> {
    let p = container_dir.join(USES);
    let body = serde_json::to_vec(uses).expect("plain data serializes");
    fs::write(&p, body).map_err(io_err("write", &p))
}

/// The volumes a container records (none for a container made before
/// volumes existed, or without any).
pub fn recorded(container_dir: &Path) -> Vec<Use> {
    fs::read(container_dir.join(USES))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Remove the anonymous volumes of a container whose directory is gone
/// (`--rm`, `rm -v`), as Docker does. Best effort: a volume another
/// container came to use is kept. `uses` is what `recorded` said before
/// the directory was removed.
pub fn remove_anonymous(store_root: &Path, uses: &[Use]) -> Result<(), VolumeError> {
    if !uses.iter().any(|u| u.anonymous) {
        return Ok(());
    }
    let l = lock(store_root)?;
    for u in uses.iter().filter(|u| u.anonymous) {
        match l.remove(&u.name, true) {
            Ok(()) | Err(VolumeError::InUse { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Remove a container's directory and, with `anonymous_too` (`--rm`,
/// `rm -v`), the anonymous volumes it used. A failure to remove a volume
/// is reported on stderr: the container is gone either way.
pub fn remove_container_dir(dir: &Path, anonymous_too: bool) -> io::Result<()> {
    let uses = if anonymous_too {
        recorded(dir)
    } else {
        Vec::new()
    };
    engine::fsutil::remove_tree(dir)?;
    if let Some(root) = store_of(dir) {
        if let Err(e) = remove_anonymous(root, &uses) {
            eprintln!("rrun: {e}");
        }
    }
    Ok(())
}

/// The store of a container directory (`<store>/containers/<id>`).
pub fn store_of(container_dir: &Path) -> Option<&Path> {
    container_dir.parent()?.parent()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_and_never_leave_the_directory() {
        for ok in ["a", "data", "my_vol.1-2", "0abc"] {
            check_name(ok).unwrap();
        }
        for bad in ["", "../x", "a/b", ".", "..", ".hidden", "-x", "a b", "x\0"] {
            assert!(
                matches!(check_name(bad), Err(VolumeError::BadName(..))),
                "{bad:?} accepted"
            );
        }
        assert!(check_name(&"a".repeat(254)).is_err());
    }

    #[test]
    fn create_list_remove_and_in_use() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let l = lock(root).unwrap();
        let (m, made) = l.ensure("v1", &BTreeMap::new(), false).unwrap();
        assert!(made && m.driver == "local");
        let (_, again) = l.ensure("v1", &BTreeMap::new(), false).unwrap();
        assert!(!again);
        assert!(data_path(root, "v1").is_dir());
        assert_eq!(list(root).len(), 1);
        let c = root.join("containers/abc");
        fs::create_dir_all(&c).unwrap();
        let u = Use {
            name: "v1".into(),
            destination: "/d".into(),
            rw: true,
            anonymous: false,
        };
        record(&c, &[u]).unwrap();
        match l.remove("v1", false) {
            Err(VolumeError::InUse { container, .. }) => assert_eq!(container, "abc"),
            other => panic!("{other:?}"),
        }
        fs::remove_dir_all(&c).unwrap();
        l.remove("v1", false).unwrap();
        assert!(list(root).is_empty());
        assert!(matches!(
            l.remove("v1", false),
            Err(VolumeError::NotFound(_))
        ));
        l.remove("v1", true).unwrap();
    }
}

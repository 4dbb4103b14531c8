//! From a container's mount requests (`-v`, `--mount`, `--tmpfs`) and its
//! image's VOLUME list to the mounts of its spec: bind sources checked
//! (or made, for `-v`), named volumes made on first use, one fresh
//! anonymous volume per anonymous request and per image VOLUME that no
//! request covers, empty volumes populated from the image.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use engine::mount::MountSpec;

use super::spec::Request;
use super::{Lock, Use};

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("invalid mount config for type \"bind\": bind source path does not exist: {0} (create it, or use -v, which creates it)")]
    MissingSource(PathBuf),
    #[error("create the bind source {path}: {source}")]
    CreateSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("duplicate mount point: {0}")]
    Duplicate(String),
    #[error(transparent)]
    Volume(#[from] super::VolumeError),
    #[error(transparent)]
    Populate(#[from] super::populate::PopulateError),
}

/// The mounts of a container, and the volumes it uses. `lock`, when
/// volumes are used, is held until the container's `volumes.json` is
/// written (see the module doc of `volume`): keep it until then.
pub struct Attached {
    pub mounts: Vec<MountSpec>,
    pub uses: Vec<Use>,
    pub lock: Option<Lock>,
}

/// Refuse two requests for one target (Docker: "Duplicate mount point").
pub fn check_duplicates(requests: &[Request]) -> Result<(), AttachError> {
    let mut seen = std::collections::BTreeSet::new();
    for r in requests {
        if !seen.insert(r.target()) {
            return Err(AttachError::Duplicate(r.target().to_string()));
        }
    }
    Ok(())
}

/// `image_volumes`: the image config's Volumes. `lowers`, `mnt`: the image
/// to populate from (see `populate::populate`).
pub fn attach(
    store_root: &Path,
    requests: &[Request],
    image_volumes: &[String],
    lowers: &[PathBuf],
    mnt: &Path,
) -> Result<Attached, AttachError> {
    check_duplicates(requests)?;
    let mut all: Vec<Request> = requests.to_vec();
    for v in image_volumes {
        let target = format!("/{}", v.trim_matches('/'));
        if target == "/" || v.split('/').any(|c| c == "..") {
            // Not a path a volume can go on: Docker ignores it as well.
            continue;
        }
        if !all.iter().any(|r| r.target() == target) {
            all.push(Request::Volume {
                name: None,
                target,
                readonly: false,
                nocopy: false,
            });
        }
    }
    // Parents before children: /a before /a/b.
    all.sort_by_key(|r| r.target().matches('/').count());
    let mut out = Attached {
        mounts: Vec::new(),
        uses: Vec::new(),
        lock: None,
    };
    match add_all(store_root, &all, lowers, mnt, &mut out) {
        Ok(()) => Ok(out),
        Err(e) => {
            out.abandon();
            Err(e)
        }
    }
}

impl Attached {
    /// The container will not be made: remove the anonymous volumes made
    /// for it (best effort).
    pub fn abandon(self) {
        if let Some(l) = &self.lock {
            for u in self.uses.iter().filter(|u| u.anonymous) {
                let _ = l.remove(&u.name, true);
            }
        }
    }
}

fn add_all(
    store_root: &Path,
    all: &[Request],
    lowers: &[PathBuf],
    mnt: &Path,
    out: &mut Attached,
) -> Result<(), AttachError> {
    for r in all {
        match r {
            Request::Bind {
                source,
                target,
                readonly,
                create,
            } => {
                if !source.exists() {
                    if !create {
                        return Err(AttachError::MissingSource(source.clone()));
                    }
                    std::fs::create_dir_all(source).map_err(|e| AttachError::CreateSource {
                        path: source.clone(),
                        source: e,
                    })?;
                }
                out.mounts
                    .push(MountSpec::bind(source.clone(), target.clone(), *readonly));
            }
            Request::Tmpfs { target, options } => {
                let o: Vec<&str> = options.iter().map(String::as_str).collect();
                out.mounts.push(MountSpec::tmpfs(target.clone(), &o));
            }
            Request::Volume {
                name,
                target,
                readonly,
                nocopy,
            } => {
                if out.lock.is_none() {
                    out.lock = Some(super::lock(store_root)?);
                }
                let lock = out.lock.as_ref().expect("just taken");
                let anonymous = name.is_none();
                let name = name.clone().unwrap_or_else(super::random_name);
                let (meta, _) = lock.ensure(&name, &BTreeMap::new(), anonymous)?;
                let data = super::data_path(store_root, &name);
                let empty = std::fs::read_dir(&data)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
                if !nocopy && empty {
                    super::populate::populate(&name, lowers, mnt, target, &data)?;
                }
                out.mounts
                    .push(MountSpec::bind(data, target.clone(), *readonly));
                out.uses.push(Use {
                    name,
                    destination: target.clone(),
                    rw: !readonly,
                    anonymous: meta.anonymous,
                });
            }
        }
    }
    Ok(())
}

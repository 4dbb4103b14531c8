//! `containers/<id>/spec.json`: the `ContainerSpec` a container was made
//! with, so that `rrun start` and `rrun restart` start it again exactly as
//! `rrun create` or `rrun run` set it up (options are checked once, at
//! creation). Written before `state.json`, so a container with a state
//! always has its spec (containers made before rrun kept specs have none).

use std::path::{Path, PathBuf};

use engine::runtime::ContainerSpec;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid recorded spec: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join("spec.json")
}

/// Record `spec` in the container's directory: a temp file renamed into
/// place, not synced (it is on `rrun run`'s start path, as `state.json`
/// is; after a crash the reaper treats the container as dead anyway).
pub fn save(dir: &Path, spec: &ContainerSpec) -> Result<(), SpecError> {
    let p = path(dir);
    let bytes = serde_json::to_vec(spec).expect("a spec serialises");
    let tmp = dir.join(engine::fsutil::unique_name(".spec"));
    std::fs::write(&tmp, &bytes)
        .and_then(|()| std::fs::rename(&tmp, &p))
        .map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            SpecError::Io { path: p, source }
        })
}

pub fn load(dir: &Path) -> Result<ContainerSpec, SpecError> {
    let p = path(dir);
    let bytes = std::fs::read(&p).map_err(|source| SpecError::Io {
        path: p.clone(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| SpecError::Json { path: p, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_round_trips() {
        let t = tempfile::tempdir().unwrap();
        let mut spec = ContainerSpec::new(
            "abc",
            engine::runtime::RootfsSpec::under(t.path(), vec!["/l1".into(), "/l2".into()]),
            vec!["sh".into(), "-c".into(), "true".into()],
        );
        spec.mounts
            .push(engine::mount::MountSpec::bind("/src", "/dst", true));
        spec.network = engine::runtime::NetworkMode::Bridge;
        spec.resources.memory_bytes = Some(64 << 20);
        save(t.path(), &spec).unwrap();
        assert_eq!(load(t.path()).unwrap(), spec);
        assert!(matches!(
            load(&t.path().join("none")),
            Err(SpecError::Io { .. })
        ));
    }
}

//! Where our blobs also live remotely, for automatic cross-repository
//! mounts (as Docker does): pushing a blob to `reg/two` that we pulled from,
//! or pushed to, `reg/one` asks the registry to link it from `one` instead
//! of uploading its bytes again.
//!
//! ```text
//! blobs/sha256-index/source/<sha256 hex>   "registry repository" lines, newest last
//! ```
//!
//! Entries are hints, never trusted for content: a mount the registry
//! refuses (202) falls back to an upload, and the registry verifies what it
//! links. A lost update between two concurrent writers loses only a hint.

use std::fs;
use std::path::PathBuf;

use super::{io_err, Result};
use crate::digest::Digest;
use crate::fsutil::write_atomic;
use crate::store::Store;

/// How many places are remembered per blob (the most recent ones).
const KEEP: usize = 8;

/// A registry (host[:port] as in references) and a repository on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub registry: String,
    pub repository: String,
}

fn path(store: &Store, sha256: &Digest) -> PathBuf {
    store
        .root()
        .join("blobs/sha256-index/source")
        .join(sha256.hex())
}

/// The places blob `sha256` is known to be, oldest first.
pub fn sources(store: &Store, sha256: &Digest) -> Vec<Source> {
    let Ok(text) = fs::read_to_string(path(store, sha256)) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let (registry, repository) = l.split_once(' ')?;
            (!registry.is_empty() && !repository.is_empty()).then(|| Source {
                registry: registry.to_string(),
                repository: repository.to_string(),
            })
        })
        .collect()
}

/// Remember that blob `sha256` is in `repository` on `registry`.
pub fn record(store: &Store, sha256: &Digest, registry: &str, repository: &str) -> Result<()> {
    let here = Source {
        registry: registry.to_string(),
        repository: repository.to_string(),
    };
    let mut all = sources(store, sha256);
    if all.last() == Some(&here) {
        return Ok(());
    }
    all.retain(|s| s != &here);
    all.push(here);
    let skip = all.len().saturating_sub(KEEP);
    let text: String = all[skip..]
        .iter()
        .map(|s| format!("{} {}\n", s.registry, s.repository))
        .collect();
    let p = path(store, sha256);
    let dir = p.parent().expect("source path has a parent");
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    write_atomic(store.tmp_dir(), &p, text.as_bytes()).map_err(io_err("write", &p))
}

/// Repositories on `registry` other than `repository` that hold the blob,
/// most recent first: the candidates for a mount.
pub fn mount_candidates(
    store: &Store,
    sha256: &Digest,
    registry: &str,
    repository: &str,
) -> Vec<String> {
    sources(store, sha256)
        .into_iter()
        .rev()
        .filter(|s| s.registry == registry && s.repository != repository)
        .map(|s| s.repository)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_recent_places_and_offers_other_repositories() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::sha256_of(b"blob");
        assert!(sources(&store, &d).is_empty());
        record(&store, &d, "127.0.0.1:5000", "one").unwrap();
        record(&store, &d, "127.0.0.1:5000", "two").unwrap();
        record(&store, &d, "example.org", "one").unwrap();
        record(&store, &d, "127.0.0.1:5000", "one").unwrap();
        assert_eq!(
            mount_candidates(&store, &d, "127.0.0.1:5000", "three"),
            ["one", "two"]
        );
        assert_eq!(
            mount_candidates(&store, &d, "127.0.0.1:5000", "one"),
            ["two"]
        );
        for i in 0..20 {
            record(&store, &d, "r", &format!("repo{i}")).unwrap();
        }
        let all = sources(&store, &d);
        assert_eq!(all.len(), KEEP);
        assert_eq!(all.last().unwrap().repository, "repo19");
    }
}

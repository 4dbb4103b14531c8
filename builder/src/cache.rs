//! The step cache: `cache/steps/<key>` holds the manifest digest of the
//! image as it stood after that step. Keys chain: a step's key hashes its
//! parent's key, so a changed step invalidates every step after it and none
//! before. The store's gc treats these entries as roots; deleting the
//! directory is how the cache is pruned.

use std::path::PathBuf;

use engine::fsutil::write_atomic;
use engine::{Digest, Store};

/// A cache key under construction: blake3 over length-prefixed fields, so
/// that ("ab","c") and ("a","bc") never collide.
pub struct CacheKey {
    hasher: blake3::Hasher,
}

impl CacheKey {
    /// `parent` is the previous step's key, or the base image's manifest digest.
    pub fn new(parent: &str) -> CacheKey {
        let mut k = CacheKey {
            hasher: blake3::Hasher::new(),
        };
        k.hasher.update(b"rbox-step-v1\0");
        k.field(parent.as_bytes());
        k
    }

    pub fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.hasher.update(&(bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
        self
    }

    pub fn finish(&self) -> Digest {
        Digest::from_blake3(self.hasher.finalize())
    }
}

fn entry_path(store: &Store, key: &Digest) -> PathBuf {
    store.root().join("cache/steps").join(key.hex())
}

/// The image recorded for `key`, if it is still whole in the store.
pub fn lookup(store: &Store, key: &Digest) -> Option<Digest> {
    let text = std::fs::read_to_string(entry_path(store, key)).ok()?;
    let manifest: Digest = text.trim().parse().ok()?;
    store.has_blob(&manifest).then_some(manifest)
}

pub fn record(store: &Store, key: &Digest, manifest: &Digest) -> std::io::Result<()> {
    let path = entry_path(store, key);
    std::fs::create_dir_all(path.parent().expect("cache entry has a parent"))?;
    write_atomic(store.tmp_dir(), &path, format!("{manifest}\n").as_bytes())
}

/// Every image a cache entry records (the manifest digests the store's gc
/// keeps alive for the cache), one per entry; unreadable entries are skipped.
pub fn recorded_images(store: &Store) -> Vec<Digest> {
    let Ok(rd) = std::fs::read_dir(store.root().join("cache/steps")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|text| text.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_chain_and_separate_fields() {
        let a = CacheKey::new("base").field(b"ab").field(b"c").finish();
        let b = CacheKey::new("base").field(b"a").field(b"bc").finish();
        let c = CacheKey::new("other").field(b"ab").field(b"c").finish();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, CacheKey::new("base").field(b"ab").field(b"c").finish());
    }

    #[test]
    fn records_and_finds_only_whole_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = CacheKey::new("x").finish();
        assert_eq!(lookup(&store, &key), None);
        let (manifest, _) = store.put_blob(b"{}").unwrap();
        record(&store, &key, &manifest).unwrap();
        assert_eq!(lookup(&store, &key), Some(manifest.clone()));
        std::fs::remove_file(store.blob_path(&manifest)).unwrap();
        assert_eq!(
            lookup(&store, &key),
            None,
            "an entry whose image is gone is a miss"
        );
    }
}

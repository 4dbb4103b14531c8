//! The step cache carried between machines: `rbuild build --cache-to
//! type=local,dest=DIR` writes the steps a build used or made to an OCI
//! layout, and `--cache-from type=local,src=DIR` on another machine (or
//! a fresh store) reads them back, so that unchanged steps are CACHED
//! there too (BuildKit's local cache exporter and importer, in a layout
//! of our own shape).
//!
//! Each step is one image in the layout, tagged `rbox-cache-<key>` (the
//! step's cache key, see `cache.rs`): its manifest, config and layers,
//! sha256-addressed as any OCI layout, so the layers are shared between
//! steps and with images. Importing loads every such image and records
//! it under its key. A key chains from the base image's manifest and
//! every step before, so an entry is used only where the same base and
//! the same steps led to it.
//!
//! Trust: blobs are verified against their digests and unpacked with the
//! same guards as any pulled image, but that an entry really is what its
//! key's step would have made cannot be checked without running the step.
//! As with BuildKit's cache import, load only caches you trust.

use std::path::{Path, PathBuf};

use engine::oci::{self, ExportCompression};
use engine::{Digest, Store};

/// Prefix of the tags that name cache entries in a layout.
const TAG_PREFIX: &str = "rbox-cache-";

/// Where `--cache-to` writes or `--cache-from` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    Local(PathBuf),
}

impl CacheLocation {
    /// Parse `type=local,dest=DIR` (`--cache-to`, `want` = "dest") or
    /// `type=local,src=DIR` (`--cache-from`, `want` = "src").
    pub fn parse(flag: &str, want: &str, spec: &str) -> Result<CacheLocation, String> {
        let (mut kind, mut path) = (None, None);
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("type", v)) => kind = Some(v),
                Some((k, v)) if k == want => path = Some(v),
                // BuildKit's mode=max|min: every step is exported anyway.
                Some(("mode", "max" | "min")) => {}
                _ => {
                    return Err(format!(
                        "invalid {flag} {spec:?}: unknown field {field:?} (rbuild takes type=local,{want}=DIR)"
                    ))
                }
            }
        }
        match (kind, path) {
            (Some("local"), Some(p)) if !p.is_empty() => Ok(CacheLocation::Local(p.into())),
            (Some("local"), _) => Err(format!("invalid {flag} {spec:?}: {want}= is missing")),
            (Some(other), _) => Err(format!(
                "invalid {flag} {spec:?}: type {other:?} is not supported (rbuild has type=local)"
            )),
            (None, _) => Err(format!("invalid {flag} {spec:?}: type= is missing")),
        }
    }
}

/// Write the entries (cache key → the image after that step) to `dir`,
/// adding to what is there (an entry with the same key is replaced).
pub fn export(store: &Store, entries: &[(Digest, Digest)], dir: &Path) -> Result<usize, String> {
    for (key, manifest) in entries {
        let image = store
            .image_by_digest(manifest)
            .map_err(|e| format!("--cache-to: step image {manifest}: {e}"))?;
        let exported = oci::export::export_image(store, &image, ExportCompression::Keep)
            .map_err(|e| format!("--cache-to: export step image {manifest}: {e}"))?;
        let tag = format!("{TAG_PREFIX}{}", key.hex());
        oci::layout::save_dir(&exported, dir, None, Some(&tag))
            .map_err(|e| format!("--cache-to {}: {e}", dir.display()))?;
    }
    Ok(entries.len())
}

/// Load every cache entry of the layout at `dir` into the store and the
/// step cache; returns how many.
pub fn import(store: &Store, dir: &Path) -> Result<usize, String> {
    let bad = |e: &dyn std::fmt::Display| format!("--cache-from {}: {e}", dir.display());
    let members = oci::tarindex::Members::open(dir).map_err(|e| bad(&e))?;
    let index: serde_json::Value = serde_json::from_slice(
        &members
            .read_small("index.json")
            .map_err(|e| bad(&format!("no cache here: {e}")))?,
    )
    .map_err(|e| bad(&format!("index.json: {e}")))?;
    let tags: Vec<String> = index["manifests"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["annotations"][oci::REF_NAME].as_str())
        .filter(|t| t.starts_with(TAG_PREFIX))
        .map(String::from)
        .collect();
    let platform = oci::layout::Platform::linux_amd64();
    for tag in &tags {
        let key: Digest = format!("blake3:{}", &tag[TAG_PREFIX.len()..])
            .parse()
            .map_err(|e| bad(&format!("entry {tag}: {e}")))?;
        let loaded = oci::layout::load(
            store,
            &members,
            Some(tag),
            &platform,
            oci::ingest::Watch::none(),
        )
        .map_err(|e| bad(&format!("entry {tag}: {e}")))?;
        for l in loaded {
            crate::cache::record(store, &key, &l.manifest)
                .map_err(|e| bad(&format!("record entry {tag}: {e}")))?;
        }
    }
    Ok(tags.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_and_refuses_the_rest() {
        assert_eq!(
            CacheLocation::parse("--cache-to", "dest", "type=local,dest=/c,mode=max").unwrap(),
            CacheLocation::Local("/c".into())
        );
        assert_eq!(
            CacheLocation::parse("--cache-from", "src", "type=local,src=c").unwrap(),
            CacheLocation::Local("c".into())
        );
        let err = |s: &str| CacheLocation::parse("--cache-to", "dest", s).unwrap_err();
        assert!(err("type=registry,ref=x").contains("unknown field \"ref=x\""));
        assert!(err("type=registry").contains("type \"registry\" is not supported"));
        assert!(err("type=local").contains("dest= is missing"));
        assert!(err("dest=/c").contains("type= is missing"));
        assert!(err("type=local,src=/c").contains("unknown field \"src=/c\""));
    }
}

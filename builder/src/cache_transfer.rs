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
//! `type=registry,ref=REF` keeps the same entries at a registry: each
//! step's image is pushed by digest to REF's repository, and one image
//! index at REF names them all, each with its key in an annotation
//! ([`KEY_ANNOTATION`]). Pulling reads that index and pulls every image by
//! its digest (manifest, config and layers verified as any pull); the keys
//! are recorded only once every entry is in, so a cache with one bad blob
//! leaves no entry behind. Like BuildKit's registry exporter, a push
//! replaces what REF held.
//!
//! Trust: blobs are verified against their digests and unpacked with the
//! same guards as any pulled image, but that an entry really is what its
//! key's step would have made cannot be checked without running the step.
//! As with BuildKit's cache import, load only caches you trust.

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use engine::image::media_type;
use engine::oci::layout::{Index, IndexEntry};
use engine::oci::registry::{self, PullOptions, PushOptions, RemoteRef};
use engine::oci::{self, ExportCompression};
use engine::progress::NoProgress;
use engine::{Digest, Store};

/// Prefix of the tags that name cache entries in a layout.
const TAG_PREFIX: &str = "rbox-cache-";

/// A registry cache's index says what it is with this annotation...
const INDEX_ANNOTATION: &str = "dev.rbox.cache";
const INDEX_KIND: &str = "build-steps-v1";
/// ...and each entry's step key with this one.
pub const KEY_ANNOTATION: &str = "dev.rbox.cache.key";
/// More entries than any real build has: a hostile index stops here.
const MAX_ENTRIES: usize = 10_000;

/// Where `--cache-to` writes or `--cache-from` reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheLocation {
    Local(PathBuf),
    /// A registry reference with a tag (`host/repo:tag`).
    Registry(String),
}

impl std::fmt::Display for CacheLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CacheLocation::Local(p) => write!(f, "{}", p.display()),
            CacheLocation::Registry(r) => write!(f, "{r}"),
        }
    }
}

impl CacheLocation {
    /// Parse `type=local,dest=DIR` (`--cache-to`, `want` = "dest") or
    /// `type=local,src=DIR` (`--cache-from`, `want` = "src").
    pub fn parse(flag: &str, want: &str, spec: &str) -> Result<CacheLocation, String> {
        let (mut kind, mut path, mut reference) = (None, None, None);
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("type", v)) => kind = Some(v),
                Some((k, v)) if k == want => path = Some(v),
                Some(("ref", v)) => reference = Some(v),
                // BuildKit's mode=max|min: every step is exported anyway.
                Some(("mode", "max" | "min")) => {}
                _ => {
                    return Err(format!(
                        "invalid {flag} {spec:?}: unknown field {field:?} (rbuild takes type=local,{want}=DIR or type=registry,ref=REF)"
                    ))
                }
            }
        }
        match (kind, path, reference) {
            (Some("local"), Some(p), None) if !p.is_empty() => Ok(CacheLocation::Local(p.into())),
            (Some("local"), _, Some(_)) => Err(format!(
                "invalid {flag} {spec:?}: ref= is for type=registry"
            )),
            (Some("local"), _, _) => Err(format!("invalid {flag} {spec:?}: {want}= is missing")),
            (Some("registry"), None, Some(r)) => {
                let parsed = RemoteRef::parse(r)
                    .map_err(|e| format!("invalid {flag} {spec:?}: ref: {e}"))?;
                if parsed.digest.is_some() {
                    return Err(format!(
                        "invalid {flag} {spec:?}: ref= must name a tag, not a digest"
                    ));
                }
                Ok(CacheLocation::Registry(r.to_string()))
            }
            (Some("registry"), Some(_), _) => Err(format!(
                "invalid {flag} {spec:?}: {want}= is for type=local"
            )),
            (Some("registry"), None, None) => {
                Err(format!("invalid {flag} {spec:?}: ref= is missing"))
            }
            (Some(other), _, _) => Err(format!(
                "invalid {flag} {spec:?}: type {other:?} is not supported (rbuild has type=local and type=registry)"
            )),
            (None, _, _) => Err(format!("invalid {flag} {spec:?}: type= is missing")),
        }
    }
}

/// `--cache-to`: to a directory or a registry.
pub fn export_to(
    store: &Store,
    entries: &[(Digest, Digest)],
    to: &CacheLocation,
    opts: &PullOptions,
) -> Result<usize, String> {
    match to {
        CacheLocation::Local(dir) => export(store, entries, dir),
        CacheLocation::Registry(r) => export_registry(store, entries, r, opts),
    }
}

/// `--cache-from`: from a directory or a registry.
pub fn import_from(
    store: &Store,
    from: &CacheLocation,
    opts: &PullOptions,
) -> Result<usize, String> {
    match from {
        CacheLocation::Local(dir) => import(store, dir),
        CacheLocation::Registry(r) => import_registry(store, r, opts),
    }
}

/// The repository part of `reference`, to pin digests onto.
fn repository_of(reference: &str) -> Result<String, String> {
    let r = RemoteRef::parse(reference).map_err(|e| e.to_string())?;
    Ok(format!("{}/{}", r.registry, r.repository))
}

/// Push every entry's image by digest, then the index naming them at
/// `reference` (replacing what it held).
pub fn export_registry(
    store: &Store,
    entries: &[(Digest, Digest)],
    reference: &str,
    opts: &PullOptions,
) -> Result<usize, String> {
    let bad = |e: &dyn std::fmt::Display| format!("--cache-to type=registry,ref={reference}: {e}");
    let repo = repository_of(reference).map_err(|e| bad(&e))?;
    let push = PushOptions {
        insecure: opts.insecure,
        auth_file: opts.auth_file.clone(),
        limits: opts.limits,
        ..Default::default()
    };
    let mut seen = std::collections::HashSet::new();
    let mut manifests = Vec::new();
    for (key, manifest) in entries {
        if !seen.insert(key.clone()) {
            continue;
        }
        let image = store
            .image_by_digest(manifest)
            .map_err(|e| bad(&format!("step image {manifest}: {e}")))?;
        // The digest it will have there (export is deterministic; push
        // says which digest it put, and the two must agree).
        let exported = oci::export::export_image(store, &image, ExportCompression::Keep)
            .map_err(|e| bad(&format!("export step image {manifest}: {e}")))?;
        let d = &exported.manifest_descriptor;
        let pushed = registry::push(
            store,
            &image,
            &format!("{repo}@{}", d.digest),
            &push,
            &NoProgress,
        )
        .map_err(|e| bad(&format!("push step image {manifest}: {e}")))?;
        if pushed != d.digest {
            return Err(bad(&format!(
                "step image {manifest} was pushed as {pushed}, not {}",
                d.digest
            )));
        }
        manifests.push(IndexEntry {
            media_type: media_type::MANIFEST.to_string(),
            digest: d.digest.clone(),
            size: exported.manifest.len() as u64,
            platform: None,
            annotations: BTreeMap::from([(KEY_ANNOTATION.to_string(), key.to_string())]),
        });
    }
    let n = manifests.len();
    let index = Index {
        schema_version: 2,
        media_type: Some(media_type::INDEX.to_string()),
        manifests,
        annotations: BTreeMap::from([(INDEX_ANNOTATION.to_string(), INDEX_KIND.to_string())]),
    };
    registry::index::push_index(store, &index, reference, &push).map_err(|e| bad(&e))?;
    Ok(n)
}

/// Pull every entry the index at `reference` names; record their keys
/// once all of them are in.
pub fn import_registry(
    store: &Store,
    reference: &str,
    opts: &PullOptions,
) -> Result<usize, String> {
    let bad =
        |e: &dyn std::fmt::Display| format!("--cache-from type=registry,ref={reference}: {e}");
    let repo = repository_of(reference).map_err(|e| bad(&e))?;
    let index = registry::index::fetch_index(store, reference, opts).map_err(|e| bad(&e))?;
    if index.annotations.get(INDEX_ANNOTATION).map(String::as_str) != Some(INDEX_KIND) {
        return Err(bad(
            &"not an rbuild build cache (its index lacks the dev.rbox.cache annotation)",
        ));
    }
    if index.manifests.len() > MAX_ENTRIES {
        return Err(bad(&format!(
            "{} entries, more than {MAX_ENTRIES}",
            index.manifests.len()
        )));
    }
    let mut got = Vec::with_capacity(index.manifests.len());
    for e in &index.manifests {
        if e.media_type != media_type::MANIFEST {
            return Err(bad(&format!(
                "entry {}: media type {}",
                e.digest, e.media_type
            )));
        }
        let key: Digest = e
            .annotations
            .get(KEY_ANNOTATION)
            .ok_or_else(|| bad(&format!("entry {}: no {KEY_ANNOTATION}", e.digest)))?
            .parse()
            .map_err(|err| bad(&format!("entry {}: key: {err}", e.digest)))?;
        let stored = registry::pull(store, &format!("{repo}@{}", e.digest), opts, &NoProgress)
            .map_err(|err| bad(&format!("entry {}: {err}", e.digest)))?;
        got.push((key, stored));
    }
    for (key, manifest) in &got {
        crate::cache::record(store, key, manifest)
            .map_err(|e| bad(&format!("record entry {key}: {e}")))?;
    }
    Ok(got.len())
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
        assert_eq!(
            CacheLocation::parse(
                "--cache-to",
                "dest",
                "type=registry,ref=localhost:5000/c:b,mode=max"
            )
            .unwrap(),
            CacheLocation::Registry("localhost:5000/c:b".into())
        );
        assert!(err("type=registry").contains("ref= is missing"));
        assert!(err("type=registry,ref=UPPER/x").contains("ref:"));
        assert!(err("type=registry,ref=h:1/x@sha256:0000000000000000000000000000000000000000000000000000000000000000")
            .contains("must name a tag"));
        assert!(err("type=local,ref=x").contains("ref= is for type=registry"));
        assert!(err("type=registry,ref=x,dest=/c").contains("dest= is for type=local"));
        assert!(err("type=s3").contains("type \"s3\" is not supported"));
        assert!(err("type=local").contains("dest= is missing"));
        assert!(err("dest=/c").contains("type= is missing"));
        assert!(err("type=local,src=/c").contains("unknown field \"src=/c\""));
    }
}

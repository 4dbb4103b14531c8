//! Garbage collection: remove every blob and unpacked layer that no tag,
//! container or builder cache entry reaches, under the exclusive lock.

use std::collections::HashSet;
use std::fs;

use super::error::{io_err, Result};
use super::{flock, read_dir_or_empty, Store};
use crate::digest::Digest;
use crate::fsutil::{self, remove_tree};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub layers_removed: usize,
    /// Blob bytes and the unpacked layers' disk usage.
    pub bytes_freed: u64,
    /// The image manifests among the removed blobs (untagged images that
    /// nothing kept), for `rbuild image prune` to name.
    pub images_removed: Vec<Digest>,
}

impl Store {
    /// Manifest digests that keep their blobs and layers alive: every tag,
    /// every container's image, every builder cache entry.
    fn gc_roots(&self) -> Result<Vec<Digest>> {
        let mut roots: Vec<Digest> = self.list_refs()?.into_iter().map(|(_, d)| d).collect();
        let containers = self.root.join("containers");
        for entry in read_dir_or_empty(&containers)? {
            if let Ok(s) = fs::read_to_string(entry.join("image")) {
                roots.extend(s.trim().parse().ok());
            }
        }
        let steps = self.root.join("cache/steps");
        for entry in read_dir_or_empty(&steps)? {
            if let Ok(s) = fs::read_to_string(&entry) {
                roots.extend(s.split_whitespace().filter_map(|w| w.parse().ok()));
            }
        }
        Ok(roots)
    }

    /// Remove every blob and unpacked layer that no root reaches. Waits for
    /// the exclusive lock: no other process may have the store open.
    pub fn gc(&self) -> Result<GcReport> {
        let lock_path = self.root.join("lock");
        flock(&self.lock, libc::LOCK_EX).map_err(io_err("lock (exclusive)", &lock_path))?;
        let result = self.gc_locked();
        let _ = flock(&self.lock, libc::LOCK_SH);
        result
    }

    fn gc_locked(&self) -> Result<GcReport> {
        let mut live_blobs: HashSet<String> = HashSet::new();
        let mut live_layers: HashSet<String> = HashSet::new();
        for root in self.gc_roots()? {
            // A root whose manifest is gone or corrupt keeps nothing alive;
            // fsck reports it.
            let Ok(image) = self.image_by_digest(&root) else {
                continue;
            };
            live_blobs.insert(root.hex().to_string());
            live_blobs.insert(image.config_digest.hex().to_string());
            for l in &image.manifest.layers {
                live_blobs.insert(l.digest.hex().to_string());
            }
            for d in &image.config.rootfs.diff_ids {
                live_layers.insert(d.hex().to_string());
            }
        }
        let mut report = GcReport::default();
        let blobs = self.root.join("blobs/blake3");
        let dead: Vec<_> = read_dir_or_empty(&blobs)?
            .into_iter()
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                !live_blobs.contains(name)
            })
            .collect();
        // Before anything goes: an image's config may be among the dead.
        for path in &dead {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Ok(d) = format!("blake3:{name}").parse::<Digest>() {
                if self.image_by_digest(&d).is_ok() {
                    report.images_removed.push(d);
                }
            }
        }
        for path in dead {
            report.bytes_freed += fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
            report.blobs_removed += 1;
        }
        let layers = self.root.join("layers");
        for path in read_dir_or_empty(&layers)? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !live_layers.contains(name) {
                report.bytes_freed += fsutil::disk_usage(&path);
                // Rename first so that a half-removed layer never looks complete.
                let doomed = self.session()?.join(fsutil::unique_name("gc-layer"));
                fs::rename(&path, &doomed).map_err(io_err("rename", &path))?;
                remove_tree(&doomed).map_err(io_err("remove", &doomed))?;
                report.layers_removed += 1;
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use crate::digest::Digest;
    use crate::image::{media_type, Descriptor, ImageConfig};
    use crate::reference::ImageRef;
    use crate::store::{Store, StoreError};

    #[test]
    fn images_tag_resolve_untag_and_gc() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (layer, size) = store.put_blob(b"pretend tar").unwrap();
        let (orphan, _) = store.put_blob(b"nobody refers to me").unwrap();
        let diff_id = Digest::blake3_of(b"uncompressed");
        let staged = store.new_temp_dir("layer").unwrap();
        fs::create_dir(staged.join("fs")).unwrap();
        store.commit_layer_dir(&staged, &diff_id).unwrap();
        assert!(store.has_layer(&diff_id));

        let mut config = ImageConfig::scratch();
        config.rootfs.diff_ids.push(diff_id.clone());
        let m = store
            .put_image(
                &config,
                vec![Descriptor {
                    media_type: media_type::LAYER_ZSTD.into(),
                    digest: layer.clone(),
                    size,
                    annotations: Default::default(),
                }],
            )
            .unwrap();
        let r: ImageRef = "team/app:v1".parse().unwrap();
        store.tag(&r, &m).unwrap();
        assert_eq!(store.find_image("team/app:v1").unwrap().manifest_digest, m);
        assert_eq!(store.find_image(&m.hex()[..12]).unwrap().config, config);
        assert!(matches!(
            store.find_image("nope"),
            Err(StoreError::ImageNotFound { .. })
        ));

        let report = store.gc().unwrap();
        assert_eq!(report.blobs_removed, 1);
        assert!(!store.has_blob(&orphan));
        assert!(store.has_blob(&layer) && store.has_layer(&diff_id));

        assert!(store.untag(&r).unwrap());
        assert!(store.list_refs().unwrap().is_empty());
        let report = store.gc().unwrap();
        assert_eq!((report.blobs_removed, report.layers_removed), (3, 1));
        assert_eq!(report.images_removed, vec![m]);
        assert!(!dir.path().join("images/team").exists());
    }
}

//! `rbuild fsck`: check that the store keeps its invariants — every blob
//! hashes to its name, every tag reaches a whole image, every unpacked layer
//! is complete, and nothing outside `tmp/` is a temp name.

use std::fs;
use std::io;
use std::path::PathBuf;

use rayon::prelude::*;

use crate::digest::Digest;
use crate::store::marker::{self, MarkerState, MARKER};
use crate::store::Store;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A blob whose content does not hash to its name.
    CorruptBlob { digest: String, actual: String },
    /// A file in blobs/ whose name is not a digest.
    StrayBlob(PathBuf),
    /// A tag or cache entry names an image that is missing or broken.
    BrokenImage { reference: String, reason: String },
    /// An image needs a blob that is not in the store.
    MissingBlob { image: String, digest: String },
    /// A layer directory without its completion marker.
    IncompleteLayer(PathBuf),
    /// A layer directory whose marker is torn or names another layer.
    DamagedLayerMarker(PathBuf),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::CorruptBlob { digest, actual } => {
                write!(
                    f,
                    "blob {digest} is corrupt: its content hashes to {actual}"
                )
            }
            Problem::StrayBlob(p) => write!(f, "{} is not named by a digest", p.display()),
            Problem::BrokenImage { reference, reason } => write!(f, "image {reference}: {reason}"),
            Problem::MissingBlob { image, digest } => {
                write!(f, "image {image} needs blob {digest}, which is missing")
            }
            Problem::IncompleteLayer(p) => {
                write!(f, "layer {} has no completion marker", p.display())
            }
            Problem::DamagedLayerMarker(p) => write!(
                f,
                "layer {} has a damaged completion marker; it is not used (remove it, or run `rbuild gc` if no image needs it)",
                p.display()
            ),
        }
    }
}

#[derive(Debug, Default)]
pub struct FsckReport {
    pub blobs_checked: usize,
    pub images_checked: usize,
    pub layers_checked: usize,
    /// Layers published unsynced in an earlier boot: not a fault (they are
    /// unpacked again on their next use, see `layer::marker`), but not used.
    pub layers_unsynced_earlier_boot: Vec<PathBuf>,
    /// Layers published unsynced in this boot (trusted until a reboot).
    pub layers_unsynced_this_boot: usize,
    pub problems: Vec<Problem>,
}

impl FsckReport {
    pub fn is_consistent(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Check the whole store. Blobs are hashed in parallel (memory-mapped).
pub fn fsck(store: &Store) -> io::Result<FsckReport> {
    let mut report = FsckReport::default();
    let blob_dir = store.root().join("blobs/blake3");
    let blobs: Vec<PathBuf> = fs::read_dir(&blob_dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    report.blobs_checked = blobs.len();
    let blob_problems: Vec<Problem> = blobs
        .par_iter()
        .filter_map(|path| {
            let name = path.file_name()?.to_string_lossy().to_string();
            let Ok(expected) = format!("blake3:{name}").parse::<Digest>() else {
                return Some(Problem::StrayBlob(path.clone()));
            };
            let actual = match hash_file(path) {
                Ok(d) => d,
                Err(e) => {
                    return Some(Problem::CorruptBlob {
                        digest: expected.to_string(),
                        actual: format!("<unreadable: {e}>"),
                    })
                }
            };
            (actual != expected).then(|| Problem::CorruptBlob {
                digest: expected.to_string(),
                actual: actual.to_string(),
            })
        })
        .collect();
    report.problems.extend(blob_problems);

    let refs = store.list_refs().map_err(io::Error::other)?;
    for (reference, manifest) in refs {
        report.images_checked += 1;
        match store.image_by_digest(&manifest) {
            Err(e) => report.problems.push(Problem::BrokenImage {
                reference: reference.to_string(),
                reason: e.to_string(),
            }),
            Ok(image) => {
                for layer in &image.manifest.layers {
                    if !store.has_blob(&layer.digest) {
                        report.problems.push(Problem::MissingBlob {
                            image: reference.to_string(),
                            digest: layer.digest.to_string(),
                        });
                    }
                }
                if image.manifest.layers.len() != image.config.rootfs.diff_ids.len() {
                    report.problems.push(Problem::BrokenImage {
                        reference: reference.to_string(),
                        reason: format!(
                            "{} layers but {} diff ids",
                            image.manifest.layers.len(),
                            image.config.rootfs.diff_ids.len()
                        ),
                    });
                }
            }
        }
    }

    let layer_dir = store.root().join("layers");
    for entry in fs::read_dir(&layer_dir)? {
        let path = entry?.path();
        report.layers_checked += 1;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let Ok(diff_id) = format!("blake3:{name}").parse::<Digest>() else {
            // Not a layer name: whatever is in it, nothing uses it.
            if !path.join(MARKER).is_file() {
                report.problems.push(Problem::IncompleteLayer(path));
            } else {
                report.problems.push(Problem::DamagedLayerMarker(path));
            }
            continue;
        };
        match marker::state(&path, &diff_id) {
            MarkerState::Missing => report.problems.push(Problem::IncompleteLayer(path)),
            MarkerState::Damaged => report.problems.push(Problem::DamagedLayerMarker(path)),
            MarkerState::UnsyncedEarlierBoot => report.layers_unsynced_earlier_boot.push(path),
            MarkerState::UnsyncedThisBoot => report.layers_unsynced_this_boot += 1,
            MarkerState::Synced => {}
        }
    }
    Ok(report)
}

fn hash_file(path: &std::path::Path) -> io::Result<Digest> {
    let file = fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut hasher = blake3::Hasher::new();
    if len > 0 {
        // SAFETY: the blob is immutable once renamed into blobs/ (invariant 1);
        // a concurrent writer never modifies a published blob in place.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        if len > (1 << 20) {
            hasher.update_rayon(&map);
        } else {
            hasher.update(&map);
        }
    }
    Ok(Digest::from_blake3(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageConfig;

    #[test]
    fn finds_corrupt_blobs_broken_tags_and_half_layers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let m = store.put_image(&ImageConfig::scratch(), vec![]).unwrap();
        store.tag(&"ok:1".parse().unwrap(), &m).unwrap();
        let report = fsck(&store).unwrap();
        assert!(report.is_consistent(), "{:?}", report.problems);
        assert_eq!((report.blobs_checked, report.images_checked), (2, 1));

        let (bad, _) = store.put_blob(b"will be damaged").unwrap();
        fs::write(store.blob_path(&bad), b"damaged").unwrap();
        let missing = Digest::blake3_of(b"never stored");
        store.tag(&"broken:1".parse().unwrap(), &missing).unwrap();
        fs::create_dir_all(store.root().join("layers/half/fs")).unwrap();
        let report = fsck(&store).unwrap();
        assert_eq!(report.problems.len(), 3, "{:?}", report.problems);
    }

    /// Markers: a torn one is a problem; an unsynced one from an earlier
    /// boot is reported apart (not a fault, but not used); this boot's is fine.
    #[test]
    fn layer_markers_are_classified() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = |seed: &[u8], marker: &str| {
            let d = Digest::blake3_of(seed);
            let p = store.layer_dir(&d);
            fs::create_dir_all(p.join("fs")).unwrap();
            fs::write(p.join(MARKER), marker.replace("DIGEST", &d.to_string())).unwrap();
            p
        };
        let synced = layer(b"a", "DIGEST\n");
        let torn = layer(b"b", "unsynced-bo");
        let earlier = layer(
            b"c",
            "unsynced-boot 00000000-0000-0000-0000-000000000000\nDIGEST\n",
        );
        let report = fsck(&store).unwrap();
        assert_eq!(report.layers_checked, 3);
        assert_eq!(report.problems, vec![Problem::DamagedLayerMarker(torn)]);
        assert_eq!(report.layers_unsynced_earlier_boot, vec![earlier]);
        let boot = marker::boot_id().expect("/proc/sys/kernel/random/boot_id must be readable");
        fs::write(
            synced.join(MARKER),
            format!("unsynced-boot {boot}\n{}\n", Digest::blake3_of(b"a")),
        )
        .unwrap();
        assert_eq!(fsck(&store).unwrap().layers_unsynced_this_boot, 1);
    }
}

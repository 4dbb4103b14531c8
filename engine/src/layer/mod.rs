//! The layer format: a directory tree (an overlay upperdir) to a
//! content-addressed tar+zstd blob, and back into an overlay lowerdir.
//!
//! - [`write_layer`]: tree -> tar -> zstd -> blob, hashing as it streams.
//! - [`unpack_layer`] / [`unpack_image`]: blob -> `layers/<diff_id>/fs`,
//!   once, staged under the store's tmp and renamed into place whole.
//! - [`import_tarball`]: a rootfs tarball stored as-is and unpacked.
//! - [`stack`]: the lowerdir stack of an image (repeated layers, limit).
//! - [`write_tree_tar`]: any tree as a plain tar (`rbuild export`).
//! - [`unpack_stream`] / [`unpack_file`]: the confined extractor itself,
//!   for the builder's ADD of local tarballs.
//!
//! Unpacked layers are published without waiting for them to reach the
//! disk: their marker names the boot, so a crash before they are synced
//! makes them untrusted, never half-trusted ([`marker`]).

mod bodies;
mod compression;
mod creation;
mod entry;
mod error;
mod extract;
mod guard;
mod gzip;
mod limits;
mod options;
mod resolve;
mod sparse;
pub mod stack;
mod stream;
mod sys;
mod tarfmt;
mod unpack;
mod write;

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

/// The completion marker of an unpacked layer; it lives with the store's
/// layers, named here too for callers that knew it under `layer`.
pub use crate::store::marker;
pub use compression::Compression;
pub use error::LayerError;
pub use extract::{unpack_file, unpack_inflating, unpack_stream, unpack_stream_at};
pub use limits::{LimitError, UnpackLimits, ENV_MAX_BYTES, ENV_MAX_ENTRIES};
pub use options::{UnpackOptions, Unpacked};

use crate::digest::{Digest, HashingWriter};
use crate::fsutil::remove_tree;
use crate::image::{media_type, Descriptor};
use crate::store::{Image, Store, StoreError};

/// A layer blob in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// blake3 of the compressed blob (its name in the store).
    pub digest: Digest,
    /// blake3 of the uncompressed tar (the config's diff id, the unpacked layer's name).
    pub diff_id: Digest,
    pub size: u64,
    pub media_type: String,
}

impl LayerBlob {
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            annotations: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Clamp mtimes to this (SOURCE_DATE_EPOCH); `None` keeps them.
    pub source_date_epoch: Option<i64>,
    /// Also publish the tree as `layers/<diff_id>` (the builder's step
    /// result becomes the next step's lower without an unpack).
    ///
    /// The tree is MOVED into the store when it is already exactly what an
    /// unpack would give (the usual case; an overlay upperdir is in lowerdir
    /// format already) and on the store's filesystem; an empty directory is
    /// left at its path. Otherwise the blob is unpacked. Either way the tree
    /// must no longer be mounted as an upperdir.
    pub publish_unpacked: bool,
}

/// zstd level 3: most of the ratio of higher levels at several times the speed.
const ZSTD_LEVEL: i32 = 3;

/// Tree (an overlay upperdir) -> tar (overlay whiteouts as `.wh.` entries) ->
/// zstd -> blob. `Ok(None)` if the tree is empty.
pub fn write_layer(
    store: &Store,
    tree: &Path,
    opts: &WriteOptions,
) -> Result<Option<LayerBlob>, LayerError> {
    let tmp_err = |source| StoreError::Io {
        op: "write blob in",
        path: store.tmp_dir().to_path_buf(),
        source,
    };
    let blob = store.blob_writer()?;
    let mut enc = zstd::stream::write::Encoder::new(blob, ZSTD_LEVEL).map_err(tmp_err)?;
    // zstd's multi-threaded format does not depend on the worker count, so
    // the digest is the same on every machine.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    enc.multithread(workers).map_err(tmp_err)?;
    let out = BufWriter::with_capacity(1 << 20, HashingWriter::new(enc));
    let (out, walked) = write::TreeWriter::new(out, opts.source_date_epoch).write_tree(tree)?;
    if walked.entries == 0 {
        return Ok(None);
    }
    let hashing = out.into_inner().map_err(|e| tmp_err(e.into_error()))?;
    let (enc, diff_id, _) = hashing.finish();
    let blob = enc.finish().map_err(tmp_err)?;
    let (digest, size) = blob.commit()?;
    let layer = LayerBlob {
        digest,
        diff_id,
        size,
        media_type: media_type::LAYER_ZSTD.to_string(),
    };
    if opts.publish_unpacked {
        publish_tree(store, tree, &layer, walked.tree_differs)?;
    }
    Ok(Some(layer))
}

/// Any directory tree (`rbuild export`'s merged view of an image) as an
/// uncompressed tar, written as layers are: hard links (same device and
/// inode) become link entries after the first path, xattrs and owners are
/// kept, names starting with `.wh.` are refused.
pub fn write_tree_tar<W: io::Write>(tree: &Path, out: W) -> Result<W, LayerError> {
    write::TreeWriter::new(out, None)
        .write_tree(tree)
        .map(|(out, _)| out)
}

/// Make `tree` the unpacked form of `layer`: by rename when it is exact and
/// on the same filesystem, else by unpacking the blob just written.
fn publish_tree(
    store: &Store,
    tree: &Path,
    layer: &LayerBlob,
    tree_differs: bool,
) -> Result<(), LayerError> {
    if store.has_layer(&layer.diff_id) {
        return Ok(());
    }
    if !tree_differs {
        let staged = store.new_temp_dir("publish")?;
        let fs_dir = staged.join("fs");
        match fs::rename(tree, &fs_dir) {
            Ok(()) => {
                fs::create_dir(tree).map_err(LayerError::io("recreate", tree))?;
                publish(store, &staged, &layer.diff_id)?;
                return Ok(());
            }
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                let _ = remove_tree(&staged);
            }
            Err(e) => {
                let _ = remove_tree(&staged);
                return Err(LayerError::io("move into the store", tree)(e));
            }
        }
    }
    unpack_layer(store, &layer.descriptor(), &layer.diff_id).map(drop)
}

/// Publish `staged` (holding `fs/`) as the layer `diff_id`, unsynced: the
/// marker names this boot (`marker`); without a boot id the store syncs
/// it first, as the design's invariant 1 has it.
fn publish(store: &Store, staged: &Path, diff_id: &Digest) -> Result<PathBuf, LayerError> {
    Ok(store.publish_layer_dir(staged, diff_id, false)?)
}

/// Layers published unsynced at least this long ago are synced and marked
/// so at the next image unpack: the kernel writes dirty pages back after
/// 30 s (vm.dirty_expire_centisecs), so by then syncfs has little to do.
pub const SYNC_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// Unpack one layer blob into `layers/<diff_id>/fs` once; returns that path.
/// Verifies the uncompressed stream hashes to `diff_id`.
pub fn unpack_layer(
    store: &Store,
    blob: &Descriptor,
    diff_id: &Digest,
) -> Result<PathBuf, LayerError> {
    if store.has_layer(diff_id) {
        return Ok(store.layer_fs(diff_id));
    }
    if !store.has_blob(&blob.digest) {
        return Err(StoreError::BlobMissing {
            digest: blob.digest.clone(),
            root: store.root().to_path_buf(),
        }
        .into());
    }
    let staged = store.new_temp_dir("unpack")?;
    let result = (|| {
        let fs_dir = staged.join("fs");
        fs::create_dir(&fs_dir).map_err(LayerError::io("create", &fs_dir))?;
        let mut opts = UnpackOptions::layer(blob.digest.to_string());
        opts.algorithm = diff_id.algorithm();
        opts.expected_diff_id = Some(diff_id.clone());
        unpack_file(&store.blob_path(&blob.digest), &fs_dir, &opts)?;
        publish(store, &staged, diff_id)
    })();
    if result.is_err() {
        // Nothing half-unpacked stays behind (and a crash leaves it in this
        // session's tmp, which the next Store::open reaps).
        let _ = remove_tree(&staged);
    }
    result.map(|dir| dir.join("fs"))
}

/// Unpack every layer of `image` not yet unpacked, layers side by side.
/// Returns the lowerdirs bottom layer first (reverse for overlay's order).
pub fn unpack_image(store: &Store, image: &Image) -> Result<Vec<PathBuf>, LayerError> {
    let layers = &image.manifest.layers;
    let diff_ids = &image.config.rootfs.diff_ids;
    if layers.len() != diff_ids.len() {
        return Err(LayerError::LayerCountMismatch {
            image: image.manifest_digest.clone(),
            layers: layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    // Earlier unpacks' layers, long since written back: make them durable
    // (cheap now) so they survive the next reboot. Best effort: a failure
    // only leaves them to be unpacked again after a crash.
    let _ = store.sync_layers(SYNC_AFTER);
    let mut todo: Vec<(&Descriptor, &Digest)> = Vec::new();
    for (blob, diff_id) in layers.iter().zip(diff_ids) {
        if !store.has_layer(diff_id) && !todo.iter().any(|(_, d)| *d == diff_id) {
            todo.push((blob, diff_id));
        }
    }
    // Layers side by side, each into its own directory (so whiteouts stay
    // per layer: containerd #13030). At most a few at once: each holds up
    // to ~70 MB of bodies and blocks in flight.
    let width = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 4)
        .min(todo.len());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<PathBuf, LayerError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..width)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((blob, diff_id)) = todo.get(i) else {
                            return done;
                        };
                        done.push(unpack_layer(store, blob, diff_id));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("an unpack thread panicked"))
            .collect()
    });
    for r in results {
        r?;
    }
    Ok(diff_ids.iter().map(|d| store.layer_fs(d)).collect())
}

/// A rootfs tarball (plain, gzip or zstd, detected by magic) stored as a
/// blob as-is and unpacked into the store.
pub fn import_tarball(store: &Store, path: &Path) -> Result<LayerBlob, LayerError> {
    let file = File::open(path).map_err(LayerError::io("open", path))?;
    let len = file.metadata().map_err(LayerError::io("stat", path))?.len();
    let label = path.display().to_string();
    if len == 0 {
        return Err(LayerError::Corrupt {
            layer: label,
            source: io::Error::new(io::ErrorKind::UnexpectedEof, "the file is empty"),
        });
    }
    // SAFETY: read-only private mapping of a file we only read; if someone
    // rewrites it meanwhile, the digest and the parse see garbage and fail
    // or record what they saw, never undefined behaviour in safe code that
    // holds only `&[u8]` views checked by the parser.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(LayerError::io("map", path))?;
    let staged = store.new_temp_dir("import")?;
    let fs_dir = staged.join("fs");
    let result = std::thread::scope(|s| {
        // The blob's digest and its copy into the store run beside the unpack.
        let blob = s.spawn(|| -> Result<(Digest, u64), LayerError> {
            // One thread is enough (blake3 does several GB/s with SIMD) and
            // runs beside the unpack; rayon's idle spinning would cost the
            // unpack more than it saves here.
            let mut h = blake3::Hasher::new();
            h.update(&map);
            let digest = Digest::from_blake3(h.finalize());
            if !store.has_blob(&digest) {
                let tmp = store.copy_into_temp(path, "import")?;
                store.commit_blob_file(&tmp, &digest)?;
            }
            Ok((digest, len))
        });
        let unpacked = (|| {
            fs::create_dir(&fs_dir).map_err(LayerError::io("create", &fs_dir))?;
            let _ = map.advise(memmap2::Advice::Sequential);
            extract::unpack_mapped(&map, &fs_dir, &UnpackOptions::layer(&label))
        })();
        let blob = blob.join().expect("the blob thread panicked");
        Ok::<_, LayerError>((blob?, unpacked?))
    });
    let ((digest, size), unpacked) = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = remove_tree(&staged);
            return Err(e);
        }
    };
    if store.has_layer(&unpacked.diff_id) {
        let _ = remove_tree(&staged);
    } else {
        publish(store, &staged, &unpacked.diff_id)?;
    }
    Ok(LayerBlob {
        digest,
        diff_id: unpacked.diff_id,
        size,
        media_type: unpacked.compression.media_type().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    /// The layer digest must not depend on the machine's core count: zstd's
    /// multi-threaded output is the same for any number of workers >= 1.
    #[test]
    fn zstd_multithreaded_output_does_not_depend_on_worker_count() {
        let mut data = Vec::with_capacity(48 << 20);
        let mut x: u32 = 1;
        while data.len() < 48 << 20 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let word = (x >> 16) % 64;
            data.extend_from_slice(format!("w{word} ").as_bytes());
        }
        let compress = |workers: u32| {
            let mut enc = zstd::stream::write::Encoder::new(Vec::new(), super::ZSTD_LEVEL).unwrap();
            enc.multithread(workers).unwrap();
            for chunk in data.chunks(300_000) {
                enc.write_all(chunk).unwrap();
            }
            enc.finish().unwrap()
        };
        let one = compress(1);
        assert_eq!(one, compress(2));
        assert_eq!(one, compress(5));
    }
}

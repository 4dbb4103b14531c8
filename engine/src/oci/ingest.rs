//! The way in: blobs from a layout, an archive or a registry, verified
//! against their sha256 before they are committed, layers unpacked as they
//! are stored, and the image re-expressed with blake3 digests as
//! `rbuild import` stores it (blake3 blob names, blake3 diff ids).
//!
//! An image's layers are all staged (downloaded, verified, unpacked in the
//! store's session directory) before any is published, and nothing is
//! tagged until all are in place: a failure on any layer leaves no layer
//! and no image behind (only the manifest and config blobs `gc` collects).

use std::fs::{self, File};
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver};

use super::digests;
use super::{io_err, json, OciError, Result};
use crate::digest::{Algorithm, Digest, HashingWriter};
use crate::fsutil::{self, remove_tree};
use crate::image::{media_type, Descriptor, ImageConfig, Manifest};
use crate::layer::{unpack_inflating, Compression, LayerBlob, UnpackOptions};
use crate::progress::{NoProgress, Note, Phase, ProgressReader, TransferProgress};
use crate::store::Store;

/// Who watches an import, and which phase its bytes arrive in (download
/// from a registry, read from a file). Unpacking is reported as
/// [`Phase::Unpack`] under the same id.
#[derive(Clone, Copy)]
pub struct Watch<'a> {
    pub progress: &'a dyn TransferProgress,
    pub phase: Phase,
}

impl Watch<'static> {
    /// Nobody watches.
    pub fn none() -> Self {
        Watch {
            progress: &NoProgress,
            phase: Phase::Read,
        }
    }
}

/// Where an importer gets blobs from, by descriptor.
pub trait BlobFetch: Sync {
    fn fetch(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>>;

    /// How many layers to fetch and unpack at once.
    fn parallel(&self) -> usize {
        16
    }
}

/// The most layers a manifest may list: a bound on what a hostile
/// manifest makes us track, well above any real image. (Running needs at
/// most 500 *distinct* layers, overlayfs's stack limit; that is checked
/// where the stack is built, with its own clear error, so an image of
/// 600 layers, some repeated, still loads and runs.)
pub const MAX_LAYERS: usize = 4096;

/// Parse a manifest (OCI or Docker v2 schema 2) and refuse what is not an image.
pub fn parse_manifest(what: &str, bytes: &[u8]) -> Result<Manifest> {
    let m: Manifest = json(what, bytes)?;
    match m.media_type.as_deref() {
        None | Some(media_type::MANIFEST) | Some(media_type::DOCKER_MANIFEST) => {}
        Some(other) => {
            return Err(OciError::Unsupported(format!(
                "{what}: media type {other} is not an image manifest"
            )))
        }
    }
    if m.layers.len() > MAX_LAYERS {
        return Err(OciError::Unsupported(format!(
            "{what}: {} layers; rbox accepts at most {MAX_LAYERS}",
            m.layers.len()
        )));
    }
    if m.schema_version != 2 {
        return Err(OciError::Unsupported(format!(
            "{what}: schema version {} (only schema 2 manifests are supported)",
            m.schema_version
        )));
    }
    for l in &m.layers {
        if !l.media_type.contains("tar") {
            return Err(OciError::Unsupported(format!(
                "{what}: layer {} has media type {}, which is not a tar layer",
                l.digest, l.media_type
            )));
        }
    }
    Ok(m)
}

/// Import a whole image whose manifest is `manifest_bytes` (already
/// verified by the caller against its own digest, if it has one). Layers are
/// fetched, verified and unpacked side by side, [`BlobFetch::parallel`] at
/// a time. Returns the blake3 manifest digest of the stored image (untagged).
pub fn import_manifest(
    store: &Store,
    src: &dyn BlobFetch,
    manifest_bytes: &[u8],
    watch: Watch<'_>,
) -> Result<Digest> {
    let manifest = parse_manifest("manifest", manifest_bytes)?;
    let config_bytes = read_small(src, &manifest.config, "config")?;
    let config: ImageConfig = json("image config", &config_bytes)?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(OciError::Format(format!(
            "the manifest lists {} layers but the config lists {} diff ids",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        )));
    }
    let pairs: Vec<(&Descriptor, &Digest)> = manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .collect();
    // A layer listed twice is imported once.
    let mut unique: Vec<(&Descriptor, &Digest)> = Vec::with_capacity(pairs.len());
    for p in &pairs {
        if !unique
            .iter()
            .any(|u| u.0.digest == p.0.digest && u.1 == p.1)
        {
            unique.push(*p);
        }
    }
    // Every layer is staged (downloaded, verified, unpacked) before any is
    // published: a layer that fails leaves none of the image behind (the
    // staged ones are dropped, and removed, with the error).
    let staged = super::parallel::map_bounded(&unique, src.parallel(), |&(desc, diff_id)| {
        let id = desc.digest.to_string();
        if let Some(have) = stored_layer(store, &desc.digest, diff_id) {
            watch.progress.note(watch.phase, &id, &Note::Exists);
            return Ok(Layer::Stored(have));
        }
        let reader = src.fetch(desc)?;
        let layer = LayerIn {
            expected: Some(desc),
            size: None,
            diff_id,
            label: &id,
            watch,
        };
        stage_layer(store, reader, &layer).map(Layer::Staged)
    })?;
    let mut imported = Vec::with_capacity(staged.len());
    for layer in staged {
        imported.push(match layer {
            Layer::Staged(s) => s.commit(store)?,
            Layer::Stored(have) => have,
        });
    }
    let layers = pairs
        .iter()
        .map(|p| {
            let i = unique
                .iter()
                .position(|u| u.0.digest == p.0.digest && u.1 == p.1)
                .expect("every layer is in the unique list");
            imported[i].clone()
        })
        .collect();
    finish_image(store, config, layers)
}

/// A layer of an image being imported: already in the store, or staged.
enum Layer {
    Stored(LayerBlob),
    Staged(StagedLayer),
}

/// Fetch a small blob (config, manifest) whole and verify it.
pub fn read_small(src: &dyn BlobFetch, desc: &Descriptor, what: &str) -> Result<Vec<u8>> {
    const LIMIT: u64 = 16 << 20;
    if desc.size > LIMIT {
        return Err(OciError::Format(format!(
            "{what} {} claims {} bytes; refusing more than {LIMIT}",
            desc.digest, desc.size
        )));
    }
    let mut bytes = Vec::new();
    src.fetch(desc)?
        .take(LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| OciError::Format(format!("{what} {}: read failed: {e}", desc.digest)))?;
    super::verify_bytes(&format!("{what} {}", desc.digest), &bytes, &desc.digest)?;
    if bytes.len() as u64 != desc.size {
        return Err(OciError::SizeMismatch {
            what: format!("{what} {}", desc.digest),
            expected: desc.size,
            actual: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// A layer we already hold, known by its sha256 blob digest and diff id.
pub fn stored_layer(store: &Store, blob_sha: &Digest, diff_sha: &Digest) -> Option<LayerBlob> {
    let digest = digests::blob_by_sha256(store, blob_sha)?;
    let diff_id = digests::layer_by_sha256_diff_id(store, diff_sha)?;
    let path = store.blob_path(&digest);
    let size = fs::metadata(&path).ok()?.len();
    let mut head = [0u8; 8];
    let n = File::open(&path).ok()?.read(&mut head).ok()?;
    let compression = Compression::detect(&head[..n]).ok()?;
    Some(LayerBlob {
        digest,
        diff_id,
        size,
        media_type: compression.media_type().to_string(),
    })
}

/// One layer as its source describes it: what the blob and its tar must
/// hash to, and how to name and report it.
#[derive(Clone, Copy)]
pub struct LayerIn<'a> {
    /// The descriptor the source states (registry, layout): the blob's
    /// sha256 and size are checked against it.
    pub expected: Option<&'a Descriptor>,
    /// The blob's length when the source knows it without a descriptor (a
    /// file member); it only feeds progress.
    pub size: Option<u64>,
    /// The config's diff id: the uncompressed tar is checked against it.
    pub diff_id: &'a Digest,
    /// Names the layer in progress and errors.
    pub label: &'a str,
    pub watch: Watch<'a>,
}

/// Stream one layer blob into the store: copied to a temp file while its
/// sha256 (checked against `layer.expected`, when the source states one)
/// and blake3 are computed, unpacked beside the copy while the uncompressed
/// sha256 is checked against `layer.diff_id`, and only then committed,
/// blob and layer.
pub fn ingest_layer(store: &Store, reader: impl Read, layer: &LayerIn<'_>) -> Result<LayerBlob> {
    stage_layer(store, reader, layer)?.commit(store)
}

/// A layer downloaded, verified and unpacked into the store's session
/// directory, not yet published: [`StagedLayer::commit`] moves blob and
/// tree into place; dropped uncommitted, both are removed. An image's
/// layers are all staged before any is committed, so a pull that fails on
/// one layer publishes none.
pub struct StagedLayer {
    blob: std::path::PathBuf,
    tree: std::path::PathBuf,
    blake3: Digest,
    sha256: Digest,
    size: u64,
    layer_b3: Digest,
    /// The config's diff id when it is sha256 (recorded on commit).
    diff_sha256: Option<Digest>,
    compression: Compression,
    label: String,
    /// Published: nothing to remove on drop.
    committed: bool,
}

impl StagedLayer {
    /// Publish the blob and the unpacked tree (a tree someone else
    /// published meanwhile is kept and ours dropped).
    pub fn commit(mut self, store: &Store) -> Result<LayerBlob> {
        store.commit_blob_file(&self.blob, &self.blake3)?;
        digests::record_blob(store, &self.blake3, &self.sha256)?;
        if store.has_layer(&self.layer_b3) {
            remove_tree(&self.tree).map_err(io_err("remove", &self.tree))?;
        } else {
            // Published unsynced, as `unpack_layer` publishes: its marker
            // names this boot, so after a crash the tree is not trusted
            // and is unpacked again from the (durable) blob; the next
            // unpack or `rbuild gc` syncs it once written back
            // (store::marker). Waiting here for the writeback of the whole
            // tree was the largest part of a load.
            store.publish_layer_dir(&self.tree, &self.layer_b3, false)?;
        }
        if let Some(d) = &self.diff_sha256 {
            digests::record_diff_id(store, &self.layer_b3, d)?;
        }
        self.committed = true;
        Ok(LayerBlob {
            digest: self.blake3.clone(),
            diff_id: self.layer_b3.clone(),
            size: self.size,
            media_type: self.compression.media_type().to_string(),
        })
    }
}

impl Drop for StagedLayer {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.blob);
            let _ = remove_tree(&self.tree);
        }
    }
}

impl std::fmt::Debug for StagedLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StagedLayer({} -> {})", self.label, self.layer_b3)
    }
}

/// [`ingest_layer`] up to, not including, publishing: the blob verified
/// against `layer.expected` and the tree against `layer.diff_id`, both
/// still in the session directory.
pub fn stage_layer(store: &Store, reader: impl Read, layer: &LayerIn<'_>) -> Result<StagedLayer> {
    let LayerIn {
        expected,
        size,
        diff_id,
        label,
        watch,
    } = *layer;
    let tmp = store.tmp_dir().join(fsutil::unique_name("ingest"));
    let staged = store.new_temp_dir("ingest-layer")?;
    let progress = watch.progress;
    progress.start(watch.phase, label, expected.map(|d| d.size).or(size));
    let mut reader = ProgressReader::new(reader, progress, watch.phase, label);
    let result = (|| {
        let file = File::create(&tmp).map_err(io_err("create", &tmp))?;
        let file = fsutil::EagerWriteback::new(file);
        let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 20, file)).with_sha256();
        // The unpacker runs beside the download, fed by a bounded channel:
        // the layer is ready when its last byte arrives. What it unpacked
        // stays in `staged` until the blob's digest is checked.
        let (tx, rx) = sync_channel::<io::Result<Vec<u8>>>(32);
        let (downloaded, unpacked) = std::thread::scope(|s| {
            let staged = &staged;
            let unpacker = s.spawn(move || {
                let input = ChannelReader {
                    rx,
                    chunk: Vec::new(),
                    pos: 0,
                };
                unpack_checked(input, staged, diff_id, label, progress)
            });
            let downloaded = (|| -> io::Result<()> {
                let mut buf = vec![0u8; 256 << 10];
                let mut feeding = true;
                loop {
                    let n = match reader.read(&mut buf) {
                        Ok(0) => return Ok(()),
                        Ok(n) => n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    };
                    w.write_all(&buf[..n])?;
                    // If the unpacker gave up, its error is reported after
                    // the blob's digest, which needs the whole blob.
                    feeding = feeding && tx.send(Ok(buf[..n].to_vec())).is_ok();
                }
            })();
            drop(tx);
            (
                downloaded,
                unpacker.join().expect("the unpack thread panicked"),
            )
        });
        downloaded.map_err(|e| {
            OciError::Format(format!(
                "layer {label}: download or read failed: {e} (the source broke off; nothing of this layer was kept: try again)"
            ))
        })?;
        progress.finish(watch.phase, label);
        let size = w.written();
        let (buf, blake3, sha) = w.finish();
        let sha = sha.expect("sha256 requested");
        let file = buf
            .into_inner()
            .map_err(|e| io_err("write", &tmp)(e.into_error()))?
            .into_inner();
        if let Some(desc) = expected {
            if desc.digest != sha {
                return Err(OciError::DigestMismatch {
                    what: format!("layer {label}"),
                    expected: desc.digest.clone(),
                    actual: sha,
                });
            }
            if desc.size != size {
                return Err(OciError::SizeMismatch {
                    what: format!("layer {label}"),
                    expected: desc.size,
                    actual: size,
                });
            }
        }
        file.sync_all().map_err(io_err("fsync", &tmp))?;
        let (layer_b3, compression) = unpacked?;
        progress.finish(Phase::Unpack, label);
        Ok((blake3, sha, size, layer_b3, compression))
    })();
    match result {
        Ok((blake3, sha256, size, layer_b3, compression)) => Ok(StagedLayer {
            blob: tmp,
            tree: staged,
            blake3,
            sha256,
            size,
            layer_b3,
            diff_sha256: (diff_id.algorithm() == Algorithm::Sha256).then(|| diff_id.clone()),
            compression,
            label: label.to_string(),
            committed: false,
        }),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            let _ = remove_tree(&staged);
            Err(e)
        }
    }
}

/// The reading end of a channel of chunks (the download, the inflated
/// tar): EOF when the sender is gone; an error sent is returned as is.
struct ChannelReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
}

impl BufRead for ChannelReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(c)) => {
                    self.chunk = c;
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(&[]),
            }
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.chunk.len());
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = buf.len().min(avail.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// Unpack a blob stream into `staged/fs`, checking the uncompressed stream against
/// `diff_id` (sha256 from outside). Returns the blake3 diff id.
fn unpack_checked(
    input: impl BufRead + Send,
    staged: &Path,
    diff_id: &Digest,
    label: &str,
    progress: &dyn TransferProgress,
) -> Result<(Digest, Compression)> {
    let fs_dir = staged.join("fs");
    fs::create_dir(&fs_dir).map_err(io_err("create", &fs_dir))?;
    progress.start(Phase::Unpack, label, None);
    // Inflate and the tar's sha256 run on a thread of their own, a few MiB
    // ahead of the parser (which writes the files), whose blocks the
    // parser reads in place: a gzip layer's inflate overlaps its writes
    // instead of adding to them. Both digests of the tar are compared
    // below, so gzip's CRC-32 is not computed.
    let (unpacked, sha) = unpack_inflating(
        input,
        &fs_dir,
        &UnpackOptions::layer(label),
        diff_id.algorithm() == Algorithm::Sha256,
        |n| progress.advance(Phase::Unpack, label, n),
    )?;
    let actual = match diff_id.algorithm() {
        Algorithm::Sha256 => sha.ok_or_else(|| {
            OciError::Format(format!("layer {label}: the inflate thread stopped early"))
        })?,
        Algorithm::Blake3 => unpacked.diff_id.clone(),
    };
    if &actual != diff_id {
        return Err(OciError::DigestMismatch {
            what: format!("layer {label} (uncompressed, the config's diff id)"),
            expected: diff_id.clone(),
            actual,
        });
    }
    Ok((unpacked.diff_id, unpacked.compression))
}

/// Store the image: config re-expressed with blake3 diff ids, manifest with
/// blake3 blob digests. Returns the manifest digest.
pub fn finish_image(
    store: &Store,
    mut config: ImageConfig,
    layers: Vec<LayerBlob>,
) -> Result<Digest> {
    config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
    let descriptors = layers.iter().map(LayerBlob::descriptor).collect();
    Ok(store.put_image(&config, descriptors)?)
}

/// Write `bytes` to `dest` atomically with mode 0600 (credentials),
/// through a random O_EXCL temp name beside it ([`crate::outfile`]).
pub(crate) fn write_private(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut out = crate::outfile::OutputFile::create_mode(dest, 0o600)?;
    out.file().write_all(bytes)?;
    out.commit()
}

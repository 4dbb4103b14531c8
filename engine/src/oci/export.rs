//! An image re-expressed for the outside: sha256 everywhere, the config's
//! diff ids those of the uncompressed tars, layers optionally recompressed.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use super::digests::{self, blob_sha256, diff_id_sha256};
use super::{io_err, OciError, Result};
use crate::digest::{Digest, HashingWriter};
use crate::fsutil;
use crate::image::{media_type, Descriptor, ImageConfig, Manifest};
use crate::layer::Compression;
use crate::store::{Image, Store};

/// Layer compression of what leaves the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExportCompression {
    /// As stored (zstd for our own layers).
    #[default]
    Keep,
    Zstd,
    /// For clients that read only tar+gzip (Docker before 23, old registries' scanners).
    Gzip,
}

impl std::str::FromStr for ExportCompression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "keep" => Ok(ExportCompression::Keep),
            "zstd" => Ok(ExportCompression::Zstd),
            "gzip" => Ok(ExportCompression::Gzip),
            _ => Err(format!("unknown compression {s:?} (expected zstd or gzip)")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExportedLayer {
    /// sha256 descriptor of the blob as it leaves.
    pub descriptor: Descriptor,
    /// The file holding exactly those bytes (a store blob, or a recompressed
    /// temp file in the store's session tmp).
    pub path: PathBuf,
    /// sha256 of the uncompressed tar.
    pub diff_id: Digest,
    /// The stored blob (blake3) and diff id it came from.
    pub source_blob: Digest,
}

#[derive(Debug, Clone)]
pub struct ExportedImage {
    pub manifest: Vec<u8>,
    pub manifest_descriptor: Descriptor,
    pub config: Vec<u8>,
    pub config_descriptor: Descriptor,
    pub image_config: ImageConfig,
    pub layers: Vec<ExportedLayer>,
}

/// Re-express `image` with sha256 digests. Digests of stored blobs come from
/// the sha256 index (computed once); recompressed layers are written to the
/// store's session tmp and vanish with it.
pub fn export_image(
    store: &Store,
    image: &Image,
    compression: ExportCompression,
) -> Result<ExportedImage> {
    let diff_ids = &image.config.rootfs.diff_ids;
    if diff_ids.len() != image.manifest.layers.len() {
        return Err(OciError::Format(format!(
            "image {}: manifest lists {} layers but the config lists {} diff ids (try: rbuild fsck)",
            image.manifest_digest,
            image.manifest.layers.len(),
            diff_ids.len()
        )));
    }
    let results: Vec<Result<ExportedLayer>> = std::thread::scope(|s| {
        let handles: Vec<_> = image
            .manifest
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(desc, diff_id)| s.spawn(move || export_layer(store, desc, diff_id, compression)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an export thread panicked"))
            .collect()
    });
    let layers = results.into_iter().collect::<Result<Vec<_>>>()?;

    let mut config = image.config.clone();
    config.rootfs.diff_ids = layers.iter().map(|l| l.diff_id.clone()).collect();
    let config_bytes = serde_json::to_vec(&config).expect("image config serialises");
    let config_descriptor = Descriptor {
        media_type: media_type::CONFIG.to_string(),
        digest: Digest::sha256_of(&config_bytes),
        size: config_bytes.len() as u64,
        annotations: Default::default(),
    };
    let mut manifest = Manifest::new(
        config_descriptor.clone(),
        layers.iter().map(|l| l.descriptor.clone()).collect(),
    );
    manifest.annotations = image.manifest.annotations.clone();
    let manifest_bytes = serde_json::to_vec(&manifest).expect("manifest serialises");
    let manifest_descriptor = Descriptor {
        media_type: media_type::MANIFEST.to_string(),
        digest: Digest::sha256_of(&manifest_bytes),
        size: manifest_bytes.len() as u64,
        annotations: Default::default(),
    };
    Ok(ExportedImage {
        manifest: manifest_bytes,
        manifest_descriptor,
        config: config_bytes,
        config_descriptor,
        image_config: config,
        layers,
    })
}

fn stored_compression(store: &Store, blob: &Digest) -> Result<Compression> {
    use std::io::Read;
    let path = store.blob_path(blob);
    let mut head = [0u8; 8];
    let n = File::open(&path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(io_err("read", &path))?;
    Compression::detect(&head[..n]).map_err(|m| OciError::Format(format!("blob {blob}: {m}")))
}

fn export_layer(
    store: &Store,
    desc: &Descriptor,
    diff_id: &Digest,
    want: ExportCompression,
) -> Result<ExportedLayer> {
    let have = stored_compression(store, &desc.digest)?;
    let target = match want {
        ExportCompression::Keep => have,
        ExportCompression::Zstd => Compression::Zstd,
        ExportCompression::Gzip => Compression::Gzip,
    };
    let diff_sha = diff_id_sha256(store, &desc.digest, diff_id)?;
    if target == have {
        let sha = blob_sha256(store, &desc.digest)?;
        let path = store.blob_path(&desc.digest);
        return Ok(ExportedLayer {
            descriptor: Descriptor {
                media_type: have.media_type().to_string(),
                digest: sha,
                size: desc.size,
                annotations: Default::default(),
            },
            path,
            diff_id: diff_sha,
            source_blob: desc.digest.clone(),
        });
    }
    let tmp = store.tmp_dir().join(fsutil::unique_name("recompress"));
    let file = File::create(&tmp).map_err(io_err("create", &tmp))?;
    let hashing = HashingWriter::new(BufWriter::with_capacity(1 << 20, file)).with_sha256();
    let (hashing, size) = match target {
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(hashing, flate2::Compression::new(6));
            digests::decompress_blob(store, &desc.digest, &mut enc)?;
            let h = enc.finish().map_err(io_err("write", &tmp))?;
            let n = h.written();
            (h, n)
        }
        Compression::Zstd => {
            let mut enc =
                zstd::stream::write::Encoder::new(hashing, 3).map_err(io_err("write", &tmp))?;
            digests::decompress_blob(store, &desc.digest, &mut enc)?;
            let h = enc.finish().map_err(io_err("write", &tmp))?;
            let n = h.written();
            (h, n)
        }
        Compression::None => {
            let mut h = hashing;
            digests::decompress_blob(store, &desc.digest, &mut h)?;
            let n = h.written();
            (h, n)
        }
    };
    let (mut buf, _, sha) = hashing.finish();
    buf.flush().map_err(io_err("write", &tmp))?;
    Ok(ExportedLayer {
        descriptor: Descriptor {
            media_type: target.media_type().to_string(),
            digest: sha.expect("sha256 requested"),
            size,
            annotations: Default::default(),
        },
        path: tmp,
        diff_id: diff_sha,
        source_blob: desc.digest.clone(),
    })
}

/// Open an exported layer's bytes.
pub fn open_layer(layer: &ExportedLayer) -> Result<File> {
    File::open(&layer.path).map_err(io_err("open", &layer.path))
}

/// Copy an exported layer's uncompressed tar to `out` (docker-archive).
pub fn write_uncompressed(
    store: &Store,
    layer: &ExportedLayer,
    out: &mut dyn io::Write,
) -> Result<()> {
    digests::decompress_blob(store, &layer.source_blob, out).map(drop)
}

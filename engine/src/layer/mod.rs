//! The layer format: a directory tree (an overlay upperdir) to a
//! content-addressed tar+zstd blob, and back into an overlay lowerdir.
//!
//! API CONTRACT (other crates code against these signatures; the bodies are
//! being written):

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::image::Descriptor;
use crate::store::{Image, Store};

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("not implemented yet: {0}")]
    Unimplemented(&'static str),
}

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
    /// Also unpack-publish the tree as `layers/<diff_id>` (the builder's
    /// step result becomes the next step's lower without an unpack).
    pub publish_unpacked: bool,
}

/// Tree (an overlay upperdir) -> tar (overlay whiteouts as `.wh.` entries) ->
/// zstd -> blob. `Ok(None)` if the tree is empty.
pub fn write_layer(
    _store: &Store,
    _tree: &Path,
    _opts: &WriteOptions,
) -> Result<Option<LayerBlob>, LayerError> {
    Err(LayerError::Unimplemented("write_layer"))
}

/// Unpack one layer blob into `layers/<diff_id>/fs` once; returns that path.
/// Verifies the uncompressed stream hashes to `diff_id`.
pub fn unpack_layer(
    _store: &Store,
    _blob: &Descriptor,
    _diff_id: &Digest,
) -> Result<PathBuf, LayerError> {
    Err(LayerError::Unimplemented("unpack_layer"))
}

/// Unpack every layer of `image` not yet unpacked, layers side by side.
/// Returns the lowerdirs bottom layer first (reverse for overlay's order).
pub fn unpack_image(_store: &Store, _image: &Image) -> Result<Vec<PathBuf>, LayerError> {
    Err(LayerError::Unimplemented("unpack_image"))
}

/// A rootfs tarball (plain, gzip or zstd, detected by magic) stored as a
/// blob as-is and unpacked into the store.
pub fn import_tarball(_store: &Store, _path: &Path) -> Result<LayerBlob, LayerError> {
    Err(LayerError::Unimplemented("import_tarball"))
}

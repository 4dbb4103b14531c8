//! A container's upper dir becoming the next layer of an image: what a
//! build's RUN step does (rbuild) and what `rrun commit` does, one path
//! for both. The upper dir is written as a layer blob
//! ([`crate::layer::write_layer`]: overlay whiteouts become `.wh.`
//! entries), then the layer and a history entry are appended to the
//! image's config and manifest layers ([`append_layer`]).

use std::path::Path;

use crate::image::{now_rfc3339, Descriptor, History, ImageConfig};
use crate::layer::{LayerBlob, LayerError, WriteOptions};
use crate::store::Store;

/// What happens to the upper dir once it is a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upper {
    /// Moved into the store as the unpacked layer (a build step's upper,
    /// thrown away next): the next step uses it without an unpack.
    Publish,
    /// Left where it is (a container that goes on living: `rrun commit`).
    Keep,
}

/// `SOURCE_DATE_EPOCH` clamps layer mtimes, for reproducible builds.
pub fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok()?.parse().ok()
}

/// The upper dir as a layer in the store; `None` if it holds nothing.
pub fn snapshot_upper(
    store: &Store,
    upper: &Path,
    then: Upper,
) -> Result<Option<LayerBlob>, LayerError> {
    let opts = WriteOptions {
        source_date_epoch: source_date_epoch(),
        publish_unpacked: then == Upper::Publish,
    };
    crate::layer::write_layer(store, upper, &opts)
}

/// Append `layer` (if any: `None` is a metadata-only step) to the image
/// and record it in the history as made by `created_by`.
pub fn append_layer(
    config: &mut ImageConfig,
    layers: &mut Vec<Descriptor>,
    layer: Option<LayerBlob>,
    created_by: String,
    comment: String,
) {
    let empty_layer = layer.is_none();
    if let Some(l) = layer {
        config.rootfs.diff_ids.push(l.diff_id.clone());
        layers.push(l.descriptor());
    }
    let created = now_rfc3339();
    config.created = Some(created.clone());
    config.history.push(History {
        created: Some(created),
        created_by: Some(created_by),
        comment: Some(comment),
        empty_layer,
    });
}

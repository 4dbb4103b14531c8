//! What can go wrong writing or unpacking a layer. Every variant names the
//! layer (its digest, or the tarball's path) and, where there is one, the
//! entry, so that a refusal reads like
//! `layer blake3:…: entry "../../etc/passwd" escapes the layer root`.

use std::io;
use std::path::PathBuf;

use super::limits::LimitError;
use crate::digest::Digest;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A `..` component, or a path that would resolve outside the root.
    #[error("layer {layer}: entry {entry:?} escapes the layer root (the layer is hostile or corrupt; nothing was kept)")]
    Escapes { layer: String, entry: String },

    /// A path component of the entry is a symlink (or not a directory):
    /// writing through it could land anywhere, so it is refused.
    #[error("layer {layer}: entry {entry:?} would be written through a symlink or non-directory ({detail}); refused")]
    ThroughSymlink {
        layer: String,
        entry: String,
        detail: String,
    },

    /// An entry the unpacker refuses for a stated reason (hard link to a
    /// path not in this layer, `.` as a symlink, whiteout clashes, ...).
    #[error("layer {layer}: entry {entry:?}: {reason}")]
    Refused {
        layer: String,
        entry: String,
        reason: String,
    },

    /// A system call on an entry failed.
    #[error("layer {layer}: entry {entry:?}: {op}: {source}")]
    EntryIo {
        layer: String,
        entry: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },

    /// The compressed or tar stream is damaged or ends early.
    #[error("layer {layer}: corrupt or truncated stream: {source} (the blob is damaged: re-import or re-pull it)")]
    Corrupt {
        layer: String,
        #[source]
        source: io::Error,
    },

    /// A tar header the unpacker will not follow: one that would make the
    /// parser allocate what it claims (an extension body over 1 MiB, a
    /// sparse map of thousands of blocks), or that it cannot read.
    #[error(
        "layer {layer}: refused: {source} (a decompression or memory bomb, or a damaged blob)"
    )]
    HeaderRefused {
        layer: String,
        #[source]
        source: io::Error,
    },

    #[error("layer {layer}: uncompressed content hashes to {actual}, but the image says its diff id is {expected} (the blob or the image config is corrupt)")]
    DiffIdMismatch {
        layer: String,
        expected: Digest,
        actual: Digest,
    },

    /// The layer expands past one of its limits (`limits`): a
    /// decompression bomb, or a genuine layer bigger than they allow.
    #[error("layer {layer}: entry {entry:?}: {what} exceeds the limit of {limit} (refused as a possible decompression bomb; if the layer is genuine, raise the limit with {env}=<n>)")]
    LimitExceeded {
        layer: String,
        entry: String,
        what: &'static str,
        /// As shown: `64 GiB (68719476736 bytes)`, `2097152 entries`.
        limit: String,
        env: &'static str,
    },

    #[error(transparent)]
    Limit(#[from] LimitError),

    #[error(
        "image {image}: manifest lists {layers} layers but the config lists {diff_ids} diff ids"
    )]
    LayerCountMismatch {
        image: Digest,
        layers: usize,
        diff_ids: usize,
    },

    /// A file-system operation outside any single entry (opening the blob,
    /// walking the tree to write, staging directories).
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error(transparent)]
    Store(#[from] StoreError),
}

impl LayerError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> LayerError {
        let path = path.into();
        move |source| LayerError::Io { op, path, source }
    }
}

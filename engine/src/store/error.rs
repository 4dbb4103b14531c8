//! What can go wrong in the store: one error type for all of its parts.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::reference::ReferenceError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image {reference:?} not found in {root} (try: rbuild images)")]
    ImageNotFound { reference: String, root: PathBuf },
    #[error("blob {digest} is missing from {root} (try: rbuild fsck)")]
    BlobMissing { digest: Digest, root: PathBuf },
    #[error("blob {digest} is corrupt: its content hashes to {actual} (try: rbuild fsck)")]
    BlobCorrupt { digest: Digest, actual: Digest },
    #[error("{what} {digest}: invalid JSON: {source}")]
    Json {
        what: &'static str,
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("store {root} uses digest {digest}, but the store keeps only blake3 digests")]
    ForeignDigest { root: PathBuf, digest: Digest },
    /// A world-writable store root: a shared directory such as /tmp.
    #[error("store root {path} is writable by every user (mode {mode:o}): a store needs a directory of its own (e.g. {path}/rbox), which is made private to root")]
    SharedRoot { path: PathBuf, mode: u32 },
    /// A store directory another user owns could be replaced under us.
    #[error("store directory {path} is owned by uid {owner}, not by this user (uid {euid}): another user could replace what it holds; refusing to use it")]
    NotOurs {
        path: PathBuf,
        owner: u32,
        euid: u32,
    },
    /// Rootless (crate::rootless): a store of an id this user namespace
    /// does not map, root's for one.
    #[error("store directory {path} belongs to another user (its owner is {owner}): rootless rbox uses only its user's stores (by default $XDG_DATA_HOME/rbox, ~/.local/share/rbox)")]
    NotOursRootless { path: PathBuf, owner: String },
    /// Names the store file being written first: on a full disk that is
    /// the path that matters, not the source.
    #[error("copy into the store at {to} (from {from}): {source}")]
    CopyIn {
        to: PathBuf,
        from: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(super) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

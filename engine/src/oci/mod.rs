//! OCI interop: what crosses the store's border.
//!
//! Inside, everything is blake3; outside, OCI tools accept only sha256. So:
//!
//! - [`digests`]: the sha256 of every blob and diff id that ever leaves or
//!   enters, kept beside the blake3 one so it is computed once;
//! - [`export`]: an image re-expressed with sha256 digests (config diff ids,
//!   manifest descriptors), layers optionally recompressed (gzip for old clients);
//! - [`ingest`]: the way in: blobs verified against their sha256 before they
//!   are committed, layers unpacked as they are stored, the image re-expressed
//!   with blake3 digests exactly as `rbuild import` stores it;
//! - [`layout`] (OCI image layout directories and tarballs), [`archive`]
//!   (`docker save` tarballs), [`flatten`] (`rbuild export`), [`registry`]
//!   (the distribution spec: pull, push, login), [`sources`] (which
//!   repositories hold a blob, for automatic cross-repository mounts).

pub mod archive;
pub mod digests;
pub mod export;
pub mod flatten;
pub mod ingest;
pub mod layout;
pub mod parallel;
pub mod registry;
pub mod sources;
pub mod tarindex;

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::layer::LayerError;
use crate::store::StoreError;

pub use export::{ExportCompression, ExportedImage};

/// Annotation OCI layouts name their images by (we write the tag there, as skopeo does).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd and `docker save` (25+) write the full name in.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{what}: content hashes to {actual}, but {expected} was expected (the source is corrupt or was tampered with; nothing of it was stored)")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error(
        "{what}: {actual} bytes, but the descriptor says {expected} (nothing of it was stored)"
    )]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what}: invalid JSON: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Format(String),
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Layer(#[from] LayerError),
}

pub type Result<T, E = OciError> = std::result::Result<T, E>;

pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(io::Error) -> OciError {
    let path = path.into();
    move |source| OciError::Io { op, path, source }
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|source| OciError::Json {
        what: what.to_string(),
        source,
    })
}

/// Check `bytes` against a sha256 (or blake3) digest.
pub(crate) fn verify_bytes(what: &str, bytes: &[u8], expected: &Digest) -> Result<()> {
    let actual = match expected.algorithm() {
        crate::digest::Algorithm::Sha256 => Digest::sha256_of(bytes),
        crate::digest::Algorithm::Blake3 => Digest::blake3_of(bytes),
    };
    if &actual != expected {
        return Err(OciError::DigestMismatch {
            what: what.to_string(),
            expected: expected.clone(),
            actual,
        });
    }
    Ok(())
}

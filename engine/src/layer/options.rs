//! What an unpack is asked to do ([`UnpackOptions`]) and what it did
//! ([`Unpacked`]): shared by the entry points, the stream readers and the
//! unpacker itself.

use super::compression::Compression;
use super::limits::UnpackLimits;
use crate::digest::{Algorithm, Digest};

#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// Names the layer in errors: its blob digest, or a tarball's path.
    pub label: String,
    /// Turn `.wh.NAME` into overlay whiteouts and `.wh..wh..opq` into the
    /// opaque xattr (layers); `false` keeps them as files (ADD of a tarball).
    pub whiteouts: bool,
    /// The algorithm of the returned diff id.
    pub algorithm: Algorithm,
    /// The diff id the stream must hash to: the unpack fails with
    /// `DiffIdMismatch` otherwise. Given one, zstd's own frame checksum is
    /// not computed (the digest of the whole stream already covers it).
    pub expected_diff_id: Option<Digest>,
    /// How big the layer may expand; `None`: the defaults, or what the
    /// environment sets (`RBOX_MAX_LAYER_BYTES`, `RBOX_MAX_LAYER_ENTRIES`).
    pub limits: Option<UnpackLimits>,
    /// Owner given to every entry instead of the one the tar records
    /// (`rrun cp` without `-a`: the receiving side's user); `None` keeps
    /// the tar's.
    pub owner: Option<(u32, u32)>,
}

impl UnpackOptions {
    /// For a layer: whiteouts converted, blake3 diff id.
    pub fn layer(label: impl Into<String>) -> UnpackOptions {
        UnpackOptions {
            label: label.into(),
            whiteouts: true,
            algorithm: Algorithm::Blake3,
            expected_diff_id: None,
            limits: None,
            owner: None,
        }
    }

    /// For a plain tarball extracted into a tree (ADD): no whiteout magic.
    pub fn plain(label: impl Into<String>) -> UnpackOptions {
        UnpackOptions {
            whiteouts: false,
            ..UnpackOptions::layer(label)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// Digest of the uncompressed tar stream.
    pub diff_id: Digest,
    pub compression: Compression,
    /// Entries applied (extension headers not counted).
    pub entries: u64,
    /// Bytes of the uncompressed stream.
    pub tar_size: u64,
}

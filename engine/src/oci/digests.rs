//! sha256 beside blake3 (docs/ARCHITECTURE.md, "The store"): computed once per blob
//! and per diff id, then looked up.
//!
//! ```text
//! blobs/sha256-index/blob/<blake3 hex>      sha256 of the blob's bytes
//! blobs/sha256-index/blob-rev/<sha256 hex>  blake3 of that blob
//! blobs/sha256-index/diff/<blake3 hex>      sha256 of the layer's uncompressed tar
//! blobs/sha256-index/diff-rev/<sha256 hex>  blake3 diff id of that tar
//! ```
//!
//! Entries are written atomically (not durably: one lost in a crash reads
//! as absent) and only ever state facts about content,
//! so a stale entry (its blob collected) is harmless: readers check the blob
//! or layer exists before trusting a reverse entry.

use std::fs::{self, File};
use std::io;
use std::path::PathBuf;

use sha2::Digest as _;

use super::{io_err, Result};
use crate::digest::{Algorithm, Digest};
use crate::fsutil::write_replace;
use crate::layer::Compression;
use crate::store::Store;

#[derive(Clone, Copy)]
enum Kind {
    Blob,
    BlobRev,
    Diff,
    DiffRev,
}

fn entry_path(store: &Store, kind: Kind, key: &Digest) -> PathBuf {
    let sub = match kind {
        Kind::Blob => "blob",
        Kind::BlobRev => "blob-rev",
        Kind::Diff => "diff",
        Kind::DiffRev => "diff-rev",
    };
    store
        .root()
        .join("blobs/sha256-index")
        .join(sub)
        .join(key.hex())
}

fn lookup(store: &Store, kind: Kind, key: &Digest) -> Option<Digest> {
    fs::read_to_string(entry_path(store, kind, key))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn record(store: &Store, kind: Kind, key: &Digest, value: &Digest) -> Result<()> {
    let path = entry_path(store, kind, key);
    let dir = path.parent().expect("index path has a parent");
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    // Not fsynced: an entry lost or left empty by a crash reads as absent
    // (`lookup` parses it), which costs a re-download at worst; fsyncing
    // four entries per layer was most of the commit of a pull.
    write_replace(store.tmp_dir(), &path, format!("{value}\n").as_bytes())
        .map_err(io_err("write", &path))
}

/// Remember that blob `blake3` has sha256 `sha256` (both directions).
pub fn record_blob(store: &Store, blake3: &Digest, sha256: &Digest) -> Result<()> {
    record(store, Kind::Blob, blake3, sha256)?;
    record(store, Kind::BlobRev, sha256, blake3)
}

/// Remember that the layer with blake3 diff id `blake3` has sha256 diff id `sha256`.
pub fn record_diff_id(store: &Store, blake3: &Digest, sha256: &Digest) -> Result<()> {
    record(store, Kind::Diff, blake3, sha256)?;
    record(store, Kind::DiffRev, sha256, blake3)
}

/// The stored blob whose sha256 is `sha256`, if we have it.
pub fn blob_by_sha256(store: &Store, sha256: &Digest) -> Option<Digest> {
    lookup(store, Kind::BlobRev, sha256).filter(|b3| store.has_blob(b3))
}

/// The unpacked layer whose uncompressed tar has sha256 `sha256`, if we have it.
pub fn layer_by_sha256_diff_id(store: &Store, sha256: &Digest) -> Option<Digest> {
    lookup(store, Kind::DiffRev, sha256).filter(|b3| store.has_layer(b3))
}

/// sha256 of a stored blob (blake3 `digest`), from the index or computed once.
pub fn blob_sha256(store: &Store, digest: &Digest) -> Result<Digest> {
    if digest.algorithm() == Algorithm::Sha256 {
        return Ok(digest.clone());
    }
    if let Some(d) = lookup(store, Kind::Blob, digest) {
        return Ok(d);
    }
    let path = store.blob_path(digest);
    let mut f = File::open(&path).map_err(io_err("open", &path))?;
    let mut h = sha2::Sha256::new();
    io::copy(&mut f, &mut HashSink(&mut h)).map_err(io_err("read", &path))?;
    let sha = Digest::from_sha256_bytes(&h.finalize());
    record_blob(store, digest, &sha)?;
    Ok(sha)
}

/// sha256 of a layer's uncompressed tar, from the index or by decompressing
/// its blob once.
pub fn diff_id_sha256(store: &Store, blob: &Digest, diff_id: &Digest) -> Result<Digest> {
    if diff_id.algorithm() == Algorithm::Sha256 {
        return Ok(diff_id.clone());
    }
    if let Some(d) = lookup(store, Kind::Diff, diff_id) {
        return Ok(d);
    }
    let path = store.blob_path(blob);
    let mut h = sha2::Sha256::new();
    decompress_blob(store, blob, &mut HashSink(&mut h))?;
    let sha = Digest::from_sha256_bytes(&h.finalize());
    let _ = path;
    record_diff_id(store, diff_id, &sha)?;
    Ok(sha)
}

/// Copy a stored blob's uncompressed content into `out`; returns the
/// compression it was stored with.
pub fn decompress_blob(
    store: &Store,
    blob: &Digest,
    out: &mut dyn io::Write,
) -> Result<Compression> {
    let path = store.blob_path(blob);
    let f = File::open(&path).map_err(io_err("open", &path))?;
    let mut input = io::BufReader::with_capacity(1 << 20, f);
    let head = io::BufRead::fill_buf(&mut input).map_err(io_err("read", &path))?;
    let compression = Compression::detect(head)
        .map_err(|m| super::OciError::Format(format!("blob {blob}: {m}")))?;
    let mut dec = compression
        .decoder(input)
        .map_err(io_err("decompress", &path))?;
    io::copy(&mut dec, out).map_err(io_err("decompress", &path))?;
    Ok(compression)
}

/// An io::Write that only feeds a hasher.
pub(crate) struct HashSink<'a>(pub &'a mut sha2::Sha256);

impl io::Write for HashSink<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

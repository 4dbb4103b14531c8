//! Entry points of the unpacker: where the tar stream comes from (any
//! reader, a file, a mapped blob), its compression detected from its
//! first bytes, handed to the unpacker in `unpack` through a stream reader
//! of `stream`.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use super::compression::Compression;
use super::error::LayerError;
use super::options::{UnpackOptions, Unpacked};
use super::stream;
use super::unpack::{unpack_tar, unpack_tar_at};

/// Unpack a tar stream (compression detected from its first bytes) into
/// `dest`, an existing directory. On error, `dest` holds a partial tree the
/// caller must discard (the store's callers unpack into a staged dir).
pub fn unpack_stream<R: Read>(
    reader: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<Unpacked, LayerError> {
    unpack_buffered(BufReader::with_capacity(1 << 20, reader), dest, opts)
}

/// Unpack a plain or compressed tar stream into `dir`, a directory
/// already open (one resolved beneath a container's root by `rrun cp`).
/// Every path is resolved beneath `dir` as in [`unpack_stream`]: no entry
/// is written through a symlink, a `..` or a non-directory.
pub fn unpack_stream_at<R: Read>(
    reader: R,
    dir: std::os::fd::OwnedFd,
    opts: &UnpackOptions,
) -> Result<Unpacked, LayerError> {
    let mut input = BufReader::with_capacity(1 << 20, reader);
    let corrupt = |source| LayerError::Corrupt {
        layer: opts.label.clone(),
        source,
    };
    let compression = detect(input.fill_buf().map_err(corrupt)?, opts)?;
    let decoder = compression
        .decoder_checked(input, opts.expected_diff_id.is_none())
        .map_err(corrupt)?;
    let mut u = unpack_tar_at(
        stream::hashed(decoder, opts.algorithm),
        dir,
        super::creation::Creation::unknown(),
        opts,
    )?;
    u.compression = compression;
    Ok(u)
}

/// Unpack a tarball file (mapped, not read through a buffer).
pub fn unpack_file(path: &Path, dest: &Path, opts: &UnpackOptions) -> Result<Unpacked, LayerError> {
    let file = File::open(path).map_err(LayerError::io("open", path))?;
    let len = file.metadata().map_err(LayerError::io("stat", path))?.len();
    if len == 0 {
        return unpack_buffered(&[][..], dest, opts);
    }
    // SAFETY: the mapping is read-only and private; a blob is never written
    // in place once committed (the store renames new files over names), so
    // the bytes cannot change under us except by a foreign writer, which at
    // worst makes the stream corrupt, caught by the parser or the digest.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(LayerError::io("map", path))?;
    let _ = map.advise(memmap2::Advice::Sequential);
    unpack_mapped(&map[..], dest, opts)
}

/// Unpack a stream that is all in memory (a mapped blob): decompression
/// and hashing run on their own thread, one block ahead of the parser, so a
/// big layer's critical path is the slower of the two, not their sum.
pub(super) fn unpack_mapped(
    bytes: &[u8],
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<Unpacked, LayerError> {
    let compression = detect(&bytes[..bytes.len().min(8)], opts)?;
    let check = opts.expected_diff_id.is_none();
    stream::mapped(bytes, compression, opts.algorithm, check, |reader| {
        let mut u = unpack_tar(reader, dest, opts)?;
        u.compression = compression;
        Ok(u)
    })
}

/// Unpack a plain or compressed tar stream from `input` (a download),
/// decompressed and hashed on a thread of its own one block ahead of the
/// parser, which takes the blocks as they are (no copy between). With
/// `sha256_too`, also the sha256 of the uncompressed stream (an image
/// config's diff id; `None` if the stream was not read to its end). The
/// caller compares a digest of the whole stream: gzip's CRC-32 and zstd's
/// checksum are skipped. `on_block` is told each block's length.
pub fn unpack_inflating<I: BufRead + Send>(
    mut input: I,
    dest: &Path,
    opts: &UnpackOptions,
    sha256_too: bool,
    on_block: impl FnMut(u64) + Send,
) -> Result<(Unpacked, Option<crate::digest::Digest>), LayerError> {
    let corrupt = |source| LayerError::Corrupt {
        layer: opts.label.clone(),
        source,
    };
    let compression = detect(input.fill_buf().map_err(corrupt)?, opts)?;
    let (unpacked, sha256) = stream::inflating(
        input,
        compression,
        opts.algorithm,
        false,
        sha256_too,
        on_block,
        |reader| unpack_tar(reader, dest, opts),
    );
    let mut u = unpacked?;
    u.compression = compression;
    Ok((u, sha256))
}

/// The compression the stream's first bytes (`head`) show; an error
/// naming the layer when they show none rbox reads.
fn detect(head: &[u8], opts: &UnpackOptions) -> Result<Compression, LayerError> {
    Compression::detect(head).map_err(|msg| LayerError::Corrupt {
        layer: opts.label.clone(),
        source: io::Error::new(io::ErrorKind::InvalidData, msg),
    })
}

fn unpack_buffered<R: BufRead>(
    mut input: R,
    dest: &Path,
    opts: &UnpackOptions,
) -> Result<Unpacked, LayerError> {
    let corrupt = |source| LayerError::Corrupt {
        layer: opts.label.clone(),
        source,
    };
    let compression = detect(input.fill_buf().map_err(corrupt)?, opts)?;
    let decoder = compression
        .decoder_checked(input, opts.expected_diff_id.is_none())
        .map_err(corrupt)?;
    let mut u = unpack_tar(stream::hashed(decoder, opts.algorithm), dest, opts)?;
    u.compression = compression;
    Ok(u)
}

//! Compression of layer streams, told apart by their magic bytes (a blob's
//! media type is a claim; the bytes are the fact).

use std::io::{self, BufRead, Read};

use crate::digest::{Algorithm, Digest};
use crate::image::media_type;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From the first bytes of a stream. xz and bzip2 are recognised only
    /// to be refused with a clear message.
    pub fn detect(head: &[u8]) -> Result<Compression, &'static str> {
        if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Ok(Compression::Zstd)
        } else if head.starts_with(&[0x1f, 0x8b]) {
            Ok(Compression::Gzip)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Err("xz-compressed; only plain, gzip and zstd tarballs are accepted (try: xz -d, or recompress with zstd)")
        } else if head.starts_with(b"BZh") {
            Err("bzip2-compressed; only plain, gzip and zstd tarballs are accepted (try: bunzip2, or recompress with zstd)")
        } else {
            Ok(Compression::None)
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => media_type::LAYER_TAR,
            Compression::Gzip => media_type::LAYER_GZIP,
            Compression::Zstd => media_type::LAYER_ZSTD,
        }
    }

    /// A reader of the uncompressed stream over `input`.
    pub fn decoder<'a, R: BufRead + 'a>(self, input: R) -> io::Result<Box<dyn Read + 'a>> {
        self.decoder_checked(input, true)
    }

    /// [`Compression::decoder`]; `check` false skips zstd's frame checksum
    /// (XXH64 of the content, ~8% of the decompression's CPU) and gzip's
    /// CRC-32 (~5% of a gzip load's CPU; ISIZE is still checked). Only for
    /// callers that compare a digest of the whole uncompressed stream with
    /// an expected value themselves, which catches all the checksum would.
    pub fn decoder_checked<'a, R: BufRead + 'a>(
        self,
        input: R,
        check: bool,
    ) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::None => Box::new(input),
            Compression::Gzip => Box::new(super::gzip::GzReader::new(input, check)),
            Compression::Zstd => {
                let mut d = zstd::stream::read::Decoder::with_buffer(input)?;
                // zstd's own default limit (128 MiB windows, --long=27):
                // a frame header alone would otherwise make us reserve up
                // to 2 GiB before one byte of data (fuzz/regressions/unpack).
                // Our layers use level 3 (a 1 MiB window); so do other tools'.
                d.window_log_max(27)?;
                if !check {
                    d.set_parameter(zstd::zstd_safe::DParameter::ForceIgnoreChecksum(true))?;
                }
                Box::new(d)
            }
        })
    }
}

/// The digest of the uncompressed stream, in the algorithm the caller
/// expects (blake3 for our layers, sha256 for layers from elsewhere).
pub enum StreamHasher {
    Blake3(Box<blake3::Hasher>),
    Sha256(sha2::Sha256),
}

impl StreamHasher {
    pub fn new(algorithm: Algorithm) -> StreamHasher {
        match algorithm {
            Algorithm::Blake3 => StreamHasher::Blake3(Box::new(blake3::Hasher::new())),
            Algorithm::Sha256 => StreamHasher::Sha256(<sha2::Sha256 as sha2::Digest>::new()),
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            StreamHasher::Blake3(h) => {
                h.update(bytes);
            }
            StreamHasher::Sha256(h) => sha2::Digest::update(h, bytes),
        }
    }

    pub fn finish(self) -> Digest {
        match self {
            StreamHasher::Blake3(h) => Digest::from_blake3(h.finalize()),
            StreamHasher::Sha256(h) => Digest::from_sha256_bytes(&sha2::Digest::finalize(h)),
        }
    }
}

/// Hashes and counts what is read through it.
pub struct HashingRead<R> {
    pub inner: R,
    pub hasher: StreamHasher,
    pub read: u64,
}

impl<R: Read> Read for HashingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

//! Content digests. Inside the store everything is named by blake3; sha256 is
//! computed only for what leaves the store (OCI export, registries).

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use sha2::Digest as _;

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("digest {0:?} is not of the form ALGORITHM:HEX")]
    Malformed(String),
    #[error("digest {0:?} uses unsupported algorithm (expected blake3 or sha256)")]
    UnsupportedAlgorithm(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    Blake3,
    Sha256,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Blake3 => "blake3",
            Algorithm::Sha256 => "sha256",
        }
    }
}

/// `ALGORITHM:HEX`, always lower-case 64 hex digits for both algorithms we know.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex part only; safe to use as a file name (validated on construction).
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// A short form for humans, as `docker images` shows ids.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    pub fn from_blake3(hash: blake3::Hash) -> Digest {
        Digest {
            algorithm: Algorithm::Blake3,
            hex: hash.to_hex().to_string(),
        }
    }

    pub fn from_sha256_bytes(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: Algorithm::Sha256,
            hex: to_hex(bytes),
        }
    }

    pub fn blake3_of(bytes: &[u8]) -> Digest {
        Digest::from_blake3(blake3::hash(bytes))
    }

    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest::from_sha256_bytes(&sha2::Sha256::digest(bytes))
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (algo, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Malformed(s.to_string()))?;
        let algorithm = match algo {
            "blake3" => Algorithm::Blake3,
            "sha256" => Algorithm::Sha256,
            _ => return Err(DigestError::UnsupportedAlgorithm(s.to_string())),
        };
        // Exactly 64 lower-case hex digits: the hex part becomes a file name,
        // so nothing else (no '/', no '..') may pass.
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::Malformed(s.to_string()));
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A writer that hashes everything passing through it.
pub struct HashingWriter<W> {
    inner: W,
    blake3: blake3::Hasher,
    sha256: Option<sha2::Sha256>,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            blake3: blake3::Hasher::new(),
            sha256: None,
            written: 0,
        }
    }

    /// Also compute sha256 (for content that will leave the store).
    pub fn with_sha256(mut self) -> Self {
        self.sha256 = Some(sha2::Sha256::new());
        self
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// Returns the inner writer, the blake3 digest and, if asked for, sha256.
    pub fn finish(self) -> (W, Digest, Option<Digest>) {
        let sha = self
            .sha256
            .map(|h| Digest::from_sha256_bytes(&h.finalize()));
        (self.inner, Digest::from_blake3(self.blake3.finalize()), sha)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.blake3.update(&buf[..n]);
        if let Some(h) = self.sha256.as_mut() {
            h.update(&buf[..n]);
        }
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes everything read through it (used to compute a
/// layer's diff id while its tar stream is parsed).
pub struct HashingReader<R> {
    inner: R,
    blake3: blake3::Hasher,
    read: u64,
}

impl<R: io::Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            blake3: blake3::Hasher::new(),
            read: 0,
        }
    }

    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    pub fn digest(&self) -> Digest {
        Digest::from_blake3(self.blake3.finalize())
    }
}

impl<R: io::Read> io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.blake3.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_validates() {
        let d = Digest::blake3_of(b"hello");
        let s = d.to_string();
        assert!(s.starts_with("blake3:"));
        assert_eq!(s.parse::<Digest>().unwrap(), d);
        assert!("blake3:../../etc".parse::<Digest>().is_err());
        assert!("md5:00".parse::<Digest>().is_err());
        assert!("nocolon".parse::<Digest>().is_err());
        let upper = format!("blake3:{}", d.hex().to_uppercase());
        assert!(upper.parse::<Digest>().is_err());
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            Digest::sha256_of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hashing_writer_matches_one_shot() {
        let mut w = HashingWriter::new(Vec::new()).with_sha256();
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (buf, b3, sha) = w.finish();
        assert_eq!(buf, b"hello world");
        assert_eq!(b3, Digest::blake3_of(b"hello world"));
        assert_eq!(sha.unwrap(), Digest::sha256_of(b"hello world"));
    }
}

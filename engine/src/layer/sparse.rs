//! GNU tar's PAX sparse format 1.0 (what `tar -S` writes in pax/posix
//! format): the entry is named `GNUSparseFile.<pid>/<name>` with the real
//! name and size in PAX records, and its data starts with a map of
//! `(offset, size)` segments in decimal text, padded to 512 bytes, followed
//! by the segments' bytes. The `tar` crate hands that data over raw; this
//! reads the map so the unpacker can write the segments where they belong.
//! The older 0.x PAX encodings are refused (rare, and ambiguous to parse).

use std::io::{self, Read};

/// Far more segments than any real file has; bounds the map's memory.
const MAX_SEGMENTS: u64 = 1 << 16;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaxSparse {
    pub major: Option<Vec<u8>>,
    pub minor: Option<Vec<u8>>,
    pub name: Option<Vec<u8>>,
    pub realsize: Option<u64>,
    /// A 0.x map key (GNU.sparse.map, .offset, .numblocks) was present.
    pub old_format: bool,
}

impl PaxSparse {
    /// Record one PAX key if it is a GNU sparse key; false if it is not.
    pub fn take(&mut self, key: &[u8], value: &[u8]) -> bool {
        match key {
            b"GNU.sparse.major" => self.major = Some(value.to_vec()),
            b"GNU.sparse.minor" => self.minor = Some(value.to_vec()),
            b"GNU.sparse.name" => self.name = Some(value.to_vec()),
            b"GNU.sparse.realsize" | b"GNU.sparse.size" => {
                self.realsize = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok())
            }
            b"GNU.sparse.map" | b"GNU.sparse.offset" | b"GNU.sparse.numblocks" => {
                self.old_format = true
            }
            _ => return false,
        }
        true
    }

    /// The real name and size, if this is format 1.0 (else why not).
    pub fn v1(&self) -> Result<(&[u8], u64), &'static str> {
        if self.old_format
            || self.major.as_deref() != Some(b"1")
            || self.minor.as_deref() != Some(b"0")
        {
            return Err("uses a PAX sparse format other than 1.0, which is not supported (repack the tarball without --sparse)");
        }
        match (&self.name, self.realsize) {
            (Some(n), Some(s)) => Ok((n, s)),
            _ => Err("is a PAX sparse file without GNU.sparse.name or GNU.sparse.realsize"),
        }
    }
}

/// Read the segment map at the start of the entry's data; returns the
/// segments and how many data bytes the map took.
pub fn read_map<R: Read>(r: &mut R, realsize: u64) -> io::Result<(Vec<(u64, u64)>, u64)> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("sparse map: {why}"));
    let mut numbers: Vec<u64> = Vec::new();
    let mut want: Option<u64> = None;
    let mut digits = String::new();
    let mut consumed = 0u64;
    let mut block = [0u8; 512];
    loop {
        r.read_exact(&mut block)?;
        consumed += 512;
        for &b in &block {
            if want.is_some_and(|w| numbers.len() as u64 == 1 + 2 * w) {
                break;
            }
            match b {
                b'0'..=b'9' => {
                    if digits.len() >= 20 {
                        return Err(bad("number too long"));
                    }
                    digits.push(b as char);
                }
                b'\n' => {
                    let n: u64 = digits.parse().map_err(|_| bad("empty number"))?;
                    digits.clear();
                    if want.is_none() {
                        if n > MAX_SEGMENTS {
                            return Err(bad("too many segments"));
                        }
                        want = Some(n);
                    }
                    numbers.push(n);
                }
                0 if want.is_some_and(|w| numbers.len() as u64 == 1 + 2 * w) => break,
                _ => return Err(bad("unexpected byte")),
            }
        }
        if want.is_some_and(|w| numbers.len() as u64 == 1 + 2 * w) {
            break;
        }
    }
    let segments: Vec<(u64, u64)> = numbers[1..].chunks(2).map(|p| (p[0], p[1])).collect();
    for &(off, len) in &segments {
        if off.checked_add(len).is_none_or(|end| end > realsize) {
            return Err(bad("a segment lies beyond the file's real size"));
        }
    }
    Ok((segments, consumed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_map_and_refuses_bad_ones() {
        let mut data = b"2\n0\n5\n100\n3\n".to_vec();
        data.resize(512, 0);
        data.extend_from_slice(b"helloabc");
        let mut r = &data[..];
        let (segs, used) = read_map(&mut r, 103).unwrap();
        assert_eq!(segs, vec![(0, 5), (100, 3)]);
        assert_eq!(used, 512);
        assert_eq!(r, b"helloabc");
        let mut r = &data[..];
        assert!(read_map(&mut r, 102).is_err(), "segment past realsize");
        let mut bad = b"1\nx\n".to_vec();
        bad.resize(512, 0);
        assert!(read_map(&mut &bad[..], 10).is_err());
        assert!(read_map(&mut &b"1\n0\n"[..], 10).is_err(), "truncated");
    }
}

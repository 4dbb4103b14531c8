//! A gzip (RFC 1952) reader over flate2's raw inflate: member headers and
//! trailers parsed here, so the CRC-32 of the content can be skipped when
//! the caller checks a digest of the whole uncompressed stream itself (an
//! image config's diff id), which catches everything the CRC would. The
//! length (ISIZE) of each member is checked always; it costs nothing.
//!
//! Multi-member streams are read to their end; anything after a member
//! that is not another member is refused (no silent trailing garbage).

use std::io::{self, BufRead, Read};

use flate2::{Crc, Decompress, FlushDecompress, Status};

const FTEXT: u8 = 1;
const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before a member's header (the first, or one after a trailer).
    Header,
    Body,
    Trailer,
    Done,
}

/// Reads the uncompressed content of a gzip stream from `input`.
pub struct GzReader<R> {
    input: R,
    inflate: Decompress,
    state: State,
    /// CRC-32 of the current member's content, when checked.
    crc: Option<Crc>,
    /// Bytes of the current member's content so far (ISIZE is mod 2^32).
    member_out: u64,
    /// Members begun, for messages.
    members: u64,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

fn truncated(what: &str, member: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("gzip stream truncated in the {what} of member {member}"),
    )
}

impl<R: BufRead> GzReader<R> {
    /// `check_crc` false skips the CRC-32 of the content (see the module).
    pub fn new(input: R, check_crc: bool) -> GzReader<R> {
        GzReader {
            input,
            inflate: Decompress::new(false),
            state: State::Header,
            crc: check_crc.then(Crc::new),
            member_out: 0,
            members: 0,
        }
    }

    /// Exactly `buf.len()` bytes of a member's header or trailer.
    fn take(&mut self, buf: &mut [u8], what: &str) -> io::Result<()> {
        let mut filled = 0;
        while filled < buf.len() {
            let avail = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                return Err(truncated(what, self.members));
            }
            let n = avail.len().min(buf.len() - filled);
            buf[filled..filled + n].copy_from_slice(&avail[..n]);
            self.input.consume(n);
            filled += n;
        }
        Ok(())
    }

    /// Parse a member's header; false at the clean end of the stream (no
    /// byte at all where a member could begin, after at least one).
    fn header(&mut self) -> io::Result<bool> {
        let first = loop {
            match self.input.fill_buf() {
                Ok(b) => break b.first().copied(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        let Some(first) = first else {
            if self.members == 0 {
                return Err(truncated("header", 1));
            }
            return Ok(false);
        };
        if first != 0x1f && self.members > 0 {
            return Err(bad(format!(
                "trailing garbage after gzip member {}: byte {first:#04x} where another member or the end should be",
                self.members
            )));
        }
        self.members += 1;
        let member = self.members;
        // Every byte of the header, for FHCRC.
        let mut seen = Vec::with_capacity(10);
        let mut fixed = [0u8; 10];
        self.take(&mut fixed, "header")?;
        seen.extend_from_slice(&fixed);
        if fixed[0] != 0x1f || fixed[1] != 0x8b {
            return Err(bad(if member == 1 {
                "not a gzip stream (bad magic)".to_string()
            } else {
                format!(
                    "trailing garbage after gzip member {}: {:02x} {:02x} where another member or the end should be",
                    member - 1,
                    fixed[0],
                    fixed[1]
                )
            }));
        }
        if fixed[2] != 8 {
            return Err(bad(format!(
                "gzip member {member}: compression method {} (only 8, deflate, exists)",
                fixed[2]
            )));
        }
        let flags = fixed[3];
        if flags & !(FTEXT | FHCRC | FEXTRA | FNAME | FCOMMENT) != 0 {
            return Err(bad(format!(
                "gzip member {member}: reserved header flag bits set ({flags:#04x})"
            )));
        }
        if flags & FEXTRA != 0 {
            let mut xlen = [0u8; 2];
            self.take(&mut xlen, "header (FEXTRA length)")?;
            seen.extend_from_slice(&xlen);
            let mut extra = vec![0u8; u16::from_le_bytes(xlen) as usize];
            self.take(&mut extra, "header (FEXTRA)")?;
            seen.extend_from_slice(&extra);
        }
        for (flag, what) in [(FNAME, "header (FNAME)"), (FCOMMENT, "header (FCOMMENT)")] {
            if flags & flag != 0 {
                let start = seen.len();
                self.input.read_until(0, &mut seen)?;
                if seen.len() == start || seen[seen.len() - 1] != 0 {
                    return Err(truncated(what, member));
                }
            }
        }
        if flags & FHCRC != 0 {
            let mut hcrc = [0u8; 2];
            self.take(&mut hcrc, "header (FHCRC)")?;
            let mut c = Crc::new();
            c.update(&seen);
            let want = u16::from_le_bytes(hcrc);
            let got = (c.sum() & 0xffff) as u16;
            if want != got {
                return Err(bad(format!(
                    "gzip member {member}: header CRC16 {want:#06x} but the header sums to {got:#06x}"
                )));
            }
        }
        self.inflate.reset(false);
        self.member_out = 0;
        if let Some(c) = &mut self.crc {
            c.reset();
        }
        Ok(true)
    }

    fn trailer(&mut self) -> io::Result<()> {
        let member = self.members;
        let mut t = [0u8; 8];
        self.take(&mut t, "trailer")?;
        let crc = u32::from_le_bytes(t[..4].try_into().unwrap());
        let isize = u32::from_le_bytes(t[4..].try_into().unwrap());
        if isize != self.member_out as u32 {
            return Err(bad(format!(
                "gzip member {member}: trailer says {isize} bytes (mod 2^32) but it inflated to {}",
                self.member_out
            )));
        }
        if let Some(c) = &self.crc {
            if c.sum() != crc {
                return Err(bad(format!(
                    "gzip member {member}: CRC-32 {crc:#010x} in the trailer but the content sums to {:#010x}",
                    c.sum()
                )));
            }
        }
        Ok(())
    }

    /// Inflate into `out`; 0 only at the member's end (state changed).
    fn body(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            let avail = match self.input.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let eof = avail.is_empty();
            let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(avail, out, FlushDecompress::None)
                .map_err(|e| {
                    bad(format!(
                        "gzip member {}: corrupt deflate data: {e}",
                        self.members
                    ))
                })?;
            let used = (self.inflate.total_in() - in0) as usize;
            let made = (self.inflate.total_out() - out0) as usize;
            self.input.consume(used);
            self.member_out += made as u64;
            if let Some(c) = &mut self.crc {
                c.update(&out[..made]);
            }
            if status == Status::StreamEnd {
                self.state = State::Trailer;
                return Ok(made);
            }
            if made > 0 {
                return Ok(made);
            }
            if eof {
                return Err(truncated("deflate data", self.members));
            }
            if used == 0 {
                return Err(bad(format!(
                    "gzip member {}: inflate made no progress",
                    self.members
                )));
            }
        }
    }
}

impl<R: BufRead> Read for GzReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state {
                State::Header => {
                    self.state = if self.header()? {
                        State::Body
                    } else {
                        State::Done
                    };
                }
                State::Body => {
                    let n = self.body(out)?;
                    if n > 0 {
                        return Ok(n);
                    }
                }
                State::Trailer => {
                    self.trailer()?;
                    self.state = State::Header;
                }
                State::Done => return Ok(0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn read_all(bytes: &[u8], check: bool) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        GzReader::new(bytes, check).read_to_end(&mut out)?;
        Ok(out)
    }

    fn sample() -> Vec<u8> {
        (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn single_member_both_modes() {
        let data = sample();
        let z = gz(&data);
        assert_eq!(read_all(&z, true).unwrap(), data);
        assert_eq!(read_all(&z, false).unwrap(), data);
    }

    #[test]
    fn multi_member() {
        let mut z = gz(b"hello ");
        z.extend(gz(b""));
        z.extend(gz(b"world"));
        assert_eq!(read_all(&z, true).unwrap(), b"hello world");
        assert_eq!(read_all(&z, false).unwrap(), b"hello world");
    }

    #[test]
    fn header_fields_extra_name_comment_hcrc() {
        let data = sample();
        let z = flate2::GzBuilder::new()
            .extra(vec![b'A', b'B', 2, 0, 7, 9])
            .filename("layer.tar")
            .comment("a comment")
            .write(Vec::new(), flate2::Compression::fast());
        let mut z = z;
        z.write_all(&data).unwrap();
        let mut z = z.finish().unwrap();
        assert_eq!(z[3], FEXTRA | FNAME | FCOMMENT);
        assert_eq!(read_all(&z, true).unwrap(), data);
        // Add FHCRC by hand: the CRC16 of the header as it then stands.
        let hlen = 10 + 2 + 6 + "layer.tar\0".len() + "a comment\0".len();
        z[3] |= FHCRC;
        let mut c = Crc::new();
        c.update(&z[..hlen]);
        let h16 = (c.sum() as u16).to_le_bytes();
        z.splice(hlen..hlen, h16);
        assert_eq!(read_all(&z, false).unwrap(), data);
        // A wrong header CRC is refused.
        z[hlen] ^= 0xff;
        let e = read_all(&z, false).unwrap_err();
        assert!(e.to_string().contains("header CRC16"), "{e}");
    }

    #[test]
    fn truncated_anywhere_fails() {
        let z = gz(&sample());
        for cut in [
            0,
            1,
            5,
            9,
            10,
            100,
            z.len() / 2,
            z.len() - 8,
            z.len() - 3,
            z.len() - 1,
        ] {
            for check in [true, false] {
                let e = read_all(&z[..cut], check).unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "cut {cut}: {e}");
                assert!(e.to_string().contains("truncated"), "cut {cut}: {e}");
            }
        }
    }

    #[test]
    fn truncated_trailer_names_it() {
        let z = gz(b"some content");
        let e = read_all(&z[..z.len() - 2], false).unwrap_err();
        assert!(e.to_string().contains("trailer of member 1"), "{e}");
    }

    #[test]
    fn bad_isize_fails_even_without_crc() {
        let mut z = gz(&sample());
        let n = z.len();
        z[n - 4] ^= 1;
        for check in [true, false] {
            let e = read_all(&z, check).unwrap_err();
            assert!(e.to_string().contains("trailer says"), "{e}");
        }
    }

    #[test]
    fn bad_crc_fails_only_when_checked() {
        let data = sample();
        let mut z = gz(&data);
        let n = z.len();
        z[n - 8] ^= 1;
        let e = read_all(&z, true).unwrap_err();
        assert!(e.to_string().contains("CRC-32"), "{e}");
        // Skipped by request: the caller's digest of the content decides.
        assert_eq!(read_all(&z, false).unwrap(), data);
    }

    #[test]
    fn trailing_garbage_fails() {
        let mut z = gz(b"content");
        z.extend_from_slice(b"\0\0\0\0");
        let e = read_all(&z, false).unwrap_err();
        assert!(
            e.to_string()
                .contains("trailing garbage after gzip member 1"),
            "{e}"
        );
        let mut z = gz(b"content");
        z.push(0x1f); // half a magic
        let e = read_all(&z, true).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
    }

    #[test]
    fn corrupt_deflate_and_bad_header_fail() {
        let mut z = gz(&sample());
        for b in &mut z[20..60] {
            *b = 0xff;
        }
        let e = read_all(&z, false).unwrap_err();
        assert!(e.to_string().contains("corrupt deflate"), "{e}");
        let mut z = gz(b"x");
        z[2] = 7;
        assert!(read_all(&z, true)
            .unwrap_err()
            .to_string()
            .contains("method 7"));
        let mut z = gz(b"x");
        z[3] = 0x20;
        assert!(read_all(&z, true)
            .unwrap_err()
            .to_string()
            .contains("reserved"));
    }

    #[test]
    fn byte_at_a_time_input() {
        // Headers and trailers split across reads of the input.
        let mut z = gz(b"abc");
        z.extend(gz(b"def"));
        let r = io::BufReader::with_capacity(1, &z[..]);
        let mut out = Vec::new();
        GzReader::new(r, true).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcdef");
    }
}

//! A watch on the tar structure ahead of the `tar` crate, for the one thing
//! it does not bound: it reads PAX (`x`, `g`) and GNU long-name (`L`, `K`)
//! extension bodies whole into memory, however large their headers claim
//! they are. A small zstd blob can inflate to gigabytes of such a body; this
//! refuses any extension over [`MAX_EXTENSION`] before the crate reads it.
//!
//! It follows headers the way the crate does (size from the header, or from
//! a preceding PAX `size` record). Where it cannot follow for sure (a bad
//! checksum, an unparsable size, a GNU sparse entry with its extra blocks)
//! it stops watching rather than risk refusing a valid stream.

use std::io::{self, Read};

/// Long names are < 4 KiB and xattr values < 64 KiB on Linux: 1 MiB of
/// extension records is far more than any real layer carries.
pub const MAX_EXTENSION: u64 = 1 << 20;

pub struct ExtensionGuard<R> {
    inner: R,
    pos: u64,
    /// Offset of the next header.
    next: u64,
    header: [u8; 512],
    /// A PAX body being collected (to learn the next entry's size).
    pax: Option<(Vec<u8>, u64)>,
    /// Size for the next non-extension entry, from a PAX `size` record.
    pending_size: Option<u64>,
    watching: bool,
}

impl<R: Read> ExtensionGuard<R> {
    pub fn new(inner: R) -> Self {
        ExtensionGuard {
            inner,
            pos: 0,
            next: 0,
            header: [0; 512],
            pax: None,
            pending_size: None,
            watching: true,
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    fn watch(&mut self, bytes: &[u8]) -> io::Result<()> {
        let start = self.pos;
        let end = start + bytes.len() as u64;
        let mut at = start;
        while self.watching && at < end {
            if let Some((body, left)) = &mut self.pax {
                let take = (*left).min(end - at) as usize;
                let off = (at - start) as usize;
                body.extend_from_slice(&bytes[off..off + take]);
                *left -= take as u64;
                at += take as u64;
                if *left == 0 {
                    let (body, _) = self.pax.take().expect("checked above");
                    self.pending_size = pax_size(&body);
                }
                continue;
            }
            if at < self.next {
                at = self.next.min(end);
                continue;
            }
            // Inside the header starting at `self.next`.
            let in_header = (at - self.next) as usize;
            let take = (512 - in_header).min((end - at) as usize);
            let off = (at - start) as usize;
            self.header[in_header..in_header + take].copy_from_slice(&bytes[off..off + take]);
            at += take as u64;
            if in_header + take == 512 {
                self.header_done()?;
            }
        }
        self.pos = end;
        Ok(())
    }

    fn header_done(&mut self) -> io::Result<()> {
        let h = &self.header;
        let header_at = self.next;
        if h.iter().all(|&b| b == 0) {
            self.next = header_at + 512;
            return Ok(());
        }
        let sum: u32 = h[..148]
            .iter()
            .chain(&h[156..])
            .map(|&b| b as u32)
            .sum::<u32>()
            + 8 * 32;
        let (Some(stored), Some(size)) = (parse_octal(&h[148..156]), parse_size(&h[124..136]))
        else {
            self.watching = false;
            return Ok(());
        };
        if stored != sum as u64 {
            self.watching = false;
            return Ok(());
        }
        let kind = h[156];
        let extension = matches!(kind, b'x' | b'g' | b'L' | b'K');
        if extension && size > MAX_EXTENSION {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "an extension header (type {:?}) at offset {header_at} claims {size} bytes, over the {MAX_EXTENSION}-byte limit (a decompression bomb?)",
                    kind as char
                ),
            ));
        }
        if kind == b'S' {
            // GNU sparse entries may carry extra header blocks: stop here.
            self.watching = false;
            return Ok(());
        }
        let size = if extension {
            size
        } else {
            self.pending_size.take().unwrap_or(size)
        };
        if kind == b'x' && size > 0 {
            self.pax = Some((Vec::with_capacity(size as usize), size));
        }
        match size
            .checked_add(511)
            .map(|s| s & !511)
            .and_then(|s| s.checked_add(header_at + 512))
        {
            Some(n) => self.next = n,
            None => self.watching = false,
        }
        Ok(())
    }
}

impl<R: Read> Read for ExtensionGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.watching {
            self.watch(&buf[..n])?;
        } else {
            self.pos += n as u64;
        }
        Ok(n)
    }
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let s: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&b| b == b' ')
        .take_while(|&b| b != 0 && b != b' ')
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(&s).ok()?, 8).ok()
}

/// Octal, or GNU base-256 (high bit of the first byte set).
fn parse_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = (field[0] & 0x7f) as u64;
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(v);
    }
    parse_octal(field)
}

fn pax_size(body: &[u8]) -> Option<u64> {
    tar::PaxExtensions::new(body)
        .filter_map(Result::ok)
        .find(|e| e.key_bytes() == b"size")
        .and_then(|e| std::str::from_utf8(e.value_bytes()).ok()?.parse().ok())
}

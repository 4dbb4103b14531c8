//! A watch on the tar structure ahead of the `tar` crate, for what it does
//! not bound: it reads PAX (`x`, `g`) and GNU long-name (`L`, `K`)
//! extension bodies whole into memory, however large their headers claim
//! they are, and it keeps a list entry per block of a GNU sparse map,
//! however many extension blocks the map chains. A small zstd blob can
//! inflate to gigabytes of either; this refuses an extension body over
//! [`MAX_EXTENSION`], or a sparse map of more than
//! [`MAX_SPARSE_EXTENSIONS`] blocks, before the crate reads it.
//!
//! It follows the stream exactly as the crate does, with the crate's own
//! header parsers (checksum, size including base-256, entry type, magic),
//! a preceding PAX `size` record, and the extension blocks of GNU sparse
//! entries. A header it cannot read is one the crate refuses too: the
//! watch fails closed there instead of losing track. It stops only at the
//! end-of-archive block, where the crate stops parsing.

use std::io::{self, Read};

/// Long names are < 4 KiB and xattr values < 64 KiB on Linux: 1 MiB of
/// extension records is far more than any real layer carries.
pub const MAX_EXTENSION: u64 = 1 << 20;

/// Extension blocks after one GNU sparse header (21 segments each, on top
/// of the header's 4): 86,000 segments, far more than a real sparse file
/// has; the crate keeps a few dozen bytes per segment.
pub const MAX_SPARSE_EXTENSIONS: u64 = 1 << 12;

const BLOCK: u64 = 512;

/// A header the guard refuses. It travels inside the `io::Error` the
/// `tar` crate passes up, so the unpacker can tell it from a damaged
/// stream ([`HeaderRefused::is`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HeaderRefused(String);

impl HeaderRefused {
    fn error(msg: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, HeaderRefused(msg))
    }

    /// Whether `e` is (or wraps) a refusal of the guard.
    pub fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|inner| inner.is::<HeaderRefused>())
    }
}
/// Where a GNU sparse extension block says another follows.
const EXT_IS_EXTENDED: usize = 504;

/// What the next block at `next` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// An entry header (or the end-of-archive block).
    Header,
    /// The `count`th extension block of a GNU sparse entry whose archived
    /// data (`data` bytes) follows the last one.
    SparseExtension { count: u64, data: u64 },
}

pub struct ExtensionGuard<R> {
    inner: R,
    pos: u64,
    /// Offset of the next block to read (a header or sparse extension).
    next: u64,
    block: tar::Header,
    expect: Expect,
    /// A PAX body being collected (to learn the next entry's size).
    pax: Option<(Vec<u8>, u64)>,
    /// A PAX `x` body read in this chain of extension headers: the crate
    /// takes the next entry's size from it.
    pending_pax: Option<Vec<u8>>,
    watching: bool,
}

impl<R: Read> ExtensionGuard<R> {
    pub fn new(inner: R) -> Self {
        ExtensionGuard {
            inner,
            pos: 0,
            next: 0,
            block: tar::Header::new_old(),
            expect: Expect::Header,
            pax: None,
            pending_pax: None,
            watching: true,
        }
    }

    /// Bytes read through the guard so far.
    pub fn position(&self) -> u64 {
        self.pos
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
                    self.pending_pax = Some(body);
                }
                continue;
            }
            if at < self.next {
                at = self.next.min(end);
                continue;
            }
            // Inside the block starting at `self.next`.
            let in_block = (at - self.next) as usize;
            let take = (BLOCK as usize - in_block).min((end - at) as usize);
            let off = (at - start) as usize;
            self.block.as_mut_bytes()[in_block..in_block + take]
                .copy_from_slice(&bytes[off..off + take]);
            at += take as u64;
            if in_block + take == BLOCK as usize {
                match self.expect {
                    Expect::Header => self.header_done()?,
                    Expect::SparseExtension { count, data } => {
                        self.sparse_block_done(count, data)?
                    }
                }
            }
        }
        self.pos = end;
        Ok(())
    }

    fn header_done(&mut self) -> io::Result<()> {
        let header_at = self.next;
        let h = &self.block;
        if h.as_bytes().iter().all(|&b| b == 0) {
            // The crate ends the archive here; what follows is not parsed.
            self.watching = false;
            return Ok(());
        }
        let bad =
            |why: String| HeaderRefused::error(format!("tar header at offset {header_at}: {why}"));
        // The crate's checksum: unsigned bytes, the field itself as spaces.
        let sum = h.as_bytes()[..148]
            .iter()
            .chain(&h.as_bytes()[156..])
            .map(|&b| b as u32)
            .sum::<u32>()
            + 8 * 32;
        let stored = h.cksum().map_err(|e| bad(e.to_string()))?;
        if stored != sum {
            return Err(bad("checksum mismatch".into()));
        }
        // The crate's own size parser: a 12-byte base-256 field is read from
        // its last 8 bytes, so a value parsed any other way could disagree.
        let size = h.entry_size().map_err(|e| bad(e.to_string()))?;
        let kind = h.entry_type();
        let byte = kind.as_byte();
        if matches!(byte, b'x' | b'g' | b'L' | b'K') && size > MAX_EXTENSION {
            return Err(bad(format!(
                "an extension header (type {:?}) claims {size} bytes, over the {MAX_EXTENSION}-byte limit (a decompression bomb?)",
                byte as char
            )));
        }
        let recognized = h.as_gnu().is_some() || h.as_ustar().is_some();
        // The crate reads these into memory and goes on to the next header.
        let chained = recognized && matches!(byte, b'x' | b'L' | b'K');
        let size = if matches!(byte, b'x' | b'g' | b'L' | b'K') {
            size
        } else {
            // The entry the chain describes: a PAX `size` overrides.
            self.pending_pax
                .as_deref()
                .and_then(pax_size)
                .unwrap_or(size)
        };
        if !chained {
            self.pending_pax = None;
        }
        if recognized && byte == b'x' && size > 0 {
            self.pax = Some((Vec::with_capacity(size as usize), size));
        }
        let sparse_extended = kind.is_gnu_sparse() && h.as_gnu().is_some_and(|g| g.is_extended());
        let after_header = header_at + BLOCK;
        if sparse_extended {
            self.expect = Expect::SparseExtension {
                count: 1,
                data: size,
            };
            self.next = after_header;
            return Ok(());
        }
        self.next = skip_data(after_header, size).ok_or_else(|| bad("size overflow".into()))?;
        Ok(())
    }

    /// One extension block of a GNU sparse map: another follows, or the
    /// entry's data does.
    fn sparse_block_done(&mut self, count: u64, data: u64) -> io::Result<()> {
        let after = self.next + BLOCK;
        if count > MAX_SPARSE_EXTENSIONS {
            return Err(HeaderRefused::error(format!(
                "a GNU sparse map chains more than {MAX_SPARSE_EXTENSIONS} extension blocks (at offset {}; a memory bomb?)",
                self.next
            )));
        }
        if self.block.as_bytes()[EXT_IS_EXTENDED] == 1 {
            self.expect = Expect::SparseExtension {
                count: count + 1,
                data,
            };
            self.next = after;
        } else {
            self.expect = Expect::Header;
            self.next = skip_data(after, data)
                .ok_or_else(|| HeaderRefused::error("tar entry size overflow".into()))?;
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

/// Where the next header is after `size` bytes of data at `at`, padded
/// to a block as the crate does.
fn skip_data(at: u64, size: u64) -> Option<u64> {
    size.checked_add(BLOCK - 1)
        .map(|s| s & !(BLOCK - 1))
        .and_then(|s| s.checked_add(at))
}

/// The `size` record of a PAX body, read as the crate reads it: the first
/// `size` key wins, and any malformed record before it means none.
fn pax_size(body: &[u8]) -> Option<u64> {
    for ext in tar::PaxExtensions::new(body) {
        let ext = ext.ok()?;
        if ext.key() != Ok("size") {
            continue;
        }
        return ext.value().ok()?.parse().ok();
    }
    None
}

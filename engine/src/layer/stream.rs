//! Streams feeding the parser: a mapped blob decompressed and hashed on its
//! own thread, one block ahead; or any reader, hashed as it is read. Each
//! knows, once read to its end, the digest and length of what it gave
//! ([`StreamEnd`]); none knows what reads it.

use std::io::{self, BufRead, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::compression::{Compression, HashingRead, StreamHasher};
use crate::digest::{Algorithm, Digest};

/// Run `parse` on the uncompressed stream of `bytes` (a mapped blob):
/// decompression and hashing run on threads of their own, blocks ahead of
/// the parser, so a big layer's critical path is the slowest of the
/// three, not their sum. `check` keeps zstd's frame checksum.
pub fn mapped<T>(
    bytes: &[u8],
    compression: Compression,
    algorithm: Algorithm,
    check: bool,
    parse: impl FnOnce(BlockReader) -> T,
) -> T {
    inflating(bytes, compression, algorithm, check, false, |_| {}, parse).0
}

/// [`mapped`] over any buffered input (a download): the decompressed
/// blocks go, without another copy, through a hashing thread to the
/// parser. `sha256_too` also hashes the uncompressed stream with sha256
/// there (an image config's diff id), returned when the stream was read
/// to its end. `on_block` is told the length of each block as it is made.
///
/// Inflate, hashing and parsing are three stages because one gzip stream
/// cannot be inflated on two cores: hashing the tar on the inflating
/// thread (sha256 and blake3, ~0.18 s for the 208 MB synthetic layer)
/// lengthened the one stage no other core can help with
/// (docs/benchmarks.md, "gzip CPU budget").
pub fn inflating<T, I: BufRead + Send>(
    input: I,
    compression: Compression,
    algorithm: Algorithm,
    check: bool,
    sha256_too: bool,
    on_block: impl FnMut(u64) + Send,
    parse: impl FnOnce(BlockReader) -> T,
) -> (T, Option<Digest>) {
    std::thread::scope(|s| {
        let (raw_tx, raw_rx) = sync_channel::<Raw>(AHEAD);
        let (tx, rx) = sync_channel::<Block>(AHEAD);
        // Spent blocks go back to be refilled: no allocation, no page
        // faults and no zeroing per block.
        let (recycle_tx, recycle_rx) = sync_channel::<Vec<u8>>(2 * AHEAD + 2);
        let hashes = Hashes {
            main: StreamHasher::new(algorithm),
            sha256: sha256_too.then(|| StreamHasher::new(Algorithm::Sha256)),
        };
        s.spawn(move || decompress_blocks(compression, input, check, on_block, raw_tx, recycle_rx));
        let hasher = s.spawn(move || hash_blocks(hashes, raw_rx, tx));
        let parsed = parse(BlockReader::new(rx, recycle_tx));
        // The parser is done (its reader dropped): the threads stop.
        (parsed, hasher.join().expect("the hashing thread panicked"))
    })
}

/// Any reader of the uncompressed stream, hashed and counted as it is read.
pub fn hashed<R: Read>(uncompressed: R, algorithm: Algorithm) -> BufReader<HashingRead<R>> {
    let hashing = HashingRead {
        inner: uncompressed,
        hasher: StreamHasher::new(algorithm),
        read: 0,
    };
    BufReader::with_capacity(256 << 10, hashing)
}

enum Block {
    /// A buffer and how many of its bytes are data.
    Data(Vec<u8>, usize),
    Failed(io::Error),
    End(Digest, u64),
}

const BLOCK_SIZE: usize = 1 << 20;
/// Blocks decompressed ahead of the parser: a few smooth out its pauses;
/// each more is another fresh MiB faulted in per layer.
const AHEAD: usize = 4;

struct Hashes {
    main: StreamHasher,
    sha256: Option<StreamHasher>,
}

/// What the decompressing thread sends the hashing thread: a [`Block`]
/// before it is hashed.
enum Raw {
    Data(Vec<u8>, usize),
    Failed(io::Error),
    /// The stream's length.
    End(u64),
}

/// Decompress `input` into blocks for [`hash_blocks`].
fn decompress_blocks<I: BufRead>(
    compression: Compression,
    input: I,
    check: bool,
    mut on_block: impl FnMut(u64),
    tx: SyncSender<Raw>,
    recycled: Receiver<Vec<u8>>,
) {
    let mut total = 0u64;
    let mut decoder = match compression.decoder_checked(input, check) {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.send(Raw::Failed(e));
            return;
        }
    };
    loop {
        let mut block = recycled
            .try_recv()
            .unwrap_or_else(|_| vec![0u8; BLOCK_SIZE]);
        let mut filled = 0;
        while filled < block.len() {
            match decoder.read(&mut block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.send(Raw::Failed(e));
                    return;
                }
            }
        }
        if filled == 0 {
            let _ = tx.send(Raw::End(total));
            return;
        }
        total += filled as u64;
        on_block(filled as u64);
        if tx.send(Raw::Data(block, filled)).is_err() {
            return; // the parser stopped (it reports why)
        }
    }
}

/// Hash the blocks `decompress_blocks` makes and pass them on to the
/// parser. The sha256 of the whole stream, when asked for and it was read
/// to its end (else the parser is told why not, or is gone).
fn hash_blocks(mut hashes: Hashes, rx: Receiver<Raw>, tx: SyncSender<Block>) -> Option<Digest> {
    for block in rx {
        let passed = match block {
            Raw::Data(b, n) => {
                hashes.main.update(&b[..n]);
                if let Some(h) = &mut hashes.sha256 {
                    h.update(&b[..n]);
                }
                tx.send(Block::Data(b, n))
            }
            Raw::End(total) => {
                let sha256 = hashes.sha256.map(StreamHasher::finish);
                let _ = tx.send(Block::End(hashes.main.finish(), total));
                return sha256;
            }
            Raw::Failed(e) => {
                let _ = tx.send(Block::Failed(e));
                return None;
            }
        };
        if passed.is_err() {
            return None; // the parser stopped (it reports why)
        }
    }
    None
}

/// The parser's side of `decompress_blocks`.
pub struct BlockReader {
    rx: Receiver<Block>,
    recycle: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    len: usize,
    pos: usize,
    end: Option<(Digest, u64)>,
}

impl BlockReader {
    fn new(rx: Receiver<Block>, recycle: SyncSender<Vec<u8>>) -> BlockReader {
        BlockReader {
            rx,
            recycle,
            cur: Vec::new(),
            len: 0,
            pos: 0,
            end: None,
        }
    }
}

impl Read for BlockReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.len {
            if self.end.is_some() {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Block::Data(b, len)) => {
                    let spent = std::mem::replace(&mut self.cur, b);
                    if !spent.is_empty() {
                        let _ = self.recycle.try_send(spent);
                    }
                    self.len = len;
                    self.pos = 0;
                }
                Ok(Block::Failed(e)) => return Err(e),
                Ok(Block::End(d, n)) => self.end = Some((d, n)),
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the decompression thread stopped",
                    ))
                }
            }
        }
        let n = buf.len().min(self.len - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A stream that knows, once read to its end, its digest and length.
pub trait StreamEnd: Read {
    fn end(self) -> (Digest, u64);
}

impl StreamEnd for BlockReader {
    fn end(self) -> (Digest, u64) {
        self.end
            .expect("read to the end before asking for its digest")
    }
}

impl<R: Read> StreamEnd for BufReader<HashingRead<R>> {
    fn end(self) -> (Digest, u64) {
        let h = self.into_inner();
        (h.hasher.finish(), h.read)
    }
}

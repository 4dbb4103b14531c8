//! Streams feeding the parser: a mapped blob decompressed and hashed on its
//! own thread, one block ahead; or any reader, hashed as it is read. Each
//! knows, once read to its end, the digest and length of what it gave
//! ([`StreamEnd`]); none knows what reads it.

use std::io::{self, BufReader, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use super::compression::{Compression, HashingRead, StreamHasher};
use crate::digest::{Algorithm, Digest};

/// Run `parse` on the uncompressed stream of `bytes` (a mapped blob):
/// decompression and hashing run on their own thread, one block ahead of
/// the parser, so a big layer's critical path is the slower of the two,
/// not their sum. `check` keeps zstd's frame checksum.
pub fn mapped<T>(
    bytes: &[u8],
    compression: Compression,
    algorithm: Algorithm,
    check: bool,
    parse: impl FnOnce(BlockReader) -> T,
) -> T {
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel::<Block>(AHEAD);
        // Spent blocks go back to be refilled: no allocation, no page
        // faults and no zeroing per block.
        let (recycle_tx, recycle_rx) = sync_channel::<Vec<u8>>(AHEAD + 2);
        s.spawn(move || decompress_blocks(compression, bytes, algorithm, check, tx, recycle_rx));
        parse(BlockReader::new(rx, recycle_tx))
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

fn decompress_blocks(
    compression: Compression,
    bytes: &[u8],
    algorithm: Algorithm,
    check: bool,
    tx: SyncSender<Block>,
    recycled: Receiver<Vec<u8>>,
) {
    let mut hasher = StreamHasher::new(algorithm);
    let mut total = 0u64;
    let mut decoder = match compression.decoder_checked(bytes, check) {
        Ok(d) => d,
        Err(e) => {
            let _ = tx.send(Block::Failed(e));
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
                    let _ = tx.send(Block::Failed(e));
                    return;
                }
            }
        }
        if filled == 0 {
            let _ = tx.send(Block::End(hasher.finish(), total));
            return;
        }
        hasher.update(&block[..filled]);
        total += filled as u64;
        if tx.send(Block::Data(block, filled)).is_err() {
            return; // the parser stopped (it reports why)
        }
    }
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

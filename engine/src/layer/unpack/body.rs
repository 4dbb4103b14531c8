//! File bodies: small ones gathered into batches, large and sparse ones
//! cut into slabs for the writer pool of `bodies`, never into a buffer
//! sized by an untrusted header field.

use std::io::{self, Read};
use std::sync::Arc;

use super::Unpacker;
use crate::layer::bodies::{Bodies, PendingFile, BATCH_FILES, SLAB, SMALL};
use crate::layer::entry::Meta;
use crate::layer::error::LayerError;
use crate::layer::resolve::EntryPath;

impl Unpacker {
    pub(super) fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &EntryPath,
        shown: &str,
        meta: Meta,
    ) -> Result<(), LayerError> {
        let file = self.create_file(path, shown, &meta)?;
        // A GNU sparse entry's size is its full size, holes included.
        let size = entry.size();
        let sparse = entry.header().entry_type().is_gnu_sparse();
        if sparse {
            // The crate reads the map's holes as zeros: the file is made
            // its full size here, and slabs of zeros are left holes.
            file.set_len(size).map_err(self.io_err(shown, "set size"))?;
        }
        let pending = self.pending(file, meta, shown);
        if size <= SMALL as u64 && !sparse {
            let n = size as usize;
            if self.batch.room() < n {
                self.flush_batch()?;
            }
            let start = self.batch.used;
            let got = self.read_body(entry, BodyBuf::Batch(start, n))?;
            if got != n {
                return Err(self.truncated(shown));
            }
            self.batch.used += n;
            self.batch.files.push((pending, start, n));
            if self.batch.files.len() >= BATCH_FILES || self.batch.room() == 0 {
                self.flush_batch()?;
            }
            return Ok(());
        }
        // Large (or sparse, whose segments we learn only by reading):
        // chunks, never a buffer sized by an untrusted header field.
        let chunks = if sparse {
            usize::MAX
        } else {
            size.div_ceil(SLAB as u64) as usize
        };
        let file = Bodies::chunked(pending, chunks);
        let mut offset = 0u64;
        let mut written_chunks = 0usize;
        let mut spare = None;
        loop {
            let mut slab = spare.take().unwrap_or_else(|| self.bodies.slab());
            let n = self.read_body(entry, BodyBuf::Slab(&mut slab))?;
            if n == 0 {
                break;
            }
            if sparse && slab[..n].iter().all(|&b| b == 0) {
                offset += n as u64;
                spare = Some(slab);
                continue;
            }
            written_chunks += 1;
            let last = !sparse && offset + n as u64 == size;
            self.bodies.write_chunk(&file, offset, slab, n)?;
            offset += n as u64;
            if last {
                break;
            }
        }
        if !sparse && offset != size {
            return Err(self.truncated(shown));
        }
        if sparse {
            // Tell the chunk counter how many chunks there really were; an
            // empty sparse file gets a zero-length write to finish it.
            Bodies::settle_chunks(&self.bodies, &file, written_chunks)?;
        }
        Ok(())
    }

    /// A PAX sparse 1.0 file: map, then segments written at their offsets
    /// into a file of the real size.
    pub(super) fn pax_sparse<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        path: &EntryPath,
        shown: &str,
        meta: Meta,
        realsize: u64,
    ) -> Result<(), LayerError> {
        let corrupt = |source| LayerError::Corrupt {
            layer: self.layer.to_string(),
            source,
        };
        let (segments, _) = crate::layer::sparse::read_map(entry, realsize).map_err(corrupt)?;
        let file = self.create_file(path, shown, &meta)?;
        file.set_len(realsize)
            .map_err(self.io_err(shown, "set size"))?;
        let pending = self.pending(file, meta, shown);
        let chunks: usize = segments
            .iter()
            .map(|&(_, len)| len.div_ceil(SLAB as u64) as usize)
            .sum();
        if chunks == 0 {
            let at = self.batch.used;
            self.batch.files.push((pending, at, 0));
            return Ok(());
        }
        let file = Bodies::chunked(pending, chunks);
        for (offset, len) in segments {
            let mut done = 0u64;
            while done < len {
                let want = (len - done).min(SLAB as u64) as usize;
                let mut slab = self.bodies.slab();
                let got = self.read_body(entry, BodyBuf::Slab(&mut slab[..want]))?;
                if got != want {
                    return Err(self.truncated(shown));
                }
                self.bodies.write_chunk(&file, offset + done, slab, want)?;
                done += want as u64;
            }
        }
        Ok(())
    }

    pub(super) fn flush_batch(&mut self) -> Result<(), LayerError> {
        if self.batch.files.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.batch, self.bodies.batch());
        self.bodies.write_batch(full)
    }

    /// A created file whose body, owner and mode are still to be written.
    fn pending(&self, file: std::fs::File, meta: Meta, shown: &str) -> PendingFile {
        let (chown, chmod) = self.creation.needs(&meta);
        PendingFile {
            chown,
            chmod,
            file,
            meta,
            layer: Arc::clone(&self.layer),
            entry: shown.to_string(),
        }
    }

    fn truncated(&self, shown: &str) -> LayerError {
        LayerError::Corrupt {
            layer: self.layer.to_string(),
            source: io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the stream ends inside the body of {shown:?}"),
            ),
        }
    }

    /// Fill `into` from the body: how many bytes, fewer only at its end.
    fn read_body<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        into: BodyBuf<'_>,
    ) -> Result<usize, LayerError> {
        let buf = match into {
            BodyBuf::Batch(start, n) => &mut self.batch.slab[start..start + n],
            BodyBuf::Slab(s) => s,
        };
        let mut filled = 0;
        while filled < buf.len() {
            match entry.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(LayerError::Corrupt {
                        layer: self.layer.to_string(),
                        source: e,
                    })
                }
            }
        }
        Ok(filled)
    }
}

/// Where a body is read to: a range of the current batch's slab, or a slab.
enum BodyBuf<'a> {
    Batch(usize, usize),
    Slab(&'a mut [u8]),
}

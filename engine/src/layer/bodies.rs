//! File bodies written off the parsing thread.
//!
//! The parser creates each regular file itself (so names appear in stream
//! order and every later entry sees them), then hands the open fd and the
//! body bytes to a dedicated rayon pool that writes them and sets the
//! file's metadata. Memory and open fds in flight are bounded: the parser
//! waits when either limit is reached. The pool is our own, not rayon's
//! global one, so a caller that is itself a rayon task can never starve it.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use super::entry::Meta;
use super::error::LayerError;

/// Bytes of file bodies read but not yet written, per unpack.
const MAX_BYTES_IN_FLIGHT: usize = 64 << 20;
/// Files open and queued, per unpack (each holds an fd).
const MAX_TASKS_IN_FLIGHT: usize = 256;
/// Bodies larger than this are cut into chunks written with pwrite.
pub const CHUNK: usize = 4 << 20;

fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("rbox-unpack-{i}"))
            .build()
            .expect("the unpack thread pool starts")
    })
}

/// Run `f` on the unpack pool (used for parallel directory finishing).
pub fn install<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    pool().install(f)
}

#[derive(Default)]
struct State {
    bytes: usize,
    tasks: usize,
    error: Option<LayerError>,
}

/// Book-keeping shared by one unpack's parser and its body tasks.
#[derive(Default)]
pub struct Bodies {
    state: Mutex<State>,
    changed: Condvar,
}

/// A regular file created by the parser, waiting for its body.
pub struct PendingFile {
    pub file: File,
    pub meta: Meta,
    pub layer: Arc<str>,
    pub entry: String,
}

impl PendingFile {
    fn finish(&self) -> Result<(), LayerError> {
        let fd = self.file.as_fd();
        let err = |op| {
            let entry = self.entry.clone();
            let layer = self.layer.to_string();
            move |source| LayerError::EntryIo {
                layer,
                entry,
                op,
                source,
            }
        };
        // chown before chmod: chown clears setuid/setgid.
        super::sys::fchown(fd, self.meta.uid, self.meta.gid).map_err(err("chown"))?;
        super::sys::fchmod(fd, self.meta.mode & 0o7777).map_err(err("chmod"))?;
        for (k, v) in &self.meta.xattrs {
            super::sys::fsetxattr(fd, k, v).map_err(err("set xattr"))?;
        }
        super::sys::futimens(fd, self.meta.mtime, self.meta.mtime_nsec).map_err(err("set times"))
    }

    fn write_err(&self, source: std::io::Error) -> LayerError {
        LayerError::EntryIo {
            layer: self.layer.to_string(),
            entry: self.entry.clone(),
            op: "write",
            source,
        }
    }
}

/// A large file written in chunks; the last chunk to land finishes it.
pub struct ChunkedFile {
    pending: PendingFile,
    chunks_left: AtomicUsize,
}

impl Bodies {
    pub fn new() -> Arc<Bodies> {
        Arc::new(Bodies::default())
    }

    /// Wait for room for `bytes` more; fails fast with a task's error.
    fn reserve(&self, bytes: usize) -> Result<(), LayerError> {
        let mut s = self.state.lock().expect("unpack state lock");
        loop {
            if let Some(e) = s.error.take() {
                return Err(e);
            }
            let room = s.tasks == 0
                || (s.bytes + bytes <= MAX_BYTES_IN_FLIGHT && s.tasks < MAX_TASKS_IN_FLIGHT);
            if room {
                s.bytes += bytes;
                s.tasks += 1;
                return Ok(());
            }
            s = self.changed.wait(s).expect("unpack state lock");
        }
    }

    fn release(&self, bytes: usize, result: Result<(), LayerError>) {
        let mut s = self.state.lock().expect("unpack state lock");
        s.bytes -= bytes;
        s.tasks -= 1;
        if let Err(e) = result {
            s.error.get_or_insert(e);
        }
        self.changed.notify_all();
    }

    /// Write a whole (small) body and finish the file, on the pool.
    pub fn write_whole(self: &Arc<Self>, f: PendingFile, body: Vec<u8>) -> Result<(), LayerError> {
        let n = body.len();
        self.reserve(n)?;
        let me = Arc::clone(self);
        pool().spawn(move || {
            let mut file = &f.file;
            let r = file
                .write_all(&body)
                .map_err(|e| f.write_err(e))
                .and_then(|()| f.finish());
            drop(body);
            me.release(n, r);
        });
        Ok(())
    }

    pub fn chunked(f: PendingFile, chunks: usize) -> Arc<ChunkedFile> {
        Arc::new(ChunkedFile {
            pending: f,
            chunks_left: AtomicUsize::new(chunks),
        })
    }

    /// Write one chunk of a large body at `offset`, on the pool.
    pub fn write_chunk(
        self: &Arc<Self>,
        f: &Arc<ChunkedFile>,
        offset: u64,
        chunk: Vec<u8>,
    ) -> Result<(), LayerError> {
        let n = chunk.len();
        self.reserve(n)?;
        let me = Arc::clone(self);
        let f = Arc::clone(f);
        pool().spawn(move || {
            let mut r = f
                .pending
                .file
                .write_all_at(&chunk, offset)
                .map_err(|e| f.pending.write_err(e));
            drop(chunk);
            if f.chunks_left.fetch_sub(1, Ordering::AcqRel) == 1 && r.is_ok() {
                r = f.pending.finish();
            }
            me.release(n, r);
        });
        Ok(())
    }

    /// For a file whose chunk count was unknown up front (`usize::MAX`):
    /// `written` chunks were queued in all. Finishes the file here if they
    /// have all landed already.
    pub fn settle_chunks(
        self: &Arc<Self>,
        f: &Arc<ChunkedFile>,
        written: usize,
    ) -> Result<(), LayerError> {
        let unqueued = usize::MAX - written;
        if f.chunks_left.fetch_sub(unqueued, Ordering::AcqRel) == unqueued {
            f.pending.finish()?;
        }
        Ok(())
    }

    /// Wait until every queued body is written; the first error, if any.
    pub fn wait_idle(&self) -> Result<(), LayerError> {
        let mut s = self.state.lock().expect("unpack state lock");
        while s.tasks > 0 {
            s = self.changed.wait(s).expect("unpack state lock");
        }
        match s.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

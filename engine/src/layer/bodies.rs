//! File bodies written off the parsing thread.
//!
//! The parser creates each regular file itself (so names appear in stream
//! order and every later entry sees them), then hands the open fd and the
//! body bytes to a few writer threads that write them and set the file's
//! metadata. Small files go in batches, so a thread wakes once per batch,
//! not once per file. Memory and open fds in flight are bounded: when either
//! limit is reached the parser writes the batch itself rather than wait.
//!
//! The parser also writes bodies itself while the process runs at least as
//! many unpacks as there are cores (an image's layers side by side): every
//! core then has a parser and a decompressor to run already, and handing a
//! body to another thread only makes it cross cores cold. Written where they
//! were just read, bodies come from cache: on the 2-core bench machine the
//! kernel's copy into the page cache took ~12 ms instead of ~100 ms from
//! the writers, for the 3-layer Debian image (4-5% less CPU in all).
//!
//! The writers are plain threads blocking on a channel, not a rayon pool:
//! rayon's idle workers spin (sched_yield) before sleeping, and on a
//! 2-core machine that spinning takes the CPU the parser needs.
//!
//! Bodies travel in slabs: fixed 1 MiB buffers, several small bodies packed
//! into one, or one piece of a large body. Spent slabs come back to the
//! unpack's pool, so after the first few nothing is allocated, zeroed or
//! page-faulted per body (a fresh buffer per file cost a page fault per
//! 4 KiB and a memset of every body).

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use super::entry::Meta;
use super::error::LayerError;

/// Bytes of file bodies read but not yet written, per unpack: enough to
/// keep the writers busy; more only costs fresh (page-faulted) slabs.
const MAX_BYTES_IN_FLIGHT: usize = 16 << 20;
/// Files open and queued, per unpack (each holds an fd). With a batch being
/// filled and up to 4 layers at once this stays well under the common
/// 1024-fd soft limit.
const MAX_TASKS_IN_FLIGHT: usize = 128;
/// The size of every body buffer; bodies larger than [`SMALL`] are cut
/// into chunks of this size, written with pwrite.
pub const SLAB: usize = 1 << 20;
/// Bodies up to this size are packed into a shared slab (a batch).
pub const SMALL: usize = SLAB / 4;
/// A batch holds at most this many files.
pub const BATCH_FILES: usize = 32;
/// Spent slabs kept for reuse, per unpack (as many as can be in flight).
const POOL_SLABS: usize = MAX_BYTES_IN_FLIGHT / SLAB + 4;

type Job = Box<dyn FnOnce() + Send>;

/// The writer threads, shared by every unpack in the process.
fn writers() -> &'static Mutex<Sender<Job>> {
    static WRITERS: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    WRITERS.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..cores() {
            let rx: Arc<Mutex<Receiver<Job>>> = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("rbox-unpack-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock().expect("writer queue lock").recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    };
                    job();
                })
                .expect("start an unpack writer thread");
        }
        Mutex::new(tx)
    })
}

fn spawn(job: impl FnOnce() + Send + 'static) {
    writers()
        .lock()
        .expect("writer queue lock")
        .send(Box::new(job))
        .expect("the writer threads live as long as the process");
}

/// Unpacks running in this process now: one [`Bodies`] each.
static ACTIVE_UNPACKS: AtomicUsize = AtomicUsize::new(0);

/// Cores this process may use (read once: `available_parallelism` reads
/// cgroup files on every call).
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
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
    /// Spent slabs (each `SLAB` long, initialised).
    pool: Mutex<Vec<Vec<u8>>>,
}

/// Small files whose bodies share one slab: file, start, length.
pub struct Batch {
    pub files: Vec<(PendingFile, usize, usize)>,
    pub slab: Vec<u8>,
    pub used: usize,
}

impl Batch {
    pub fn room(&self) -> usize {
        self.slab.len() - self.used
    }
}

/// A regular file created by the parser, waiting for its body.
pub struct PendingFile {
    pub file: File,
    pub meta: Meta,
    pub layer: Arc<str>,
    pub entry: String,
    /// False when the file was created with exactly this owner / mode
    /// already (saves two syscalls per file in the common case).
    pub chown: bool,
    pub chmod: bool,
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
        if self.chown {
            super::sys::fchown(fd, self.meta.uid, self.meta.gid).map_err(err("chown"))?;
        }
        if self.chmod {
            super::sys::fchmod(fd, self.meta.mode & 0o7777).map_err(err("chmod"))?;
        }
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

impl Drop for Bodies {
    fn drop(&mut self) {
        ACTIVE_UNPACKS.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Bodies {
    pub fn new() -> Arc<Bodies> {
        ACTIVE_UNPACKS.fetch_add(1, Ordering::Relaxed);
        Arc::new(Bodies::default())
    }

    /// Whether writer threads would find an idle core: not while every core
    /// already has an unpack's parser and decompressor to run.
    fn offload(&self) -> bool {
        ACTIVE_UNPACKS.load(Ordering::Relaxed) < cores()
    }

    /// A `SLAB`-long buffer: a spent one, or a fresh one (zero pages from
    /// the kernel, faulted in once).
    pub fn slab(&self) -> Vec<u8> {
        let spent = self.pool.lock().expect("slab pool lock").pop();
        spent.unwrap_or_else(|| vec![0u8; SLAB])
    }

    fn recycle(&self, slab: Vec<u8>) {
        if slab.len() != SLAB {
            return;
        }
        let mut pool = self.pool.lock().expect("slab pool lock");
        if pool.len() < POOL_SLABS {
            pool.push(slab);
        }
    }

    /// An empty batch on a slab from the pool.
    pub fn batch(&self) -> Batch {
        Batch {
            files: Vec::with_capacity(BATCH_FILES),
            slab: self.slab(),
            used: 0,
        }
    }

    /// Take room for `bytes` more if there is some: `Ok(false)` when the
    /// limits are reached (the caller then does the work itself instead of
    /// sleeping, which on a busy machine costs a time slice per wait) or
    /// when no core is free for a writer. Fails fast with a task's error.
    fn try_reserve(&self, bytes: usize, files: usize) -> Result<bool, LayerError> {
        let mut s = self.state.lock().expect("unpack state lock");
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        if !self.offload() {
            return Ok(false);
        }
        let room = s.tasks == 0
            || (s.bytes + bytes <= MAX_BYTES_IN_FLIGHT && s.tasks + files <= MAX_TASKS_IN_FLIGHT);
        if room {
            s.bytes += bytes;
            s.tasks += files;
        }
        Ok(room)
    }

    fn release(&self, bytes: usize, files: usize, result: Result<(), LayerError>) {
        let mut s = self.state.lock().expect("unpack state lock");
        s.bytes -= bytes;
        s.tasks -= files;
        if let Err(e) = result {
            s.error.get_or_insert(e);
        }
        self.changed.notify_all();
    }

    /// Write whole (small) bodies and finish their files, on a writer.
    pub fn write_batch(self: &Arc<Self>, batch: Batch) -> Result<(), LayerError> {
        let files = batch.files.len();
        if !self.try_reserve(SLAB, files)? {
            let r = write_batch_now(&batch);
            self.recycle(batch.slab);
            return r;
        }
        let me = Arc::clone(self);
        spawn(move || {
            let r = write_batch_now(&batch);
            me.recycle(batch.slab);
            me.release(SLAB, files, r);
        });
        Ok(())
    }

    pub fn chunked(f: PendingFile, chunks: usize) -> Arc<ChunkedFile> {
        Arc::new(ChunkedFile {
            pending: f,
            chunks_left: AtomicUsize::new(chunks),
        })
    }

    /// Write the first `len` bytes of `slab` at `offset` of a large body,
    /// on a writer.
    pub fn write_chunk(
        self: &Arc<Self>,
        f: &Arc<ChunkedFile>,
        offset: u64,
        slab: Vec<u8>,
        len: usize,
    ) -> Result<(), LayerError> {
        if !self.try_reserve(SLAB, 1)? {
            let r = write_chunk_now(f, offset, &slab[..len]);
            self.recycle(slab);
            return r;
        }
        let me = Arc::clone(self);
        let f = Arc::clone(f);
        spawn(move || {
            let r = write_chunk_now(&f, offset, &slab[..len]);
            me.recycle(slab);
            me.release(SLAB, 1, r);
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

fn write_batch_now(batch: &Batch) -> Result<(), LayerError> {
    for (f, start, len) in &batch.files {
        let mut file = &f.file;
        file.write_all(&batch.slab[*start..start + len])
            .map_err(|e| f.write_err(e))?;
        f.finish()?;
    }
    Ok(())
}

fn write_chunk_now(f: &ChunkedFile, offset: u64, chunk: &[u8]) -> Result<(), LayerError> {
    f.pending
        .file
        .write_all_at(chunk, offset)
        .map_err(|e| f.pending.write_err(e))?;
    if f.chunks_left.fetch_sub(1, Ordering::AcqRel) == 1 {
        f.pending.finish()?;
    }
    Ok(())
}

//! The content-addressed store (DESIGN.md, "Store layout").
//!
//! ```text
//! blobs/blake3/<hex>     compressed layer tars, configs, manifests      (blobs)
//! layers/<hex>/fs        unpacked layer trees (overlay lowerdirs); <hex> is the diff id (layers)
//! layers/<hex>/complete  marker written before the directory is renamed into place (marker)
//! images/<name>/<tag>    ref -> manifest digest                          (images)
//! containers/<id>/...    the runner's; containers/<id>/image names the manifest it uses
//! cache/                 the builder's step cache (cache/steps/<key> -> manifest digest)
//! mnt/                   the mount point of containers' and RUN steps' roots (each in its own mount namespace)
//! tmp/<session>/         temp names, one session directory per open Store (session)
//! lock                   flock: shared for every open Store, exclusive for gc (gc)
//! ```
//!
//! Only root may enter the store ([`access`]): the root and every directory
//! below it that holds image or container trees are 0700, so no other
//! user reaches a setuid file or a device node of an image, or one that a
//! container wrote into its upper dir.
//!
//! Writers never need an exclusive lock: everything is written under `tmp/`
//! and renamed into place, and two processes writing the same content rename
//! the same bytes. Only `gc`, which deletes, takes the lock exclusively, so
//! it waits until no other process has the store open.

mod access;
mod blobs;
mod error;
mod gc;
mod images;
mod layers;
pub mod marker;
mod session;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use access::{private_dir, PRIVATE_MODE};
pub use blobs::BlobWriter;
pub use error::{Result, StoreError};
pub use gc::GcReport;
pub use images::Image;

use crate::fsutil::{self, remove_tree};
use error::io_err;

pub const DEFAULT_ROOT: &str = "/var/lib/rbox";

pub struct Store {
    root: PathBuf,
    lock: File,
    /// This process's `tmp/<session>`, made on first use: most `rrun run`s
    /// never need one, and a mkdir + rmdir in the shared tmp/ per start
    /// was contended work on the start path.
    session: PathBuf,
    session_made: OnceLock<()>,
}

impl Store {
    /// Open (creating if needed) the store at `root`, take the shared lock,
    /// and remove temp directories left by processes that died. The store's
    /// directories are made private to its owner if they were not
    /// ([`access::ensure_private`]).
    pub fn open(root: &Path) -> Result<Store> {
        access::ensure_private(root)?;
        let lock_path = root.join("lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err("open lock", &lock_path))?;
        flock(&lock, libc::LOCK_SH).map_err(io_err("lock (shared)", &lock_path))?;

        session::reap_dead_sessions(&root.join("tmp"));
        Ok(Store {
            root: root.to_path_buf(),
            lock,
            session: root.join("tmp").join(session::session_name()),
            session_made: OnceLock::new(),
        })
    }

    /// The session directory, created on first use.
    fn session(&self) -> Result<&Path> {
        if self.session_made.get().is_none() {
            match access::private_dir().create(&self.session) {
                // Another thread of this Store made it first.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                r => r.map_err(io_err("create directory", &self.session))?,
            }
            // Removed should a signal end the process (crate::interrupt).
            crate::interrupt::register(&self.session);
            let _ = self.session_made.set(());
        }
        Ok(&self.session)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This process's own temp directory inside the store (same filesystem
    /// as everything else, so renames out of it are atomic).
    ///
    /// Made on first use; should that fail (a full or read-only store), the
    /// path is still returned and the caller's own create in it fails,
    /// naming it. [`Store::new_temp_dir`] reports the mkdir's own error.
    pub fn tmp_dir(&self) -> &Path {
        let _ = self.session();
        &self.session
    }

    /// A fresh, empty directory under this session's temp directory.
    /// Private (0700) like the session it is in: whatever a caller puts
    /// in it keeps its own mode.
    pub fn new_temp_dir(&self, prefix: &str) -> Result<PathBuf> {
        let p = self.session()?.join(fsutil::unique_name(prefix));
        access::private_dir()
            .create(&p)
            .map_err(io_err("create directory", &p))?;
        Ok(p)
    }

    /// Copy the file `src` to a new name in this session's temp directory
    /// (for `commit_blob_file`). A failed copy leaves no partial file.
    pub fn copy_into_temp(&self, src: &Path, prefix: &str) -> Result<PathBuf> {
        let to = self.session()?.join(fsutil::unique_name(prefix));
        if let Err(source) = fs::copy(src, &to) {
            let _ = fs::remove_file(&to);
            return Err(StoreError::CopyIn {
                to,
                from: src.to_path_buf(),
                source,
            });
        }
        Ok(to)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.session_made.get().is_some() {
            let _ = remove_tree(&self.session);
            crate::interrupt::unregister(&self.session);
        }
    }
}

fn flock(f: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is passed.
        let rc = unsafe { libc::flock(f.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn read_dir_or_empty(dir: &Path) -> Result<Vec<PathBuf>> {
    match fs::read_dir(dir) {
        Ok(rd) => {
            let mut v = Vec::new();
            for e in rd {
                v.push(e.map_err(io_err("read directory", dir))?.path());
            }
            Ok(v)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err("read directory", dir)(e)),
    }
}

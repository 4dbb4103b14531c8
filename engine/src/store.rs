//! The content-addressed store (DESIGN.md, "Store layout").
//!
//! ```text
//! blobs/blake3/<hex>     compressed layer tars, configs, manifests
//! layers/<hex>/fs        unpacked layer trees (overlay lowerdirs); <hex> is the diff id
//! layers/<hex>/complete  marker written before the directory is renamed into place
//! images/<name>/<tag>    ref -> manifest digest
//! containers/<id>/...    the runner's; containers/<id>/image names the manifest it uses
//! cache/                 the builder's step cache (cache/steps/<key> -> manifest digest)
//! tmp/<session>/         temp names, one session directory per open Store
//! lock                   flock: shared for every open Store, exclusive for gc
//! ```
//!
//! Writers never need an exclusive lock: everything is written under `tmp/`
//! and renamed into place, and two processes writing the same content rename
//! the same bytes. Only `gc`, which deletes, takes the lock exclusively, so
//! it waits until no other process has the store open.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::digest::{Digest, HashingWriter};
use crate::fsutil::{self, fsync_dir, remove_tree, write_atomic};
use crate::image::{media_type, Descriptor, ImageConfig, Manifest};
use crate::reference::{ImageRef, ReferenceError};

pub const DEFAULT_ROOT: &str = "/var/lib/rbox";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("image {reference:?} not found in {root} (try: rbuild images)")]
    ImageNotFound { reference: String, root: PathBuf },
    #[error("blob {digest} is missing from {root} (try: rbuild fsck)")]
    BlobMissing { digest: Digest, root: PathBuf },
    #[error("blob {digest} is corrupt: its content hashes to {actual} (try: rbuild fsck)")]
    BlobCorrupt { digest: Digest, actual: Digest },
    #[error("{what} {digest}: invalid JSON: {source}")]
    Json {
        what: &'static str,
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    #[error("store {root} uses digest {digest}, but the store keeps only blake3 digests")]
    ForeignDigest { root: PathBuf, digest: Digest },
    /// Names the store file being written first: on a full disk that is
    /// the path that matters, not the source.
    #[error("copy into the store at {to} (from {from}): {source}")]
    CopyIn {
        to: PathBuf,
        from: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// An image as stored: the manifest, its config, and how it was found.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    pub config_digest: Digest,
    pub config: ImageConfig,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub layers_removed: usize,
    pub bytes_freed: u64,
}

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
    /// `$RBOX_ROOT`, else `/var/lib/rbox`.
    pub fn default_root() -> PathBuf {
        std::env::var_os("RBOX_ROOT")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT))
    }

    /// Open (creating if needed) the store at `root`, take the shared lock,
    /// and remove temp directories left by processes that died.
    pub fn open(root: &Path) -> Result<Store> {
        for sub in [
            "blobs/blake3",
            "layers",
            "images",
            "containers",
            "cache",
            "tmp",
        ] {
            let p = root.join(sub);
            // A stat walks the path without locks; a mkdir of an existing
            // dir fails with EEXIST only after taking the parent's lock,
            // which concurrent starts then queue on.
            if !p.is_dir() {
                fs::create_dir_all(&p).map_err(io_err("create directory", &p))?;
            }
        }
        let lock_path = root.join("lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err("open lock", &lock_path))?;
        flock(&lock, libc::LOCK_SH).map_err(io_err("lock (shared)", &lock_path))?;

        reap_dead_sessions(&root.join("tmp"));
        Ok(Store {
            root: root.to_path_buf(),
            lock,
            session: root.join("tmp").join(session_name()),
            session_made: OnceLock::new(),
        })
    }

    /// The session directory, created on first use.
    fn session(&self) -> Result<&Path> {
        if self.session_made.get().is_none() {
            match fs::create_dir(&self.session) {
                // Another thread of this Store made it first.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                r => r.map_err(io_err("create directory", &self.session))?,
            }
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
    pub fn new_temp_dir(&self, prefix: &str) -> Result<PathBuf> {
        let p = self.session()?.join(fsutil::unique_name(prefix));
        fs::create_dir(&p).map_err(io_err("create directory", &p))?;
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

    // ----------------------------------------------------------------- blobs

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).exists()
    }

    /// Start writing a blob; its name is known only when it is committed.
    pub fn blob_writer(&self) -> Result<BlobWriter<'_>> {
        let tmp = self.session()?.join(fsutil::unique_name("blob"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        Ok(BlobWriter {
            store: self,
            tmp,
            writer: Some(HashingWriter::new(io::BufWriter::with_capacity(
                1 << 20,
                file,
            ))),
        })
    }

    pub fn put_blob(&self, bytes: &[u8]) -> Result<(Digest, u64)> {
        let mut w = self.blob_writer()?;
        w.write_all(bytes)
            .map_err(io_err("write", self.tmp_dir()))?;
        w.commit()
    }

    /// Move a file that already sits in this store's tmp (same filesystem)
    /// into the blob directory under `digest`, which the caller computed.
    pub fn commit_blob_file(&self, tmp_file: &Path, digest: &Digest) -> Result<()> {
        let dest = self.blob_path(digest);
        if dest.exists() {
            let _ = fs::remove_file(tmp_file);
            return Ok(());
        }
        File::open(tmp_file)
            .and_then(|f| f.sync_all())
            .map_err(io_err("fsync", tmp_file))?;
        fs::rename(tmp_file, &dest).map_err(io_err("rename into place", &dest))?;
        let dir = dest.parent().expect("blob path has a parent");
        fsync_dir(dir).map_err(io_err("fsync", dir))
    }

    /// Read a small blob (manifest, config) whole, verifying its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(digest);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::BlobMissing {
                    digest: digest.clone(),
                    root: self.root.clone(),
                })
            }
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        let actual = Digest::blake3_of(&bytes);
        if &actual != digest {
            return Err(StoreError::BlobCorrupt {
                digest: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &'static str,
        digest: &Digest,
    ) -> Result<T> {
        let bytes = self.read_blob(digest)?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::Json {
            what,
            digest: digest.clone(),
            source,
        })
    }

    fn put_json<T: serde::Serialize>(&self, value: &T) -> Result<(Digest, u64)> {
        let bytes = serde_json::to_vec(value).expect("image JSON always serialises");
        self.put_blob(&bytes)
    }

    // ---------------------------------------------------------------- layers

    /// `layers/<hex>`: the directory of an unpacked layer (complete if it exists).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// `layers/<hex>/fs`: the overlay lowerdir of an unpacked layer.
    pub fn layer_fs(&self, diff_id: &Digest) -> PathBuf {
        self.layer_dir(diff_id).join("fs")
    }

    /// A complete layer whose marker may be trusted (see `layer::marker`:
    /// a layer published unsynced counts only in the boot that wrote it).
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        crate::layer::marker::trusted(&self.layer_dir(diff_id), diff_id)
    }

    /// Publish an unpacked layer. `staged` is a directory under this
    /// session's tmp holding `fs/`; it gets its completion marker and is
    /// renamed to `layers/<hex>` in one step, so a layer directory either
    /// exists whole or not at all. If another process won the race, ours is
    /// discarded.
    pub fn commit_layer_dir(&self, staged: &Path, diff_id: &Digest) -> Result<PathBuf> {
        self.publish_layer_dir(staged, diff_id, true)
    }

    /// `commit_layer_dir`, where `synced = false` says the caller has not
    /// synced the tree: nothing is fsynced and the marker names this boot,
    /// so after a crash the layer is not trusted (`layer::marker`). An
    /// untrusted layer already at the destination is replaced.
    pub fn publish_layer_dir(
        &self,
        staged: &Path,
        diff_id: &Digest,
        synced: bool,
    ) -> Result<PathBuf> {
        // Without a boot id an unsynced layer cannot be told apart after a
        // crash: sync it here instead.
        let synced = if !synced && crate::layer::marker::boot_id().is_none() {
            let fs_dir = staged.join("fs");
            fsutil::syncfs(&fs_dir).map_err(io_err("syncfs", &fs_dir))?;
            true
        } else {
            synced
        };
        let marker = staged.join("complete");
        let mut f = File::create(&marker).map_err(io_err("create", &marker))?;
        f.write_all(crate::layer::marker::text(diff_id, synced).as_bytes())
            .map_err(io_err("write", &marker))?;
        if synced {
            f.sync_all().map_err(io_err("fsync", &marker))?;
            fsync_dir(staged).map_err(io_err("fsync", staged))?;
        }
        let dest = self.layer_dir(diff_id);
        crate::layer::marker::discard_untrusted(&dest, diff_id, self.session()?)
            .map_err(io_err("remove the untrusted layer", &dest))?;
        match fs::rename(staged, &dest) {
            Ok(()) => {}
            Err(e) if self.has_layer(diff_id) => {
                // Somebody else published the same layer first (ENOTEMPTY/EEXIST).
                let _ = e;
                remove_tree(staged).map_err(io_err("remove", staged))?;
            }
            Err(e) => return Err(io_err("rename into place", &dest)(e)),
        }
        if synced {
            let layers = self.root.join("layers");
            fsync_dir(&layers).map_err(io_err("fsync", &layers))?;
        }
        Ok(dest)
    }

    // ---------------------------------------------------------------- images

    /// Store config and manifest for an image; returns the manifest digest.
    pub fn put_image(&self, config: &ImageConfig, layers: Vec<Descriptor>) -> Result<Digest> {
        let (config_digest, config_size) = self.put_json(config)?;
        let manifest = Manifest::new(
            Descriptor {
                media_type: media_type::CONFIG.to_string(),
                digest: config_digest,
                size: config_size,
                annotations: Default::default(),
            },
            layers,
        );
        Ok(self.put_json(&manifest)?.0)
    }

    pub fn image_by_digest(&self, manifest_digest: &Digest) -> Result<Image> {
        let manifest: Manifest = self.read_json("manifest", manifest_digest)?;
        let config_digest = manifest.config.digest.clone();
        let config: ImageConfig = self.read_json("config", &config_digest)?;
        Ok(Image {
            manifest_digest: manifest_digest.clone(),
            manifest,
            config_digest,
            config,
        })
    }

    /// Find an image by `name[:tag]`, by full digest, or by a unique prefix
    /// of at least 12 hex digits of a manifest digest (as `docker` takes ids).
    pub fn find_image(&self, reference: &str) -> Result<Image> {
        if let Ok(digest) = reference.parse::<Digest>() {
            if self.has_blob(&digest) {
                return self.image_by_digest(&digest);
            }
        }
        if let Ok(r) = reference.parse::<ImageRef>() {
            if let Some(d) = self.resolve(&r)? {
                return self.image_by_digest(&d);
            }
        }
        if reference.len() >= 12 && reference.bytes().all(|b| b.is_ascii_hexdigit()) {
            let matches: Vec<Digest> = self
                .list_refs()?
                .into_iter()
                .map(|(_, d)| d)
                .filter(|d| d.hex().starts_with(reference))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            if matches.len() == 1 {
                return self.image_by_digest(&matches[0]);
            }
        }
        Err(StoreError::ImageNotFound {
            reference: reference.to_string(),
            root: self.root.clone(),
        })
    }

    // ------------------------------------------------------------------ refs

    fn ref_path(&self, r: &ImageRef) -> PathBuf {
        // ImageRef validation rules out "", "." and ".." components.
        self.root.join("images").join(&r.name).join(&r.tag)
    }

    pub fn tag(&self, r: &ImageRef, manifest_digest: &Digest) -> Result<()> {
        let path = self.ref_path(r);
        let dir = path.parent().expect("ref path has a parent");
        fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        write_atomic(
            self.session()?,
            &path,
            format!("{manifest_digest}\n").as_bytes(),
        )
        .map_err(io_err("write", &path))
    }

    pub fn resolve(&self, r: &ImageRef) -> Result<Option<Digest>> {
        let path = self.ref_path(r);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(s.trim().parse().ok()),
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                Ok(None)
            }
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Remove a tag; returns whether it existed.
    pub fn untag(&self, r: &ImageRef) -> Result<bool> {
        let path = self.ref_path(r);
        match fs::remove_file(&path) {
            Ok(()) => {
                // Tidy empty repository directories up to images/.
                let images = self.root.join("images");
                let mut dir = path.parent().map(Path::to_path_buf);
                while let Some(d) = dir {
                    if d == images || fs::remove_dir(&d).is_err() {
                        break;
                    }
                    dir = d.parent().map(Path::to_path_buf);
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// Every tag in the store, sorted by name and tag.
    pub fn list_refs(&self) -> Result<Vec<(ImageRef, Digest)>> {
        let images = self.root.join("images");
        let mut out = Vec::new();
        walk_refs(&images, &images, &mut out)?;
        out.sort();
        Ok(out)
    }

    // -------------------------------------------------------------------- gc

    /// Manifest digests that keep their blobs and layers alive: every tag,
    /// every container's image, every builder cache entry.
    fn gc_roots(&self) -> Result<Vec<Digest>> {
        let mut roots: Vec<Digest> = self.list_refs()?.into_iter().map(|(_, d)| d).collect();
        let containers = self.root.join("containers");
        for entry in read_dir_or_empty(&containers)? {
            if let Ok(s) = fs::read_to_string(entry.join("image")) {
                roots.extend(s.trim().parse().ok());
            }
        }
        let steps = self.root.join("cache/steps");
        for entry in read_dir_or_empty(&steps)? {
            if let Ok(s) = fs::read_to_string(&entry) {
                roots.extend(s.split_whitespace().filter_map(|w| w.parse().ok()));
            }
        }
        Ok(roots)
    }

    /// Remove every blob and unpacked layer that no root reaches. Waits for
    /// the exclusive lock: no other process may have the store open.
    pub fn gc(&self) -> Result<GcReport> {
        let lock_path = self.root.join("lock");
        flock(&self.lock, libc::LOCK_EX).map_err(io_err("lock (exclusive)", &lock_path))?;
        let result = self.gc_locked();
        let _ = flock(&self.lock, libc::LOCK_SH);
        result
    }

    fn gc_locked(&self) -> Result<GcReport> {
        let mut live_blobs: HashSet<String> = HashSet::new();
        let mut live_layers: HashSet<String> = HashSet::new();
        for root in self.gc_roots()? {
            // A root whose manifest is gone or corrupt keeps nothing alive;
            // fsck reports it.
            let Ok(image) = self.image_by_digest(&root) else {
                continue;
            };
            live_blobs.insert(root.hex().to_string());
            live_blobs.insert(image.config_digest.hex().to_string());
            for l in &image.manifest.layers {
                live_blobs.insert(l.digest.hex().to_string());
            }
            for d in &image.config.rootfs.diff_ids {
                live_layers.insert(d.hex().to_string());
            }
        }
        let mut report = GcReport::default();
        let blobs = self.root.join("blobs/blake3");
        for path in read_dir_or_empty(&blobs)? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !live_blobs.contains(name) {
                report.bytes_freed += fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
                report.blobs_removed += 1;
            }
        }
        let layers = self.root.join("layers");
        for path in read_dir_or_empty(&layers)? {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !live_layers.contains(name) {
                // Rename first so that a half-removed layer never looks complete.
                let doomed = self.session()?.join(fsutil::unique_name("gc-layer"));
                fs::rename(&path, &doomed).map_err(io_err("rename", &path))?;
                remove_tree(&doomed).map_err(io_err("remove", &doomed))?;
                report.layers_removed += 1;
            }
        }
        Ok(report)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.session_made.get().is_some() {
            let _ = remove_tree(&self.session);
        }
    }
}

/// A blob being written: hashed as it streams to a temp file, named on commit.
pub struct BlobWriter<'s> {
    store: &'s Store,
    tmp: PathBuf,
    writer: Option<HashingWriter<io::BufWriter<File>>>,
}

impl BlobWriter<'_> {
    /// fsync, rename to `blobs/blake3/<hex>`; returns the digest and size.
    pub fn commit(mut self) -> Result<(Digest, u64)> {
        let w = self.writer.take().expect("commit called once");
        let size = w.written();
        let (buf, digest, _) = w.finish();
        buf.into_inner()
            .map_err(|e| io_err("write", &self.tmp)(e.into_error()))?;
        self.store.commit_blob_file(&self.tmp, &digest)?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().expect("not committed").write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("not committed").flush()
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        if self.writer.is_some() {
            let _ = fs::remove_file(&self.tmp);
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

/// `<pid>-<start time>-<counter>`: enough to tell later whether the owner lives.
fn session_name() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    let start = fsutil::process_start_time(pid).unwrap_or(0);
    format!("{pid}-{start}-{}", N.fetch_add(1, Ordering::Relaxed))
}

fn session_owner_alive(name: &str) -> bool {
    let mut parts = name.split('-');
    let (Some(pid), Some(start)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    fsutil::process_start_time(pid) == Some(start)
}

/// Invariant 1: a killed process leaves only temp names; remove them.
fn reap_dead_sessions(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !session_owner_alive(&name) {
            let _ = remove_tree(&entry.path());
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

fn walk_refs(base: &Path, dir: &Path, out: &mut Vec<(ImageRef, Digest)>) -> Result<()> {
    for path in read_dir_or_empty(dir)? {
        let meta = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
        if meta.is_dir() {
            walk_refs(base, &path, out)?;
        } else if meta.is_file() {
            let rel = path.strip_prefix(base).expect("walk stays under base");
            let (Some(name), Some(tag)) = (rel.parent(), rel.file_name()) else {
                continue;
            };
            let r = format!("{}:{}", name.display(), tag.to_string_lossy());
            let Ok(r) = r.parse::<ImageRef>() else {
                continue;
            };
            let mut s = String::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_string(&mut s))
                .map_err(io_err("read", &path))?;
            if let Ok(d) = s.trim().parse() {
                out.push((r, d));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::ImageConfig;

    #[test]
    fn blobs_are_content_addressed_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (d, n) = store.put_blob(b"layer bytes").unwrap();
        assert_eq!(n, 11);
        assert_eq!(d, Digest::blake3_of(b"layer bytes"));
        assert_eq!(store.read_blob(&d).unwrap(), b"layer bytes");
        // Writing the same content again is harmless.
        assert_eq!(store.put_blob(b"layer bytes").unwrap().0, d);
        fs::write(store.blob_path(&d), b"tampered").unwrap();
        assert!(matches!(
            store.read_blob(&d),
            Err(StoreError::BlobCorrupt { .. })
        ));
        // Nothing of the writes is left in tmp.
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn images_tag_resolve_untag_and_gc() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (layer, size) = store.put_blob(b"pretend tar").unwrap();
        let (orphan, _) = store.put_blob(b"nobody refers to me").unwrap();
        let diff_id = Digest::blake3_of(b"uncompressed");
        let staged = store.new_temp_dir("layer").unwrap();
        fs::create_dir(staged.join("fs")).unwrap();
        store.commit_layer_dir(&staged, &diff_id).unwrap();
        assert!(store.has_layer(&diff_id));

        let mut config = ImageConfig::scratch();
        config.rootfs.diff_ids.push(diff_id.clone());
        let m = store
            .put_image(
                &config,
                vec![Descriptor {
                    media_type: media_type::LAYER_ZSTD.into(),
                    digest: layer.clone(),
                    size,
                    annotations: Default::default(),
                }],
            )
            .unwrap();
        let r: ImageRef = "team/app:v1".parse().unwrap();
        store.tag(&r, &m).unwrap();
        assert_eq!(store.find_image("team/app:v1").unwrap().manifest_digest, m);
        assert_eq!(store.find_image(&m.hex()[..12]).unwrap().config, config);
        assert!(matches!(
            store.find_image("nope"),
            Err(StoreError::ImageNotFound { .. })
        ));

        let report = store.gc().unwrap();
        assert_eq!(report.blobs_removed, 1);
        assert!(!store.has_blob(&orphan));
        assert!(store.has_blob(&layer) && store.has_layer(&diff_id));

        assert!(store.untag(&r).unwrap());
        assert!(store.list_refs().unwrap().is_empty());
        let report = store.gc().unwrap();
        assert_eq!((report.blobs_removed, report.layers_removed), (3, 1));
        assert!(!dir.path().join("images/team").exists());
    }

    #[test]
    fn dead_sessions_are_reaped_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = Store::open(dir.path()).unwrap();
        let stale = dir.path().join("tmp/999999999-1-0");
        fs::create_dir_all(stale.join("half-written")).unwrap();
        let b = Store::open(dir.path()).unwrap();
        assert!(!stale.exists(), "a dead process's temp dir survived");
        assert!(a.tmp_dir().exists() && b.tmp_dir().exists());
        let a_tmp = a.tmp_dir().to_path_buf();
        drop(a);
        assert!(!a_tmp.exists());
    }

    #[test]
    fn a_store_that_writes_nothing_makes_no_session_dir() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(
            fs::read_dir(&tmp).unwrap().count(),
            0,
            "open made a session dir"
        );
        let _ = s.resolve(&"x:y".parse().unwrap()).unwrap();
        assert_eq!(
            fs::read_dir(&tmp).unwrap().count(),
            0,
            "a read made a session dir"
        );
        let staged = s.new_temp_dir("t").unwrap();
        assert!(staged.starts_with(&tmp) && staged.is_dir());
        drop(s);
        assert_eq!(
            fs::read_dir(&tmp).unwrap().count(),
            0,
            "the session outlived its store"
        );
    }
}

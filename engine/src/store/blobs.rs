//! Blobs, `blobs/blake3/<hex>`: immutable content named by its blake3
//! digest, written under the session's tmp and renamed into place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::error::{io_err, Result, StoreError};
use super::Store;
use crate::digest::{Digest, HashingWriter};
use crate::fsutil::{self, fsync_dir};

impl Store {
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

    pub(super) fn read_json<T: serde::de::DeserializeOwned>(
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

    pub(super) fn put_json<T: serde::Serialize>(&self, value: &T) -> Result<(Digest, u64)> {
        let bytes = serde_json::to_vec(value).expect("image JSON always serialises");
        self.put_blob(&bytes)
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

#[cfg(test)]
mod tests {
    use std::fs;

    use crate::digest::Digest;
    use crate::store::{Store, StoreError};

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
}

//! Unpacked layers, `layers/<hex>/fs` (overlay lowerdirs, `<hex>` the diff
//! id), each published whole with its completion marker ([`marker`]).
//!
//! [`marker`]: super::marker

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{io_err, Result};
use super::marker;
use super::Store;
use crate::digest::Digest;
use crate::fsutil::{self, fsync_dir, remove_tree};

impl Store {
    /// `layers/<hex>`: the directory of an unpacked layer (complete if it exists).
    pub fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.root.join("layers").join(diff_id.hex())
    }

    /// `layers/<hex>/fs`: the overlay lowerdir of an unpacked layer.
    pub fn layer_fs(&self, diff_id: &Digest) -> PathBuf {
        self.layer_dir(diff_id).join("fs")
    }

    /// A complete layer whose marker may be trusted (see [`marker`]: a
    /// layer published unsynced counts only in the boot that wrote it).
    pub fn has_layer(&self, diff_id: &Digest) -> bool {
        marker::trusted(&self.layer_dir(diff_id), diff_id)
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
    /// so after a crash the layer is not trusted ([`marker`]). An
    /// untrusted layer already at the destination is replaced.
    pub fn publish_layer_dir(
        &self,
        staged: &Path,
        diff_id: &Digest,
        synced: bool,
    ) -> Result<PathBuf> {
        // Without a boot id an unsynced layer cannot be told apart after a
        // crash: sync it here instead.
        let synced = if !synced && marker::boot_id().is_none() {
            let fs_dir = staged.join("fs");
            fsutil::syncfs(&fs_dir).map_err(io_err("syncfs", &fs_dir))?;
            true
        } else {
            synced
        };
        let marker = staged.join(marker::MARKER);
        let mut f = File::create(&marker).map_err(io_err("create", &marker))?;
        f.write_all(marker::text(diff_id, synced).as_bytes())
            .map_err(io_err("write", &marker))?;
        if synced {
            f.sync_all().map_err(io_err("fsync", &marker))?;
            fsync_dir(staged).map_err(io_err("fsync", staged))?;
        }
        let dest = self.layer_dir(diff_id);
        marker::discard_untrusted(&dest, diff_id, self.session()?)
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

    /// Sync every layer published unsynced in this boot whose marker is at
    /// least `min_age` old, and mark it synced ([`marker::sync_dirs`]).
    /// Returns how many were marked.
    pub fn sync_layers(&self, min_age: Duration) -> io::Result<usize> {
        let layers = self.root.join("layers");
        let mut dirs = Vec::new();
        for entry in fs::read_dir(&layers)? {
            dirs.push(entry?.path());
        }
        marker::sync_dirs(&layers, self.tmp_dir(), dirs, min_age)
    }

    /// [`Store::sync_layers`] for the given layers only (those of one
    /// image): what `rrun` does after its container exits, without reading
    /// every marker of the store.
    pub fn sync_image_layers(&self, diff_ids: &[Digest], min_age: Duration) -> io::Result<usize> {
        marker::sync_dirs(
            &self.root.join("layers"),
            self.tmp_dir(),
            diff_ids.iter().map(|d| self.layer_dir(d)).collect(),
            min_age,
        )
    }
}

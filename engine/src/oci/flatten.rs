//! `rbuild export`: an image's flattened root filesystem as one tar.
//!
//! The layers' merge (whiteouts, opaque directories) is the kernel's: the
//! unpacked layers are mounted as a read-only overlay with no upper, and the
//! merged tree is written out. The caller must be root and should be in a
//! private mount namespace (the mount is detached on every exit path, but a
//! killed process would otherwise leave it in the host's table).

use std::io::Write;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{io_err, OciError, Result};
use crate::fsutil::remove_tree;
use crate::layer::unpack_image;
use crate::store::{Image, Store};

/// Write the merged tree of `image` as a tar to `out`.
pub fn export_rootfs<W: Write>(store: &Store, image: &Image, out: W) -> Result<W> {
    let lowers = unpack_image(store, image)?;
    let work = store.new_temp_dir("export")?;
    let merged = work.join("merged");
    let empty = work.join("empty");
    for d in [&merged, &empty] {
        std::fs::create_dir(d).map_err(io_err("create", d))?;
    }
    // overlay wants the top layer first; the empty bottom makes a one-layer
    // image a valid overlay (at least two lowers without an upper).
    let mut dirs: Vec<String> = lowers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    dirs.push(empty.display().to_string());
    let opts = format!("lowerdir={}", dirs.join(":"));
    mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(opts.as_str()),
    )
    .map_err(|e| {
        OciError::Format(format!(
            "mount the image's layers as overlay at {}: {e} (export needs root and overlayfs)",
            merged.display()
        ))
    })?;
    let result = write_tree(&merged, out);
    let _ = umount2(&merged, MntFlags::MNT_DETACH);
    let _ = remove_tree(&work);
    result
}

fn write_tree<W: Write>(root: &Path, out: W) -> Result<W> {
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    tar.append_dir_all(".", root)
        .map_err(io_err("write tar of", root))?;
    tar.into_inner().map_err(io_err("finish tar of", root))
}

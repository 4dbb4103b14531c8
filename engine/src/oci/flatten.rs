//! `rbuild export`: an image's flattened root filesystem as one tar.
//!
//! The layers' merge (whiteouts, opaque directories) is the kernel's: the
//! caller mounts the unpacked layers as an overlay (the builder's read-only
//! view, which handles repeated layers and long stacks) and this writes the
//! merged tree out. Hard links stay links: a file with several names in the
//! merged view is stored once.

use std::io::Write;
use std::path::Path;

use super::Result;

/// Write the merged tree mounted at `merged` as a tar to `out`.
pub fn write_rootfs<W: Write>(merged: &Path, out: W) -> Result<W> {
    Ok(crate::layer::write_tree_tar(merged, out)?)
}

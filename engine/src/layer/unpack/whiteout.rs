//! Whiteouts: `.wh.NAME` into an overlay whiteout (a 0:0 character
//! device) and `.wh..wh..opq` into the opaque xattr on its directory,
//! refused where they clash with entries of the same layer.

use std::sync::Arc;

use super::{resolve_err, Unpacker};
use crate::layer::entry::Meta;
use crate::layer::error::LayerError;
use crate::layer::resolve::{cstr, EntryPath};
use crate::layer::sys;

pub(super) const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
/// aufs keeps its own bookkeeping under this prefix; it means nothing here.
const AUFS_META_PREFIX: &[u8] = b".wh..wh.";

impl Unpacker {
    pub(super) fn whiteout(
        &mut self,
        path: &EntryPath,
        shown: &str,
        meta: &Meta,
    ) -> Result<(), LayerError> {
        let layer = Arc::clone(&self.layer);
        let name = path.name();
        if name == OPAQUE_MARKER {
            let dir = self
                .root
                .parent_dir(path.parent())
                .map_err(|e| resolve_err(&layer, shown, e))?;
            // user.overlay.opaque in a rootless store (crate::rootless).
            let xattr = crate::rootless::opaque_xattr();
            return sys::fsetxattr(dir, &cstr(xattr.as_bytes()), b"y")
                .map_err(self.io_err(shown, "set the overlay opaque xattr"));
        }
        if name.starts_with(AUFS_META_PREFIX) {
            return Ok(());
        }
        let hidden = &name[WHITEOUT_PREFIX.len()..];
        if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/') {
            return Err(self.refused(shown, "whiteout names no file"));
        }
        let target = path.sibling(hidden);
        if self.seen.contains(target.as_bytes()) || self.dirs.contains_key(target.as_bytes()) {
            // Docker's rule: a whiteout hides a path of the layers below. One
            // hiding a path this same layer creates is ambiguous; refused.
            return Err(self.refused(shown, "whiteout for a path this same layer creates"));
        }
        let meta = meta.clone();
        let r = self.special(&target, shown, &meta, |dir, name| {
            sys::mknodat(
                dir,
                name,
                libc::S_IFCHR | (meta.mode & 0o777),
                sys::makedev(0, 0),
            )
        });
        self.seen.remove(target.as_bytes());
        self.whiteouts.insert(target.as_bytes().to_vec());
        r
    }
}

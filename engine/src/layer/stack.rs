//! An image's overlay lowerdir stack: the unpacked layers, top layer first,
//! each at most once, and the kernel's limit on how many there may be.
//!
//! # Repeated layers
//!
//! Byte-identical layers happen (`COPY f /f` twice, an image listing one
//! blob twice), and an unpacked layer is stored once per diff id, so the
//! same directory would appear twice among the lowers. Overlayfs refuses
//! that (`ELOOP`, "Too many levels of symbolic links"). Keeping only the
//! **topmost** occurrence gives exactly the merged view of the full stack:
//!
//! overlay resolves a path top-down, one directory at a time. For a
//! directory `d`, the layers that contribute to it are those where `d` is a
//! directory, from the top down to the first layer where it is opaque
//! (inclusive) or a whiteout / non-directory (exclusive). If a lower copy
//! of layer A (at position i) contributes to `d`, the upper copy (at j > i)
//! does too: nothing of A itself can stop the walk between j and i without
//! stopping it at j already (A at j has the same opaque marker, whiteout or
//! file at `d`). So every entry A at i offers in `d` is offered again,
//! higher up, by A at j, and overlay takes the highest: a file is A's
//! file, a whiteout hides the name, a directory recurses with the same
//! argument. The lower copy can never be what a lookup finds. Whatever the
//! layers between i and j re-create, A at j whites out or overwrites again;
//! whatever A at i deleted below i, A at j deletes again.
//! `builder/tests/layer_stacks.rs` checks this on a stack with content
//! between the two copies.
//!
//! (containerd and containers-storage never meet the case: they keep one
//! snapshot per chain id, so a repeated layer is a second copy on disk.)

use std::collections::HashSet;
use std::hash::Hash;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::store::Store;

/// The most lower layers one overlay mount takes (`OVL_MAX_STACK` in
/// fs/overlayfs since Linux 4.x; still 500 in 6.x).
pub const OVERLAY_MAX_LOWERS: usize = 500;

/// `items` (bottom first, as an image config lists its diff ids) as overlay
/// wants them: top first, each item once, at its topmost position.
pub fn topmost_once<T: Eq + Hash + Clone>(bottom_first: &[T]) -> Vec<T> {
    let mut seen = HashSet::with_capacity(bottom_first.len());
    bottom_first
        .iter()
        .rev()
        .filter(|t| seen.insert(*t))
        .cloned()
        .collect()
}

/// The lowerdirs of an image whose layers (bottom first) are `diff_ids`:
/// top first, a repeated layer only at its topmost position.
pub fn lowerdirs(store: &Store, diff_ids: &[Digest]) -> Vec<PathBuf> {
    topmost_once(diff_ids)
        .iter()
        .map(|d| store.layer_fs(d))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::topmost_once;

    #[test]
    fn keeps_the_topmost_copy_of_each_item_top_first() {
        // bottom first: base, A, mid, A, top
        let stack = ["base", "A", "mid", "A", "top"];
        assert_eq!(topmost_once(&stack), ["top", "A", "mid", "base"]);
        assert_eq!(topmost_once(&["x", "x", "x"]), ["x"]);
        assert!(topmost_once::<&str>(&[]).is_empty());
    }
}

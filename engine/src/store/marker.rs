//! The completion marker of an unpacked layer, `layers/<hex>/complete`, and
//! when it may be trusted.
//!
//! Syncing a freshly unpacked layer (syncfs of a few hundred MB) used to be
//! the largest part of an unpack, and it buys nothing against a killed
//! process: the page cache outlives it. Only a power loss or a kernel crash
//! can lose written data, and both end in a new boot. So a layer may be
//! published before it is synced, with a marker that says so and names the
//! boot it was written in:
//!
//! ```text
//! <diff id>\n                                   synced: trusted always
//! unsynced-boot <boot id>\n<diff id>\n          trusted in that boot only
//! ```
//!
//! A marker from another boot without the synced form is never trusted:
//! the layer counts as absent and is unpacked again (its directory is
//! replaced whole, see [`discard_untrusted`]). Anything else — an empty or
//! cut marker, another digest — is not trusted either, so a marker torn by
//! the crash it guards against never passes. The unsynced line comes first
//! so that no truncation of it reads as the synced form.
//!
//! [`Store::sync_layers`] turns unsynced markers of this boot into synced
//! ones (one syncfs, then each marker rewritten atomically and durably);
//! the unpacker runs it for markers older than the kernel's writeback
//! delay, when there is little left to write.
//!
//! [`Store::sync_layers`]: super::Store::sync_layers
//!
//! Deviation from DESIGN invariant 1 ("fsync'ed, then renamed"): for
//! unpacked layers the order is renamed, then synced later; what the
//! invariant protects — nothing half-written is ever *trusted* — holds
//! through the boot id.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use crate::digest::Digest;
use crate::fsutil::{self, fsync_dir, remove_tree};

pub const MARKER: &str = "complete";
const UNSYNCED_PREFIX: &str = "unsynced-boot ";

/// This boot's random id (`/proc/sys/kernel/random/boot_id`, the same in
/// every namespace), or `None` if it cannot be read: then every layer is
/// synced before it is published.
pub fn boot_id() -> Option<&'static str> {
    static ID: OnceLock<Option<String>> = OnceLock::new();
    ID.get_or_init(|| {
        let s = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let s = s.trim();
        // A UUID: refuse anything that could not be one, so that a marker
        // line can never be forged by a strange /proc.
        (s.len() >= 16 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'))
            .then(|| s.to_string())
    })
    .as_deref()
}

/// What a layer directory's marker says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerState {
    /// No marker (or unreadable).
    Missing,
    /// Synced to disk before the marker was written.
    Synced,
    /// Published unsynced in this boot: trusted until the next boot.
    UnsyncedThisBoot,
    /// Published unsynced in an earlier boot (or, with no boot id known
    /// now, in any): never trusted; unpacked again on its next use.
    UnsyncedEarlierBoot,
    /// Not a well-formed marker for this layer (torn, or another digest):
    /// never trusted.
    Damaged,
}

impl MarkerState {
    pub fn trusted(&self) -> bool {
        matches!(self, MarkerState::Synced | MarkerState::UnsyncedThisBoot)
    }
}

/// The marker's text; `synced = false` needs a known boot id.
pub fn text(diff_id: &Digest, synced: bool) -> String {
    match (synced, boot_id()) {
        (false, Some(boot)) => format!("{UNSYNCED_PREFIX}{boot}\n{diff_id}\n"),
        _ => format!("{diff_id}\n"),
    }
}

/// Parse a marker's content for the layer `diff_id`, against `boot`.
fn classify(content: &[u8], diff_id: &Digest, boot: Option<&str>) -> MarkerState {
    let Ok(s) = std::str::from_utf8(content) else {
        return MarkerState::Damaged;
    };
    let want = format!("{diff_id}\n");
    if s == want {
        return MarkerState::Synced;
    }
    if let Some(rest) = s.strip_prefix(UNSYNCED_PREFIX) {
        if let Some((marker_boot, tail)) = rest.split_once('\n') {
            if tail == want {
                return if Some(marker_boot) == boot {
                    MarkerState::UnsyncedThisBoot
                } else {
                    MarkerState::UnsyncedEarlierBoot
                };
            }
        }
    }
    MarkerState::Damaged
}

/// The state of the layer directory `dir` (`layers/<hex>`) for `diff_id`.
pub fn state(dir: &Path, diff_id: &Digest) -> MarkerState {
    match fs::read(dir.join(MARKER)) {
        Ok(content) => classify(&content, diff_id, boot_id()),
        Err(_) => MarkerState::Missing,
    }
}

/// Whether `dir` holds a complete layer that may be used.
pub fn trusted(dir: &Path, diff_id: &Digest) -> bool {
    state(dir, diff_id).trusted()
}

/// Before publishing a new `dest`: move an existing untrusted one out of
/// the way (into `tmp`, then removed). A trusted or absent `dest` is left
/// alone; racing publishers are fine (only one rename of the old one wins).
pub fn discard_untrusted(dest: &Path, diff_id: &Digest, tmp: &Path) -> io::Result<()> {
    if !dest.exists() || trusted(dest, diff_id) {
        return Ok(());
    }
    let doomed = tmp.join(fsutil::unique_name("untrusted-layer"));
    match fs::rename(dest, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    if trusted(&doomed, diff_id) {
        // Another process replaced the untrusted layer between our check
        // and our rename: what we moved is its fresh layer, perhaps in use
        // already. Put it back, never remove it; if a third one was
        // published meanwhile, ours stays in tmp until this session ends.
        let _ = fs::rename(&doomed, dest);
        return Ok(());
    }
    remove_tree(&doomed)
}

/// Whether any of these layer directories (`layers/<hex>`) was published
/// unsynced in this boot at least `min_age` ago: a small read and a stat
/// per layer, and no store needed, so rrun asks only once its container
/// has ended and opens the store again only to
/// [`Store::sync_image_layers`].
///
/// [`Store::sync_image_layers`]: super::Store::sync_image_layers
pub fn needs_sync(layer_dirs: &[PathBuf], min_age: Duration) -> bool {
    !unsynced_dirs(layer_dirs.to_vec(), min_age).is_empty()
}

fn unsynced_dirs(dirs: Vec<PathBuf>, min_age: Duration) -> Vec<(PathBuf, Digest)> {
    let Some(boot) = boot_id() else {
        return Vec::new(); // nothing can have been published unsynced
    };
    let now = SystemTime::now();
    let mut pending: Vec<(PathBuf, Digest)> = Vec::new();
    for dir in dirs {
        let marker = dir.join(MARKER);
        let Ok(content) = fs::read(&marker) else {
            continue;
        };
        let Some(diff_id) = unsynced_digest(&content, boot) else {
            continue;
        };
        let old_enough = fs::metadata(&marker)
            .and_then(|m| m.modified())
            .map(|t| now.duration_since(t).unwrap_or_default() >= min_age)
            .unwrap_or(false);
        if old_enough && !pending.iter().any(|(d, _)| *d == dir) {
            pending.push((dir, diff_id));
        }
    }
    pending
}

/// Sync those of `dirs` (layer directories under `layers`) published
/// unsynced in this boot whose marker is at least `min_age` old, and mark
/// them synced. One syncfs for the store's filesystem, then per layer a new
/// marker written and fsynced under `tmp` and renamed over the old one (the
/// layer directory fsynced after), so every moment has a valid marker.
/// Returns how many were marked.
pub(super) fn sync_dirs(
    layers: &Path,
    tmp: &Path,
    dirs: Vec<PathBuf>,
    min_age: Duration,
) -> io::Result<usize> {
    let pending = unsynced_dirs(dirs, min_age);
    if pending.is_empty() {
        return Ok(0);
    }
    // Everything read above was written before this syncfs started.
    fsutil::syncfs(layers)?;
    let mut marked = 0;
    for (dir, diff_id) in pending {
        let tmp = tmp.join(fsutil::unique_name("marker"));
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(text(&diff_id, true).as_bytes())?;
        f.sync_all()?;
        drop(f);
        match fs::rename(&tmp, dir.join(MARKER)) {
            Ok(()) => {
                fsync_dir(&dir)?;
                marked += 1;
            }
            // Removed meanwhile (gc): nothing to mark.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let _ = fs::remove_file(&tmp);
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
        }
    }
    Ok(marked)
}

/// The digest of an unsynced marker of `boot`, if that is what `content` is.
fn unsynced_digest(content: &[u8], boot: &str) -> Option<Digest> {
    let s = std::str::from_utf8(content).ok()?;
    let rest = s.strip_prefix(UNSYNCED_PREFIX)?;
    let (marker_boot, tail) = rest.split_once('\n')?;
    if marker_boot != boot {
        return None;
    }
    let diff_id: Digest = tail.strip_suffix('\n')?.parse().ok()?;
    (classify(content, &diff_id, Some(boot)) == MarkerState::UnsyncedThisBoot).then_some(diff_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_trusted_only_whole_and_unsynced_ones_only_in_their_boot() {
        let d = Digest::blake3_of(b"layer");
        let other = Digest::blake3_of(b"other layer");
        let boot = "0f3c1b2a-1111-2222-3333-444455556666";
        let prev = "9a8b7c6d-1111-2222-3333-444455556666";
        let synced = format!("{d}\n");
        let unsynced = format!("unsynced-boot {boot}\n{d}\n");
        let s = |c: &str| classify(c.as_bytes(), &d, Some(boot));
        assert_eq!(s(&synced), MarkerState::Synced);
        assert_eq!(s(&unsynced), MarkerState::UnsyncedThisBoot);
        assert_eq!(
            s(&format!("unsynced-boot {prev}\n{d}\n")),
            MarkerState::UnsyncedEarlierBoot
        );
        // Unknown boot id now: no unsynced marker is trusted.
        assert!(!classify(unsynced.as_bytes(), &d, None).trusted());
        assert_eq!(s(""), MarkerState::Damaged);
        assert_eq!(s(&format!("{other}\n")), MarkerState::Damaged);
        assert_eq!(s(&format!("{d}")), MarkerState::Damaged);
        assert_eq!(
            s(&format!("unsynced-boot {boot}\n{other}\n")),
            MarkerState::Damaged
        );
        // No cut of an unsynced marker reads as trusted.
        for cut in 0..unsynced.len() {
            assert!(!s(&unsynced[..cut]).trusted(), "cut at {cut}");
        }
        assert_eq!(unsynced_digest(unsynced.as_bytes(), boot), Some(d.clone()));
        assert_eq!(unsynced_digest(unsynced.as_bytes(), prev), None);
        assert_eq!(unsynced_digest(synced.as_bytes(), boot), None);
    }
}

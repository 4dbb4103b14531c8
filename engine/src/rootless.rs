//! Whether this process is rootless rbox, and where a user's store lives.
//!
//! A user other than root runs rrun and rbuild inside a user namespace of
//! their own (`runner::rootless` enters it): uid 0 inside is the user, the
//! rest of the map is their subordinate range. The store is then the
//! user's, under `$XDG_DATA_HOME/rbox` (`~/.local/share/rbox` when that is
//! unset), independent of root's `/var/lib/rbox`.
//!
//! Two things in the engine differ in a user namespace, both chosen here
//! from one process-wide flag that `runner::rootless` sets before any
//! thread starts: the default store root, and the name of the overlay
//! opaque-directory xattr written while unpacking (`user.overlay.opaque`,
//! which an overlay mounted with `userxattr` reads, since `trusted.*`
//! needs CAP_SYS_ADMIN in the initial user namespace).
//!
//! The flag only ever takes privilege away: nothing here grants access to
//! anything. Which files a rootless rbox can touch is the kernel's
//! decision (the user's own ids and their subordinate ranges, as mapped
//! by the setuid `newuidmap`), whatever the XDG paths or the store hold.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set (to the user's host uid) in the environment of an rrun or rbuild
/// that runs in its rootless user namespace, so that a re-executed copy
/// (exeseal) knows it is one; believed only inside a user namespace whose
/// map is not the initial one.
pub const ENV_MARKER: &str = "RBOX_ROOTLESS";

static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Mark this process as rootless rbox (in its user namespace). Called once
/// at startup, before any thread.
pub fn set_active() {
    ACTIVE.store(true, Ordering::Relaxed);
}

/// Whether this process runs as rootless rbox.
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// The overlay xattr that makes a directory opaque in the layers this
/// process unpacks: `trusted.overlay.opaque` for root,
/// `user.overlay.opaque` rootless (read by an overlay mounted with
/// `userxattr`).
pub fn opaque_xattr() -> &'static str {
    if active() {
        "user.overlay.opaque"
    } else {
        "trusted.overlay.opaque"
    }
}

/// Whether `name` is one of the overlay's own xattrs, which layers never
/// carry (written into a blob or unpacked from one): `trusted.overlay.*`,
/// and rootless also `user.overlay.*`, the names an overlay mounted with
/// `userxattr` reads and writes (an image must not smuggle a redirect or
/// an opaque marker into the user's layers; a RUN step's upper dir has
/// them from the overlay itself).
pub fn is_overlay_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.") || (active() && name.starts_with(b"user.overlay."))
}

/// Whether the store is the user's: not root, or root of a rootless user
/// namespace (the marker set and the uid map not the initial one). Root
/// without the marker pays one getuid call.
pub fn rootless_user() -> bool {
    // SAFETY: geteuid takes nothing and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return true;
    }
    std::env::var_os(ENV_MARKER).is_some() && !initial_user_namespace()
}

/// Whether /proc/self/uid_map is the initial namespace's identity map.
pub fn initial_user_namespace() -> bool {
    match std::fs::read_to_string("/proc/self/uid_map") {
        Ok(m) => {
            let f: Vec<&str> = m.split_whitespace().collect();
            f == ["0", "0", "4294967295"]
        }
        // No /proc: no way to tell; root's default is the safe one.
        Err(_) => true,
    }
}

/// The default store root: root's `/var/lib/rbox`, or the user's
/// `$XDG_DATA_HOME/rbox`.
pub fn default_root() -> PathBuf {
    if !rootless_user() {
        return PathBuf::from(crate::store::DEFAULT_ROOT);
    }
    user_store_root(
        std::env::var_os("XDG_DATA_HOME"),
        std::env::var_os("HOME"),
        passwd_home,
    )
}

/// `$XDG_DATA_HOME/rbox`; the XDG spec ignores a relative (or empty)
/// value, and then `$HOME/.local/share/rbox`, `HOME` falling back to the
/// passwd entry's home, then to `/nonexistent` (whose store then fails to
/// open, naming the path).
pub fn user_store_root(
    xdg_data_home: Option<OsString>,
    home: Option<OsString>,
    passwd: impl FnOnce() -> Option<PathBuf>,
) -> PathBuf {
    let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(x) = absolute(xdg_data_home) {
        return x.join("rbox");
    }
    let home = absolute(home)
        .or_else(passwd)
        .unwrap_or_else(|| PathBuf::from("/nonexistent"));
    home.join(".local/share/rbox")
}

fn passwd_home() -> Option<PathBuf> {
    // SAFETY: getuid takes nothing and cannot fail.
    let uid = unsafe { libc::getuid() };
    nix::unistd::User::from_uid(uid.into())
        .ok()
        .flatten()
        .map(|u| u.dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> Option<PathBuf> {
        None
    }

    #[test]
    fn xdg_data_home_wins_when_absolute() {
        let r = user_store_root(Some("/x/data".into()), Some("/home/u".into()), none);
        assert_eq!(r, PathBuf::from("/x/data/rbox"));
    }

    #[test]
    fn relative_or_empty_xdg_falls_back_to_home() {
        for x in ["", "rel/data"] {
            let r = user_store_root(Some(x.into()), Some("/home/u".into()), none);
            assert_eq!(r, PathBuf::from("/home/u/.local/share/rbox"), "{x:?}");
        }
    }

    #[test]
    fn no_home_uses_the_passwd_entry_then_a_path_that_fails() {
        let r = user_store_root(None, None, || Some(PathBuf::from("/pw/home")));
        assert_eq!(r, PathBuf::from("/pw/home/.local/share/rbox"));
        let r = user_store_root(None, Some("relative".into()), none);
        assert_eq!(r, PathBuf::from("/nonexistent/.local/share/rbox"));
    }
}

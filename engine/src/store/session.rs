//! Session temp directories, `tmp/<session>`: one per open [`Store`] that
//! writes, named after its owner so that a later open can tell whether
//! the owner still lives and reap what a dead one left behind.
//!
//! [`Store`]: super::Store

use std::fs;
use std::path::Path;

use crate::fsutil::{self, remove_tree};

/// `<pid>-<start time>-<counter>`: enough to tell later whether the owner lives.
pub(super) fn session_name() -> String {
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
pub(super) fn reap_dead_sessions(tmp: &Path) {
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

#[cfg(test)]
mod tests {
    use std::fs;

    use crate::store::Store;

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

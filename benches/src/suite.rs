//! What every criterion bench starts with: root, the cache dir, the
//! scratch filesystem. A bench that cannot run says why on stderr in one
//! line and exits 0, so `cargo bench -p benches` still runs the others.

use std::path::PathBuf;
use std::time::Duration;

use crate::scratch::{Scratch, ScratchKind};

pub struct Env {
    pub cache: PathBuf,
    pub scratch: Scratch,
}

impl Env {
    /// `None` (after saying why) when this bench cannot run here.
    pub fn open(bench: &str) -> Option<Env> {
        if let Err(e) = crate::require_root() {
            eprintln!("bench {bench}: skipped: {e}");
            return None;
        }
        let kind = ScratchKind::from_env();
        if let Err(e) = crate::scratch::check_tools(kind) {
            eprintln!("bench {bench}: skipped: {e}");
            return None;
        }
        let cache = crate::cache_dir();
        if let Err(e) = std::fs::create_dir_all(&cache) {
            eprintln!(
                "bench {bench}: skipped: cannot create {}: {e}",
                cache.display()
            );
            return None;
        }
        match Scratch::mount(&cache, kind) {
            Ok(scratch) => {
                eprintln!(
                    "bench {bench}: targets on {} (RBOX_BENCH_FS=ext4|tmpfs)",
                    scratch.describe()
                );
                Some(Env { cache, scratch })
            }
            Err(e) => {
                eprintln!("bench {bench}: skipped: cannot mount the scratch filesystem: {e}");
                None
            }
        }
    }

    /// Say why one benchmark of this bench did not run.
    pub fn skip(&self, what: &str, reason: impl std::fmt::Display) {
        eprintln!("{what}: skipped: {reason}");
    }
}

/// Settings for benches whose one iteration takes from 0.1 to a few seconds.
pub fn slow_criterion() -> criterion_settings::Settings {
    criterion_settings::Settings {
        sample_size: 10,
        measurement: Duration::from_secs(20),
        warm_up: Duration::from_secs(2),
    }
}

/// Plain numbers, so this library does not depend on criterion (a
/// dev-dependency of the bench targets only).
pub mod criterion_settings {
    use std::time::Duration;

    pub struct Settings {
        pub sample_size: usize,
        pub measurement: Duration,
        pub warm_up: Duration,
    }
}

//! Shared pieces of rbox's benchmarks: the criterion benches in `benches/`
//! and the side-by-side comparison binary `compare` use the same corpora,
//! the same busybox rootfs and the same scratch filesystem, so a number in
//! one can be read beside a number in the other.
//!
//! Everything generated is cached under [`cache_dir`] (default
//! `/var/tmp/rbox-bench`, overridden by `RBOX_BENCH_DIR`) and made once.

use std::path::PathBuf;

pub mod busybox;
pub mod corpus;
pub mod machine;
pub mod oci;
pub mod rbox_store;
pub mod scratch;
pub mod stats;
pub mod suite;
pub mod tools;

/// Where corpora, bundles and the scratch filesystem image live.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("RBOX_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/rbox-bench"))
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("{0}")]
    Missing(String),
}

pub type Result<T, E = BenchError> = std::result::Result<T, E>;

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a std::path::Path,
) -> impl FnOnce(std::io::Error) -> BenchError + 'a {
    move |source| BenchError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The benches mount filesystems, create device nodes and cgroups: all of
/// that needs root. Says so in one sentence when it is missing.
pub fn require_root() -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(BenchError::Missing(
            "the benches need root (they mount overlay/ext4/tmpfs, create cgroups and device nodes): run them with sudo".into(),
        ))
    }
}

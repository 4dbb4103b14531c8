//! rbox's native container runtime (binary `rrun`): namespaces, overlayfs,
//! pivot_root, cgroups v1 and v2, lifecycle; and an OCI-bundle runtime that
//! drives crun/runc/youki through the same `engine::runtime::Runtime` seam.

pub mod attach;
pub mod cgroup;
pub mod commit;
pub mod console;
pub mod container_fs;
pub mod copy;
pub mod envvars;
pub mod error;
pub mod external;
pub mod health;
pub mod lifecycle;
pub mod logfile;
pub mod native;
pub mod network;
pub mod ocispec;
pub mod recorded;
pub mod rootless;
pub mod runopts;
pub mod runtimes;
pub mod state;
pub mod sys;
pub mod user;
pub mod volume;

pub use error::{exit_code, exit_code_of, Coded};
pub use runtimes::runtime_named;

/// PATH when neither the image nor the user sets one (Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub mod tty;

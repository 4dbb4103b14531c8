//! `NativeRuntime`: this crate's runner behind the engine's `Runtime`
//! seam. The builder runs its RUN steps through it: the overlay comes from
//! the spec's `RootfsSpec` (the builder snapshots `upper` afterwards), the
//! command gets the caller's stdout/stderr or the `OutputSink` it is
//! given (stdin is /dev/null unless `spec.stdin`), and everything but `upper`'s contents is gone when `run`
//! returns.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use engine::runtime::{ContainerSpec, ExitStatus, OutputSink, Runtime, RuntimeError};

use crate::container::{self, Launch};

/// The native runtime. `spec.id` names the cgroup (`rbox/<id>`): it must be
/// unique among running containers.
#[derive(Debug, Clone, Copy, Default)]
pub struct NativeRuntime;

impl NativeRuntime {
    pub fn new() -> NativeRuntime {
        NativeRuntime
    }

    /// Where the generated /etc files live while the container runs:
    /// beside `upper`, so per container and on the snapshot's filesystem.
    /// (Not beside `merged`: callers may share one mount point directory
    /// among containers, since each mounts it in its own mount namespace.)
    fn files_dir(spec: &ContainerSpec) -> PathBuf {
        let upper = &spec.rootfs.upper;
        let name = format!(
            ".{}-etc",
            upper
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        upper
            .parent()
            .map(|p| p.join(&name))
            .unwrap_or_else(|| PathBuf::from(name))
    }
}

impl Runtime for NativeRuntime {
    fn name(&self) -> &str {
        "native"
    }

    fn run(&self, spec: &ContainerSpec) -> Result<ExitStatus, RuntimeError> {
        self.run_with_output(spec, OutputSink::Inherit)
    }

    fn run_with_output(
        &self,
        spec: &ContainerSpec,
        output: OutputSink,
    ) -> Result<ExitStatus, RuntimeError> {
        let r = &spec.rootfs;
        for d in [&r.upper, &r.work, &r.merged] {
            std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
        }
        let files = Self::files_dir(spec);
        std::fs::create_dir_all(&files).map_err(|e| format!("create {}: {e}", files.display()))?;
        let devnull = if spec.stdin {
            None
        } else {
            Some(File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?)
        };
        let mut launch = Launch::new(&files);
        // The builder may be multi-threaded: no signal forwarding (it needs
        // the signals blocked process-wide); the container dies with us.
        launch.forward_signals = false;
        launch.die_with_parent = true;
        // The child dup2()s the sink onto 1 and 2; ours closes when
        // `output` drops at return, after the container has exited.
        let out = match &output {
            OutputSink::Inherit => None,
            OutputSink::Fd(fd) => Some(fd.as_raw_fd()),
        };
        launch.stdio = [devnull.as_ref().map(|f| f.as_raw_fd()), out, out];
        let result = container::run(spec, launch);
        drop(output);
        let _ = engine::fsutil::remove_tree(&files);
        // overlayfs leaves its work dir's inner "work" behind; it is not
        // part of the snapshot.
        Ok(result?.status)
    }
}

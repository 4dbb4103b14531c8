//! `NativeRuntime`: this crate's runner behind the engine's `Runtime`
//! seam. The builder runs its RUN steps through it: the overlay comes from
//! the spec's `RootfsSpec` (the builder snapshots `upper` afterwards), the
//! command gets the caller's stdout/stderr or the `OutputSink` it is
//! given (stdin is /dev/null unless `spec.stdin`), and everything but
//! `upper`'s contents is gone once the task is deleted. `create` leaves
//! the container's process waiting before its final execve (the
//! `start_gate` of `spawn::ChildPlan`), `start` lets it exec.

//!
//! The native runtime's parts, one concept each: `container` (one
//! container from spec to teardown), `spawn` (the clone and the child's
//! plan), `rootfs` (overlay, mounts, pivot_root), `security` (capabilities,
//! seccomp, masked paths), `exec` (another process in a running
//! container), `existing` (a container made earlier, reached again), `init` (the `--init` reaper), `exeseal` (the sealed binary).

pub mod container;
pub mod exec;
pub mod exeseal;
pub mod existing;
pub mod init;
pub mod rootfs;
pub mod security;
pub mod spawn;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use engine::runtime::{
    Container, ContainerSpec, ExitStatus, Features, NetworkMode, OutputSink, Runtime, RuntimeError,
    Task, TaskIo, TaskRecord,
};

use self::container::{Created, Launch, TaskOptions};

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

    fn features(&self) -> Features {
        Features {
            bridge_network: true,
            // rrun names the other container (`Launch::join`); through
            // this trait alone there is no target, and create says so.
            join_network: true,
            tty: true,
            rootless: true,
            run_options: true,
            private_rootfs_mount: true,
            start_later: true,
        }
    }

    /// `io.options`: a `container::TaskOptions` (rrun's), or none.
    fn create(&self, spec: &ContainerSpec, io: TaskIo) -> Result<Box<dyn Task>, RuntimeError> {
        let opts = io
            .options
            .and_then(|o| o.downcast::<TaskOptions>().ok())
            .map(|o| *o)
            .unwrap_or_default();
        let r = &spec.rootfs;
        for d in [&r.upper, &r.work, &r.merged] {
            std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
        }
        let (files, made) = match &opts.files_dir {
            Some(d) => (d.clone(), None),
            None => {
                let files = Self::files_dir(spec);
                std::fs::create_dir_all(&files)
                    .map_err(|e| format!("create {}: {e}", files.display()))?;
                (files.clone(), Some(files))
            }
        };
        let devnull = if spec.stdin {
            None
        } else {
            Some(File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?)
        };
        let mut launch = Launch::new(&files);
        // Rootless, no bridge can be made: a container of the default
        // network (a build's RUN step) is networked by pasta instead,
        // as rrun's are (the caller checked that pasta is usable).
        let pasta_spec;
        let by_pasta = crate::rootless::active() && spec.network == NetworkMode::Bridge;
        let spec = if by_pasta {
            pasta_spec = ContainerSpec {
                network: NetworkMode::None,
                ..spec.clone()
            };
            &pasta_spec
        } else {
            spec
        };
        // Forwarding needs the signals blocked process-wide: only for a
        // caller that says it is single-threaded.
        launch.forward_signals = io.forward_signals;
        launch.die_with_parent = !io.outlive_caller;
        // The child dup2()s the sink onto 1 and 2; ours closes when `io`
        // drops below, the child holding its own copy.
        let out = match &io.output {
            OutputSink::Inherit => None,
            OutputSink::Fd(fd) => Some(fd.as_raw_fd()),
        };
        launch.stdio = [devnull.as_ref().map(|f| f.as_raw_fd()), out, out];
        launch.ports = &opts.ports;
        launch.options = opts.run_options.as_ref();
        opts.network.apply(&mut launch);
        // After the plan's fields: a RUN step's plan is the default one.
        launch.pasta |= by_pasta;
        let created = if opts.start_at_once {
            container::create_started(spec, &mut launch)
        } else {
            container::create(spec, &mut launch)
        };
        match created {
            Ok(created) => Ok(Box::new(NativeTask {
                created,
                files: made,
            })),
            Err(e) => {
                if let Some(f) = &made {
                    let _ = engine::fsutil::remove_tree(f);
                }
                Err(e.into())
            }
        }
    }

    fn open(&self, record: &TaskRecord) -> Result<Box<dyn Container>, RuntimeError> {
        Ok(Box::new(existing::NativeContainer::open(record)?))
    }
}

/// A container of the native runtime (`container::Created`) and the
/// directory its /etc files are mounted on if `create` made it, removed
/// by `delete`.
struct NativeTask {
    created: Created,
    files: Option<PathBuf>,
}

impl Task for NativeTask {
    fn pid(&self) -> i32 {
        self.created.pid()
    }

    fn start(&mut self) -> Result<(), RuntimeError> {
        self.created.start(None)?;
        Ok(())
    }

    fn wait(&mut self) -> Result<ExitStatus, RuntimeError> {
        Ok(self.created.wait(None)?.status)
    }

    fn kill(&mut self, signal: i32) -> Result<(), RuntimeError> {
        Ok(self.created.kill(signal)?)
    }

    fn delete(self: Box<Self>) -> Result<(), RuntimeError> {
        let NativeTask { created, files } = *self;
        let deleted = created.delete();
        // overlayfs leaves its work dir's inner "work" behind; it is not
        // part of the snapshot.
        if let Some(f) = files {
            let _ = engine::fsutil::remove_tree(&f);
        }
        Ok(deleted?)
    }
}

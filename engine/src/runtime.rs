//! The `Runtime` seam: anything that can run a `ContainerSpec`, in
//! containerd's shape: `create` makes a `Task` whose process waits before
//! its command, `start`, `wait`, `kill`, `delete` drive it, and `run` is
//! the four in a row; `open` reaches a container an earlier process made
//! (`Container`: state, kill, exec, pause, resume, update). `features`
//! says what a runtime supports, so callers refuse an option by asking
//! it, never by its name. The native runner
//! (crate `runner`, `runner::native`) is the default; an external OCI
//! runtime driven through its CLI (crun, runc, youki: `runner::external`) is
//! the second implementation; `runner::runtime_named` chooses one. The
//! builder runs its RUN steps through this trait only.

use std::os::fd::OwnedFd;
use std::path::PathBuf;

use crate::mount::MountSpec;

/// How the container's root filesystem is assembled.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RootfsSpec {
    /// Unpacked layer trees, top layer first (overlay lowerdir order).
    pub lowers: Vec<PathBuf>,
    /// Writable upper and overlay work dir; the builder snapshots `upper`.
    pub upper: PathBuf,
    pub work: PathBuf,
    /// Where the overlay is mounted on the host side.
    pub merged: PathBuf,
    pub readonly: bool,
    /// The upper dir is thrown away (`--rm`) or read right after the
    /// container ends (a build step's snapshot): nothing in it has to
    /// survive a crash, so the overlay may skip syncing it.
    pub disposable: bool,
}

impl RootfsSpec {
    /// A writable rootfs over `lowers` with upper, work and merged in `dir`.
    pub fn under(dir: &std::path::Path, lowers: Vec<PathBuf>) -> RootfsSpec {
        RootfsSpec {
            lowers,
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: dir.join("merged"),
            readonly: false,
            disposable: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum NetworkMode {
    /// A new network namespace with only `lo`, up.
    #[default]
    None,
    /// Share the host's network namespace.
    Host,
    /// A new network namespace with `lo` and an `eth0` on rbox's default
    /// bridge network: outbound access through NAT, no way to the host's
    /// loopback (runner's `network` module).
    Bridge,
    /// The network namespace of another running container (Docker's
    /// `--network container:NAME`); which one is the runner's to say.
    Container,
}

impl NetworkMode {
    /// The name `--network` takes and `inspect` shows.
    pub fn name(self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Host => "host",
            NetworkMode::Bridge => "bridge",
            NetworkMode::Container => "container",
        }
    }
}

/// cgroup limits; `None` means unlimited (in a spec) or unchanged (in an
/// update: `Container::update`), where `Some(Resources::UNLIMITED)` as
/// `cpu_quota_us` or `pids_limit` removes that limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Resources {
    pub memory_bytes: Option<u64>,
    /// Memory plus swap, as Docker's `--memory-swap` (-1 = unlimited swap).
    pub memory_swap_bytes: Option<i64>,
    /// CPU quota in microseconds per `cpu_period_us`.
    pub cpu_quota_us: Option<u64>,
    pub cpu_period_us: Option<u64>,
    /// Docker's `--cpu-shares` (v1 shares; mapped to cpu.weight on v2).
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<u64>,
}

impl Resources {
    /// An update's "remove this limit" (Docker's `update --pids-limit 0`
    /// or `-1`, `--cpus 0`): pids.max `max`, a CFS quota of -1 (v1) or
    /// `max` (v2). Only an update asks for it; a spec records no limit
    /// as `None`.
    pub const UNLIMITED: u64 = u64::MAX;
}

/// Default: root (0:0), no supplementary groups.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserSpec {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecuritySpec {
    /// Capability names (`CAP_CHOWN`, …) kept in every set; `None` = Docker's default 14.
    pub capabilities: Option<Vec<String>>,
    pub no_new_privileges: bool,
    pub seccomp: bool,
    pub privileged: bool,
}

impl Default for SecuritySpec {
    fn default() -> Self {
        SecuritySpec {
            capabilities: None,
            no_new_privileges: true,
            seccomp: true,
            privileged: false,
        }
    }
}

/// Everything needed to start one container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ContainerSpec {
    pub id: String,
    pub rootfs: RootfsSpec,
    /// argv; `args[0]` is looked up in the container's PATH if it has no '/'.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: UserSpec,
    pub hostname: String,
    /// Bind mounts and tmpfs, applied beneath the rootfs before pivot_root.
    pub mounts: Vec<MountSpec>,
    pub network: NetworkMode,
    pub resources: Resources,
    pub security: SecuritySpec,
    pub tty: bool,
    pub stdin: bool,
    pub init: bool,
}

impl ContainerSpec {
    /// `args` as root in `/` with Docker's defaults otherwise: a fresh net
    /// namespace with only `lo`, no limits, the default security profile,
    /// no tty, no stdin, no init, no environment, the id's first 12
    /// characters as hostname. Set the rest with struct update syntax.
    pub fn new(id: &str, rootfs: RootfsSpec, args: Vec<String>) -> ContainerSpec {
        ContainerSpec {
            id: id.to_string(),
            rootfs,
            args,
            env: Vec::new(),
            cwd: "/".into(),
            user: UserSpec::default(),
            hostname: id.chars().take(12).collect(),
            mounts: Vec::new(),
            network: NetworkMode::None,
            resources: Resources::default(),
            security: SecuritySpec::default(),
            tty: false,
            stdin: false,
            init: false,
        }
    }
}

/// How a finished container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Exited(i32),
    Signaled(i32),
    /// Killed by the kernel's OOM killer inside its memory limit.
    OutOfMemory,
}

impl ExitStatus {
    /// The shell's convention, which Docker follows: 128+N for signal N.
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Exited(c) => c,
            ExitStatus::Signaled(s) => 128 + s,
            ExitStatus::OutOfMemory => 137,
        }
    }
}

/// Where a container's stdout and stderr go. Kept apart from
/// `ContainerSpec`, as containerd keeps a task's IO apart from its OCI spec:
/// the spec is plain data that is cloned and compared, a sink is an open
/// descriptor that belongs to one run.
#[derive(Debug, Default)]
pub enum OutputSink {
    /// The caller's own stdout and stderr (what `Runtime::run` does).
    #[default]
    Inherit,
    /// Both stdout and stderr are this descriptor (a pipe's write end, a
    /// file). The runtime closes its copy before `run_with_output` returns,
    /// so a reader of a pipe sees EOF once the container's processes are gone.
    Fd(OwnedFd),
}

pub type RuntimeError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a runtime can do beyond running a spec to completion. Callers
/// refuse an option by asking this, never by the runtime's name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// `NetworkMode::Bridge`: a namespace on rbox's bridge network.
    pub bridge_network: bool,
    /// `NetworkMode::Container`: another container's network namespace.
    pub join_network: bool,
    /// `spec.tty` through `create` (a pseudo-terminal for the process).
    pub tty: bool,
    /// Usable by a caller that is not root (rootless rbox).
    pub rootless: bool,
    /// rrun's options beyond the spec: `--dns*`, `--add-host`, `--ulimit`,
    /// `--sysctl`, `--shm-size`, `--oom-score-adj`, `--cpuset-*`,
    /// `--device`, health checks, log options.
    pub run_options: bool,
    /// The rootfs is mounted in the container's own mount namespace only,
    /// so one empty mount point directory serves every container.
    pub private_rootfs_mount: bool,
    /// A container made now can be started later by `rrun start`.
    pub start_later: bool,
}

/// A task's stdio and how it is tied to its caller, kept apart from
/// `ContainerSpec` as containerd keeps a task's IO and options apart from
/// its OCI spec: the spec is plain data that is cloned and compared, these
/// belong to one task. Stdin is the caller's with `spec.stdin`, /dev/null
/// otherwise; with `spec.tty` the runtime relays the caller's stdio to the
/// container's terminal. `Default`: output inherited, no signals
/// forwarded, the container dies with its caller.
#[derive(Default)]
pub struct TaskIo {
    pub output: OutputSink,
    /// While `wait` blocks, the caller's INT, TERM, HUP, QUIT, USR1 and
    /// USR2 go to the container's process (and, with a terminal, its
    /// window size follows the caller's). The caller must be
    /// single-threaded when it calls `create` (the signals are blocked
    /// process-wide until the task is deleted).
    pub forward_signals: bool,
    /// The container outlives its caller (a detached supervisor's, in a
    /// session of its own). Otherwise a caller that dies, even by SIGKILL,
    /// takes the container with it and the runtime forgets it.
    pub outlive_caller: bool,
    /// Runtime-specific options, as containerd's `CreateTaskRequest.options`:
    /// a runtime uses the type it knows and ignores any other.
    pub options: Option<Box<dyn std::any::Any + Send>>,
}

impl std::fmt::Debug for TaskIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskIo")
            .field("output", &self.output)
            .field("forward_signals", &self.forward_signals)
            .field("outlive_caller", &self.outlive_caller)
            .field("options", &self.options.as_ref().map(|_| ".."))
            .finish()
    }
}

/// One container made by `Runtime::create`, in containerd's shape: its
/// first process exists, set up up to its final execve, and waits there
/// until `start`. Whatever happens, `delete` (or dropping it) leaves
/// nothing behind but the rootfs's upper dir.
pub trait Task: Send {
    /// The host pid of the container's first process.
    fn pid(&self) -> i32;

    /// Let the process exec its command; an error names why it could not
    /// (with `exit_code` 126 or 127 for the command itself).
    fn start(&mut self) -> Result<(), RuntimeError>;

    /// Block until the process has ended; an OOM kill inside the memory
    /// limit is `ExitStatus::OutOfMemory`.
    fn wait(&mut self) -> Result<ExitStatus, RuntimeError>;

    /// Send `signal` to the container's first process (while it has not
    /// been waited for).
    fn kill(&mut self, signal: i32) -> Result<(), RuntimeError>;

    /// Remove the container: a process still there is killed and reaped,
    /// then its cgroup, mounts and runtime state go.
    fn delete(self: Box<Self>) -> Result<(), RuntimeError>;
}

/// What a store recorded of a container made earlier (by another
/// process), enough for its runtime to reach it again (`Runtime::open`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    pub id: String,
    /// The name messages use.
    pub name: String,
    /// The host pid of its first process.
    pub pid: i32,
    /// The runtime's own directory for it (an external runtime's bundle
    /// and state).
    pub bundle: PathBuf,
    /// What an exec'd process gets, as the first one got it.
    pub security: SecuritySpec,
}

/// Where a container's first process is (containerd's task status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    Created,
    Running,
    /// Frozen by `pause`.
    Paused,
    Stopped,
}

/// Another process in a running container (`Container::exec`), with the
/// caller's stdio (stdin only with `stdin`; a pseudo-terminal relayed to
/// them with `tty`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessSpec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: UserSpec,
    pub tty: bool,
    pub stdin: bool,
}

/// A process `Container::exec` started; signals the caller gets go to it
/// until `wait` returns.
pub trait Process {
    fn pid(&self) -> i32;
    fn wait(self: Box<Self>) -> Result<ExitStatus, RuntimeError>;
}

/// A container that exists already (`Runtime::open`), in containerd's
/// task shape. Errors name the container and what was refused.
pub trait Container {
    fn state(&self) -> Result<TaskState, RuntimeError>;
    /// `signal` to its first process.
    fn kill(&self, signal: i32) -> Result<(), RuntimeError>;
    fn exec(&self, process: &ProcessSpec) -> Result<Box<dyn Process>, RuntimeError>;
    /// Freeze every process of it (the cgroup freezer).
    fn pause(&self) -> Result<(), RuntimeError>;
    fn resume(&self) -> Result<(), RuntimeError>;
    /// Apply the limits `resources` sets (a `None` field stays as it is,
    /// `Some(Resources::UNLIMITED)` removes the limit).
    fn update(&self, resources: &Resources) -> Result<(), RuntimeError>;
}

pub trait Runtime: Send + Sync {
    /// A short name for messages (`native`, `crun`, …), never for
    /// deciding what the runtime can do: see `features`.
    fn name(&self) -> &str;

    fn features(&self) -> Features;

    /// Make the container of `spec`, its process waiting before its
    /// command (see `Task`); its stdout and stderr go to `io.output`.
    fn create(&self, spec: &ContainerSpec, io: TaskIo) -> Result<Box<dyn Task>, RuntimeError>;

    /// The container `record` describes, made earlier by this runtime.
    fn open(&self, record: &TaskRecord) -> Result<Box<dyn Container>, RuntimeError>;

    /// Run the container to completion with the caller's stdio, and clean
    /// up everything it created (mounts, cgroup) before returning.
    fn run(&self, spec: &ContainerSpec) -> Result<ExitStatus, RuntimeError> {
        self.run_with_output(spec, OutputSink::Inherit)
    }

    /// `run`, with the container's stdout and stderr sent to `output`: the
    /// caller's copy of a descriptor is closed by the time this returns,
    /// so a reader of a pipe sees EOF once the container is gone.
    /// create, start, wait, delete (delete on every path once created).
    fn run_with_output(
        &self,
        spec: &ContainerSpec,
        output: OutputSink,
    ) -> Result<ExitStatus, RuntimeError> {
        refuse_unsupported(self.name(), self.features(), spec)?;
        let io = TaskIo {
            output,
            ..TaskIo::default()
        };
        let mut task = self.create(spec, io)?;
        let status = task.start().and_then(|()| task.wait());
        let deleted = task.delete();
        let status = status?;
        deleted?;
        Ok(status)
    }
}

/// The error for what `spec` asks and `features` lack, naming the option.
pub fn refuse_unsupported(
    runtime: &str,
    features: Features,
    spec: &ContainerSpec,
) -> Result<(), RuntimeError> {
    let missing = match spec.network {
        NetworkMode::Bridge if !features.bridge_network => Some("--network bridge"),
        NetworkMode::Container if !features.join_network => Some("--network container:NAME"),
        _ if spec.tty && !features.tty => Some("a terminal (-t)"),
        _ => None,
    };
    match missing {
        Some(what) => Err(format!(
            "{what} is not available with the {runtime} runtime: use the native runtime{}",
            if what.starts_with("--network") {
                ", or --network none or host"
            } else {
                ""
            }
        )
        .into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A runtime without features whose tasks log what is called.
    struct Plain(Arc<Mutex<Vec<&'static str>>>);

    struct PlainTask(Arc<Mutex<Vec<&'static str>>>);

    impl Task for PlainTask {
        fn pid(&self) -> i32 {
            1
        }
        fn start(&mut self) -> Result<(), RuntimeError> {
            self.0.lock().unwrap().push("start");
            Ok(())
        }
        fn wait(&mut self) -> Result<ExitStatus, RuntimeError> {
            self.0.lock().unwrap().push("wait");
            Err("lost".into())
        }
        fn kill(&mut self, _signal: i32) -> Result<(), RuntimeError> {
            Ok(())
        }
        fn delete(self: Box<Self>) -> Result<(), RuntimeError> {
            self.0.lock().unwrap().push("delete");
            Ok(())
        }
    }

    impl Runtime for Plain {
        fn name(&self) -> &str {
            "plain"
        }
        fn features(&self) -> Features {
            Features::default()
        }
        fn create(
            &self,
            _spec: &ContainerSpec,
            _io: TaskIo,
        ) -> Result<Box<dyn Task>, RuntimeError> {
            self.0.lock().unwrap().push("create");
            Ok(Box::new(PlainTask(self.0.clone())))
        }
        fn open(&self, _record: &TaskRecord) -> Result<Box<dyn Container>, RuntimeError> {
            Err("plain keeps no containers".into())
        }
    }

    fn spec() -> ContainerSpec {
        ContainerSpec::new(
            "t",
            RootfsSpec::under(std::path::Path::new("/"), vec![]),
            vec!["true".into()],
        )
    }

    #[test]
    fn run_deletes_the_task_when_wait_fails() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let err = Plain(log.clone()).run(&spec()).unwrap_err().to_string();
        assert_eq!(err, "lost");
        assert_eq!(*log.lock().unwrap(), ["create", "start", "wait", "delete"]);
    }

    #[test]
    fn a_runtime_refuses_what_its_features_lack_by_name_of_the_option() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let rt = Plain(log.clone());
        let bridge = ContainerSpec {
            network: NetworkMode::Bridge,
            ..spec()
        };
        let err = rt.run(&bridge).unwrap_err().to_string();
        assert!(
            err.contains("--network bridge is not available with the plain runtime"),
            "{err}"
        );
        let tty = ContainerSpec {
            tty: true,
            ..spec()
        };
        let err = rt.run(&tty).unwrap_err().to_string();
        assert!(err.contains("a terminal (-t)"), "{err}");
        assert!(log.lock().unwrap().is_empty(), "nothing was created");
    }
}

//! The `Runtime` seam: anything that can run a `ContainerSpec`. The native
//! runner (crate `runner`) is the default; an OCI-bundle runtime (crun, runc,
//! youki) is the second implementation. The builder runs its RUN steps
//! through this trait only.

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

/// cgroup limits; `None` means unlimited.
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

pub trait Runtime: Send + Sync {
    /// A short name for messages (`native`, `crun`, …).
    fn name(&self) -> &str;

    /// Run the container to completion with the caller's stdio, and clean
    /// up everything it created (mounts, cgroup) before returning.
    fn run(&self, spec: &ContainerSpec) -> Result<ExitStatus, RuntimeError>;

    /// `run`, with the container's stdout and stderr sent to `output`
    /// (stdin as in `run`). A runtime that cannot redirect them says so
    /// instead of letting the output reach the caller's terminal.
    fn run_with_output(
        &self,
        spec: &ContainerSpec,
        output: OutputSink,
    ) -> Result<ExitStatus, RuntimeError> {
        match output {
            OutputSink::Inherit => self.run(spec),
            OutputSink::Fd(_) => Err(format!(
                "the {} runtime cannot send a container's output to a descriptor; \
                 use the native runtime, or OutputSink::Inherit",
                self.name()
            )
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtime that only knows `run`.
    struct Plain;

    impl Runtime for Plain {
        fn name(&self) -> &str {
            "plain"
        }

        fn run(&self, _spec: &ContainerSpec) -> Result<ExitStatus, RuntimeError> {
            Ok(ExitStatus::Exited(3))
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
    fn a_runtime_without_redirection_runs_inherited_and_refuses_a_sink() {
        let rt = Plain;
        assert_eq!(
            rt.run_with_output(&spec(), OutputSink::Inherit).unwrap(),
            ExitStatus::Exited(3)
        );
        let null = std::fs::File::open("/dev/null").unwrap();
        let err = rt
            .run_with_output(&spec(), OutputSink::Fd(null.into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("plain runtime cannot send"), "{err}");
    }
}

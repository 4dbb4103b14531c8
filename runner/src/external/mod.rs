//! `OciRuntime`: the same `ContainerSpec` through an external OCI runtime
//! (crun, runc, youki). We write a runtime-spec `config.json` whose root is
//! the merged overlay, which we mount ourselves in a private mount
//! namespace of the runtime's process (so it vanishes with it), and drive
//! the runtime in steps, `create`, `start`, `kill`, `delete` (`ctl`), as
//! a `Task` of the engine's `Runtime` seam.
//! The config carries rbox's defaults: Docker's capabilities, masked and
//! read-only paths, and rbox's seccomp filter (`seccomp`), and puts the
//! container's cgroup where the native one goes, `rbox/<id>`, so the
//! native driver reads its OOM counter and the reaper finds it.
//!
//! crun 1.8 refuses a hybrid cgroup host (v1 controllers plus an empty
//! cgroup2 at /sys/fs/cgroup/unified); for crun only we unmount that v2
//! mount inside the private namespace — never on the host.

pub mod ctl;
pub mod existing;
pub mod seccomp;
pub mod watchdog;

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use engine::runtime::{
    Container, ContainerSpec, ExitStatus, Features, NetworkMode, OutputSink, Runtime, RuntimeError,
    Task, TaskIo, TaskRecord,
};
use serde_json::{json, Value};

use crate::console::Relay;
use crate::external::ctl::{
    become_subreaper, command_exit_code, ConsoleSocket, OciContainer, CONSOLE_TIMEOUT,
};
use crate::external::watchdog::Watchdog;
use crate::native::rootfs::{self, RootfsPlan};
use crate::native::spawn::{self, ForwardedSignals};
use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no default seccomp profile for {0}: run with --security-opt seccomp=unconfined")]
    SeccompArch(&'static str),
    #[error(transparent)]
    Capabilities(#[from] crate::native::security::CapError),
    #[error("{binary} {what} {id}: {detail}")]
    Runtime {
        binary: String,
        what: &'static str,
        id: String,
        detail: String,
    },
    #[error(
        "--network bridge is not available with --runtime {0} yet: use --network none or host"
    )]
    Bridge(String),
    #[error("start {binary}: {source} (is it installed? apt-get install {binary})")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone)]
pub struct OciRuntime {
    pub binary: String,
}

/// Docker's default capabilities, for config.json.
const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

fn cstr_list(v: &[&CStr]) -> Vec<String> {
    v.iter().map(|c| c.to_string_lossy().into_owned()).collect()
}

impl OciRuntime {
    pub fn new(binary: impl Into<String>) -> OciRuntime {
        OciRuntime {
            binary: binary.into(),
        }
    }

    /// The runtime-spec config for `spec`; `files` holds hosts/hostname/resolv.conf.
    pub fn config(&self, spec: &ContainerSpec, files: &Path) -> Result<Value, OciError> {
        let caps: Vec<String> = if spec.security.privileged {
            let held = crate::native::security::CapSet::bounding();
            crate::native::security::Cap::ALL
                .iter()
                .filter(|c| held.contains(**c))
                .map(|c| c.name().to_string())
                .collect()
        } else {
            spec.security
                .capabilities
                .clone()
                .unwrap_or_else(|| DEFAULT_CAPS.iter().map(|s| s.to_string()).collect())
        };
        let process_caps: Vec<String> = if spec.user.uid == 0 {
            caps.clone()
        } else {
            Vec::new()
        };
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
            json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
            json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}),
        ];
        for name in ["hosts", "hostname", "resolv.conf"] {
            mounts.push(json!({"destination": format!("/etc/{name}"), "type": "bind", "source": files.join(name), "options": ["rbind", "rprivate"]}));
        }
        for m in &spec.mounts {
            let mut options = m.options.clone();
            let fstype = if m.fstype == "bind" {
                "bind"
            } else {
                m.fstype.as_str()
            };
            if fstype == "tmpfs" && !options.iter().any(|o| o == "exec") {
                options.extend(["nosuid".into(), "nodev".into(), "noexec".into()]);
            }
            mounts.push(json!({"destination": m.target, "type": fstype, "source": m.source, "options": options}));
        }
        let mut namespaces = vec![
            json!({"type": "pid"}),
            json!({"type": "ipc"}),
            json!({"type": "uts"}),
            json!({"type": "mount"}),
            json!({"type": "cgroup"}),
        ];
        match spec.network {
            NetworkMode::None => namespaces.push(json!({"type": "network"})),
            NetworkMode::Host => {}
            NetworkMode::Bridge | NetworkMode::Container => {
                return Err(OciError::Bridge(self.binary.clone()))
            }
        }
        let r = &spec.resources;
        let devices = if spec.security.privileged {
            crate::cgroup::Devices::All
        } else {
            crate::cgroup::Devices::Default
        };
        let mut resources = json!({ "devices": crate::cgroup::devices::oci_rules(devices) });
        if let Some(m) = r.memory_bytes {
            let swap = match r.memory_swap_bytes {
                Some(-1) => -1,
                Some(t) => t,
                None => (m as i64).saturating_mul(2),
            };
            resources["memory"] = json!({"limit": m, "swap": swap});
        }
        let mut cpu = serde_json::Map::new();
        if let Some(q) = r.cpu_quota_us {
            cpu.insert("quota".into(), json!(q));
            cpu.insert("period".into(), json!(r.cpu_period_us.unwrap_or(100_000)));
        }
        if let Some(s) = r.cpu_shares {
            cpu.insert("shares".into(), json!(s));
        }
        if !cpu.is_empty() {
            resources["cpu"] = Value::Object(cpu);
        }
        if let Some(p) = r.pids_limit {
            resources["pids"] = json!({"limit": p});
        }
        let (masked, readonly) = if spec.security.privileged {
            (Vec::new(), Vec::new())
        } else {
            (
                cstr_list(crate::native::security::masked::MASKED_PATHS),
                cstr_list(crate::native::security::masked::READONLY_PATHS),
            )
        };
        let mut config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": spec.tty,
                "user": {"uid": spec.user.uid, "gid": spec.user.gid, "additionalGids": spec.user.additional_gids},
                "args": spec.args,
                "env": spec.env,
                "cwd": if spec.cwd.is_empty() { "/" } else { spec.cwd.as_str() },
                "capabilities": {"bounding": caps, "effective": process_caps, "permitted": process_caps},
                "noNewPrivileges": spec.security.no_new_privileges
            },
            "root": {"path": spec.rootfs.merged, "readonly": spec.rootfs.readonly},
            "hostname": spec.hostname,
            "mounts": mounts,
            "linux": {
                "cgroupsPath": format!("/{}/{}", crate::cgroup::PARENT, spec.id),
                "namespaces": namespaces,
                "resources": resources,
                "maskedPaths": masked,
                "readonlyPaths": readonly
            }
        });
        // seccomp=unconfined and --privileged clear `seccomp` (run.rs).
        if spec.security.seccomp {
            let bounding = crate::native::security::capabilities::parse_list(&caps)?;
            config["linux"]["seccomp"] = crate::external::seccomp::default_profile(
                crate::native::security::CapSet::of(&bounding),
            )
            .ok_or(OciError::SeccompArch(std::env::consts::ARCH))?;
        }
        Ok(config)
    }

    /// The bundle: `config.json`, the /etc files it binds, and the
    /// directories of the overlay.
    pub fn prepare_bundle(&self, spec: &ContainerSpec, bundle: &Path) -> Result<(), OciError> {
        let io = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| OciError::Io { what, path, source }
        };
        let r = &spec.rootfs;
        for d in [bundle, &r.upper, &r.work, &r.merged] {
            std::fs::create_dir_all(d).map_err(io("create", d))?;
        }
        crate::native::container::write_etc_files(spec, bundle).map_err(|e| OciError::Io {
            what: "write /etc files in",
            path: bundle.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let config = bundle.join("config.json");
        std::fs::write(
            &config,
            serde_json::to_vec_pretty(&self.config(spec, bundle)?).expect("json"),
        )
        .map_err(io("write", &config))
    }
}

/// The overlay the runtime's process mounts (read-only is the runtime's
/// `root.readonly`, applied inside).
pub fn overlay_plan(spec: &ContainerSpec) -> RootfsPlan {
    let r = &spec.rootfs;
    RootfsPlan {
        lowers: r.lowers.iter().map(sys::cstring).collect(),
        upper: sys::cstring(&r.upper),
        work: sys::cstring(&r.work),
        merged: sys::cstring(&r.merged),
        readonly: false,
        volatile: r.disposable,
        steps: Vec::new(),
    }
}

/// `<binary> --root <state>`, started in a private mount namespace of its
/// own: there the hybrid host's empty cgroup2 is unmounted for crun (see
/// the module comment), and `overlay`, if given, is mounted, so that the
/// container's mount namespace, cloned from this one, holds its root while
/// the host never sees it. The runtime dies with its caller.
pub fn runtime_command(binary: &str, state: &Path, overlay: Option<RootfsPlan>) -> Command {
    let hide_unified = binary.ends_with("crun") && hybrid_unified_mounted();
    let mut cmd = Command::new(binary);
    cmd.arg("--root").arg(state);
    // SAFETY: the closure runs in the forked child before exec and only
    // makes syscalls (unshare, mount, umount, prctl) on data prepared above.
    unsafe {
        cmd.pre_exec(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
                .map_err(std::io::Error::from)?;
            rootfs::make_private().map_err(|e| std::io::Error::other(e.to_string()))?;
            if hide_unified {
                nix::mount::umount2("/sys/fs/cgroup/unified", nix::mount::MntFlags::MNT_DETACH)
                    .map_err(std::io::Error::from)?;
            }
            if let Some(plan) = &overlay {
                rootfs::mount_overlay(plan).map_err(|e| std::io::Error::other(e.to_string()))?;
                make_etc_targets(&plan.merged)?;
            }
            // SAFETY: prctl with integers.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
            Ok(())
        });
    }
    cmd
}

/// The targets of the /etc files' bind mounts, made as the native
/// runtime makes them (an empty file, mode 0644, beneath the root) where
/// the image has none: the runtime would make them 0700, and a RUN step
/// through it would leave different files in its layer. In the forked
/// child: syscalls only.
fn make_etc_targets(merged: &std::ffi::CStr) -> std::io::Result<()> {
    // SAFETY: a NUL-terminated path; the descriptor is owned below.
    let fd = unsafe {
        libc::open(
            merged.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor of ours.
    let root = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    for rel in [c"etc/hosts", c"etc/hostname", c"etc/resolv.conf"] {
        rootfs::ensure_beneath(std::os::fd::AsFd::as_fd(&root), rel, false)?;
    }
    Ok(())
}

/// Whether /sys/fs/cgroup is the v1 tmpfs with a cgroup2 at `unified`.
pub(crate) fn hybrid_unified_mounted() -> bool {
    let magic = |p: &str| {
        nix::sys::statfs::statfs(p)
            .map(|s| s.filesystem_type().0)
            .unwrap_or(0)
    };
    magic("/sys/fs/cgroup") == 0x0102_1994 && magic("/sys/fs/cgroup/unified") == 0x6367_7270
}

impl Runtime for OciRuntime {
    fn name(&self) -> &str {
        &self.binary
    }

    fn features(&self) -> Features {
        Features {
            bridge_network: false,
            join_network: false,
            tty: true,
            rootless: false,
            run_options: false,
            private_rootfs_mount: false,
            // Each start is a new runtime container (same id, bundle and
            // upper dir), as crun and runc cannot start a stopped one.
            start_later: true,
        }
    }

    /// The runtime's `create`, with the bundle in `bundle_dir` of the
    /// merged dir's parent (every container has a merged dir of its own:
    /// `private_rootfs_mount` is false) and `ctl::RUNTIME_FILE` beside it.
    /// The caller becomes a child subreaper (process-wide): the container's
    /// process is re-parented to it when the runtime's `create` exits.
    /// `io.options` are not for this runtime.
    fn create(&self, spec: &ContainerSpec, io: TaskIo) -> Result<Box<dyn Task>, RuntimeError> {
        engine::runtime::refuse_unsupported(&self.binary, self.features(), spec)?;
        let dir = spec.rootfs.merged.parent().unwrap_or(Path::new("/"));
        let bundle = ctl::bundle_dir(dir);
        let ctr = OciContainer::new(&self.binary, &bundle, &spec.id);
        // Blocked before anything starts (a relay thread inherits the
        // mask): a signal meanwhile waits for the container instead of
        // ending the caller.
        let signals = io.forward_signals.then(ForwardedSignals::block);
        let output = match io.output {
            OutputSink::Inherit => None,
            OutputSink::Fd(fd) => Some(fd),
        };
        let mut console = None;
        let created = (|| {
            let marker = dir.join(ctl::RUNTIME_FILE);
            std::fs::write(&marker, format!("{}\n", self.binary)).map_err(|source| {
                OciError::Io {
                    what: "write",
                    path: marker,
                    source,
                }
            })?;
            // A container started again (`rrun start`, a restart policy):
            // the runtime's state of the last run goes first, if a run
            // that died left it, as the runtime keeps one container per id.
            if bundle.join("state").join(&spec.id).exists() {
                ctr.delete()?;
            }
            self.prepare_bundle(spec, &bundle)?;
            become_subreaper()?;
            console = spec.tty.then(ConsoleSocket::bind).transpose()?;
            ctr.create(
                &bundle,
                overlay_plan(spec),
                console.as_ref().map(|c| c.path()),
                spec.stdin,
                output.as_ref(),
            )
        })();
        let pid = match created {
            Ok(pid) => pid,
            Err(e) => {
                // Whatever a failed create left (runc and crun clean up
                // after themselves; this is for a runtime that does not).
                if bundle.join("state").join(&spec.id).exists() {
                    let _ = ctr.delete();
                }
                let _ = engine::fsutil::remove_tree(&bundle);
                return Err(match command_exit_code(&e) {
                    Some(code) => Box::new(CommandError {
                        code,
                        argv0: spec.args.first().cloned().unwrap_or_default(),
                    }),
                    None => Box::new(e),
                });
            }
        };
        let mut task = OciTask {
            ctr,
            bundle,
            pid,
            reaped: false,
            signals,
            console,
            relay: None,
            output: if spec.tty { output } else { None },
            stdin: spec.stdin,
            watchdog: None,
        };
        // Dropping the task on an error kills, reaps and deletes it.
        if !io.outlive_caller {
            task.watchdog = Some(Watchdog::start(
                &self.binary,
                &task.ctr.root,
                &spec.id,
                pid,
            )?);
        }
        Ok(Box::new(task))
    }

    /// The container `record` names, through the state the runtime
    /// keeps in its bundle.
    fn open(&self, record: &TaskRecord) -> Result<Box<dyn Container>, RuntimeError> {
        Ok(Box::new(existing::OciExisting::open(&self.binary, record)))
    }
}

/// A command the runtime could not start: the native runner's message,
/// with Docker's code (`exit_code`: 127 not found, 126 not executable).
#[derive(Debug, thiserror::Error)]
#[error("{argv0:?}: {}", if *code == 127 { "executable file not found in $PATH" } else { "permission denied" })]
pub struct CommandError {
    pub code: i32,
    pub argv0: String,
}

impl CommandError {
    pub fn exit_code(&self) -> i32 {
        self.code
    }
}

/// A container the external runtime created; its first process is our
/// child (we are its subreaper) until `wait` reaps it.
struct OciTask {
    ctr: OciContainer,
    bundle: PathBuf,
    pid: i32,
    reaped: bool,
    /// `TaskIo::forward_signals`, until the process is reaped.
    signals: Option<ForwardedSignals>,
    /// With a terminal: the socket the runtime sent the pty master to,
    /// until `start` relays it.
    console: Option<ConsoleSocket>,
    relay: Option<Relay>,
    /// With a terminal: where the relay writes (None: our stdout).
    output: Option<OwnedFd>,
    stdin: bool,
    /// Unless `TaskIo::outlive_caller`.
    watchdog: Option<Watchdog>,
}

impl OciTask {
    fn teardown(&mut self) -> Result<(), OciError> {
        if !self.reaped {
            self.reaped = true;
            // SAFETY: kill takes integers; our unreaped child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = spawn::try_wait(self.pid, true);
        }
        drop(self.relay.take());
        drop(self.signals.take());
        drop(self.console.take());
        if self.bundle.exists() {
            self.ctr.delete()?;
            let _ = engine::fsutil::remove_tree(&self.bundle);
            if let Some(dir) = self.bundle.parent() {
                let _ = std::fs::remove_file(dir.join(ctl::RUNTIME_FILE));
            }
        }
        // Deleted: the watchdog has nothing left to do.
        if let Some(w) = self.watchdog.take() {
            w.finish();
        }
        Ok(())
    }

    /// With a terminal: the pty master relayed to our stdio, at the
    /// host's window size, before the command starts.
    fn relay_console(&mut self) -> Result<(), RuntimeError> {
        let Some(console) = self.console.take() else {
            return Ok(());
        };
        let conn = console.accept(CONSOLE_TIMEOUT)?;
        let out = self.output.as_ref().map(|f| f.as_raw_fd());
        let stdin = if self.stdin { None } else { Some(devnull()?) };
        let relay = Relay::start(
            conn.as_fd(),
            self.pid,
            [stdin.as_ref().map(|f| f.as_raw_fd()), out, out],
            self.stdin,
        )?;
        relay.follow_window_size();
        crate::attach::offer_console(relay.master());
        self.relay = Some(relay);
        Ok(())
    }
}

fn devnull() -> Result<std::fs::File, RuntimeError> {
    Ok(std::fs::File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?)
}

impl Task for OciTask {
    fn pid(&self) -> i32 {
        self.pid
    }

    fn start(&mut self) -> Result<(), RuntimeError> {
        self.relay_console()?;
        Ok(self.ctr.start()?)
    }

    fn wait(&mut self) -> Result<ExitStatus, RuntimeError> {
        let pid = self.pid;
        let relay = &self.relay;
        let waited = match &self.signals {
            Some(s) => s.wait(pid, || {
                if let Some(r) = relay {
                    r.follow_window_size();
                }
            }),
            None => spawn::try_wait(pid, true).map(|r| r.expect("a blocking wait returns")),
        }
        .map_err(|e| format!("wait for the container's process: {e}"))?;
        self.reaped = true;
        if let Some(r) = self.relay.take() {
            r.finish();
        }
        drop(self.signals.take());
        // The cgroup stays until `delete`: its OOM kill counter tells.
        Ok(crate::error::ended(waited, || {
            crate::cgroup::CgroupDriver::probe()
                .map(|d| d.open(&self.ctr.id).oom_kills())
                .unwrap_or(0)
        }))
    }

    fn kill(&mut self, signal: i32) -> Result<(), RuntimeError> {
        if self.reaped {
            return Err(format!(
                "{} kill {}: it is not running",
                self.ctr.binary, self.ctr.id
            )
            .into());
        }
        Ok(self.ctr.kill(signal)?)
    }

    fn delete(mut self: Box<Self>) -> Result<(), RuntimeError> {
        Ok(self.teardown()?)
    }
}

impl Drop for OciTask {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

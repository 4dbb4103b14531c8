//! A container of an external OCI runtime made earlier (by `rrun run -d`
//! or `rrun start`), reached again through the seam (`Runtime::open`):
//! every operation is the runtime's own command on the state it keeps in
//! the container's bundle (`ctl::OciContainer`), so it sees the cgroups,
//! namespaces, capabilities and seccomp filter the runtime gave the
//! container. `exec` goes through the runtime's `exec --detach --process`
//! (the container's config.json process with the request's args, env,
//! cwd, user and supplementary groups, which no flag of theirs carries)
//! with a pid file: the process, re-parented to the caller (a subreaper), is
//! waited for like a native exec (its exit code, forwarded signals, the
//! `-t` relay through the console socket).

use std::os::fd::AsFd;
use std::path::PathBuf;

use engine::runtime::{
    Container, ExitStatus, Process, ProcessSpec, Resources, RuntimeError, TaskRecord, TaskState,
};

use crate::console::Relay;
use crate::external::ctl::{
    become_subreaper, ConsoleSocket, OciContainer, OciExec, CONSOLE_TIMEOUT,
};
use crate::external::CommandError;
use crate::native::spawn::{ForwardedSignals, WaitResult};

pub struct OciExisting {
    ctr: OciContainer,
    record: TaskRecord,
}

impl OciExisting {
    pub fn open(binary: &str, record: &TaskRecord) -> OciExisting {
        OciExisting {
            ctr: OciContainer::new(binary, &record.bundle, &record.id),
            record: record.clone(),
        }
    }
}

impl OciExisting {
    /// The `process` of the container's config.json: what an exec'd
    /// process has as the container's own does (capabilities,
    /// noNewPrivileges, rlimits).
    fn container_process(&self) -> Result<serde_json::Value, RuntimeError> {
        let path = self.record.bundle.join("config.json");
        let text = std::fs::read(&path).map_err(|e| {
            format!(
                "exec in container {}: read {}: {e}",
                self.record.name,
                path.display()
            )
        })?;
        let config: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            format!(
                "exec in container {}: {} is not JSON: {e}",
                self.record.name,
                path.display()
            )
        })?;
        match config.get("process") {
            Some(p @ serde_json::Value::Object(_)) => Ok(p.clone()),
            _ => Err(format!(
                "exec in container {}: {} has no process",
                self.record.name,
                path.display()
            )
            .into()),
        }
    }
}

impl Container for OciExisting {
    fn state(&self) -> Result<TaskState, RuntimeError> {
        Ok(match self.ctr.state()?.as_str() {
            "created" | "creating" => TaskState::Created,
            "running" => TaskState::Running,
            "paused" => TaskState::Paused,
            _ => TaskState::Stopped,
        })
    }

    fn kill(&self, signal: i32) -> Result<(), RuntimeError> {
        Ok(self.ctr.kill(signal)?)
    }

    fn exec(&self, p: &ProcessSpec) -> Result<Box<dyn Process>, RuntimeError> {
        let Some(argv0) = p.args.first() else {
            return Err(format!("exec in container {}: no command given", self.record.name).into());
        };
        if !command_exists(self.record.pid, argv0, &p.env) {
            return Err(Box::new(CommandError {
                code: 127,
                argv0: argv0.clone(),
            }));
        }
        let req = OciExec {
            args: p.args.clone(),
            env: p.env.clone(),
            cwd: p.cwd.clone(),
            uid: p.user.uid,
            gid: p.user.gid,
            additional_gids: p.user.additional_gids.clone(),
            tty: p.tty,
        };
        let process = req.process(&self.container_process()?);
        let signals = ForwardedSignals::block();
        become_subreaper()?;
        let console = p.tty.then(ConsoleSocket::bind).transpose()?;
        let pid = self
            .ctr
            .exec(
                &process,
                &self.record.bundle,
                console.as_ref().map(|c| c.path()),
                p.stdin,
            )
            .map_err(|e| CommandFailed(e.to_string()))?;
        let relay = match &console {
            Some(c) => {
                let conn = c.accept(CONSOLE_TIMEOUT)?;
                let relay = Relay::start(conn.as_fd(), pid, [None; 3], p.stdin)?;
                relay.follow_window_size();
                Some(relay)
            }
            None => None,
        };
        Ok(Box::new(OciProcess {
            pid,
            signals,
            relay,
        }))
    }

    fn pause(&self) -> Result<(), RuntimeError> {
        Ok(self.ctr.pause()?)
    }

    fn resume(&self) -> Result<(), RuntimeError> {
        Ok(self.ctr.resume()?)
    }

    fn update(&self, resources: &Resources) -> Result<(), RuntimeError> {
        // Removing a limit is `-1` on the runtime's command line. runc
        // turns it into what the kernel takes, but crun (1.8) writes -1
        // to a cgroup v1 pids.max as is, which the kernel refuses
        // (EINVAL: v1's pids.max takes "max"), and on cgroup v2 leaves
        // cpu.max's quota as it was while it reports success. The group
        // is ours (`linux.cgroupsPath` is /rbox/<id>), so the removals
        // are written to it here, as the native runtime writes them,
        // and the runtime gets the rest. That holds for every runtime,
        // runc included, on purpose: one rule, no branching on which
        // runtime it is or which version. Rootless, the group is the
        // runtime's to find: it gets everything.
        let removed = Resources {
            cpu_quota_us: resources
                .cpu_quota_us
                .filter(|q| *q == Resources::UNLIMITED),
            pids_limit: resources.pids_limit.filter(|p| *p == Resources::UNLIMITED),
            ..Resources::default()
        };
        if removed == Resources::default() || crate::rootless::active() {
            return Ok(self.ctr.update(resources)?);
        }
        let mut rest = resources.clone();
        if removed.cpu_quota_us.is_some() {
            rest.cpu_quota_us = None;
            rest.cpu_period_us = None;
        }
        if removed.pids_limit.is_some() {
            rest.pids_limit = None;
        }
        if rest != Resources::default() {
            self.ctr.update(&rest)?;
        }
        let group = crate::cgroup::CgroupDriver::probe()
            .map_err(|e| e.to_string())?
            .open(&self.record.id);
        if !group.paths().iter().any(|p| p.is_dir()) {
            return Err(format!(
                "remove the limits of container {}: no cgroup /{}/{}",
                self.record.name,
                crate::cgroup::PARENT,
                self.record.id
            )
            .into());
        }
        group.update(&removed).map_err(|e| {
            format!(
                "remove the limits of container {} in its cgroup: {e}",
                self.record.name
            )
            .into()
        })
    }
}

/// The runtime's `exec` failed for the command (Docker's 126).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CommandFailed(pub String);

struct OciProcess {
    pid: i32,
    signals: ForwardedSignals,
    relay: Option<Relay>,
}

impl Process for OciProcess {
    fn pid(&self) -> i32 {
        self.pid
    }

    fn wait(self: Box<Self>) -> Result<ExitStatus, RuntimeError> {
        let relay = self.relay;
        let waited = self
            .signals
            .wait(self.pid, || {
                if let Some(r) = &relay {
                    r.follow_window_size();
                }
            })
            .map_err(|e| format!("wait for the exec'd process {}: {e}", self.pid))?;
        if let Some(r) = relay {
            r.finish();
        }
        Ok(match waited {
            WaitResult::Exited(c) => ExitStatus::Exited(c),
            WaitResult::Signaled(s) => ExitStatus::Signaled(s),
        })
    }
}

/// Whether `argv0` names a file in the container whose first process is
/// `pid`, looked up as exec would (through PATH unless it has a slash),
/// so a missing command gets Docker's 127 and one line rather than the
/// runtime's message. lstat only: a symlink inside the container must
/// not be followed on the host's side of /proc/PID/root.
fn command_exists(pid: i32, argv0: &str, env: &[String]) -> bool {
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let at = |p: &str| {
        root.join(p.trim_start_matches('/'))
            .symlink_metadata()
            .is_ok()
    };
    if argv0.contains('/') {
        return at(argv0);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::DEFAULT_PATH);
    path.split(':')
        .filter(|d| !d.is_empty())
        .any(|d| at(&format!("{d}/{argv0}")))
}

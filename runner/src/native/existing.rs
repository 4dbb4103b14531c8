//! A native container made earlier, reached again through the seam
//! (`Runtime::open`): signals go to its first process, pause/resume and
//! update to its cgroup (the freezer and the limit files), exec through
//! `exec` (joining its namespaces and cgroup). A rootless container has
//! a cgroup only when it was started with limits on a delegated cgroup
//! v2 subtree (`crate::rootless::cgroup`); without one, what needs it is
//! refused, saying why.

use engine::runtime::{
    Container, ExitStatus, Process, ProcessSpec, Resources, RuntimeError, TaskRecord, TaskState,
};

use crate::cgroup::{Cgroup, CgroupDriver};
use crate::native::exec::{self, ExecRequest};

pub struct NativeContainer {
    record: TaskRecord,
    /// Its group, or why it has none.
    cgroup: Result<Cgroup, String>,
}

impl NativeContainer {
    pub fn open(record: &TaskRecord) -> Result<NativeContainer, RuntimeError> {
        Ok(NativeContainer {
            record: record.clone(),
            cgroup: group_of(&record.id),
        })
    }

    fn group(&self, what: &str) -> Result<&Cgroup, RuntimeError> {
        self.cgroup
            .as_ref()
            .map_err(|why| format!("cannot {what} container {}: {why}", self.record.name).into())
    }

    fn alive(&self) -> bool {
        // A zombie (state Z) has ended: the third field of /proc/PID/stat.
        std::fs::read_to_string(format!("/proc/{}/stat", self.record.pid))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }
}

/// The container's group, or why it has none (signals need none).
fn group_of(id: &str) -> Result<Cgroup, String> {
    if crate::rootless::active() {
        rootless_group(id)
    } else {
        CgroupDriver::probe()
            .map(|d| d.open(id))
            .map_err(|e| e.to_string())
    }
}

/// The group of a rootless container, under the delegated subtree.
fn rootless_group(id: &str) -> Result<Cgroup, String> {
    let unavailable = |why: String| format!("rootless rbox has no cgroup for it: {why}");
    let rel = crate::rootless::cgroup::delegated().map_err(unavailable)?;
    let driver = CgroupDriver::probe()
        .map_err(|e| unavailable(e.to_string()))?
        .with_parent(&rel.join(crate::rootless::cgroup::PARENT));
    let group = driver.open(id);
    if !group.paths().iter().any(|p| p.is_dir()) {
        return Err("rootless rbox gives a container a cgroup of its own only when it is started with a limit (-m, --cpus, --pids-limit); start it with one".into());
    }
    Ok(group)
}

impl Container for NativeContainer {
    fn state(&self) -> Result<TaskState, RuntimeError> {
        Ok(if !self.alive() {
            TaskState::Stopped
        } else if self.cgroup.as_ref().is_ok_and(|g| g.is_frozen()) {
            TaskState::Paused
        } else {
            TaskState::Running
        })
    }

    fn kill(&self, signal: i32) -> Result<(), RuntimeError> {
        // SAFETY: kill takes integers.
        if unsafe { libc::kill(self.record.pid, signal) } != 0 {
            return Err(format!(
                "signal {signal} to container {} (pid {}): {}",
                self.record.name,
                self.record.pid,
                std::io::Error::last_os_error()
            )
            .into());
        }
        Ok(())
    }

    fn exec(&self, p: &ProcessSpec) -> Result<Box<dyn Process>, RuntimeError> {
        let devnull =
            std::fs::File::open("/dev/null").map_err(|e| format!("open /dev/null: {e}"))?;
        use std::os::fd::AsRawFd;
        let req = ExecRequest {
            args: p.args.clone(),
            env: p.env.clone(),
            cwd: p.cwd.clone(),
            uid: p.user.uid,
            gid: p.user.gid,
            groups: p.user.additional_gids.clone(),
            stdio: [(!p.stdin).then(|| devnull.as_raw_fd()), None, None],
            controlling_tty: false,
            tty: p.tty,
            stdin: p.stdin,
        };
        // Rootless without limits: no cgroup, the namespaces only.
        let group = match group_of(&self.record.id) {
            Ok(g) => Some(g),
            Err(_) if crate::rootless::active() => None,
            Err(why) => return Err(why.into()),
        };
        let running = exec::start(self.record.pid, group, &self.record.security, &req)?;
        // The child holds its own copy of /dev/null now.
        drop(devnull);
        Ok(Box::new(NativeProcess(running)))
    }

    fn pause(&self) -> Result<(), RuntimeError> {
        Ok(self.group("pause")?.freeze()?)
    }

    fn resume(&self) -> Result<(), RuntimeError> {
        Ok(self.group("unpause")?.thaw()?)
    }

    fn update(&self, resources: &Resources) -> Result<(), RuntimeError> {
        Ok(self.group("update")?.update(resources)?)
    }
}

struct NativeProcess(exec::Running);

impl Process for NativeProcess {
    fn pid(&self) -> i32 {
        self.0.pid()
    }

    fn wait(self: Box<Self>) -> Result<ExitStatus, RuntimeError> {
        Ok(self.0.wait()?)
    }
}

//! Choosing a runtime: the one place that knows the runtimes' names
//! (`rrun run --runtime`, `rbuild build --runtime`); `crate::error` turns
//! a runtime's error into Docker's exit code. Everything else asks the runtime
//! (`Runtime::features`), never its name.

use std::path::Path;

use engine::runtime::{Container, Runtime, RuntimeError, TaskRecord};

use crate::external::OciRuntime;
use crate::native::NativeRuntime;

/// The names `runtime_named` accepts: rbox's own, then the external OCI
/// runtimes driven through their command line.
pub const NAMES: [&str; 4] = ["native", "crun", "runc", "youki"];

#[derive(Debug, thiserror::Error)]
#[error("unknown runtime {0:?}: use one of native, crun, runc, youki")]
pub struct UnknownRuntime(pub String);

/// The runtime called `name` (one of `NAMES`).
pub fn runtime_named(name: &str) -> Result<Box<dyn Runtime>, UnknownRuntime> {
    match name {
        "native" => Ok(Box::new(NativeRuntime::new())),
        "crun" | "runc" | "youki" => Ok(Box::new(OciRuntime::new(name))),
        _ => Err(UnknownRuntime(name.to_string())),
    }
}

/// The runtime that made the container whose directory is `dir`: the
/// external one its runtime file names, the native one otherwise.
pub fn runtime_of(dir: &Path) -> Box<dyn Runtime> {
    match crate::external::ctl::runtime_of(dir) {
        Some(name) => Box::new(OciRuntime::new(name)),
        None => Box::new(NativeRuntime::new()),
    }
}

/// The container recorded in `dir` with state `st`, reached through the
/// runtime that made it; refused, naming it, when it is not running.
pub fn open(dir: &Path, st: &crate::state::State) -> Result<Box<dyn Container>, RuntimeError> {
    let pid = st
        .pid
        .filter(|p| st.is_running() && p.alive())
        .ok_or_else(|| format!("container {} is not running", st.name))?;
    runtime_of(dir).open(&record(dir, st, pid.pid))
}

/// What `Runtime::open` needs of a container's state.
fn record(dir: &Path, st: &crate::state::State, pid: i32) -> TaskRecord {
    TaskRecord {
        id: st.id.clone(),
        name: st.name.clone(),
        pid,
        bundle: dir.join("bundle"),
        security: engine::runtime::SecuritySpec {
            capabilities: st.exec.capabilities.clone(),
            no_new_privileges: st.exec.no_new_privileges,
            seccomp: st.exec.seccomp,
            privileged: st.exec.privileged,
        },
    }
}

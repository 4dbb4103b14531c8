//! Choosing a runtime: the one place that knows the runtimes' names
//! (`rrun run --runtime`, `rbuild build --runtime`) and turns a runtime's
//! error into Docker's exit code. Everything else asks the runtime
//! (`Runtime::features`), never its name.

use engine::runtime::Runtime;

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

/// Docker's exit code for a runtime's error: 126 or 127 for a command
/// that could not run (either runtime), 125 for everything else.
pub fn runtime_exit_code(e: &(dyn std::error::Error + 'static)) -> i32 {
    if let Some(e) = e.downcast_ref::<crate::native::container::LaunchError>() {
        return e.exit_code();
    }
    if let Some(e) = e.downcast_ref::<crate::external::CommandError>() {
        return e.exit_code();
    }
    125
}

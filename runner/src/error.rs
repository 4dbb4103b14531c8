//! Docker's exit codes for what went wrong, in one place: 126 for a
//! command that exists but cannot be run, 127 for one that is not found
//! (either runtime, `run` or `exec`), the code a `Coded` error carries,
//! and 125 for everything else (rbox's own failure). How a container
//! that ran ended is `engine::runtime::ExitStatus::code` (128+N for
//! signal N, 137 for an OOM kill).

use engine::runtime::{ExitStatus, RuntimeError};

use crate::native::spawn::WaitResult;

/// An error that carries its exit code: rrun's own decisions (125, or 1
/// where Docker says 1), and a runtime's error turned into one at the seam
/// (`Coded::of`).
#[derive(Debug)]
pub struct Coded(pub i32, pub anyhow::Error);

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.1)
    }
}

impl std::error::Error for Coded {}

impl Coded {
    /// A runtime's error (`Runtime::create`, `Task::start`, …) with the
    /// code `exit_code` finds in it.
    /// Its message is the error's chain on one line.
    pub fn of(e: RuntimeError) -> Coded {
        let code = exit_code(&*e);
        let chain = std::iter::successors(Some(&*e as &(dyn std::error::Error + 'static)), |e| {
            e.source()
        });
        Coded(code, anyhow::Error::msg(engine::errfmt::one_line(chain)))
    }
}

/// The exit code for `e`: the first of it and its causes that knows one,
/// 125 if none does.
pub fn exit_code(e: &(dyn std::error::Error + 'static)) -> i32 {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if let Some(code) = known_code(e) {
            return code;
        }
        cause = e.source();
    }
    125
}

/// `exit_code` for an `anyhow::Error` (rrun's commands).
pub fn exit_code_of(e: &anyhow::Error) -> i32 {
    if let Some(code) = e.chain().find_map(known_code) {
        return code;
    }
    // A runtime's boxed error, which anyhow's chain does not see through.
    match e.downcast_ref::<RuntimeError>() {
        Some(b) => exit_code(&**b),
        None => 125,
    }
}

fn known_code(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    if let Some(c) = e.downcast_ref::<Coded>() {
        return Some(c.0);
    }
    if let Some(e) = e.downcast_ref::<crate::native::container::LaunchError>() {
        return Some(e.exit_code());
    }
    if let Some(e) = e.downcast_ref::<crate::native::spawn::SpawnError>() {
        return Some(e.exit_code());
    }
    if let Some(e) = e.downcast_ref::<crate::native::exec::ExecError>() {
        return Some(e.exit_code());
    }
    if let Some(e) = e.downcast_ref::<crate::external::CommandError>() {
        return Some(e.exit_code());
    }
    // An external runtime's `exec` that failed: it said why above.
    if e.is::<crate::external::existing::CommandFailed>() {
        return Some(126);
    }
    None
}

/// How a container's first process ended, from its wait status: an
/// exit with 137 (SIGKILL) while its cgroup counted an OOM kill
/// (`oom_kills`, asked only then) is `ExitStatus::OutOfMemory`. Both
/// runtimes' tasks end here.
pub fn ended(waited: WaitResult, oom_kills: impl FnOnce() -> u64) -> ExitStatus {
    let status = match waited {
        WaitResult::Exited(c) => ExitStatus::Exited(c),
        WaitResult::Signaled(s) => ExitStatus::Signaled(s),
    };
    if status.code() == 137 && oom_kills() > 0 {
        ExitStatus::OutOfMemory
    } else {
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coded_error_keeps_its_code_through_context_and_a_box() {
        let e = anyhow::Error::from(Coded(127, anyhow::anyhow!("not found")))
            .context("run the container");
        assert_eq!(exit_code_of(&e), 127);
        let boxed: RuntimeError = Box::new(crate::external::CommandError {
            code: 126,
            argv0: "/x".into(),
        });
        assert_eq!(Coded::of(boxed).0, 126);
        let plain: RuntimeError = "no such thing".into();
        let c = Coded::of(plain);
        assert_eq!((c.0, c.to_string().as_str()), (125, "no such thing"));
        let boxed: RuntimeError = Box::new(crate::external::CommandError {
            code: 127,
            argv0: "/y".into(),
        });
        assert_eq!(exit_code_of(&anyhow::anyhow!(boxed)), 127);
    }
}

//! `rrun run --runtime crun|runc|youki`: the same container through an
//! external OCI runtime (runner::external writes the bundle, runner::external::ctl
//! drives the runtime). rrun stays the container's supervisor, as on the
//! native path: in the foreground it waits (forwarding signals, relaying
//! the terminal with -t, reporting an OOM kill); with -d a double-forked
//! supervisor does the same with the output in `container.log`, and
//! `ps`/`stop`/`kill`/`rm`/`logs` work from `state.json` as for native
//! containers (`exec` goes through the runtime: see oci_exec.rs).

use std::cell::RefCell;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use engine::runtime::{ContainerSpec, ExitStatus};
use runner::cgroup::CgroupDriver;
use runner::console::Relay;
use runner::external::ctl::{
    become_subreaper, command_exit_code, ConsoleSocket, OciContainer, RUNTIME_FILE,
};
use runner::external::{overlay_plan, OciRuntime};
use runner::native::container::Outcome;
use runner::native::spawn::{self, ForwardedSignals, WaitResult};
use runner::state::{ProcessId, State};

use crate::detach::Ended;

use crate::oci_watchdog::Watchdog;
use crate::run::{report_outcome, Coded};

/// How long the runtime's console connection may take once `create` or
/// `exec` returned (it is queued by then; this only bounds a broken runtime).
pub const CONSOLE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(
    runtime: &str,
    spec: &ContainerSpec,
    dir: &Path,
    state: State,
    detach: bool,
) -> Result<i32> {
    if detach {
        return run_detached(runtime, spec, dir, state);
    }
    let state = RefCell::new(state);
    let mut on_started = |pid: i32| {
        let mut s = state.borrow_mut();
        if let Ok(now) = State::mark_running(dir, &s, pid) {
            *s = now;
        }
    };
    // Errors carry their code (125 unless a Coded one says 126/127).
    let outcome = supervise(runtime, spec, dir, true, &mut on_started)?;
    let code = report_outcome(&outcome);
    let s = state.into_inner();
    if !s.auto_remove {
        let oom = outcome.status == ExitStatus::OutOfMemory;
        let _ = State::mark_exited(dir, &s, code, oom);
    }
    Ok(code)
}

/// Create, start and wait for the container, then delete it from the
/// runtime (on every path once created). `on_started` gets the host pid
/// of its first process once that runs the command. `foreground`: rrun's
/// signals are forwarded to it, and it dies with rrun (the detached
/// supervisor is in a session of its own, as natively).
fn supervise(
    runtime: &str,
    spec: &ContainerSpec,
    dir: &Path,
    foreground: bool,
    on_started: &mut dyn FnMut(i32),
) -> Result<Outcome> {
    let bundle = dir.join("bundle");
    let marker = dir.join(RUNTIME_FILE);
    std::fs::write(&marker, format!("{runtime}\n"))
        .with_context(|| format!("write {}", marker.display()))?;
    OciRuntime::new(runtime).prepare_bundle(spec, &bundle)?;
    let ctr = OciContainer::new(runtime, &bundle, &spec.id);
    // Blocked before anything starts (the relay thread inherits the mask):
    // a signal meanwhile waits for the container instead of killing rrun.
    let signals = foreground.then(ForwardedSignals::block);
    become_subreaper()?;
    let console = spec.tty.then(ConsoleSocket::bind).transpose()?;
    let pid = ctr
        .create(
            &bundle,
            overlay_plan(spec),
            console.as_ref().map(|c| c.path()),
            spec.stdin,
            None,
        )
        .map_err(|e| {
            // Whatever a failed create left (runc and crun clean up after
            // themselves; this is for a runtime that does not).
            let _ = ctr.delete();
            command_error(spec, e)
        })?;
    // In the foreground the container dies with rrun, as natively.
    let watchdog = match ProcessId::of(pid).filter(|_| foreground) {
        Some(p) => Watchdog::start(&ctr, p).map(Some).inspect_err(|_| {
            // SAFETY: kill takes integers; our unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = spawn::try_wait(pid, true);
            let _ = ctr.delete();
        })?,
        None => None,
    };
    let waited = (|| -> Result<WaitResult> {
        let relay = match &console {
            Some(c) => {
                let conn: OwnedFd = c.accept(CONSOLE_TIMEOUT)?;
                let relay = Relay::start(conn.as_fd(), pid, [None; 3], spec.stdin)?;
                // The command starts with the host's window size.
                relay.follow_window_size();
                Some(relay)
            }
            None => None,
        };
        ctr.start()?;
        on_started(pid);
        let waited = match &signals {
            Some(s) => s.wait(pid, || {
                if let Some(r) = &relay {
                    r.follow_window_size();
                }
            }),
            None => spawn::try_wait(pid, true).map(|r| r.expect("blocking wait returns")),
        }
        .context("wait for the container's process")?;
        if let Some(r) = relay {
            r.finish();
        }
        Ok(waited)
    })();
    if let Some(w) = watchdog {
        w.finish();
    }
    if waited.is_err() {
        // Our child since `create` returned (unreaped, so the pid is
        // still its own): killed and reaped here.
        // SAFETY: kill takes integers.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = spawn::try_wait(pid, true);
    }
    // Before `delete`, which removes the cgroup holding the counter.
    let oom_kills = CgroupDriver::probe()
        .map(|d| d.open(&spec.id).oom_kills())
        .unwrap_or(0);
    let deleted = ctr.delete();
    reap_strays();
    drop(signals);
    let waited = waited?;
    // The command ran: its exit code stands. If the runtime could not
    // delete the container, its state stays in the bundle for `rrun rm`
    // to ask again (lifecycle::remove).
    match deleted {
        Ok(()) => {
            let _ = engine::fsutil::remove_tree(&bundle);
        }
        Err(e) => eprintln!("rrun: warning: {e}"),
    }
    let mut status = match waited {
        WaitResult::Exited(c) => ExitStatus::Exited(c),
        WaitResult::Signaled(s) => ExitStatus::Signaled(s),
    };
    if status.code() == 137 && oom_kills > 0 {
        status = ExitStatus::OutOfMemory;
    }
    Ok(Outcome {
        status,
        memory_limit: spec.resources.memory_bytes,
    })
}

/// The native runner's one line and code for a command that cannot run;
/// any other failure of `create` as it is (125).
fn command_error(spec: &ContainerSpec, e: runner::external::OciError) -> anyhow::Error {
    let argv0 = spec.args.first().map(String::as_str).unwrap_or("");
    match command_exit_code(&e) {
        Some(127) => Coded(
            127,
            anyhow!("{argv0:?}: executable file not found in $PATH"),
        )
        .into(),
        Some(code) => Coded(code, anyhow!("{argv0:?}: permission denied")).into(),
        None => e.into(),
    }
}

/// As a subreaper we may inherit other orphans of the runtime's; none
/// may stay a zombie.
fn reap_strays() {
    // SAFETY: waitpid with a null status pointer, non-blocking.
    while unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) } > 0 {}
}

/// `-d`: the native runner's supervisor (detach.rs) with this runtime's
/// body; this rrun waits only until the command started (or failed to),
/// then prints the id.
fn run_detached(runtime: &str, spec: &ContainerSpec, dir: &Path, state: State) -> Result<i32> {
    crate::detach::spawn_supervisor(&spec.id, dir, state, |sup| {
        crate::detach::supervise_restarts(sup, || {
            let mut on_started = |pid: i32| sup.started(pid);
            match supervise(runtime, spec, dir, false, &mut on_started) {
                Err(e) => {
                    // The runtime's own message went to the log, which goes
                    // with the directory: keep its last line for the caller.
                    let said = std::fs::read_to_string(dir.join("container.log"))
                        .ok()
                        .and_then(|t| {
                            t.lines()
                                .rev()
                                .find(|l| !l.trim().is_empty())
                                .map(String::from)
                        });
                    let code = crate::run::exit_code_of(&e);
                    let mut msg = crate::run::one_line(&e);
                    if code == 125 {
                        if let Some(said) = said {
                            msg.push_str(&format!(": {runtime} said: {said}"));
                        }
                    }
                    Ended::Failed(code, msg)
                }
                Ok(o) => {
                    let code = report_outcome(&o);
                    Ended::Exited(code, o.status == ExitStatus::OutOfMemory)
                }
            }
        })
    })
}

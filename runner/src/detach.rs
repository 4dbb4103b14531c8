//! `rrun run -d`: a supervisor (double fork, new session) starts the
//! container with its output in `containers/<id>/container.log`, records
//! the exit, and cleans up. The foreground rrun waits only until the
//! command has started (or failed to), then prints the id.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use engine::runtime::{ContainerSpec, ExitStatus};
use runner::container::{self, Launch};
use runner::state::{ProcessId, State, Status};
use runner::sys;

use crate::run::Coded;

pub fn run_detached(spec: &ContainerSpec, dir: &Path, state: State) -> Result<i32> {
    let (rd, wr) = sys::pipe().context("create pipe")?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("container.log"))
        .context("create container.log")?;
    let devnull = File::open("/dev/null").context("open /dev/null")?;
    // SAFETY: rrun is single-threaded; the child continues with normal Rust code.
    match unsafe { libc::fork() } {
        -1 => bail!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            drop(rd);
            let _ = nix::unistd::setsid();
            // SAFETY: as above; the intermediate child only forks and exits.
            match unsafe { libc::fork() } {
                0 => {
                    let code = supervise(spec, dir, state, wr, log, devnull);
                    // SAFETY: _exit skips the parent's atexit work.
                    unsafe { libc::_exit(code) }
                }
                // SAFETY: as above.
                _ => unsafe { libc::_exit(0) },
            }
        }
        child => {
            drop(wr);
            let _ = runner::spawn::try_wait(child, true);
            let mut buf = String::new();
            let _ = File::from(rd).read_to_string(&mut buf);
            if let Some(rest) = buf.strip_prefix("ok") {
                let _ = rest;
                println!("{}", spec.id);
                return Ok(0);
            }
            let (code, msg) = buf
                .split_once(' ')
                .unwrap_or(("125", "the supervisor died before the container started"));
            bail!(Coded(
                code.parse().unwrap_or(125),
                anyhow!("{}", msg.trim())
            ));
        }
    }
}

fn supervise(
    spec: &ContainerSpec,
    dir: &Path,
    state: State,
    report: OwnedFd,
    log: File,
    devnull: File,
) -> i32 {
    // Our stdio must not keep the caller's terminal or pipes open.
    // SAFETY: dup2 onto 0..2 of descriptors we own.
    unsafe {
        libc::dup2(devnull.as_raw_fd(), 0);
        libc::dup2(log.as_raw_fd(), 1);
        libc::dup2(log.as_raw_fd(), 2);
    }
    drop(devnull);
    drop(log);
    let state = RefCell::new(state);
    state.borrow_mut().supervisor = Some(ProcessId::current());
    let _ = state.borrow().save(dir);
    let report = RefCell::new(Some(report));
    let mut on_started = |pid: i32| {
        let mut s = state.borrow_mut();
        s.pid = ProcessId::of(pid);
        s.status = Status::Running;
        let _ = s.save(dir);
        if let Some(r) = report.borrow_mut().take() {
            let _ = sys::write_all_fd(r.as_raw_fd(), b"ok");
        }
    };
    let mut launch = Launch::new(dir);
    launch.forward_signals = false;
    launch.die_with_parent = false;
    launch.on_started = Some(&mut on_started);
    let result = container::run(spec, launch);
    let mut s = state.into_inner();
    match result {
        Err(e) => {
            // Clean up before answering: the caller may look right away.
            let _ = engine::fsutil::remove_tree(dir);
            if let Some(r) = report.borrow_mut().take() {
                let msg = format!("{} {e}", e.exit_code());
                let _ = sys::write_all_fd(r.as_raw_fd(), msg.as_bytes());
            }
            e.exit_code()
        }
        Ok(o) => {
            let code = o.status.code();
            if o.status == ExitStatus::OutOfMemory {
                eprintln!(
                    "rrun: container was killed: out of memory (limit {} MiB)",
                    o.memory_limit.unwrap_or(0) >> 20
                );
            }
            if s.auto_remove {
                let _ = engine::fsutil::remove_tree(dir);
            } else {
                s.status = Status::Exited;
                s.exit_code = Some(code);
                s.oom_killed = o.status == ExitStatus::OutOfMemory;
                s.finished = Some(runner::state::now());
                let _ = s.save(dir);
            }
            code
        }
    }
}

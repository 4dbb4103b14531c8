//! `rrun run -d`: a supervisor (double fork, new session) starts the
//! container with its output in `containers/<id>/container.log`, records
//! the exit, and cleans up. The foreground rrun waits only until the
//! command has started (or failed to), then prints the id. The
//! supervisor drives the container's runtime through its `Task`, the same
//! for every runtime (`crate::run::run_task`).

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use engine::runtime::{ContainerSpec, ExitStatus};
use runner::state::{ProcessId, State, Status};
use runner::sys;

use crate::run::Coded;

/// The supervisor's side of the protocol with the rrun that started it:
/// one answer on the report pipe (`ok`, or `<code> <reason>`), and the
/// container's state kept in its directory.
pub struct Supervisor<'a> {
    dir: &'a Path,
    state: RefCell<State>,
    report: RefCell<Option<OwnedFd>>,
    /// Set by [`Self::exited`] for a `--rm` container.
    remove_at_end: Cell<bool>,
    /// A start of an existing container (`rrun start`): one that fails to
    /// start keeps its record, with the exit code, as Docker keeps it.
    existing: bool,
}

impl Supervisor<'_> {
    /// The command runs: its pid goes into the state, and the caller is told.
    pub fn started(&self, pid: i32) {
        let mut s = self.state.borrow_mut();
        if let Ok(now) = State::mark_running(self.dir, &s, pid) {
            *s = now;
        }
        if let Some(r) = self.report.borrow_mut().take() {
            let _ = sys::write_all_fd(r.as_raw_fd(), b"ok");
        }
    }

    /// It never started: the directory goes first (the caller may look at
    /// once), then the caller gets the exit code and the reason.
    pub fn failed(&self, code: i32, reason: &str) -> i32 {
        if self.existing {
            let _ = State::mark_exited(self.dir, &self.state.borrow(), code, false);
        } else {
            let _ = engine::fsutil::remove_tree(self.dir);
        }
        if let Some(r) = self.report.borrow_mut().take() {
            let _ = sys::write_all_fd(r.as_raw_fd(), format!("{code} {reason}").as_bytes());
        }
        code
    }

    /// Whether the command, which ended with `code`, runs again under
    /// the restart policy; if so, wait the back-off first (Docker's: 100
    /// ms doubling to a minute, from 100 ms again after a run of 10 s or
    /// more). False as soon as stop, kill or rm asks it to stay down.
    fn restart_after(
        &self,
        code: i32,
        oom_killed: bool,
        ran: Duration,
        delay: &mut Duration,
    ) -> bool {
        let known = self.state.borrow().clone();
        if !known.restart.restarts(code, known.restart_count) {
            return false;
        }
        let Ok(s) = State::update(self.dir, &known, |s| {
            s.status = Status::Exited;
            s.exit_code = Some(code);
            s.oom_killed = oom_killed;
            s.finished = Some(runner::state::now());
        }) else {
            return false;
        };
        if ran >= Duration::from_secs(10) {
            *delay = Duration::from_millis(100);
        }
        let until = Instant::now() + *delay;
        *delay = (*delay * 2).min(Duration::from_secs(60));
        let mut current = s;
        while Instant::now() < until {
            if current.stop_requested {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
            match State::load(self.dir) {
                Ok(s) => current = s,
                Err(_) => return false, // removed
            }
        }
        // Checked again under the state's lock: a stop or rm that asked
        // between the last look and now keeps it down.
        let mut go = false;
        match State::update(self.dir, &current, |s| {
            go = !s.stop_requested;
            if go {
                s.restart_count += 1;
            }
        }) {
            Ok(s) => {
                *self.state.borrow_mut() = s;
                go
            }
            Err(_) => false,
        }
    }

    /// It ended with `code`: record it. With `--rm` the directory goes
    /// too, but only once the attach hub is done ([`Self::remove_if_rm`]):
    /// until then the hub may still be writing the container's last
    /// output to the log an `rrun start -a` reads, and replaying it to a
    /// client that attached as the command ended.
    pub fn exited(&self, code: i32, oom_killed: bool) -> i32 {
        let s = self.state.borrow();
        let _ = State::mark_exited(self.dir, &s, code, oom_killed);
        self.remove_at_end.set(s.auto_remove);
        code
    }

    /// The end of the supervisor, its hub finished: the directory of a
    /// `--rm` container that ran goes, with its anonymous volumes, as
    /// Docker's `--rm` — unless an `rrun start -a` waits for the run's
    /// end: it removes the directory once it has read the exit code.
    fn remove_if_rm(&self) {
        let awaited = self.state.borrow().awaited_by.is_some_and(|p| p.alive());
        if self.remove_at_end.get() && !awaited {
            let _ = runner::volume::remove_container_dir(self.dir, true);
        }
    }
}

/// Fork the supervisor (in a session of its own, stdin on /dev/null or
/// the attach hub's pipe with -i, output through a pipe to the
/// supervisor, which writes it into `container.log` with each line's
/// time and rotates it: runner::logfile) and run `body` in it; its return
/// value is the supervisor's exit code. Here: for a new container
/// (`existing` false) print the id once the command runs, and a failed
/// start removes it; for an existing one (`rrun start`) print nothing,
/// and a failed start is recorded as its exit. Or fail with the
/// supervisor's code and reason.
pub fn spawn_supervisor_for(
    id: &str,
    dir: &Path,
    state: State,
    existing: bool,
    body: impl FnOnce(&Supervisor<'_>) -> i32,
) -> Result<i32> {
    let (rd, wr) = sys::pipe().context("create pipe")?;
    let writer = runner::logfile::Writer::open(dir, state.options.log.clone())
        .context("open container.log")?;
    let (out_rd, out_wr) = sys::pipe().context("create pipe")?;
    let devnull = File::open("/dev/null").context("open /dev/null")?;
    // -i: the container's stdin is a pipe the attach hub keeps open
    // (runner::attach); otherwise /dev/null.
    let stdin = match runner::recorded::load(dir).is_ok_and(|s| s.stdin) {
        true => Some(sys::pipe().context("create pipe")?),
        false => None,
    };
    // SAFETY: rrun is single-threaded; the child continues with normal Rust code.
    match unsafe { libc::fork() } {
        -1 => bail!("fork: {}", std::io::Error::last_os_error()),
        0 => {
            drop(rd);
            let _ = nix::unistd::setsid();
            // SAFETY: as above; the intermediate child only forks and exits.
            match unsafe { libc::fork() } {
                0 => {
                    // Our stdio (and so the container's) must not keep the
                    // caller's terminal or pipes open.
                    let out = out_wr.as_raw_fd();
                    let input = stdin
                        .as_ref()
                        .map_or(devnull.as_raw_fd(), |p| p.0.as_raw_fd());
                    // SAFETY: dup2 onto 0..2 of descriptors we own.
                    unsafe {
                        libc::dup2(input, 0);
                        libc::dup2(out, 1);
                        libc::dup2(out, 2);
                    }
                    drop(out_wr);
                    let stdin_wr = stdin.map(|(_, wr)| wr);
                    let hub = runner::attach::Hub::start(dir, writer, out_rd, stdin_wr);
                    let mut state = state;
                    state.supervisor = Some(ProcessId::current());
                    let _ = state.save(dir);
                    let sup = Supervisor {
                        dir,
                        state: RefCell::new(state),
                        report: RefCell::new(Some(wr)),
                        remove_at_end: Cell::new(false),
                        existing,
                    };
                    let code = body(&sup);
                    // Our own ends closed: the relay ends once the
                    // container's processes (gone now) have closed theirs.
                    // SAFETY: dup2 onto 1..2 of a descriptor we own.
                    unsafe {
                        libc::dup2(devnull.as_raw_fd(), 1);
                        libc::dup2(devnull.as_raw_fd(), 2);
                    }
                    hub.finish(code, Duration::from_secs(5));
                    sup.remove_if_rm();
                    drop(devnull);
                    // SAFETY: _exit skips the parent's atexit work.
                    unsafe { libc::_exit(code) }
                }
                // SAFETY: as above.
                _ => unsafe { libc::_exit(0) },
            }
        }
        child => {
            drop(wr);
            // The relay's pipe is the supervisor's alone.
            drop((writer, out_rd, out_wr));
            drop(stdin);
            let _ = runner::native::spawn::try_wait(child, true);
            let mut buf = String::new();
            let _ = File::from(rd).read_to_string(&mut buf);
            if buf == "ok" {
                if !existing {
                    println!("{id}");
                }
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

/// How one run of a detached container ended.
pub enum Ended {
    /// It never started the command: exit code and reason.
    Failed(i32, String),
    /// The command ran and exited with this code (OOM-killed or not).
    Exited(i32, bool),
}

/// Run the container with `once` as often as its restart policy says,
/// then record the end. A restart that cannot even start the command
/// counts as an exit with that code (Docker too keeps trying).
pub fn supervise_restarts(sup: &Supervisor<'_>, mut once: impl FnMut() -> Ended) -> i32 {
    let mut delay = Duration::from_millis(100);
    let mut first = true;
    loop {
        let started = Instant::now();
        let (code, oom) = match once() {
            Ended::Failed(code, msg) if first => return sup.failed(code, &msg),
            Ended::Failed(code, msg) => {
                eprintln!("rrun: restart failed: {msg}");
                (code, false)
            }
            Ended::Exited(code, oom) => (code, oom),
        };
        first = false;
        if !sup.restart_after(code, oom, started.elapsed(), &mut delay) {
            return sup.exited(code, oom);
        }
    }
}

/// `rrun run -d`.
pub fn run_detached(spec: &ContainerSpec, dir: &Path, state: State) -> Result<i32> {
    run_detached_for(spec, dir, state, false)
}

/// `-d` for a new container, or `rrun start` of an existing one
/// (`existing`, see [`spawn_supervisor_for`]): each run through the
/// runtime's task, which outlives this rrun.
pub fn run_detached_for(
    spec: &ContainerSpec,
    dir: &Path,
    state: State,
    existing: bool,
) -> Result<i32> {
    let runtime = crate::run::runtime_of(&state)?;
    let health = state.options.healthcheck.clone();
    let known = state.clone();
    spawn_supervisor_for(&spec.id, dir, state, existing, |sup| {
        if let Some(hc) = health {
            watch_health(dir, hc);
        }
        let mut first = true;
        supervise_restarts(sup, || {
            let mut started = |pid: i32| sup.started(pid);
            // A restart by the policy starts with the limits recorded
            // now: `rrun update` may have changed them (Docker keeps them).
            let reloaded;
            let spec = if std::mem::take(&mut first) {
                spec
            } else {
                reloaded = with_recorded_limits(spec, dir);
                &reloaded
            };
            let ran = crate::run::task_io(dir, &known, false)
                .map_err(|e| Coded(runner::exit_code_of(&e), e))
                .and_then(|io| crate::run::run_task(spec, io, &*runtime, &mut started));
            match ran {
                Err(e) => Ended::Failed(e.0, e.to_string()),
                Ok(o) => {
                    let oom = o.status == ExitStatus::OutOfMemory;
                    Ended::Exited(crate::run::report_outcome(&o), oom)
                }
            }
        })
    })
}

/// `spec` with the limits its container's record holds now (`rrun
/// update` writes them there); `spec` itself when there is no record.
fn with_recorded_limits(spec: &ContainerSpec, dir: &Path) -> ContainerSpec {
    let mut now = spec.clone();
    if let Ok(recorded) = runner::recorded::load(dir) {
        now.resources = recorded.resources;
    }
    now
}

/// The supervisor's health checker (runner::health): a thread of its own
/// that ends with the supervisor. Each check is an `rrun exec` of this
/// binary, so it runs exactly as `rrun exec` would.
fn watch_health(dir: &Path, hc: runner::health::Healthcheck) {
    let dir = dir.to_path_buf();
    let _ = std::thread::Builder::new()
        .name("health".into())
        .spawn(move || {
            let loaded = || State::load(&dir);
            runner::health::watch(
                &dir,
                &hc,
                || loaded().map(|s| s.is_running()).unwrap_or(false),
                || loaded().is_err(),
                |argv, timeout| run_check(&dir, argv, timeout),
            )
        });
}

/// One check: `rrun --root R exec ID ARGV...`, its output (stdout and
/// stderr) kept; past `timeout` it is stopped (TERM, which rrun exec
/// forwards, then KILL) and counts as a failure.
fn run_check(dir: &Path, argv: &[String], timeout: Duration) -> runner::health::CheckResult {
    use std::process::{Command, Stdio};
    let (Some(containers), Some(id)) = (dir.parent(), dir.file_name()) else {
        return (-1, "no container directory".into());
    };
    let root = containers.parent().unwrap_or(Path::new("/"));
    let (rd, wr) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => return (-1, format!("pipe: {e}")),
    };
    let wr2 = match wr.try_clone() {
        Ok(w) => w,
        Err(e) => return (-1, format!("pipe: {e}")),
    };
    let child = Command::new("/proc/self/exe")
        .arg("--root")
        .arg(root)
        .arg("exec")
        .arg(id)
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::from(wr))
        .stderr(Stdio::from(wr2))
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return (-1, format!("run the check: {e}")),
    };
    // A process the check left running in the background may keep the
    // pipe open: its output is waited for only briefly after the exit.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = File::from(rd)
            .take(runner::health::MAX_OUTPUT as u64 * 4)
            .read_to_end(&mut out);
        let _ = tx.send(String::from_utf8_lossy(&out).into_owned());
    });
    let deadline = Instant::now() + timeout;
    let code = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st.code().unwrap_or(-1),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                // SAFETY: kill takes integers; the child is ours, unreaped.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                let grace = Instant::now() + Duration::from_secs(1);
                while Instant::now() < grace && matches!(child.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                let _ = child.kill();
                let _ = child.wait();
                return (
                    -1,
                    format!("Health check exceeded timeout ({}s)", timeout.as_secs_f64()),
                );
            }
        }
    };
    (
        code,
        rx.recv_timeout(Duration::from_millis(500))
            .unwrap_or_default(),
    )
}

//! Container lifecycle on the store: ids, signals, stop, remove, and the
//! reaper of leftovers of a killed rrun (docs/ARCHITECTURE.md, invariant 3). The reaper
//! runs at every start, so it reads only each container's small state file
//! and lists our cgroup parent: no work proportional to image size.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use engine::runtime::TaskState;

use crate::cgroup::CgroupDriver;
use crate::state::{self, State, Status};

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("cannot remove container {0}: it is running (stop it first, or use rm -f)")]
    Running(String),
    #[error("cannot remove container {0}: it is restarting (stop it first, or use rm -f)")]
    Restarting(String),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("signal {pid} ({what}): {source}")]
    Signal {
        pid: i32,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("remove {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid signal {0:?} (use a name like TERM or SIGKILL, or a number)")]
    BadSignal(String),
    #[error("container {0} is already paused")]
    AlreadyPaused(String),
    #[error("container {0} is not paused")]
    NotPaused(String),
    #[error("container {0} is paused: unpause it first")]
    Paused(String),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error("{0}")]
    Runtime(engine::runtime::RuntimeError),
}

/// A container id: 64 hex digits, the last 8 naming the store it belongs
/// to (see `store_tag`), the rest random. Several stores share the cgroup
/// parent `rbox/`; the tag lets each store's reaper touch only its own.
/// The tag goes last: the first 12 digits are the short id, the default
/// name and hostname, and must be random (with the tag first they had 16
/// random bits, and a start could fail on a name already in use).
pub fn new_id(store_root: &Path) -> String {
    format!("{}{}", random_hex(28), store_tag(store_root))
}

/// `bytes` random bytes from the kernel (getrandom), as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: getrandom writes at most len bytes into our buffer.
        let n =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// 8 hex digits of blake3 of the store's canonical path.
pub fn store_tag(store_root: &Path) -> String {
    let root = std::fs::canonicalize(store_root).unwrap_or_else(|_| store_root.to_path_buf());
    engine::Digest::blake3_of(root.as_os_str().as_encoded_bytes()).hex()[..8].to_string()
}

/// `TERM`, `SIGTERM`, `15` -> 15.
pub fn parse_signal(s: &str) -> Result<i32, LifecycleError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..65).contains(&n) {
            return Ok(n);
        }
        return Err(LifecycleError::BadSignal(s.to_string()));
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| LifecycleError::BadSignal(s.to_string()))
}

/// Whether the container is paused (its cgroup frozen, `rrun pause`).
/// `ps` and `inspect` ask this for every container: the cgroup driver is
/// probed once per process, not once per container.
pub fn paused(st: &State) -> bool {
    static DRIVER: std::sync::OnceLock<Option<CgroupDriver>> = std::sync::OnceLock::new();
    st.is_running()
        && DRIVER
            .get_or_init(|| CgroupDriver::probe().ok())
            .as_ref()
            .is_some_and(|d| d.open(&st.id).is_frozen())
}

/// `rrun pause`: freeze every process of the container, through the
/// runtime that runs it.
pub fn pause(dir: &Path, st: &State) -> Result<(), LifecycleError> {
    let ctr =
        crate::runtimes::open(dir, st).map_err(|_| LifecycleError::NotRunning(st.name.clone()))?;
    if ctr.state().map_err(LifecycleError::Runtime)? == TaskState::Paused {
        return Err(LifecycleError::AlreadyPaused(st.name.clone()));
    }
    ctr.pause().map_err(LifecycleError::Runtime)
}

/// `rrun unpause`.
pub fn unpause(dir: &Path, st: &State) -> Result<(), LifecycleError> {
    let ctr =
        crate::runtimes::open(dir, st).map_err(|_| LifecycleError::NotRunning(st.name.clone()))?;
    if ctr.state().map_err(LifecycleError::Runtime)? != TaskState::Paused {
        return Err(LifecycleError::NotPaused(st.name.clone()));
    }
    ctr.resume().map_err(LifecycleError::Runtime)
}

/// Send `sig` to the container's first process (PID 1 inside), through
/// the runtime that runs it. A paused container is resumed after the
/// signal is sent, so that it is handled (as Docker's stop and kill of a
/// paused container).
pub fn signal(dir: &Path, st: &State, sig: i32) -> Result<(), LifecycleError> {
    let ctr =
        crate::runtimes::open(dir, st).map_err(|_| LifecycleError::NotRunning(st.name.clone()))?;
    ctr.kill(sig).map_err(LifecycleError::Runtime)?;
    if ctr.state().is_ok_and(|s| s == TaskState::Paused) {
        ctr.resume().map_err(LifecycleError::Runtime)?;
    }
    Ok(())
}

/// Wait until the container's process is gone and its supervisor has
/// recorded the exit (or is gone too).
pub fn wait_stopped(dir: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match State::load(dir) {
            Err(_) => return true, // removed (--rm)
            Ok(s) => {
                let pid_gone = !s.pid.map(|p| p.alive()).unwrap_or(false);
                let sup_gone = !s.supervisor.map(|p| p.alive()).unwrap_or(false);
                if pid_gone && (s.status != Status::Running || sup_gone) {
                    return true;
                }
            }
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The signal `rrun stop` sends first (checked when recorded).
pub fn stop_signal(st: &State) -> i32 {
    st.options
        .stop_signal
        .as_deref()
        .and_then(|s| parse_signal(s).ok())
        .unwrap_or(libc::SIGTERM)
}

/// How long `rrun stop` waits without `-t`: `--stop-timeout`, or 10 s.
pub fn stop_grace(st: &State, given: Option<u64>) -> Duration {
    Duration::from_secs(given.or(st.options.stop_timeout).unwrap_or(10))
}

/// Tell the detached supervisor the container is to stay down (no
/// restart), as Docker's manual stop does.
pub fn keep_down(dir: &Path, st: &State) {
    let _ = State::update(dir, st, |s| s.stop_requested = true);
}

/// Docker's stop: the stop signal (`--stop-signal`, the image's
/// STOPSIGNAL, or SIGTERM), wait `grace`, then SIGKILL. No restart after.
pub fn stop(dir: &Path, st: &State, grace: Duration) -> Result<(), LifecycleError> {
    keep_down(dir, st);
    if !st.is_running() {
        return Ok(());
    }
    let _ = signal(dir, st, stop_signal(st));
    if !wait_stopped(dir, grace) {
        // The process now running (a restart may have begun just before
        // the stop was asked for).
        let current = State::load(dir).unwrap_or_else(|_| st.clone());
        let _ = signal(dir, &current, libc::SIGKILL);
        wait_stopped(dir, Duration::from_secs(10));
    }
    reap_one(dir, None);
    Ok(())
}

/// Remove a stopped container (or kill it first with `force`).
pub fn remove(dir: &Path, st: &State, force: bool) -> Result<(), LifecycleError> {
    let current = State::load(dir).unwrap_or_else(|_| st.clone());
    // Stopped, but its supervisor lives on to start it again after the
    // back-off (Docker's "restarting").
    let restarting = !current.is_running()
        && current.supervisor.is_some_and(|p| p.alive())
        && !current.stop_requested
        && current
            .restart
            .restarts(current.exit_code.unwrap_or(0), current.restart_count);
    if current.is_running() || restarting {
        if !force {
            return Err(if restarting {
                LifecycleError::Restarting(st.name.clone())
            } else {
                LifecycleError::Running(st.name.clone())
            });
        }
        keep_down(dir, st);
        kill_until_down(dir, Duration::from_secs(10));
    }
    // Its supervisor's last writes (the exit status, the result of a
    // health check the kill cut short) are done before the directory goes.
    wait_supervisor_gone(dir, Duration::from_secs(10));
    crate::external::ctl::delete_leftover(dir, &st.id);
    if let Ok(driver) = CgroupDriver::probe() {
        let _ = driver.open(&st.id).remove();
    }
    remove_dir(dir)
}

/// SIGKILL whatever process the container runs now, again and again (a
/// restart may have begun after the caller read its state), until neither
/// it nor its supervisor is alive, or `limit` has passed.
fn kill_until_down(dir: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let current = match State::load(dir) {
            Ok(s) => s,
            Err(_) => return, // gone (--rm)
        };
        let _ = signal(dir, &current, libc::SIGKILL);
        let pid_alive = current.pid.is_some_and(|p| p.alive());
        let sup_alive = current.supervisor.is_some_and(|p| p.alive());
        if !pid_alive && !sup_alive || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Wait until the container's supervisor (if any) has exited.
fn wait_supervisor_gone(dir: &Path, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        match State::load(dir) {
            Err(_) => return true,
            Ok(s) if !s.supervisor.is_some_and(|p| p.alive()) => return true,
            Ok(_) => {}
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The prefix of a container directory being removed (see [`remove_dir`]).
const REMOVING: &str = ".removing";

/// Remove a container's directory: first renamed to a `.removing-PID-…`
/// sibling, which `ps` and the reaper skip, then removed. Whatever still
/// writes by path (a supervisor that outlived the wait, its health thread)
/// then fails on the old path instead of adding a file to a directory
/// being emptied, which made the final rmdir fail (ENOTEMPTY).
pub fn remove_dir(dir: &Path) -> Result<(), LifecycleError> {
    let err = |source| LifecycleError::Remove {
        path: dir.to_path_buf(),
        source,
    };
    let Some(parent) = dir.parent() else {
        return engine::fsutil::remove_tree(dir).map_err(err);
    };
    let doomed = parent.join(engine::fsutil::unique_name(REMOVING));
    match std::fs::rename(dir, &doomed) {
        // A write whose path lookup began before the rename still lands
        // in the renamed directory; later ones fail. Such stragglers make
        // one more pass find what the first missed.
        Ok(()) => {
            let mut tries = 0;
            loop {
                match engine::fsutil::remove_tree(&doomed) {
                    Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && tries < 20 => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    r => return r.map_err(err),
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(err(e)),
    }
}

/// A `.removing-PID-…` directory whose rrun died before it was done.
fn abandoned_removal(name: &str) -> bool {
    let Some(pid) = name
        .strip_prefix(REMOVING)
        .and_then(|r| r.strip_prefix('-'))
        .and_then(|r| r.split('-').next())
        .and_then(|p| p.parse::<i32>().ok())
    else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks that the pid exists.
    pid > 0
        && unsafe { libc::kill(pid, 0) } != 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

/// Clean up one container whose supervisor died: its cgroup, and its
/// directory if it was `--rm`; otherwise mark it exited. Returns whether
/// it was a leftover.
pub fn reap_one(dir: &Path, driver: Option<&CgroupDriver>) -> bool {
    let Ok(mut st) = State::load(dir) else {
        return false;
    };
    if !leftover_if_unsupervised(&st) {
        return false;
    }
    let sup_alive = st.supervisor.map(|p| p.alive()).unwrap_or(false);
    if sup_alive {
        return false;
    }
    // The supervisor is gone: the container (if somehow still alive) has
    // nobody to wait for it.
    if let Some(p) = st.pid.filter(|p| p.alive()) {
        // SAFETY: kill takes integers; identity checked by start time.
        unsafe { libc::kill(p.pid, libc::SIGKILL) };
    }
    // One an external OCI runtime ran: that runtime forgets it too.
    crate::external::ctl::delete_leftover(dir, &st.id);
    let probed;
    let driver = match driver {
        Some(d) => Some(d),
        None => {
            probed = CgroupDriver::probe().ok();
            probed.as_ref()
        }
    };
    if let Some(d) = driver {
        let _ = d.open(&st.id).remove();
    }
    for c in std::mem::take(&mut st.host.connected) {
        crate::network::connect::release(&c, &st.id);
    }
    if st.auto_remove {
        // With its anonymous volumes, as Docker's --rm.
        let _ = crate::volume::remove_container_dir(dir, true);
    } else {
        st.status = Status::Exited;
        st.finished.get_or_insert(state::now());
        let _ = st.save(dir);
    }
    true
}

/// Whether the container in state `st` is a leftover once no supervisor
/// lives: one that was running, or a `--rm` one whose exit is recorded
/// (its supervisor removes the directory last, after the attach hub is
/// done, or leaves that to the `rrun start -a` that waits for it: rrun's
/// detach and start) — not one that waits for `rrun start`, an exited one
/// that is kept, or one a live `start -a` is about to remove.
fn leftover_if_unsupervised(st: &State) -> bool {
    if st.awaits_start() {
        return false;
    }
    match st.status {
        Status::Exited => st.auto_remove && !st.awaited_by.is_some_and(|p| p.alive()),
        _ => true,
    }
}

/// At every start: reap containers whose supervisor died, and remove our
/// cgroups that have no container directory. Cheap: a directory listing
/// and one small file per container. Returns the names of the containers
/// still there, so that a start checks its name without reading every
/// state a second time.
pub fn reap_leftovers(containers: &Path) -> Vec<String> {
    let driver = CgroupDriver::probe().ok();
    // Groups are listed BEFORE the container directories: a container's
    // directory is created before its group, so a group seen here whose
    // directory is missing below really is a leftover. (Listed the other
    // way round, a container starting in between — directory and group
    // both new — lost its group to us; its rrun then failed to join it.)
    let groups = driver.as_ref().map(|d| d.list()).unwrap_or_default();
    let Ok(rd) = std::fs::read_dir(containers) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    let mut names = Vec::new();
    for e in rd.flatten() {
        let dir = e.path();
        let id = e.file_name().to_string_lossy().into_owned();
        if id.starts_with('.') {
            // Being removed; finished here if its rrun died meanwhile.
            if abandoned_removal(&id) {
                let _ = engine::fsutil::remove_tree(&dir);
            }
            continue;
        }
        if let Ok(s) = State::load(&dir) {
            let needs =
                leftover_if_unsupervised(&s) && !s.supervisor.map(|p| p.alive()).unwrap_or(false);
            if needs {
                reap_one(&dir, driver.as_ref());
            }
            // A reaped --rm container is gone; any other stays (exited).
            if !(needs && s.auto_remove) {
                names.push(s.name);
            }
        }
        ids.push(id);
    }
    let Some(driver) = driver else { return names };
    let tag = containers.parent().map(store_tag).unwrap_or_default();
    for cg in groups {
        // Only groups of `rrun run` on THIS store (64-hex ids ending with
        // its tag: another store's containers are not in our directory),
        // and only empty ones: a live group is somebody's.
        // (remove_if_empty: the kernel's rmdir checks emptiness atomically;
        // it never kills a process that joined after a check of ours.)
        if !ids.contains(&cg) && cg.len() == 64 && cg.ends_with(&tag) {
            let _ = driver.open(&cg).remove_if_empty();
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_dead_removers_directory_is_abandoned() {
        let mine = engine::fsutil::unique_name(REMOVING);
        assert!(!abandoned_removal(&mine), "{mine}");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        assert!(abandoned_removal(&format!("{REMOVING}-{dead}-0-ff")));
        for other in [".removing", ".removing-x-1", ".other-1-2", "abc"] {
            assert!(!abandoned_removal(other), "{other}");
        }
    }
}

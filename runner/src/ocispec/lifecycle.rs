//! create, start, kill, delete and run of a runc-compatible runtime, on
//! rbox's native spawn path.
//!
//! `create` clones the container's first process, which does everything
//! up to execve (rootfs, pivot_root, masks, rlimits, capabilities, user)
//! and then blocks reading one byte from `<state>/exec.fifo` (the
//! `start_gate` of `spawn::ChildPlan`); `create` then exits, so that
//! nothing of rbox stays between the caller (a subreaper such as
//! containerd's shim or conmon) and the container process. `start` writes
//! that byte and removes the fifo.
//!
//! Hooks (`hooks.rs`): prestart and createRuntime run here while the
//! child waits before its pivot, createContainer and startContainer in
//! the child, poststart in `start`, poststop in `delete`.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::cgroup::Devices;
use crate::native::rootfs::RootfsPlan;
use crate::native::spawn::{self, ChildPlan};
use crate::sys;

use super::hooks;
use super::state::{self, Saved, Status};
use super::userns::UserNs;
use super::{io_err, Bundle, OciError, Result};

pub struct CreateOpts<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
}

/// Create the container and return its record; its first process waits
/// for `start`. On error nothing is left (state, cgroup, process).
pub fn create(o: &CreateOpts<'_>) -> Result<Saved> {
    create_as(o, false).map(|(saved, _)| saved)
}

/// `create`; with `run_now` (`run`) and no hooks that need the pause
/// between create and start (prestart, createRuntime, createContainer,
/// startContainer, poststart), the container's process goes straight on
/// to its command: its gate is a pipe opened before it gets there, with
/// no `exec.fifo` to make, reopen and remove, and no round trip more
/// than a child without a gate. True when it did.
fn create_as(o: &CreateOpts<'_>, run_now: bool) -> Result<(Saved, bool)> {
    state::check_id(o.id)?;
    super::seccomp_cache::use_root(o.root);
    let bundle = super::load(o.bundle)?;
    super::check_terminal(bundle.terminal, o.console_socket)?;
    // Root's only, as every directory of rbox's (invariant 6).
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(o.root)
        .map_err(io_err("create state root", o.root))?;
    let d = state::dir(o.root, o.id);
    match std::fs::DirBuilder::new().mode(0o700).create(&d) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(OciError::Exists(o.id.to_string()))
        }
        Err(e) => return Err(io_err("create", &d)(e)),
    }
    let run_now =
        run_now && !bundle.hooks.in_create_or_start() && bundle.hooks.poststart.is_empty();
    let r = create_in(o, &bundle, run_now).map(|saved| (saved, run_now));
    if r.is_err() {
        let _ = std::fs::remove_dir_all(&d);
        // The lifecycle goes on at "destroy" (runtime-spec lifecycle step 12).
        if !bundle.hooks.poststop.is_empty() {
            let state = hooks::state_json(o.id, "stopped", 0, &bundle.dir, &bundle.annotations);
            hooks::run_all_warn(hooks::KINDS[5], &bundle.hooks.poststop, &state);
        }
    }
    r
}

fn create_in(o: &CreateOpts<'_>, bundle: &Bundle, run_now: bool) -> Result<Saved> {
    let (driver, name) = super::cgroup_for(bundle.cgroups_path.as_deref(), o.id)?;
    let cg = driver.create(&name, &bundle.resources, Devices::Default)?;
    let r = spawn_waiting(o, bundle, &cg, run_now);
    if r.is_err() {
        let _ = cg.remove();
    }
    r
}

fn spawn_waiting(
    o: &CreateOpts<'_>,
    bundle: &Bundle,
    cg: &crate::cgroup::Cgroup,
    run_now: bool,
) -> Result<Saved> {
    // `run_now`: a pipe, its byte written before the child reads it.
    let (gate, open_gate) = if run_now {
        let (rd, wr) =
            sys::pipe().map_err(|e| OciError::Other(format!("create the start gate: {e}")))?;
        (rd, Some(wr))
    } else {
        let fifo = state::fifo(o.root, o.id);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .map_err(|e| io_err("mkfifo", &fifo)(e.into()))?;
        // Read-write: opening does not block, and the child's read blocks
        // until `start` writes (or the caller kills it).
        let gate: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&fifo)
            .map_err(io_err("open", &fifo))?
            .into();
        (gate, None)
    };
    let console = o.console_socket.map(super::connect_console).transpose()?;
    let into = cg.clone_into_fd();
    let tasks = cg.self_join_files()?;
    let mut join = Vec::new();
    for (p, t) in &bundle.join_ns {
        let f = std::fs::File::open(p).map_err(io_err("open namespace", p))?;
        join.push((f, *t));
    }
    let mut plan = child_plan(bundle, cg, &gate, console.as_ref(), &tasks)?;
    // Its failures past the open gate are still ours to report.
    plan.report_past_gate = open_gate.is_some();
    plan.join_ns = join.iter().map(|(f, t)| (f.as_raw_fd(), *t)).collect();
    let user_file = match &bundle.userns {
        Some(UserNs::Join(p)) => Some(std::fs::File::open(p).map_err(io_err("open namespace", p))?),
        _ => None,
    };
    plan.userns = match (&bundle.userns, &user_file) {
        (Some(UserNs::New { uid_map, gid_map }), _) => Some(spawn::UserNsPlan::New {
            uid_map: UserNs::map_text(uid_map),
            gid_map: UserNs::map_text(gid_map),
        }),
        (Some(UserNs::Join(_)), Some(f)) => Some(spawn::UserNsPlan::Join(f.as_raw_fd())),
        _ => None,
    };
    if bundle.hooks.in_create_or_start() {
        let h = &bundle.hooks;
        plan.hooks = Some(std::sync::Arc::new(hooks::InContainer {
            create_container: h.create_container.clone(),
            start_container: h.start_container.clone(),
            id: o.id.to_string(),
            bundle: bundle.dir.clone(),
            annotations: bundle.annotations.clone(),
        }));
    }
    let started = spawn::start(&plan, into.as_ref().map(|f| f.as_raw_fd()))?;
    drop(console);
    let pid = match &open_gate {
        // Returns once the command is exec'ed (or failed to be).
        Some(w) => started.create_started(w)?,
        // Before the child's pivot, in our namespaces.
        None => started.release_with(|pid| {
            let state = hooks::state_json(o.id, "creating", pid, &bundle.dir, &bundle.annotations);
            hooks::run_all(hooks::KINDS[0], &bundle.hooks.prestart, &state)
                .and_then(|()| {
                    hooks::run_all(hooks::KINDS[1], &bundle.hooks.create_runtime, &state)
                })
                .map_err(|e| e.to_string())
        })?,
    };
    let saved = (|| {
        let (_, start_time) = state::proc_stat(pid).ok_or_else(|| {
            OciError::Other(format!("container process {pid} vanished during create"))
        })?;
        let saved = Saved {
            id: o.id.to_string(),
            pid,
            start_time,
            bundle: bundle.dir.clone(),
            rootfs: bundle.rootfs.clone(),
            created: now_rfc3339(),
            annotations: bundle.annotations.clone(),
            cgroups_path: bundle.cgroups_path.clone(),
            hooks: bundle.hooks.clone(),
        };
        state::save(o.root, &saved)?;
        if let Some(p) = o.pid_file {
            write_pid_file(p, pid)?;
        }
        Ok(saved)
    })();
    if saved.is_err() {
        // SAFETY: kill takes integers; pid is our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let _ = spawn::try_wait(pid, true);
    }
    saved
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    engine::image::rfc3339(secs)
}

/// Temp name then rename, so a reader never sees a partial pid.
pub(crate) fn write_pid_file(p: &Path, pid: i32) -> Result<()> {
    let abs = std::path::absolute(p).map_err(io_err("resolve", p))?;
    let tmp = PathBuf::from(format!("{}.rbox-tmp", abs.display()));
    let mut f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(pid.to_string().as_bytes())
        .map_err(io_err("write", &tmp))?;
    std::fs::rename(&tmp, &abs).map_err(io_err("rename into", &abs))
}

/// The security settings of a bundle's process (capability sets,
/// no_new_privs), decided in the parent: the one place both a
/// container's first process (`create`) and a process added by `exec`
/// get them from, so whatever is enforced here is enforced for both. The
/// child applies the plan, with the process's rlimits and user, through
/// `spawn::become_process_user`.
pub fn process_security(b: &Bundle) -> Result<crate::native::security::SecurityPlan> {
    Ok(
        crate::native::security::SecurityPlan::oci(b.caps, b.no_new_privs, b.uid)
            .with_oci_seccomp(b.seccomp.clone()),
    )
}

fn child_plan(
    b: &Bundle,
    cg: &crate::cgroup::Cgroup,
    gate: &OwnedFd,
    console: Option<&OwnedFd>,
    tasks: &[std::fs::File],
) -> Result<ChildPlan> {
    let security = process_security(b)?;
    let env_path = b.env.iter().rev().find_map(|kv| kv.strip_prefix("PATH="));
    let rel = b.cwd.trim_start_matches('/');
    let inner = cg.inner_mounts();
    let mut steps = b.steps(&inner);
    // Without a cgroup namespace of its own the container sees its own
    // groups, not the hierarchies' roots (the host's other groups and
    // the root's unlimited values), as runc and crun bind them.
    if !b.new_cgroup_ns {
        super::bind_cgroups(&mut steps, &inner, &cg.paths());
    }
    let cs = |v: &[String]| -> Vec<CString> { v.iter().map(sys::cstring).collect() };
    Ok(ChildPlan {
        rootfs: RootfsPlan {
            lowers: Vec::new(),
            upper: CString::default(),
            work: CString::default(),
            merged: sys::cstring(&b.rootfs),
            readonly: b.readonly,
            volatile: false,
            steps,
        },
        etc_files: None,
        hostname: sys::cstring(b.hostname.as_deref().unwrap_or("")),
        domainname: sys::cstring(b.domainname.as_deref().unwrap_or("")),
        workdir: sys::cstring(if rel.is_empty() { "." } else { rel }),
        uid: b.uid,
        gid: b.gid,
        groups: b.groups.clone(),
        argv: cs(&b.args),
        envp: cs(&b.env),
        exec_candidates: spawn::exec_candidates(&b.args[0], env_path),
        new_net: b.new_net,
        security,
        privileged: false,
        init: false,
        stdio: [None, None, None],
        controlling_tty: false,
        console: console.map(|c| {
            (
                c.as_raw_fd(),
                b.console_size.map(|(rows, cols)| libc::winsize {
                    ws_row: rows,
                    ws_col: cols,
                    ws_xpixel: 0,
                    ws_ypixel: 0,
                }),
            )
        }),
        die_with_parent: false,
        cgroup_tasks: tasks.iter().map(|f| f.as_raw_fd()).collect(),
        new_cgroup_ns: b.new_cgroup_ns,
        masked: Some((cs(&b.masked), cs(&b.readonly_paths))),
        rlimits: b.rlimits.clone(),
        start_gate: Some(gate.as_raw_fd()),
        report_past_gate: false,
        join_ns: Vec::new(),
        sysctl: b
            .sysctl
            .iter()
            .map(|(k, v)| (sys::cstring(k), v.clone().into_bytes()))
            .collect(),
        oom_score_adj: b.oom_score_adj.map(|a| sys::cstring(a.to_string())),
        hooks: None,
        userns: None,
    })
}

/// The record and status of `id`: `paused` when it is running and its
/// cgroup is frozen.
pub fn state(root: &Path, id: &str) -> Result<(Option<Saved>, Status)> {
    let saved = state::load(root, id)?;
    let mut status = state::status(root, saved.as_ref());
    if let (Status::Running, Some(s)) = (status, &saved) {
        // No cgroup to read (an unusable cgroup fs): not frozen by us.
        if super::pause::group(s).is_ok_and(|g| g.is_frozen()) {
            status = Status::Paused;
        }
    }
    Ok((saved, status))
}

/// Let a created container run its command.
pub fn start(root: &Path, id: &str) -> Result<()> {
    let (saved, status) = state(root, id)?;
    let Some(saved) = saved.filter(|_| status == Status::Created) else {
        return Err(OciError::WrongState {
            id: id.to_string(),
            status: status.as_str(),
            what: "only a created container can be started",
        });
    };
    let fifo = state::fifo(root, id);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .map_err(io_err("open", &fifo))?;
    std::fs::remove_file(&fifo).map_err(io_err("remove", &fifo))?;
    (&f).write_all(b"s").map_err(io_err("write", &fifo))?;
    if !saved.hooks.poststart.is_empty() {
        // "After the user-specified process is executed": past its
        // startContainer hooks and execve.
        wait_for_exec(&saved);
        let state = hooks::state_json(id, "running", saved.pid, &saved.bundle, &saved.annotations);
        if let Err(e) = hooks::run_all(hooks::KINDS[4], &saved.hooks.poststart, &state) {
            // Runtime-spec lifecycle step 9: a failed poststart stops
            // the container; `delete` destroys it.
            // SAFETY: kill takes integers; the pid is the one we started
            // (checked with its start time just above).
            unsafe { libc::kill(saved.pid, libc::SIGKILL) };
            return Err(e.into());
        }
    }
    Ok(())
}

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};

/// Wait until the container's first process no longer runs this binary
/// (it exec'ed its command) or is gone.
fn wait_for_exec(saved: &Saved) {
    let id = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    let Some(me) = id("/proc/self/exe") else {
        return;
    };
    let exe = format!("/proc/{}/exe", saved.pid);
    let mut pause = std::time::Duration::from_micros(200);
    while state::alive(saved) && id(&exe) == Some(me) {
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
}

/// Send `sig` to the container's first process, or with `all` to every
/// process in its cgroup. SIGKILL to a paused container thaws it after
/// sending, as runc does: a frozen task on cgroup v1 cannot die.
pub fn kill(root: &Path, id: &str, sig: i32, all: bool) -> Result<()> {
    let (saved, status) = state(root, id)?;
    let live = matches!(status, Status::Created | Status::Running | Status::Paused);
    let Some(saved) = saved.filter(|_| live) else {
        return Err(OciError::WrongState {
            id: id.to_string(),
            status: status.as_str(),
            what: "it has no process to signal",
        });
    };
    let pids = if all {
        let (driver, name) = super::cgroup_for(saved.cgroups_path.as_deref(), id)?;
        driver.open(&name).procs()
    } else {
        vec![saved.pid]
    };
    for pid in pids {
        // SAFETY: kill takes integers.
        if unsafe { libc::kill(pid, sig) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ESRCH) {
                return Err(OciError::Other(format!(
                    "kill {pid} with signal {sig}: {e}"
                )));
            }
        }
    }
    if status == Status::Paused && sig == libc::SIGKILL {
        super::pause::group(&saved)?.thaw()?;
    }
    Ok(())
}

/// The pids of every process in the container's cgroup.
pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    let (saved, status) = state(root, id)?;
    let Some(saved) = saved else {
        return Err(OciError::WrongState {
            id: id.to_string(),
            status: status.as_str(),
            what: "it has no processes yet",
        });
    };
    let (driver, name) = super::cgroup_for(saved.cgroups_path.as_deref(), id)?;
    Ok(driver.open(&name).procs())
}

/// Remove a stopped (or created) container's cgroup and state; a running
/// one only with `force`, after killing every process in its group.
pub fn delete(root: &Path, id: &str, force: bool) -> Result<()> {
    let (saved, status) = match state(root, id) {
        Err(OciError::NotFound(_)) if force => return Ok(()),
        r => r?,
    };
    if matches!(status, Status::Running | Status::Paused | Status::Creating) && !force {
        return Err(OciError::WrongState {
            id: id.to_string(),
            status: status.as_str(),
            what: "stop it first, or delete --force",
        });
    }
    // Kills whatever is left in the group, waits for it to empty (5 s at
    // most), removes it.
    let cgroups_path = saved.as_ref().and_then(|s| s.cgroups_path.clone());
    let (driver, name) = super::cgroup_for(cgroups_path.as_deref(), id)?;
    driver.open(&name).remove()?;
    let d = state::dir(root, id);
    std::fs::remove_dir_all(&d).map_err(io_err("remove", &d))?;
    if let Some(s) = saved.filter(|s| !s.hooks.poststop.is_empty()) {
        let state = hooks::state_json(id, "stopped", 0, &s.bundle, &s.annotations);
        hooks::run_all_warn(hooks::KINDS[5], &s.hooks.poststop, &state);
    }
    Ok(())
}

/// `run`: create, start and wait in this process (the container is our
/// child), forwarding signals; then delete. The command's exit code, or
/// 128 + the signal that killed it.
pub fn run(o: &CreateOpts<'_>) -> Result<i32> {
    let fwd = spawn::ForwardedSignals::block();
    let (saved, started) = match create_as(o, true) {
        // Its command could not be exec'ed (reported past the open gate):
        // the command's status and message, as a gated start gives them.
        Err(OciError::Spawn(spawn::SpawnError::Child {
            code: code @ (126 | 127),
            message,
        })) => {
            let _ = writeln!(std::io::stderr(), "rbox-runtime: exec: {message}");
            return Ok(code);
        }
        r => r?,
    };
    let start = || if started { Ok(()) } else { start(o.root, o.id) };
    let waited = start().and_then(|()| {
        fwd.wait(saved.pid, || {})
            .map_err(|e| OciError::Other(format!("wait for the container: {e}")))
    });
    let deleted = delete(o.root, o.id, true);
    let code = match waited? {
        spawn::WaitResult::Exited(c) => c,
        spawn::WaitResult::Signaled(s) => 128 + s,
    };
    deleted?;
    Ok(code)
}

/// A signal by number or name, with or without `SIG` (`9`, `KILL`, `SIGKILL`).
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let sig = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "ILL" => libc::SIGILL,
        "TRAP" => libc::SIGTRAP,
        "ABRT" | "IOT" => libc::SIGABRT,
        "BUS" => libc::SIGBUS,
        "FPE" => libc::SIGFPE,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "SEGV" => libc::SIGSEGV,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "STKFLT" => libc::SIGSTKFLT,
        "CHLD" | "CLD" => libc::SIGCHLD,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "TTIN" => libc::SIGTTIN,
        "TTOU" => libc::SIGTTOU,
        "URG" => libc::SIGURG,
        "XCPU" => libc::SIGXCPU,
        "XFSZ" => libc::SIGXFSZ,
        "VTALRM" => libc::SIGVTALRM,
        "PROF" => libc::SIGPROF,
        "WINCH" => libc::SIGWINCH,
        "IO" | "POLL" => libc::SIGIO,
        "PWR" => libc::SIGPWR,
        "SYS" => libc::SIGSYS,
        _ => return None,
    };
    Some(sig)
}

#[cfg(test)]
mod tests {
    use super::parse_signal;

    #[test]
    fn signals_by_number_and_name() {
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("KILL"), Some(libc::SIGKILL));
        assert_eq!(parse_signal("sigterm"), Some(libc::SIGTERM));
        assert_eq!(parse_signal("SIGUSR1"), Some(libc::SIGUSR1));
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("NOPE"), None);
    }
}

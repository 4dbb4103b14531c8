//! Another process in a running container (`rrun exec`, `rbox-runtime
//! exec`). The parent joins the container's pid namespace (for its
//! children only) and forks, so the child is born inside it; the child is
//! moved into the container's cgroup, joins the other namespaces, drops
//! to the process's limits, security settings and user through the same
//! code as a container's first process (`spawn::become_process_user`),
//! and execs the command directly.

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use engine::runtime::ExitStatus;
use nix::sched::CloneFlags;

use crate::cgroup::Cgroup;
use crate::native::spawn::{self, ForwardedSignals, WaitResult};
use crate::sys;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error("{message}")]
    Command { code: i32, message: String },
    #[error("security settings: {0}")]
    Security(String),
}

impl ExecError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecError::Command { code, .. } => *code,
            _ => 125,
        }
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> ExecError {
    let what = what.into();
    move |source| ExecError::Io { what, source }
}

pub struct ExecRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub stdio: [Option<RawFd>; 3],
    pub controlling_tty: bool,
    /// `-t`: a pty from the container's devpts, relayed to our stdio.
    pub tty: bool,
    /// `-i`: relay our stdin (with `tty`).
    pub stdin: bool,
}

/// Start `req` in the container whose first process is `pid`, in its
/// group `cgroup` (`None`: it has none, rootless without limits), with
/// the security settings its first process got. Signals are forwarded to
/// the new process from here on; `Running::wait` reaps it. This process
/// has joined the container's pid namespace afterwards: it can create no
/// more threads.
pub fn start(
    pid: i32,
    cgroup: Option<Cgroup>,
    security: &engine::runtime::SecuritySpec,
    req: &ExecRequest,
) -> Result<Running, ExecError> {
    let target = Target::open_in(pid, cgroup)?;
    // Signals first (threads inherit the mask), then the relay thread:
    // after joining the pid namespace we could not create threads.
    let signals = ForwardedSignals::block();
    let pending = req.tty.then(crate::console::PendingRelay::spawn);
    let security = crate::native::security::SecurityPlan::new(security, req.uid)
        .map_err(|e| ExecError::Security(e.to_string()))?;
    let (console, parent_end) = if req.tty {
        let (p, c) = crate::tty::console_socketpair()
            .map_err(|e| io("console socket")(std::io::Error::other(e.to_string())))?;
        // SAFETY: fd 0 (or the caller's stdin) stays open for the call.
        let ws = crate::tty::get_winsize(unsafe {
            std::os::fd::BorrowedFd::borrow_raw(req.stdio[0].unwrap_or(0))
        })
        .ok();
        (Some((c, ws)), Some(p))
    } else {
        (None, None)
    };
    let path = req.env.iter().rev().find_map(|kv| kv.strip_prefix("PATH="));
    let plan = JoinPlan {
        argv: req.args.iter().map(sys::cstring).collect(),
        envp: req.env.iter().map(sys::cstring).collect(),
        candidates: spawn::exec_candidates(
            req.args.first().map(String::as_str).unwrap_or(""),
            path,
        ),
        cwd: sys::cstring(req.cwd.trim_start_matches('/')),
        create_cwd: false,
        uid: req.uid,
        gid: req.gid,
        groups: req.groups.clone(),
        rlimits: Vec::new(),
        security,
        stdio: if req.tty { [None; 3] } else { req.stdio },
        controlling_tty: req.controlling_tty,
        console,
        preserve_fds: 0,
    };
    let child = target.spawn(plan)?;
    let relay = match parent_end {
        Some(parent_end) => Some(
            crate::console::Relay::start_on(
                pending,
                parent_end.as_fd(),
                child,
                req.stdio,
                req.stdin,
            )
            .map_err(|e| io("terminal")(std::io::Error::other(e.to_string())))?,
        ),
        None => None,
    };
    Ok(Running {
        child,
        signals,
        relay,
    })
}

/// A process `start` started: our child, its terminal relayed.
pub struct Running {
    child: libc::pid_t,
    signals: ForwardedSignals,
    relay: Option<crate::console::Relay>,
}

impl Running {
    pub fn pid(&self) -> i32 {
        self.child
    }

    /// Forward signals to it until it ends; how it ended.
    pub fn wait(self) -> Result<ExitStatus, ExecError> {
        let relay = self.relay;
        let r = self
            .signals
            .wait(self.child, || {
                if let Some(r) = &relay {
                    r.follow_window_size();
                }
            })
            .map_err(io("wait"))?;
        if let Some(r) = relay {
            r.finish();
        }
        Ok(match r {
            WaitResult::Exited(c) => ExitStatus::Exited(c),
            WaitResult::Signaled(s) => ExitStatus::Signaled(s),
        })
    }
}

/// A running container to add a process to: its namespaces (opened
/// through its first process) and its cgroup, if it has one.
pub struct Target {
    pidns: File,
    others: Vec<(File, CloneFlags)>,
    cgroup: Option<Cgroup>,
}

/// The new process, decided in the parent before the fork (the child
/// only makes syscalls on it).
pub struct JoinPlan {
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// Paths to try with execve (see `spawn::exec_candidates`).
    pub candidates: Vec<CString>,
    /// The working directory, relative to the container's root.
    pub cwd: CString,
    /// Create the working directory if it is missing (as a container's
    /// first process does) instead of failing.
    pub create_cwd: bool,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub rlimits: Vec<(u32, u64, u64)>,
    pub security: crate::native::security::SecurityPlan,
    /// Descriptors to install as 0, 1, 2 (None: inherit ours).
    pub stdio: [Option<RawFd>; 3],
    pub controlling_tty: bool,
    /// The child's end of a console socket (and the terminal size): the
    /// child opens a pty in the container's devpts, sends the master over
    /// it and makes the slave its terminal and stdio.
    pub console: Option<(OwnedFd, Option<libc::winsize>)>,
    /// Descriptors 3..3+N stay open in the new process.
    pub preserve_fds: u32,
}

impl Target {
    /// The namespaces of `pid` (the container's first process) and the
    /// container's group.
    pub fn open(pid: i32, cgroup: Cgroup) -> Result<Target, ExecError> {
        Self::open_in(pid, Some(cgroup))
    }

    /// As `open`; `None`: a container without a cgroup (rootless).
    pub fn open_in(pid: i32, cgroup: Option<Cgroup>) -> Result<Target, ExecError> {
        let open_ns = |name: &str| {
            File::open(format!("/proc/{pid}/ns/{name}"))
                .map_err(io(format!("open /proc/{pid}/ns/{name}")))
        };
        let mut others = vec![
            (open_ns("cgroup")?, CloneFlags::CLONE_NEWCGROUP),
            (open_ns("ipc")?, CloneFlags::CLONE_NEWIPC),
            (open_ns("uts")?, CloneFlags::CLONE_NEWUTS),
            (open_ns("net")?, CloneFlags::CLONE_NEWNET),
            (open_ns("mnt")?, CloneFlags::CLONE_NEWNS),
        ];
        // A user namespace of its own (an OCI bundle's): joined last,
        // once our root has joined the others.
        use std::os::unix::fs::MetadataExt;
        let user = open_ns("user")?;
        let ours =
            std::fs::metadata("/proc/self/ns/user").map_err(io("stat /proc/self/ns/user"))?;
        let theirs = user
            .metadata()
            .map_err(io(format!("stat /proc/{pid}/ns/user")))?;
        if (ours.dev(), ours.ino()) != (theirs.dev(), theirs.ino()) {
            others.push((user, CloneFlags::CLONE_NEWUSER));
        }
        Ok(Target {
            pidns: open_ns("pid")?,
            others,
            cgroup,
        })
    }

    /// Start `plan` in the container: join its pid namespace (for our
    /// children: afterwards this process can create no thread), fork; the
    /// child joins the cgroup and the other namespaces, sets up its
    /// terminal, working directory, limits, security and user, and execs.
    /// Returns the child's pid once the exec succeeded; the child is ours
    /// to wait for. A failure before the exec is an `ExecError::Command`
    /// with 126/127 for a command that cannot run, 125 otherwise.
    pub fn spawn(self, plan: JoinPlan) -> Result<libc::pid_t, ExecError> {
        let Target {
            pidns,
            others,
            cgroup: cg,
        } = self;
        nix::sched::setns(pidns.as_fd(), CloneFlags::CLONE_NEWPID)
            .map_err(|e| io("join the container's pid namespace")(e.into()))?;
        let argv_p = sys::pointer_array(&plan.argv);
        let envp_p = sys::pointer_array(&plan.envp);
        // v1: the child joins the container's groups itself (see
        // V1Cgroup::self_join_files); v2: we move it after the fork.
        let tasks = match &cg {
            Some(cg) => cg.self_join_files()?,
            None => Vec::new(),
        };
        let (sync_rd, sync_wr) = sys::pipe().map_err(io("pipe"))?;
        let (rep_rd, rep_wr) = sys::pipe().map_err(io("pipe"))?;
        // SAFETY: the caller is single-threaded here; the child only makes
        // syscalls on the data prepared above until it execs.
        let child = unsafe { libc::fork() };
        if child < 0 {
            return Err(io("fork")(io::Error::last_os_error()));
        }
        if child == 0 {
            drop(sync_wr);
            drop(rep_rd);
            child_main(&plan, &others, tasks, sync_rd, rep_wr, &argv_p, &envp_p);
        }
        drop(sync_rd);
        drop(rep_wr);
        drop(tasks);
        let joined = match cg {
            Some(cg @ Cgroup::V2(_)) => cg.add_process(child),
            Some(Cgroup::V1(_)) | None => Ok(()),
        };
        if let Err(e) = joined {
            drop(sync_wr);
            let _ = spawn::try_wait(child, true);
            return Err(e.into());
        }
        sys::write_all_fd(sync_wr.as_raw_fd(), b"g").map_err(io("start exec"))?;
        drop(sync_wr);
        let mut buf = Vec::new();
        let _ = File::from(rep_rd).read_to_end(&mut buf);
        if !buf.is_empty() {
            let _ = spawn::try_wait(child, true);
            return Err(ExecError::Command {
                code: buf[0] as i32,
                message: String::from_utf8_lossy(&buf[1..]).trim().to_string(),
            });
        }
        Ok(child)
    }
}

/// The forked child: never returns.
fn child_main(
    plan: &JoinPlan,
    others: &[(File, CloneFlags)],
    tasks: Vec<File>,
    sync_rd: OwnedFd,
    rep_wr: OwnedFd,
    argv_p: &[*const libc::c_char],
    envp_p: &[*const libc::c_char],
) -> ! {
    // Not dumpable from its first instruction: it is visible in the
    // container's /proc from the fork on.
    // SAFETY: prctl with integers.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let rep = rep_wr.as_raw_fd();
    let fail = |code: u8, msg: String| -> ! {
        let _ = sys::write_all_fd(rep, &[code]);
        let _ = sys::write_all_fd(rep, msg.as_bytes());
        // SAFETY: _exit never returns.
        unsafe { libc::_exit(code as i32) }
    };
    let mut b = [0u8; 1];
    // SAFETY: one byte into a stack buffer.
    if unsafe { libc::read(sync_rd.as_raw_fd(), b.as_mut_ptr().cast(), 1) } != 1 {
        // SAFETY: _exit never returns.
        unsafe { libc::_exit(125) };
    }
    for f in &tasks {
        if let Err(e) = sys::write_all_fd(f.as_raw_fd(), b"0") {
            fail(125, format!("join the container's cgroup: {e}"));
        }
    }
    drop(tasks);
    for (f, kind) in others {
        if let Err(e) = nix::sched::setns(f.as_fd(), *kind) {
            fail(125, format!("join the container's {kind:?} namespace: {e}"));
        }
    }
    match &plan.console {
        Some((child_end, ws)) => {
            let end = child_end
                .try_clone()
                .unwrap_or_else(|e| fail(125, format!("console: {e}")));
            if let Err(e) = crate::tty::setup_console_in_container(end, ws.as_ref()) {
                fail(125, format!("set up the terminal: {e}"));
            }
        }
        None => {
            let _ = nix::unistd::setsid();
        }
    }
    let root = File::open("/").unwrap_or_else(|e| fail(125, format!("open /: {e}")));
    let rel = if plan.cwd.as_bytes().is_empty() {
        c".".into()
    } else {
        plan.cwd.clone()
    };
    let dir = if plan.create_cwd {
        crate::native::rootfs::ensure_beneath(root.as_fd(), &rel, true).map_err(|e| e.to_string())
    } else {
        sys::openat2(
            root.as_fd(),
            &rel,
            libc::O_PATH | libc::O_DIRECTORY,
            sys::RESOLVE_BENEATH_ROOT,
        )
        .map_err(|e| e.to_string())
    };
    match dir {
        Ok(fd) => {
            if let Err(e) = nix::unistd::fchdir(fd.as_raw_fd()) {
                fail(125, format!("chdir /{}: {e}", rel.to_string_lossy()));
            }
        }
        Err(e) => fail(
            125,
            format!("working directory /{}: {e}", rel.to_string_lossy()),
        ),
    }
    drop(root);
    if let Err(e) = sys::cloexec_from(3 + plan.preserve_fds) {
        fail(125, format!("close descriptors: {e}"));
    }
    for (target, fd) in plan.stdio.iter().enumerate() {
        if let Some(fd) = fd {
            // SAFETY: dup2 onto 0..2.
            unsafe { libc::dup2(*fd, target as i32) };
        }
    }
    if plan.controlling_tty {
        // SAFETY: ioctl on fd 0 with an integer argument.
        unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) };
    }
    // With the container's noNewPrivileges, an OCI profile is loaded last,
    // after the signal reset, so only execve runs under it.
    if let Err((_, e)) = spawn::become_process_user(
        &plan.rlimits,
        &plan.security,
        &plan.groups,
        plan.gid,
        plan.uid,
        spawn::reset_signals,
    ) {
        fail(125, e);
    }
    let mut eacces = false;
    for c in &plan.candidates {
        // SAFETY: NUL-terminated arrays that outlive the call.
        unsafe { libc::execve(c.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr()) };
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => {}
            Some(libc::EACCES) => eacces = true,
            _ => fail(126, format!("{c:?}: {}", io::Error::last_os_error())),
        }
    }
    let name = plan
        .argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default();
    if eacces {
        fail(126, format!("{name:?}: permission denied"));
    }
    if name.contains('/') {
        fail(127, format!("{name:?}: no such file or directory"));
    }
    fail(127, format!("{name:?}: executable file not found in $PATH"));
}

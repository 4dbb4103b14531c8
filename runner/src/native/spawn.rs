//! One clone into new pid, mount, uts, ipc (and net) namespaces; the child
//! builds the rootfs, pivots, drops to the user, and execs the command
//! directly (never rrun itself: CVE-2019-5736).
//!
//! Two pipes: `sync` (parent -> child: "you are in your cgroup, go on";
//! closed without a byte means abort) and `report` (child -> parent,
//! close-on-exec: EOF without data means execve succeeded, otherwise one
//! byte of exit code and a one-line message). With OCI hooks the child
//! also stops before its pivot (`AT_PIVOT` on `report`) until a second
//! byte on `sync`.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::native::rootfs::{self, RootfsPlan};
use crate::sys;

/// Everything the child needs, prepared by the parent so that the child
/// only makes syscalls.
#[derive(Debug, Clone)]
pub struct ChildPlan {
    pub rootfs: RootfsPlan,
    /// hosts/hostname/resolv.conf, written by the child on a tmpfs of its
    /// own (see `rootfs::EtcFiles`).
    pub etc_files: Option<rootfs::EtcFiles>,
    pub hostname: CString,
    /// The NIS domain name of the new UTS namespace (empty: left as is).
    pub domainname: CString,
    /// The working directory, relative to the container's root (`.` for
    /// `/`): resolved beneath the root after the pivot.
    pub workdir: CString,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    /// Paths to try with execve, in order (PATH search done in advance on
    /// names; execve itself tells whether each exists inside the rootfs).
    pub exec_candidates: Vec<CString>,
    pub new_net: bool,
    pub security: crate::native::security::SecurityPlan,
    pub privileged: bool,
    /// Run the --init reaper as PID 1 instead of exec'ing argv directly.
    pub init: bool,
    /// Descriptors to install as 0, 1, 2 (None: inherit ours).
    pub stdio: [Option<RawFd>; 3],
    /// With a pty: make fd 0 the controlling terminal.
    pub controlling_tty: bool,
    /// `-t`: the child's end of the console socket; the child opens a pty
    /// in the container's devpts, sends the master over it and makes the
    /// slave its terminal and stdio. With the host terminal's size.
    pub console: Option<(RawFd, Option<libc::winsize>)>,
    /// Foreground runs: the container dies with the process that started it.
    pub die_with_parent: bool,
    /// cgroup v1: the group's `tasks` files, open for writing (the
    /// caller keeps them open until `release`). The child writes `0` to
    /// each to join its group itself, which spares the kernel's global
    /// threadgroup lock that moving it from outside takes.
    pub cgroup_tasks: Vec<RawFd>,
    /// Unshare a cgroup namespace rooted at the container's group (rrun
    /// always; an OCI bundle when it lists a `cgroup` namespace).
    pub new_cgroup_ns: bool,
    /// Masked and read-only paths other than Docker's (an OCI bundle's
    /// `linux.maskedPaths` and `linux.readonlyPaths`); `None`: Docker's.
    pub masked: Option<(Vec<CString>, Vec<CString>)>,
    /// setrlimit(resource, soft, hard) for each, as root before setuid.
    pub rlimits: Vec<(u32, u64, u64)>,
    /// The create/start split of an OCI runtime: a descriptor of the
    /// container's `exec.fifo`, opened read-write by the parent. With it,
    /// the child does everything up to execve, tells the parent it is
    /// ready (one 0 byte on the report pipe, which it then closes) and
    /// blocks reading one byte from this fifo, written by `start`. Exec
    /// failures after that go to the container's stderr.
    pub start_gate: Option<RawFd>,
    /// With `start_gate`: the report pipe stays open past the gate, so a
    /// parent that waits for it (`Started::create` then `Gated::start`)
    /// gets failures to exec the command with their codes as before the
    /// gate, instead of on the command's stderr (the OCI `create` that
    /// exits at once needs that).
    pub report_past_gate: bool,
    /// Namespaces to join (setns) instead of the new ones: descriptors
    /// of `/proc/<pid>/ns/*` or bind-mounted namespace files, opened by
    /// the parent (O_CLOEXEC: the container never sees them), with their
    /// CLONE_NEW* type (net, ipc, uts only). `--network container:NAME`
    /// is the other container's net namespace here.
    pub join_ns: Vec<(RawFd, libc::c_int)>,
    /// Written after the pivot, before /proc/sys is made read-only:
    /// (path below /proc/sys, value); namespaced keys only (the caller
    /// checks).
    pub sysctl: Vec<(CString, Vec<u8>)>,
    /// Written to /proc/self/oom_score_adj before dropping privileges.
    pub oom_score_adj: Option<CString>,
    /// An OCI runtime's hooks. With them, the child stops once its mounts
    /// are made, before the pivot, for the parent's own hooks (one
    /// `AT_PIVOT` byte on the report pipe; `Started::release_with` runs
    /// them and answers on the sync pipe), then runs `before_pivot`; and
    /// `before_exec` just before execve (after the start gate).
    pub hooks: Option<std::sync::Arc<dyn ChildHooks>>,
    /// A user namespace (an OCI bundle's, `ocispec::userns`). The other
    /// namespaces are then made in it, `join_ns` joined before it by a
    /// short-lived intermediate process, `rlimits` set by the parent
    /// (raising a hard limit needs the host's CAP_SYS_RESOURCE), and the
    /// child becomes the namespace's root (ids 0) once released.
    pub userns: Option<UserNsPlan>,
}

/// The user namespace of `ChildPlan::userns`.
#[derive(Debug, Clone)]
pub enum UserNsPlan {
    /// A new one; the parent writes these (uid_map and gid_map lines)
    /// into the child's /proc files before it lets the child go on.
    New { uid_map: Vec<u8>, gid_map: Vec<u8> },
    /// An existing one: a descriptor of its namespace file, opened by
    /// the parent (O_CLOEXEC).
    Join(RawFd),
}

/// What the container's first process runs for an OCI runtime's hooks
/// (`ocispec::hooks`); errors fail the child with their message.
pub trait ChildHooks: std::fmt::Debug + Send + Sync {
    /// Every mount made, before the root is sealed and pivoted into.
    fn before_pivot(&self) -> Result<(), String>;
    /// Everything done but the execve (after the start gate).
    fn before_exec(&self) -> Result<(), String>;
}

/// The child's report byte for "stopped before the pivot for the
/// parent's hooks" (0 is "at the start gate"; failures are 125-127).
const AT_PIVOT: u8 = 1;

/// How the child failed before its command ran.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("{message}")]
    Child { code: i32, message: String },
    #[error(
        "clone: {0} (rrun needs root and kernel support for pid/mount/uts/ipc/net namespaces)"
    )]
    Clone(io::Error),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: io::Error,
    },
    /// The parent's hooks at the pivot failed (the child was ended).
    #[error("{0}")]
    Hook(String),
}

impl SpawnError {
    pub fn exit_code(&self) -> i32 {
        match self {
            SpawnError::Child { code, .. } => *code,
            _ => 125,
        }
    }
}

/// A started child, stopped before setup until `release` is called.
pub struct Started {
    pub pid: libc::pid_t,
    sync: Option<OwnedFd>,
    report: OwnedFd,
}

impl Started {
    /// Let the child go on (its cgroup is set), and wait until it has
    /// exec'ed its command or failed.
    pub fn release(self) -> Result<libc::pid_t, SpawnError> {
        self.release_with(|_| Ok(()))
    }

    /// `release`, running `at_pivot(pid)` when the child (with
    /// `ChildPlan::hooks`) stops before its pivot; its error ends the
    /// child and is returned as `SpawnError::Hook`.
    pub fn release_with(
        mut self,
        mut at_pivot: impl FnMut(libc::pid_t) -> Result<(), String>,
    ) -> Result<libc::pid_t, SpawnError> {
        let sync = self.sync.take().expect("released once");
        let go = |fd: RawFd, what| {
            sys::write_all_fd(fd, b"g").map_err(|source| SpawnError::Io { what, source })
        };
        go(sync.as_raw_fd(), "signal the container to start")?;
        let mut report = std::fs::File::from(self.report);
        let outcome = loop {
            match read_byte(&mut report) {
                Some(AT_PIVOT) => {
                    if let Err(msg) = at_pivot(self.pid) {
                        // EOF on its sync pipe: the child exits.
                        drop(sync);
                        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
                        return Err(SpawnError::Hook(msg));
                    }
                    go(sync.as_raw_fd(), "let the container go on after the hooks")?;
                }
                // Waiting at its start gate, or past it (`create_started`,
                // whose failures past the gate follow this byte).
                Some(0) => break exec_outcome(self.pid, report),
                Some(code) => break Err(child_failure(self.pid, report, code)),
                // Exec'ed (the report pipe is close-on-exec).
                None => break Ok(self.pid),
            }
        };
        drop(sync);
        outcome
    }

    /// Let the child go on up to its start gate (`ChildPlan::start_gate`
    /// with `report_past_gate`): everything but the final execve is done
    /// when this returns; `Gated::start` lets it exec.
    pub fn create(mut self) -> Result<Gated, SpawnError> {
        let sync = self.sync.take().expect("released once");
        sys::write_all_fd(sync.as_raw_fd(), b"g").map_err(|source| SpawnError::Io {
            what: "signal the container to start",
            source,
        })?;
        let mut report = std::fs::File::from(self.report);
        let first = read_byte(&mut report);
        drop(sync);
        match first {
            Some(0) => Ok(Gated {
                pid: self.pid,
                report: report.into(),
            }),
            Some(code) => Err(child_failure(self.pid, report, code)),
            None => {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
                Err(SpawnError::Child {
                    code: 125,
                    message: "the container's process ended before it was ready".into(),
                })
            }
        }
    }

    /// `create`, then `Gated::start`, in one: the gate (the other end of
    /// the plan's `start_gate`, with `report_past_gate`) is opened before
    /// the child reaches it, so running a container to completion costs
    /// no round trip more than a child without a gate.
    pub fn create_started(self, gate: &OwnedFd) -> Result<libc::pid_t, SpawnError> {
        sys::write_all_fd(gate.as_raw_fd(), b"s").map_err(|source| SpawnError::Io {
            what: "let the container exec its command",
            source,
        })?;
        self.release()
    }

    /// Abort: the child exits without running anything.
    pub fn abort(mut self) {
        self.sync.take();
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
    }
}

/// A child waiting at its start gate (`Started::create`).
pub struct Gated {
    pub pid: libc::pid_t,
    report: OwnedFd,
}

impl Gated {
    /// Open the gate (`gate`: the other end of the plan's `start_gate`)
    /// and wait until the child has exec'ed its command or failed to.
    pub fn start(self, gate: &OwnedFd) -> Result<libc::pid_t, SpawnError> {
        sys::write_all_fd(gate.as_raw_fd(), b"s").map_err(|source| SpawnError::Io {
            what: "let the container exec its command",
            source,
        })?;
        exec_outcome(self.pid, std::fs::File::from(self.report))
    }
}

/// One byte of the child's report; `None` at its end (the child exec'ed
/// or exited) or on an error.
fn read_byte(report: &mut std::fs::File) -> Option<u8> {
    let mut b = [0u8; 1];
    loop {
        match report.read(&mut b) {
            Ok(1) => return Some(b[0]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            _ => return None,
        }
    }
}

/// The rest of the child's report, read to its end: nothing means the
/// child exec'ed its command; otherwise it failed (`child_failure`).
fn exec_outcome(pid: libc::pid_t, mut report: std::fs::File) -> Result<libc::pid_t, SpawnError> {
    match read_byte(&mut report) {
        None => Ok(pid),
        Some(code) => Err(child_failure(pid, report, code)),
    }
}

/// The child's failure: its exit code `code` (already read), then its
/// message up to the report's end. The child is reaped.
fn child_failure(pid: libc::pid_t, mut report: std::fs::File, code: u8) -> SpawnError {
    let mut msg = Vec::new();
    let _ = report.read_to_end(&mut msg);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
    SpawnError::Child {
        code: code as i32,
        message: String::from_utf8_lossy(&msg).trim().to_string(),
    }
}

/// Clone the container's first process. `cgroup_fd`: a v2 group to be
/// born into (CLONE_INTO_CGROUP); otherwise the child joins the groups of
/// `plan.cgroup_tasks` itself once released.
pub fn start(plan: &ChildPlan, cgroup_fd: Option<RawFd>) -> Result<Started, SpawnError> {
    let (sync_rd, sync_wr) = sys::pipe().map_err(|source| SpawnError::Io {
        what: "create pipe",
        source,
    })?;
    let (report_rd, report_wr) = sys::pipe().map_err(|source| SpawnError::Io {
        what: "create pipe",
        source,
    })?;
    // Pointer arrays built here: the child must not allocate.
    let argv = sys::pointer_array(&plan.argv);
    let envp = sys::pointer_array(&plan.envp);
    let mut flags =
        (libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC) as u64;
    if plan.new_net {
        flags |= libc::CLONE_NEWNET as u64;
    }
    if let Some(u) = &plan.userns {
        // Joined by the intermediate, before the user namespace exists.
        for (_, t) in &plan.join_ns {
            flags &= !(*t as u64);
        }
        if matches!(u, UserNsPlan::New { .. }) {
            flags |= libc::CLONE_NEWUSER as u64;
        }
    }
    // No other thread of ours holds a lock file open across the clone
    // (see `sys::NO_INHERIT`).
    let no_inherit = sys::NO_INHERIT.write().unwrap_or_else(|e| e.into_inner());
    // SAFETY: fork semantics; the child runs only `child_main`, which
    // makes syscalls on data prepared above and never returns.
    let cloned = match &plan.userns {
        // SAFETY: see above.
        None => unsafe { sys::clone3(flags, cgroup_fd) },
        // SAFETY: as above; the intermediate only makes syscalls.
        Some(u) => unsafe { clone_via_intermediate(plan, u, flags, cgroup_fd) },
    };
    if let Ok(sys::Forked::Parent(_)) | Err(_) = cloned {
        drop(no_inherit);
    }
    match cloned {
        Err(e) => Err(SpawnError::Clone(e)),
        Ok(sys::Forked::Child) => {
            drop(sync_wr);
            drop(report_rd);
            child_main(plan, sync_rd, report_wr, &argv, &envp)
        }
        Ok(sys::Forked::Parent(pid)) => {
            let started = Started {
                pid,
                sync: Some(sync_wr),
                report: report_rd,
            };
            match plan
                .userns
                .as_ref()
                .map(|u| set_up_userns(pid, u, &plan.rlimits))
            {
                Some(Err(e)) => {
                    started.abort();
                    Err(e)
                }
                _ => Ok(started),
            }
        }
    }
}

/// Clone the child from a forked intermediate that first joins
/// `plan.join_ns` and a joined user namespace (setns into a user
/// namespace needs a single-threaded caller, and namespaces joined after
/// the child's new user namespace exists would be out of its reach).
/// CLONE_PARENT makes the child ours; the intermediate reports its pid
/// (or -errno) on a pipe and exits.
///
/// # Safety
/// As `sys::clone3`: the caller of the child side must only make
/// syscalls until it execs or exits.
unsafe fn clone_via_intermediate(
    plan: &ChildPlan,
    u: &UserNsPlan,
    flags: u64,
    cgroup_fd: Option<RawFd>,
) -> io::Result<sys::Forked> {
    let (rd, wr) = sys::pipe()?;
    // SAFETY: fork semantics; the intermediate makes syscalls only.
    let mid = unsafe { libc::fork() };
    if mid < 0 {
        return Err(io::Error::last_os_error());
    }
    if mid == 0 {
        drop(rd);
        let report = |n: i32| -> ! {
            let _ = sys::write_all_fd(wr.as_raw_fd(), &n.to_ne_bytes());
            // SAFETY: _exit never returns.
            unsafe { libc::_exit(0) }
        };
        let errno = || {
            -io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EINVAL)
        };
        let join_user = match u {
            UserNsPlan::Join(fd) => Some((*fd, libc::CLONE_NEWUSER)),
            UserNsPlan::New { .. } => None,
        };
        // Set here, outside the user namespace, and inherited by the
        // child: lowering it needs the host's CAP_SYS_RESOURCE, and the
        // child (not dumpable) cannot write its own /proc files once it is
        // the namespace's root.
        if let Some(adj) = &plan.oom_score_adj {
            if write_proc(c"/proc/self/oom_score_adj", adj.as_bytes()).is_err() {
                report(errno());
            }
        }
        for &(fd, t) in plan.join_ns.iter().chain(join_user.iter()) {
            // SAFETY: setns with a descriptor the parent opened.
            if unsafe { libc::setns(fd, t) } != 0 {
                report(errno());
            }
        }
        // SAFETY: as the caller's; CLONE_PARENT: the child is the caller's.
        match unsafe { sys::clone3(flags | libc::CLONE_PARENT as u64, cgroup_fd) } {
            Ok(sys::Forked::Child) => return Ok(sys::Forked::Child),
            Ok(sys::Forked::Parent(pid)) => report(pid),
            Err(e) => report(-e.raw_os_error().unwrap_or(libc::EINVAL)),
        }
    }
    drop(wr);
    let _ = try_wait(mid, true);
    let mut b = [0u8; 4];
    std::fs::File::from(rd).read_exact(&mut b)?;
    match i32::from_ne_bytes(b) {
        pid if pid > 0 => Ok(sys::Forked::Parent(pid)),
        e => Err(io::Error::from_raw_os_error(-e)),
    }
}

/// The parent's part of a child's user namespace: the id maps of a new
/// one, and the rlimits (set from here, where raising a hard limit is
/// still allowed).
fn set_up_userns(
    pid: libc::pid_t,
    u: &UserNsPlan,
    rlimits: &[(u32, u64, u64)],
) -> Result<(), SpawnError> {
    if let UserNsPlan::New { uid_map, gid_map } = u {
        for (file, map, what) in [
            ("uid_map", uid_map, "write the user namespace's uid_map"),
            ("gid_map", gid_map, "write the user namespace's gid_map"),
        ] {
            std::fs::write(format!("/proc/{pid}/{file}"), map)
                .map_err(|source| SpawnError::Io { what, source })?;
        }
    }
    for &(resource, soft, hard) in rlimits {
        let lim = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: lim lives across the call; pid is our stopped child.
        if unsafe { libc::prlimit(pid, resource as _, &lim, std::ptr::null_mut()) } != 0 {
            return Err(SpawnError::Io {
                what: "set the container's rlimits",
                source: io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

/// Report a failure to the parent and exit.
fn fail(report: RawFd, code: u8, msg: std::fmt::Arguments<'_>) -> ! {
    // Formatting allocates; acceptable on this path (the child is about to
    // exit, and the rrun binary is single-threaded).
    let text = format!("{msg}");
    let _ = sys::write_all_fd(report, &[code]);
    let _ = sys::write_all_fd(report, text.as_bytes());
    // SAFETY: _exit never returns and skips atexit handlers meant for the parent.
    unsafe { libc::_exit(code as i32) }
}

fn child_main(
    plan: &ChildPlan,
    sync: OwnedFd,
    report: OwnedFd,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    let rep = report.as_raw_fd();
    // SAFETY: prctl/umask take integers only.
    unsafe {
        // Not dumpable until execve: nobody in the container may ptrace us
        // or open our /proc files while we still hold host resources.
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        if plan.die_with_parent {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        }
        // Device nodes and mount points get exactly the modes we ask for.
        libc::umask(0);
    }
    // If the parent died before PDEATHSIG was armed, the sync read below
    // sees EOF and we exit (getppid is 0 across the pid namespace).
    let mut go = [0u8; 1];
    // SAFETY: reading one byte into a stack buffer.
    let n = unsafe { libc::read(sync.as_raw_fd(), go.as_mut_ptr().cast(), 1) };
    if n != 1 {
        // SAFETY: the parent aborted; _exit never returns.
        unsafe { libc::_exit(125) };
    }
    for fd in &plan.cgroup_tasks {
        // SAFETY: writing a static byte string to a descriptor the parent
        // opened for us.
        if unsafe { libc::write(*fd, b"0".as_ptr().cast(), 1) } != 1 {
            fail(
                rep,
                125,
                format_args!(
                    "join the container's cgroup: {}",
                    io::Error::last_os_error()
                ),
            );
        }
        // SAFETY: our copy of the parent's descriptor; nothing else here
        // uses it (closed now so that no host cgroup file stays open in
        // the container, even under --init, which does not exec at once).
        unsafe { libc::close(*fd) };
    }
    // Now in our cgroup: a new cgroup namespace rooted at it.
    if plan.new_cgroup_ns {
        if let Err(e) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP) {
            fail(rep, 125, format_args!("unshare cgroup namespace: {e}"));
        }
    }
    if plan.userns.is_some() {
        // The namespace's root from here on (the maps are written): the
        // files and mount points made below are owned by mapped ids.
        if let Err((what, e)) = sys::set_ids_this_thread(&[], 0, 0) {
            fail(
                rep,
                125,
                format_args!("{what} 0:0 in the user namespace: {e}"),
            );
        }
    }
    // With a user namespace, the intermediate joined them.
    let join_ns: &[_] = if plan.userns.is_some() {
        &[]
    } else {
        &plan.join_ns
    };
    for &(fd, nstype) in join_ns {
        // SAFETY: setns with a descriptor the parent opened for us.
        if unsafe { libc::setns(fd, nstype) } != 0 {
            fail(
                rep,
                125,
                format_args!("join namespace: {}", io::Error::last_os_error()),
            );
        }
    }
    if plan.console.is_none() {
        // Our own session: terminal signals reach rrun, which forwards them.
        let _ = nix::unistd::setsid();
    }
    if plan.new_net {
        if let Err(e) = loopback_up() {
            fail(
                rep,
                125,
                format_args!("bring up lo in the new network namespace: {e}"),
            );
        }
    }
    // Empty: keep the new UTS namespace's copy of the host's name (an
    // OCI bundle without `hostname`).
    if !plan.hostname.is_empty() {
        if let Err(e) = nix::unistd::sethostname(plan.hostname.to_str().unwrap_or("container")) {
            fail(rep, 125, format_args!("set hostname: {e}"));
        }
    }
    if !plan.domainname.is_empty() {
        let d = plan.domainname.as_bytes();
        // SAFETY: a pointer and length of a live buffer.
        if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
            let e = std::io::Error::last_os_error();
            fail(rep, 125, format_args!("set domainname: {e}"));
        }
    }
    let root = match rootfs::assemble(&plan.rootfs, plan.etc_files.as_ref()) {
        Ok(r) => r,
        Err(e) => fail(rep, 125, format_args!("{e}")),
    };
    if let Some(h) = &plan.hooks {
        // The parent runs its hooks now; EOF instead of its go: they
        // failed, and it reports.
        if sys::write_all_fd(rep, &[AT_PIVOT]).is_err() {
            // SAFETY: the parent is gone; _exit never returns.
            unsafe { libc::_exit(125) };
        }
        // SAFETY: reading one byte into a stack buffer.
        let n = unsafe { libc::read(sync.as_raw_fd(), go.as_mut_ptr().cast(), 1) };
        if n != 1 {
            // SAFETY: the parent's hooks failed; _exit never returns.
            unsafe { libc::_exit(125) };
        }
        if let Err(e) = h.before_pivot() {
            fail(rep, 125, format_args!("{e}"));
        }
    }
    drop(sync);
    if let Err(e) = rootfs::seal_and_pivot(&plan.rootfs, root) {
        fail(rep, 125, format_args!("{e}"));
    }
    for (path, value) in &plan.sysctl {
        if let Err(e) = write_proc(path, value) {
            fail(rep, 125, format_args!("sysctl {:?}: {e}", path));
        }
    }
    // With a user namespace the intermediate set it (our /proc files
    // are the host root's while we are not dumpable).
    if let Some(adj) = plan
        .oom_score_adj
        .as_ref()
        .filter(|_| plan.userns.is_none())
    {
        if let Err(e) = write_proc(c"/proc/self/oom_score_adj", adj.as_bytes()) {
            fail(rep, 125, format_args!("oom_score_adj: {e}"));
        }
    }
    let masked = match &plan.masked {
        None => crate::native::security::mask_paths(plan.privileged).map_err(|e| e.to_string()),
        Some((masked, readonly)) => crate::native::security::masked::mask_listed(masked, readonly)
            .map_err(|e| e.to_string()),
    };
    if let Err(e) = masked {
        fail(rep, 125, format_args!("mask paths: {e}"));
    }
    if let Some((fd, ws)) = &plan.console {
        // SAFETY: the parent created this socket for us; we own our copy.
        let end = unsafe { OwnedFd::from_raw_fd(*fd) };
        if let Err(e) = crate::tty::setup_console_in_container(end, ws.as_ref()) {
            fail(
                rep,
                125,
                format_args!("set up the container's terminal: {e}"),
            );
        }
    }
    // Workdir beneath the new root, created if missing, never via a magic
    // link (CVE-2024-21626: a leaked fd as cwd reached the host).
    let root = match std::fs::File::open("/") {
        Ok(f) => f,
        Err(e) => fail(rep, 125, format_args!("open /: {e}")),
    };
    match rootfs::ensure_beneath(root.as_fd(), &plan.workdir, true) {
        Ok(fd) => {
            if let Err(e) = nix::unistd::fchdir(fd.as_raw_fd()) {
                fail(
                    rep,
                    125,
                    format_args!("chdir to working directory {:?}: {e}", plan.workdir),
                );
            }
        }
        Err(e) => fail(
            rep,
            125,
            format_args!("working directory {:?}: {e}", plan.workdir),
        ),
    }
    drop(root);
    if let Err(e) = sys::cloexec_from(3) {
        fail(rep, 125, format_args!("close inherited descriptors: {e}"));
    }
    for (target, fd) in plan.stdio.iter().enumerate() {
        if let Some(fd) = fd {
            // SAFETY: dup2 onto 0..2 of descriptors the parent handed us.
            if unsafe { libc::dup2(*fd, target as i32) } < 0 {
                fail(
                    rep,
                    125,
                    format_args!("set up stdio: {}", io::Error::last_os_error()),
                );
            }
        }
    }
    if plan.controlling_tty {
        // SAFETY: ioctl on fd 0 (the pty slave) with an integer argument.
        if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
            fail(
                rep,
                125,
                format_args!("set controlling terminal: {}", io::Error::last_os_error()),
            );
        }
    }
    // Rlimits, then security from root to the last step before execve
    // in the one order of `security::SecurityPlan::enter`; `ready` is
    // our part (the start gate).
    let gate = plan.start_gate;
    // Failures after the gate go on the command's stderr, unless the
    // parent still reads the report (`report_past_gate`).
    let detached_gate = gate.filter(|_| !plan.report_past_gate);
    let mut report = Some(report);
    let ready = || {
        reset_signals();
        if let Some(gate) = gate {
            // Ready: the parent (`create`) returns; `start` writes the byte.
            if sys::write_all_fd(rep, &[0]).is_err() {
                // SAFETY: the parent is gone; _exit never returns.
                unsafe { libc::_exit(125) };
            }
            if !plan.report_past_gate {
                drop(report.take());
            }
            let n = loop {
                // SAFETY: reading one byte into a stack buffer from our gate fd.
                let n = unsafe { libc::read(gate, go.as_mut_ptr().cast(), 1) };
                if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                    break n;
                }
            };
            if n != 1 {
                // SAFETY: nobody will start us; _exit never returns.
                unsafe { libc::_exit(125) };
            }
        }
    };
    match become_process_user(
        &plan.rlimits,
        &plan.security,
        &plan.groups,
        plan.gid,
        plan.uid,
        ready,
    ) {
        Ok(()) => {}
        Err((false, e)) => fail(rep, 125, format_args!("{e}")),
        // After the gate the report pipe is closed: on the command's stderr.
        Err((true, e)) if detached_gate.is_some() => {
            let _ = sys::write_all_fd(2, format!("rbox-runtime: {e}\n").as_bytes());
            // SAFETY: _exit never returns.
            unsafe { libc::_exit(125) }
        }
        Err((true, e)) => fail(rep, 125, format_args!("{e}")),
    }
    if detached_gate.is_some() {
        // Failures from here on are the command's: on its stderr.
        if let Some(h) = &plan.hooks {
            if let Err(e) = h.before_exec() {
                let _ = sys::write_all_fd(2, format!("rbox-runtime: {e}\n").as_bytes());
                // SAFETY: _exit never returns.
                unsafe { libc::_exit(125) };
            }
        }
        exec_or_fail(plan, -1, argv, envp);
    }
    if let Some(h) = &plan.hooks {
        if let Err(e) = h.before_exec() {
            fail(rep, 125, format_args!("{e}"));
        }
    }
    if plan.init {
        // The reaper reports exec failures itself (exit 126/127).
        drop(report);
        crate::native::init::run(&plan.argv, &plan.envp);
    }
    let _keep = report;
    exec_or_fail(plan, rep, argv, envp)
}

/// Try each exec candidate; on failure report to `rep`, or print to
/// stderr when `rep` is -1 (after the start gate).
fn exec_or_fail(
    plan: &ChildPlan,
    rep: RawFd,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    let fail = |code: u8, msg: std::fmt::Arguments<'_>| -> ! {
        if rep < 0 {
            let _ = sys::write_all_fd(2, format!("rbox-runtime: exec: {msg}\n").as_bytes());
            // SAFETY: _exit never returns.
            unsafe { libc::_exit(code as i32) }
        }
        fail(rep, code, msg)
    };
    let mut eacces: Option<&CString> = None;
    for cand in &plan.exec_candidates {
        // SAFETY: cand, argv and envp are NUL-terminated and outlive the call.
        unsafe { libc::execve(cand.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENOTDIR) => continue,
            Some(libc::EACCES) => {
                eacces.get_or_insert(cand);
                continue;
            }
            _ => fail(126, format_args!("{:?}: {err}", cand)),
        }
    }
    let name = plan
        .argv
        .first()
        .map(|a| a.to_string_lossy())
        .unwrap_or_default();
    if let Some(c) = eacces {
        fail(126, format_args!("{:?}: permission denied", c));
    }
    if name.contains('/') {
        fail(127, format_args!("{name:?}: no such file or directory"));
    }
    fail(
        127,
        format_args!("{name:?}: executable file not found in $PATH"),
    )
}

/// Write `value` to an existing file under /proc (no create, no follow).
fn write_proc(path: &std::ffi::CStr, value: &[u8]) -> io::Result<()> {
    // SAFETY: a valid C string; the descriptor is closed below.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just opened and is ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    sys::write_all_fd(fd.as_raw_fd(), value)
}

/// The last steps of every container process before its command, in the
/// child, as root: the rlimits, then `security::SecurityPlan::enter`
/// (the bounding set, an OCI profile without noNewPrivileges, the user
/// and groups, the capability sets and no_new_privs), Docker's umask,
/// the caller's `ready` (create: the start gate), and last an OCI profile
/// with noNewPrivileges. One function for a container's first process
/// (`child_main`) and for processes added later (`exec::Target::spawn`),
/// so both get the same. Err: (whether `ready` had run, the message);
/// allocates only to describe a failure.
pub fn become_process_user(
    rlimits: &[(u32, u64, u64)],
    security: &crate::native::security::SecurityPlan,
    groups: &[u32],
    gid: u32,
    uid: u32,
    ready: impl FnOnce(),
) -> Result<(), (bool, String)> {
    use crate::native::security::{EnterError, SecurityError};
    for &(resource, soft, hard) in rlimits {
        let lim = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: lim lives across the call.
        if unsafe { libc::setrlimit(resource as _, &lim) } != 0 {
            return Err((
                false,
                format!(
                    "setrlimit {resource} to {soft}:{hard}: {}",
                    io::Error::last_os_error()
                ),
            ));
        }
    }
    let msg = |e: SecurityError| match e {
        e @ SecurityError::Ids { .. } => e.to_string(),
        e => format!("apply security settings: {e}"),
    };
    let ready = || {
        // SAFETY: umask takes an integer. Docker's default for the command.
        unsafe { libc::umask(0o022) };
        ready();
    };
    security
        .enter(groups, gid, uid, ready)
        .map_err(|e| match e {
            EnterError::BeforeReady(e) => (false, msg(e)),
            EnterError::AfterReady(e) => (true, msg(e)),
        })
}

/// Dispositions set by rrun (Rust ignores SIGPIPE) and the blocked mask
/// survive execve: give the command a clean slate.
pub(crate) fn reset_signals() {
    // SAFETY: resetting dispositions and the mask in a single-threaded child.
    unsafe {
        for sig in 1..32 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// `ip link set lo up`, with one ioctl on a throw-away socket.
fn loopback_up() -> io::Result<()> {
    // SAFETY: socket takes integers.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: s is a fresh descriptor we own.
    let sock = unsafe { OwnedFd::from_raw_fd(s) };
    // SAFETY: ifreq is plain data; zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write req, which outlives the calls.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The candidates `execve` should try for `argv0`, given the container's PATH.
pub fn exec_candidates(argv0: &str, path: Option<&str>) -> Vec<CString> {
    if argv0.contains('/') {
        return vec![sys::cstring(argv0)];
    }
    let path = path.unwrap_or(crate::DEFAULT_PATH);
    path.split(':')
        .map(|d| if d.is_empty() { "." } else { d })
        .map(|d| sys::cstring(format!("{}/{argv0}", d.trim_end_matches('/'))))
        .collect()
}

/// Signals rrun forwards to the container; blocked while we wait so they
/// arrive through `sigtimedwait` instead of killing rrun.
pub struct ForwardedSignals {
    set: libc::sigset_t,
    old: libc::sigset_t,
}

pub const FORWARDED: [i32; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

impl ForwardedSignals {
    /// Block the forwarded signals (and SIGCHLD, SIGWINCH) in this thread.
    /// Must happen before the clone so none is lost in between.
    pub fn block() -> ForwardedSignals {
        // SAFETY: sigset manipulation on stack values; sigprocmask on this thread.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for s in FORWARDED.iter().chain(&[libc::SIGCHLD, libc::SIGWINCH]) {
                libc::sigaddset(&mut set, *s);
            }
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            ForwardedSignals { set, old }
        }
    }

    /// Wait for `pid` to exit, forwarding signals to it. `on_winch` runs
    /// for SIGWINCH (the tty follows the window size).
    pub fn wait(&self, pid: libc::pid_t, mut on_winch: impl FnMut()) -> io::Result<WaitResult> {
        loop {
            if let Some(r) = try_wait(pid, false)? {
                return Ok(r);
            }
            let ts = libc::timespec {
                tv_sec: 1,
                tv_nsec: 0,
            };
            // SAFETY: set and ts are valid; info may be NULL.
            let sig = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), &ts) };
            if sig == libc::SIGWINCH {
                on_winch();
            } else if sig > 0 && sig != libc::SIGCHLD {
                // SAFETY: kill takes integers.
                unsafe { libc::kill(pid, sig) };
            }
        }
    }
}

impl Drop for ForwardedSignals {
    fn drop(&mut self) {
        // SAFETY: restoring this thread's previous mask.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitResult {
    Exited(i32),
    Signaled(i32),
}

/// waitpid, restarting on EINTR; `None` if still running (non-blocking).
pub fn try_wait(pid: libc::pid_t, block: bool) -> io::Result<Option<WaitResult>> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, if block { 0 } else { libc::WNOHANG }) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if rc == 0 {
            return Ok(None);
        }
        if libc::WIFEXITED(status) {
            return Ok(Some(WaitResult::Exited(libc::WEXITSTATUS(status))));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(Some(WaitResult::Signaled(libc::WTERMSIG(status))));
        }
    }
}

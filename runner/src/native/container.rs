//! Run one `ContainerSpec`: cgroup, generated /etc files, the plan for the
//! child, clone, wait, teardown. Shared by `rrun run` and `NativeRuntime`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};

use engine::mount::MountSpec;
use engine::runtime::{ContainerSpec, ExitStatus, NetworkMode};

use crate::cgroup::{Cgroup, CgroupDriver, CgroupError};
use crate::native::rootfs::{self, FsMount, RootfsPlan, Step};
use crate::native::spawn::{self, ChildPlan, ForwardedSignals, SpawnError};
use crate::sys::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use std::os::fd::OwnedFd;

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid mount {0:?}: {1}")]
    Mount(String, &'static str),
    #[error("security settings: {0}")]
    Security(String),
    #[error("terminal: {0}")]
    Tty(String),
    #[error("network: {0}")]
    Network(#[from] crate::network::NetworkError),
    #[error("published ports (-p) need --network bridge")]
    Ports,
    #[error(transparent)]
    UserNet(#[from] crate::network::user::UserNetError),
    #[error("cannot join the network of container {0}: it is not running (start it first)")]
    NotRunning(String),
    #[error("connect to network {0} (rrun network connect): {1}")]
    Join(String, String),
    /// What rootless rbox cannot do (crate::rootless).
    #[error("{0}")]
    Rootless(String),
}

impl LaunchError {
    /// Docker's convention: 126/127 for the command, 125 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            LaunchError::Spawn(e) => e.exit_code(),
            _ => 125,
        }
    }
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LaunchError + 'a {
    move |source| LaunchError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// How to run: what the caller does around the container.
pub struct Launch<'a> {
    /// An existing directory on which the child mounts a small tmpfs of
    /// its own, holding the generated hosts/hostname/resolv.conf that it
    /// bind-mounts into the container. The mount lives only in the
    /// container's mount namespace: the host's directory is never written
    /// (no file work on the store's filesystem, nothing to remove).
    pub files_dir: &'a Path,
    /// Forward INT/TERM/HUP/QUIT/USR1/USR2 to the container (rrun's
    /// foreground mode). Requires a single-threaded caller.
    pub forward_signals: bool,
    /// Kill the container if the caller dies.
    pub die_with_parent: bool,
    pub stdio: [Option<RawFd>; 3],
    pub controlling_tty: bool,
    /// Called once the command runs, with its host pid.
    pub on_started: Option<&'a mut dyn FnMut(i32)>,
    /// Called on SIGWINCH (with forward_signals).
    pub on_winch: Option<&'a mut dyn FnMut()>,
    /// Ports to publish (`-p`, host ports chosen), with `NetworkMode::Bridge`.
    pub ports: &'a [crate::network::ports::PortMapping],
    /// With `NetworkMode::Bridge`: a user-defined network (None: the
    /// default one) and how the container is known on it.
    pub network: Option<&'a crate::network::Network>,
    pub names: Option<&'a crate::network::Names>,
    /// With `NetworkMode::Container`: the directory of the container
    /// whose network namespace to join (it must be running).
    pub join: Option<&'a Path>,
    /// With `join`: the /etc/hosts of that container's user-defined
    /// network, to share (as Docker shares it).
    pub hosts: Option<&'a Path>,
    /// `--dns`, `--dns-search`, `--dns-option` (None: the host's).
    pub dns: Option<&'a crate::network::resolv::DnsConfig>,
    /// With `NetworkMode::None`, rootless: pasta gives the new network
    /// namespace a network and forwards `ports` (crate::rootless::pasta).
    pub pasta: bool,
    /// `--add-host`: (name, address or `host-gateway`), checked.
    pub extra_hosts: &'a [(String, String)],
    /// --ulimit, --sysctl, --shm-size, --oom-score-adj (crate::runopts).
    pub options: Option<&'a crate::runopts::RunOptions>,
    /// With `NetworkMode::Bridge`: the networks of `rrun network connect`
    /// to put it on before its command runs.
    pub joins: Option<&'a Joins>,
}

impl Launch<'_> {
    pub fn new(files_dir: &Path) -> Launch<'_> {
        Launch {
            files_dir,
            forward_signals: false,
            die_with_parent: true,
            stdio: [None; 3],
            controlling_tty: false,
            on_started: None,
            on_winch: None,
            ports: &[],
            network: None,
            names: None,
            join: None,
            hosts: None,
            dns: None,
            pasta: false,
            extra_hosts: &[],
            options: None,
            joins: None,
        }
    }
}

/// What `Launch` needs for the network a container's state names
/// (`HostSettings::network_mode`): a user-defined network and the
/// container's names on it, or the container whose namespace to join.
#[derive(Debug, Default)]
pub struct NetworkPlan {
    pub network: Option<crate::network::Network>,
    pub names: Option<crate::network::Names>,
    pub join: Option<PathBuf>,
    pub hosts: Option<PathBuf>,
    pub dns: crate::network::resolv::DnsConfig,
    pub extra_hosts: Vec<(String, String)>,
    pub joins: Option<Joins>,
    /// `--network pasta` (rootless).
    pub pasta: bool,
}

/// The networks a container joins at every start (`HostSettings::joins`,
/// from `rrun network connect`), resolved for this start.
#[derive(Debug)]
pub struct Joins {
    /// The container's directory, whose state records the connections.
    dir: PathBuf,
    id: String,
    list: Vec<(
        crate::network::Network,
        crate::network::Names,
        Option<std::net::Ipv4Addr>,
    )>,
}

impl Joins {
    /// The first user-defined network of the list.
    fn user_network(&self) -> Option<&crate::network::Network> {
        self.list
            .iter()
            .map(|(n, ..)| n)
            .find(|n| n.bridge != crate::network::DEFAULT_BRIDGE)
    }

    /// Put `pid` (the container's first process, waiting in its network
    /// namespace) on every network and record the connections; on an
    /// error, none is left.
    fn connect_all(&self, pid: i32) -> Result<(), LaunchError> {
        use crate::network::connect;
        let mut made = Vec::new();
        let undo = |made: &[connect::Connection]| {
            for c in made {
                connect::disconnect(c, &self.id);
            }
        };
        for (net, names, ip) in &self.list {
            match connect::connect(net, &self.id, pid, names, *ip) {
                Ok(c) => made.push(c),
                Err(e) => {
                    undo(&made);
                    return Err(LaunchError::Join(net.name.clone(), e.to_string()));
                }
            }
        }
        let recorded = crate::state::State::load(&self.dir).and_then(|known| {
            crate::state::State::update(&self.dir, &known, |s| {
                for c in &made {
                    s.host.connected.retain(|x| x.network != c.network);
                    s.host.connected.push(c.clone());
                }
            })
        });
        if let Err(e) = recorded {
            undo(&made);
            let name = made.first().map(|c| c.network.clone()).unwrap_or_default();
            return Err(LaunchError::Join(name, format!("record it: {e}")));
        }
        Ok(())
    }
}

/// `--add-host` values as state keeps them (`NAME:IP`), split.
pub fn split_extra_hosts(given: &[String]) -> Vec<(String, String)> {
    given
        .iter()
        .filter_map(|h| h.split_once(':'))
        .map(|(n, a)| (n.to_string(), a.to_string()))
        .collect()
}

impl NetworkPlan {
    /// For the container in `dir` (`<root>/containers/<id>`) with `st`.
    pub fn of(dir: &Path, st: &crate::state::State) -> Result<NetworkPlan, LaunchError> {
        let mut plan = NetworkPlan::of_mode(dir, st)?;
        plan.dns = crate::network::resolv::DnsConfig {
            servers: st.host.dns.iter().filter_map(|s| s.parse().ok()).collect(),
            search: st.host.dns_search.clone(),
            options: st.host.dns_options.clone(),
        };
        if let Some(n) = plan.names.as_mut() {
            n.dns = plan.dns.servers.clone();
        }
        plan.extra_hosts = split_extra_hosts(&st.host.extra_hosts);
        if !st.host.joins.is_empty() {
            let root = dir
                .parent()
                .and_then(Path::parent)
                .unwrap_or(Path::new("/"));
            let mut list = Vec::new();
            for j in &st.host.joins {
                let net = crate::network::connect::network_named(root, &j.network)?;
                let names = crate::network::Names {
                    hostname: st.host.hostname.clone(),
                    names: std::iter::once(st.name.clone())
                        .chain(j.aliases.iter().cloned())
                        .collect(),
                    dns: plan.dns.servers.clone(),
                };
                list.push((net, names, j.ip));
            }
            plan.joins = Some(Joins {
                dir: dir.to_path_buf(),
                id: st.id.clone(),
                list,
            });
        }
        Ok(plan)
    }

    fn of_mode(dir: &Path, st: &crate::state::State) -> Result<NetworkPlan, LaunchError> {
        let containers = dir.parent().unwrap_or(Path::new("/"));
        let mode = st.host.network_mode.as_str();
        let root = containers.parent().unwrap_or(Path::new("/"));
        if let Some(id) = mode.strip_prefix("container:") {
            let target = containers.join(id);
            // The target's names too, when it is on a user-defined network.
            let hosts = crate::state::State::load(&target).ok().and_then(|t| {
                let def = crate::network::user::load(root, &t.host.network_mode).ok()?;
                Some(crate::network::hosts::hosts_path(&def.network(root), &t.id))
            });
            return Ok(NetworkPlan {
                join: Some(target),
                hosts,
                ..Default::default()
            });
        }
        if mode == crate::rootless::pasta::NETWORK {
            return Ok(NetworkPlan {
                pasta: true,
                ..Default::default()
            });
        }
        if crate::network::user::PREDEFINED.contains(&mode) || mode.is_empty() {
            return Ok(NetworkPlan::default());
        }
        let def = crate::network::user::load(root, mode)?;
        let mut names = vec![st.name.clone()];
        names.extend(st.host.network_aliases.iter().cloned());
        Ok(NetworkPlan {
            network: Some(def.network(root)),
            names: Some(crate::network::Names {
                hostname: st.host.hostname.clone(),
                names,
                dns: Vec::new(),
            }),
            ..Default::default()
        })
    }

    /// Fill in `launch`'s network fields.
    pub fn apply<'a>(&'a self, launch: &mut Launch<'a>) {
        launch.network = self.network.as_ref();
        launch.names = self.names.as_ref();
        launch.join = self.join.as_deref();
        launch.hosts = self.hosts.as_deref();
        launch.pasta = self.pasta;
        launch.dns = Some(&self.dns);
        launch.extra_hosts = &self.extra_hosts;
        launch.joins = self.joins.as_ref();
    }
}

/// What rrun gives the native runtime beyond the spec, as
/// `TaskIo::options` (its settings of the container's state: network,
/// ports, `--ulimit` and the like). Every runtime is given it; another
/// runtime ignores it (rrun refuses these options for a runtime whose
/// `Features` lack them before anything is made).
#[derive(Debug, Default)]
pub struct TaskOptions {
    /// The directory the child mounts its /etc files' tmpfs on (rrun's
    /// container directory); None: one made beside `upper` and removed
    /// with the task.
    pub files_dir: Option<PathBuf>,
    pub network: NetworkPlan,
    pub ports: Vec<crate::network::ports::PortMapping>,
    pub run_options: Option<crate::runopts::RunOptions>,
    /// The caller starts the task right after `create`: let it exec at
    /// once (`create_started`).
    pub start_at_once: bool,
}

impl TaskOptions {
    /// For the container in `dir` with state `st`.
    pub fn of(dir: &Path, st: &crate::state::State) -> Result<TaskOptions, LaunchError> {
        Ok(TaskOptions {
            files_dir: Some(dir.to_path_buf()),
            network: NetworkPlan::of(dir, st)?,
            ports: st.host.ports.clone(),
            run_options: Some(st.options.clone()),
            start_at_once: false,
        })
    }
}

/// The outcome plus what the OOM message needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub status: ExitStatus,
    pub memory_limit: Option<u64>,
}

/// Run `spec` to completion; every exit path removes the cgroup. Mounts
/// need no cleanup: they live in the container's own mount namespace.
pub fn run(spec: &ContainerSpec, mut launch: Launch<'_>) -> Result<Outcome, LaunchError> {
    // Started as soon as it is made: no round trip at the gate.
    let mut created = create_with(spec, &mut launch, true)?;
    let on_started = launch.on_started.take();
    let on_winch = launch.on_winch.take();
    let outcome = created
        .start(on_started)
        .and_then(|_| created.wait(on_winch));
    let deleted = created.delete();
    let outcome = outcome?;
    deleted?;
    Ok(outcome)
}

/// A container made up to its command: cgroup, network and mounts set up,
/// its first process waiting before its final execve (the runtime-spec's
/// `created`). `start` lets it exec, `wait` reaps it, `delete` (or a drop)
/// kills what is left and removes the cgroup.
pub struct Created {
    pid: libc::pid_t,
    /// `start` was called.
    started: bool,
    /// The gate was opened at once (`create_with(.., true)`).
    opened: bool,
    /// Until `start`: the process at its gate, and our end of the gate.
    gated: Option<spawn::Gated>,
    gate: OwnedFd,
    cg: Option<Cgroup>,
    attachment: Option<crate::network::Attachment>,
    /// Rootless `--network pasta`: killed when the container ends (it
    /// holds the network namespace open and would not notice).
    pasta: Option<crate::rootless::pasta::Pasta>,
    /// Rootless on fuse-overlayfs: unmounted once the container ends.
    fuse: Option<crate::rootless::fuse::FuseOverlay>,
    /// -t: the console socket the child sends the pty master to.
    console: Option<OwnedFd>,
    relay: Option<crate::console::Relay>,
    signals: Option<ForwardedSignals>,
    stdio: [Option<RawFd>; 3],
    stdin: bool,
    memory_limit: Option<u64>,
    reaped: bool,
    /// For messages: the directory of the generated /etc files.
    files_dir: PathBuf,
}

/// Make the container of `spec` (see `Created`). `launch`'s `on_started`
/// and `on_winch` are not used here: `start` and `wait` take them.
pub fn create(spec: &ContainerSpec, launch: &mut Launch<'_>) -> Result<Created, LaunchError> {
    create_with(spec, launch, false)
}

/// `create`, with the process going on to exec its command at once, for
/// a caller that starts it right away: one round trip with the child
/// fewer on the start path (`Created::start` then only reports that it
/// runs, or relays its terminal).
pub fn create_started(
    spec: &ContainerSpec,
    launch: &mut Launch<'_>,
) -> Result<Created, LaunchError> {
    create_with(spec, launch, true)
}

/// `create`; with `start_now` the process goes on to exec its command
/// at once (`Created::start` then only reports that it runs).
fn create_with(
    spec: &ContainerSpec,
    launch: &mut Launch<'_>,
    start_now: bool,
) -> Result<Created, LaunchError> {
    let rootless = crate::rootless::active();
    if rootless && spec.resources == engine::runtime::Resources::default() {
        // No limit, no cgroup of its own (see crate::rootless).
        return create_in(spec, None, launch, start_now);
    }
    let driver = if rootless {
        // Limits: in the delegated cgroup v2 subtree, or refused (they
        // were before anything was made; this is the last guard).
        crate::rootless::cgroup::delegated()
            .and_then(|rel| crate::rootless::cgroup::driver(&rel))
            .map_err(|why| {
                LaunchError::Rootless(
                    crate::rootless::limits_refusal(&spec.resources, Some(&why)).unwrap_or(why),
                )
            })?
    } else {
        CgroupDriver::probe()?
    };
    // Every device with --privileged, Docker's short list otherwise
    // (and the --device ones). Rootless: no device filter (a bpf
    // program, root's to attach); its user namespace makes no device
    // nodes, and the container has only the host's few, bound.
    let devices = match launch.options {
        _ if rootless => crate::cgroup::Devices::All,
        Some(o) => o.device_access(spec.security.privileged),
        None if spec.security.privileged => crate::cgroup::Devices::All,
        None => crate::cgroup::Devices::Default,
    };
    let cg = driver.create(&spec.id, &spec.resources, devices)?;
    if let Some(o) = launch.options {
        if o.cpuset_cpus.is_some() || o.cpuset_mems.is_some() {
            let cpus = o.cpuset_cpus.as_deref();
            if let Err(e) = driver.set_cpuset(&cg, cpus, o.cpuset_mems.as_deref()) {
                let _ = cg.remove();
                return Err(e.into());
            }
        }
    }
    match create_in(spec, Some(&cg), launch, start_now) {
        Ok(mut created) => {
            created.cg = Some(cg);
            Ok(created)
        }
        Err(e) => {
            let _ = cg.remove();
            Err(e)
        }
    }
}

impl Created {
    /// The host pid of the container's first process.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Let the process exec its command; `on_started` gets its pid once
    /// it runs. A command that cannot run is `SpawnError::Child` (its exit
    /// code 126 or 127), the process reaped.
    pub fn start(
        &mut self,
        on_started: Option<&mut dyn FnMut(i32)>,
    ) -> Result<libc::pid_t, LaunchError> {
        let pid = match self.gated.take() {
            Some(gated) => {
                let started = gated.start(&self.gate);
                if started.is_err() {
                    self.reaped = true;
                }
                started?
            }
            // Opened at once by `create_with`: it runs.
            None if self.opened && !self.started => self.pid,
            None => {
                return Err(LaunchError::Spawn(SpawnError::Io {
                    what: "start the container",
                    source: io::Error::other("it was started already"),
                }))
            }
        };
        self.started = true;
        if let Some(f) = on_started {
            f(pid);
        }
        if let Some(sock) = self.console.take() {
            let relay = crate::console::Relay::start(sock.as_fd(), pid, self.stdio, self.stdin)?;
            crate::attach::offer_console(relay.master());
            self.relay = Some(relay);
        }
        Ok(pid)
    }

    /// Wait for the process to end (forwarding signals if the launch said
    /// so; `on_winch` on SIGWINCH), and drain the terminal relay.
    pub fn wait(&mut self, mut on_winch: Option<&mut dyn FnMut()>) -> Result<Outcome, LaunchError> {
        let pid = self.pid;
        let relay = &self.relay;
        let waited = match &self.signals {
            Some(s) => s.wait(pid, || {
                if let Some(r) = relay {
                    r.follow_window_size();
                }
                if let Some(w) = on_winch.as_mut() {
                    w()
                }
            }),
            None => spawn::try_wait(pid, true).map(|r| r.expect("blocking wait returns a status")),
        }
        .map_err(io_err("wait for container", &self.files_dir))?;
        self.reaped = true;
        if let Some(r) = self.relay.take() {
            r.finish();
        }
        drop(self.signals.take());
        drop(self.attachment.take());
        drop(self.pasta.take());
        drop(self.fuse.take());
        let cg = &self.cg;
        let status = crate::error::ended(waited, || cg.as_ref().map_or(0, |cg| cg.oom_kills()));
        Ok(Outcome {
            status,
            memory_limit: self.memory_limit,
        })
    }

    /// Send `signal` to the first process, unless it was waited for.
    pub fn kill(&self, signal: i32) -> Result<(), LaunchError> {
        if self.reaped {
            return Err(LaunchError::Spawn(SpawnError::Io {
                what: "signal the container",
                source: io::Error::from_raw_os_error(libc::ESRCH),
            }));
        }
        // SAFETY: kill takes integers; our child, unreaped, so its pid.
        if unsafe { libc::kill(self.pid, signal) } != 0 {
            return Err(io_err("signal the container of", &self.files_dir)(
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Kill and reap what is left, give the address back, remove the cgroup.
    pub fn delete(mut self) -> Result<(), LaunchError> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), LaunchError> {
        if !self.reaped {
            self.reaped = true;
            // SAFETY: kill takes integers; our unreaped child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = spawn::try_wait(self.pid, true);
        }
        self.gated = None;
        drop(self.relay.take());
        drop(self.signals.take());
        drop(self.attachment.take());
        drop(self.pasta.take());
        drop(self.fuse.take());
        match self.cg.take() {
            Some(cg) => Ok(cg.remove()?),
            None => Ok(()),
        }
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        let _ = self.teardown();
    }
}

fn create_in(
    spec: &ContainerSpec,
    cg: Option<&Cgroup>,
    launch: &mut Launch<'_>,
    start_now: bool,
) -> Result<Created, LaunchError> {
    let default_net = crate::network::Network::default_bridge();
    let net = launch.network.unwrap_or(&default_net);
    let user_net = spec.network == NetworkMode::Bridge && launch.network.is_some();
    // A user-defined network's containers ask its resolver, started now
    // if it is not running (see network::resolver).
    // On the default bridge, a container with user-defined networks to
    // join asks the first one's resolver (which answers it for all its
    // networks' members and forwards the rest), as Docker's embedded DNS
    // serves a container once it has a user-defined network.
    let resolver = match (user_net, spec.network, launch.joins) {
        (true, ..) => start_resolver(net),
        (false, NetworkMode::Bridge, Some(j)) => j.user_network().and_then(start_resolver),
        _ => None,
    };
    let extras = EtcExtras {
        dns: launch.dns.cloned().unwrap_or_default(),
        hosts: extra_hosts_lines(launch.extra_hosts, net.gateway),
        resolver,
        pasta: launch.pasta,
    };
    let mut plan = plan_for(spec, cg, launch, &extras)?;
    if let Some(o) = launch.options {
        o.apply(&mut plan);
        if o.keep_id {
            let r = &spec.rootfs;
            let dir = r.upper.parent().unwrap_or(Path::new("/"));
            crate::rootless::keepid::apply(&mut plan, &r.lowers, &r.upper, dir)
                .map_err(LaunchError::Rootless)?;
        }
    }
    // Rootless where the kernel refuses overlayfs (or RBOX_OVERLAY=fuse):
    // fuse-overlayfs mounts it here, the child binds it.
    let fuse = match crate::rootless::active() {
        true => crate::rootless::fuse::mount_if_needed(&mut plan.rootfs, "rbox")
            .map_err(LaunchError::Rootless)?,
        false => None,
    };
    // A user-defined network: /etc/hosts is a file of the network's,
    // rewritten as containers come and go (see network::hosts).
    if user_net {
        let path = crate::network::hosts::hosts_path(net, &spec.id);
        let p = crate::network::hosts::prepare(net, &spec.id, &spec.hostname, &extras.hosts)
            .map_err(io_err("create", &path))?;
        bind_hosts(&mut plan, &p);
    }
    // --network container:NAME: its network namespace, while it runs.
    let joined = match (spec.network, launch.join) {
        (NetworkMode::Container, Some(dir)) => Some(open_netns_of(dir)?),
        (NetworkMode::Container, None) => {
            return Err(LaunchError::NotRunning("(none given)".into()))
        }
        _ => None,
    };
    if let Some(f) = &joined {
        plan.new_net = false;
        plan.join_ns.push((f.as_raw_fd(), libc::CLONE_NEWNET));
        if let Some(p) = launch.hosts.filter(|p| p.exists()) {
            bind_hosts(&mut plan, p);
        }
    }
    // -t: a console socket; the pty is made inside the container.
    let console = if spec.tty {
        let (parent_end, child_end) =
            crate::tty::console_socketpair().map_err(|e| LaunchError::Tty(e.to_string()))?;
        let host_in = launch.stdio[0].unwrap_or(0);
        // SAFETY: a descriptor of ours that stays open for the call.
        let ws = crate::tty::get_winsize(unsafe { BorrowedFd::borrow_raw(host_in) }).ok();
        plan.console = Some((child_end.as_raw_fd(), ws));
        plan.stdio = [None; 3];
        Some((parent_end, child_end))
    } else {
        None
    };
    // v2: born in the group; v1: the child joins it itself (cheaper than
    // moving it from here, see V1Cgroup::self_join_files).
    let into = cg.and_then(Cgroup::clone_into_fd);
    let tasks = match cg {
        Some(cg) => cg.self_join_files()?,
        None => Vec::new(),
    };
    plan.cgroup_tasks = tasks.iter().map(|f| f.as_raw_fd()).collect();
    // The gate: the child waits on its read end before its execve.
    let (gate_rd, gate) = sys::pipe().map_err(io_err("create a pipe in", launch.files_dir))?;
    plan.start_gate = Some(gate_rd.as_raw_fd());
    plan.report_past_gate = true;
    let signals = launch.forward_signals.then(ForwardedSignals::block);
    let started = spawn::start(&plan, into.as_ref().map(|f| f.as_raw_fd()))?;
    drop(gate_rd);
    drop(into);
    // The child waits in its new network namespace: put it on the network
    // before it goes on. Dropping the attachment gives the address back.
    let attachment = match spec.network {
        NetworkMode::Bridge => {
            match crate::network::attach(net, &spec.id, started.pid, launch.ports, launch.names) {
                Ok(a) => Some(a),
                Err(e) => {
                    started.abort();
                    let _ = std::fs::remove_file(crate::network::hosts::hosts_path(net, &spec.id));
                    return Err(e.into());
                }
            }
        }
        NetworkMode::None | NetworkMode::Host | NetworkMode::Container
            if !launch.ports.is_empty() && !launch.pasta =>
        {
            started.abort();
            return Err(LaunchError::Ports);
        }
        NetworkMode::None | NetworkMode::Host | NetworkMode::Container => None,
    };
    if let (Some(j), Some(_)) = (launch.joins, &attachment) {
        if let Err(e) = j.connect_all(started.pid) {
            started.abort();
            drop(attachment);
            let _ = std::fs::remove_file(crate::network::hosts::hosts_path(net, &spec.id));
            return Err(e);
        }
    }
    // Rootless --network pasta: pasta, for as long as the container runs.
    let pasta = match (launch.pasta, spec.network) {
        (true, NetworkMode::None) => match crate::rootless::pasta::start(started.pid, launch.ports)
        {
            Ok(p) => Some(p),
            Err(e) => {
                started.abort();
                return Err(LaunchError::Rootless(e.to_string()));
            }
        },
        _ => None,
    };
    drop(joined);
    // Our copy of the child's end must close, or a child that dies early
    // would leave us waiting for the master forever.
    let console = console.map(|(parent_end, child_end)| {
        drop(child_end);
        parent_end
    });
    let pid = started.pid;
    let gated = if start_now {
        started.create_started(&gate)?;
        None
    } else {
        Some(started.create()?)
    };
    drop(tasks);
    Ok(Created {
        pid,
        started: false,
        opened: start_now,
        gated,
        gate,
        cg: None,
        attachment,
        pasta,
        fuse,
        console,
        relay: None,
        signals,
        stdio: launch.stdio,
        stdin: spec.stdin,
        memory_limit: spec.resources.memory_bytes,
        reaped: false,
        files_dir: launch.files_dir.to_path_buf(),
    })
}

/// Mount `hosts` (a file of a user-defined network's) over the generated
/// /etc/hosts: right after it, so that a `-v` onto /etc/hosts still wins.
/// Read-only: it is on the host's /run, which a container must not fill.
fn bind_hosts(plan: &mut ChildPlan, hosts: &Path) {
    let steps = &mut plan.rootfs.steps;
    let at = steps
        .iter()
        .position(|s| matches!(s, Step::Bind { target, .. } if target.as_bytes() == b"etc/hosts"))
        .map(|i| i + 1)
        .unwrap_or(steps.len());
    steps.insert(
        at,
        Step::Bind {
            source: sys::cstring(hosts),
            target: sys::cstring("etc/hosts"),
            dir: false,
            readonly: true,
            attrs: 0,
            recursive: false,
        },
    );
}

/// The network namespace of the running container in `dir`, opened while
/// its first process is known to be the container's.
fn open_netns_of(dir: &Path) -> Result<std::fs::File, LaunchError> {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let st = crate::state::State::load(dir).map_err(|_| LaunchError::NotRunning(name.clone()))?;
    let shown = st.name.clone();
    let pid = st
        .pid
        .filter(|_| st.is_running())
        .ok_or_else(|| LaunchError::NotRunning(shown.clone()))?;
    let f = std::fs::File::open(format!("/proc/{}/ns/net", pid.pid))
        .map_err(|_| LaunchError::NotRunning(shown.clone()))?;
    // Opened the namespace of the process we meant, not of a pid reused.
    if !pid.alive() {
        return Err(LaunchError::NotRunning(shown));
    }
    Ok(f)
}

/// The network's resolver address, once it runs; without one (it could
/// not start: a warning) the container gets the host's servers.
fn start_resolver(net: &crate::network::Network) -> Option<std::net::Ipv4Addr> {
    let started = net
        .ipam()
        .lock()
        .map_err(|e| e.to_string())
        .and_then(|_lock| crate::network::resolver::ensure(net).map_err(|e| e.to_string()));
    match started {
        Ok(()) => Some(net.gateway),
        Err(e) => {
            eprintln!("rrun: warning: {e}; containers on network {} resolve each other through /etc/hosts only", net.name);
            None
        }
    }
}

/// What the container's options add to its generated /etc files.
#[derive(Debug, Default)]
struct EtcExtras {
    dns: crate::network::resolv::DnsConfig,
    /// `--add-host` lines of /etc/hosts.
    hosts: String,
    /// The network's embedded resolver: the only nameserver.
    resolver: Option<std::net::Ipv4Addr>,
    /// Networked through pasta: the host's servers, as for a bridge.
    pasta: bool,
}

/// `--add-host` pairs as /etc/hosts lines, `host-gateway` being the
/// network's gateway (the host, as the container reaches it).
pub fn extra_hosts_lines(pairs: &[(String, String)], gateway: std::net::Ipv4Addr) -> String {
    pairs
        .iter()
        .map(|(name, addr)| {
            let addr = if addr == "host-gateway" {
                gateway.to_string()
            } else {
                addr.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string()
            };
            format!("{addr}\t{name}\n")
        })
        .collect()
}

/// The container's /etc/hosts, /etc/hostname and /etc/resolv.conf.
fn etc_contents(spec: &ContainerSpec, extras: &EtcExtras) -> [(&'static str, String); 3] {
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{}\n{}",
        spec.hostname, extras.hosts
    );
    let resolv = match spec.network {
        NetworkMode::Host => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        NetworkMode::None if extras.pasta => crate::rootless::pasta::resolv_conf(),
        NetworkMode::None => String::new(),
        NetworkMode::Bridge | NetworkMode::Container => crate::network::resolv::for_bridge(),
    };
    let resolv = crate::network::resolv::apply(&resolv, &extras.dns, extras.resolver);
    [
        ("hosts", hosts),
        ("hostname", format!("{}\n", spec.hostname)),
        ("resolv.conf", resolv),
    ]
}

/// The /etc files as files in `dir`, for external OCI runtimes to
/// bind-mount (never written into the image). The native runtime does not
/// use this: its child writes them on a tmpfs of its own (`EtcFiles`).
pub fn write_etc_files(spec: &ContainerSpec, dir: &Path) -> Result<(), LaunchError> {
    for (name, content) in etc_contents(spec, &EtcExtras::default()) {
        let p = dir.join(name);
        std::fs::write(&p, content).map_err(io_err("write", &p))?;
    }
    Ok(())
}

fn rel_target(target: &Path) -> Result<CString, LaunchError> {
    let s = target.to_string_lossy();
    let rel = s.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c == "..") {
        return Err(LaunchError::Mount(
            s.into_owned(),
            "the target must be a path below / without '..'",
        ));
    }
    Ok(sys::cstring(rel))
}

/// A ContainerSpec mount (bind or tmpfs or any fs) as a rootfs step.
fn mount_step(m: &MountSpec) -> Result<Step, LaunchError> {
    let target = rel_target(&m.target)?;
    let ro = m.options.iter().any(|o| o == "ro");
    if m.fstype == "bind" || m.options.iter().any(|o| o == "bind" || o == "rbind") {
        let meta = std::fs::metadata(&m.source).map_err(io_err("bind source", &m.source))?;
        return Ok(Step::Bind {
            source: sys::cstring(&m.source),
            target,
            dir: meta.is_dir(),
            readonly: ro,
            attrs: 0,
            recursive: true,
        });
    }
    let mut attrs = if m.fstype == "tmpfs" {
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC
    } else {
        0
    };
    let mut options = Vec::new();
    for o in &m.options {
        match o.as_str() {
            "ro" => attrs |= MOUNT_ATTR_RDONLY,
            "rw" => attrs &= !MOUNT_ATTR_RDONLY,
            "exec" => attrs &= !MOUNT_ATTR_NOEXEC,
            "noexec" => attrs |= MOUNT_ATTR_NOEXEC,
            "suid" => attrs &= !MOUNT_ATTR_NOSUID,
            "nosuid" => attrs |= MOUNT_ATTR_NOSUID,
            "dev" => attrs &= !MOUNT_ATTR_NODEV,
            "nodev" => attrs |= MOUNT_ATTR_NODEV,
            o => match o.split_once('=') {
                Some((k, v)) => options.push((sys::cstring(k), Some(sys::cstring(v)))),
                None => options.push((sys::cstring(o), None)),
            },
        }
    }
    Ok(Step::Fs {
        fs: FsMount {
            fstype: sys::cstring(&m.fstype),
            options,
            attrs,
        },
        target,
    })
}

fn plan_for(
    spec: &ContainerSpec,
    cg: Option<&Cgroup>,
    launch: &Launch<'_>,
    extras: &EtcExtras,
) -> Result<ChildPlan, LaunchError> {
    let inner = cg.map(Cgroup::inner_mounts).unwrap_or_default();
    let mut steps = rootfs::standard_steps(&inner, spec.security.privileged);
    if crate::rootless::active() {
        crate::rootless::adapt_steps(&mut steps, spec.network == NetworkMode::Host);
    }
    for name in ["hosts", "hostname", "resolv.conf"] {
        steps.push(Step::Bind {
            source: sys::cstring(launch.files_dir.join(name)),
            target: sys::cstring(format!("etc/{name}")),
            dir: false,
            readonly: false,
            attrs: 0,
            recursive: true,
        });
    }
    for m in &spec.mounts {
        steps.push(mount_step(m)?);
    }
    let r = &spec.rootfs;
    let env_path = spec
        .env
        .iter()
        .rev()
        .find_map(|kv| kv.strip_prefix("PATH="));
    let argv0 = spec.args.first().map(String::as_str).unwrap_or("");
    let security = crate::native::security::SecurityPlan::new(&spec.security, spec.user.uid)
        .map_err(|e| LaunchError::Security(e.to_string()))?;
    Ok(ChildPlan {
        rootfs: RootfsPlan {
            lowers: r.lowers.iter().map(sys::cstring).collect(),
            upper: sys::cstring(&r.upper),
            work: sys::cstring(&r.work),
            merged: sys::cstring(&r.merged),
            readonly: r.readonly,
            volatile: r.disposable,
            steps,
        },
        etc_files: Some(rootfs::EtcFiles {
            dir: sys::cstring(launch.files_dir),
            files: etc_contents(spec, extras)
                .into_iter()
                .map(|(name, content)| (sys::cstring(name), content.into_bytes()))
                .collect(),
        }),
        hostname: sys::cstring(&spec.hostname),
        domainname: CString::default(),
        workdir: workdir_beneath_root(&spec.cwd),
        uid: spec.user.uid,
        gid: spec.user.gid,
        groups: spec.user.additional_gids.clone(),
        argv: spec.args.iter().map(sys::cstring).collect(),
        envp: spec.env.iter().map(sys::cstring).collect(),
        exec_candidates: spawn::exec_candidates(argv0, env_path),
        new_net: spec.network != NetworkMode::Host,
        security,
        hooks: None,
        userns: None,
        privileged: spec.security.privileged,
        init: spec.init,
        stdio: launch.stdio,
        controlling_tty: launch.controlling_tty,
        console: None,
        die_with_parent: launch.die_with_parent,
        cgroup_tasks: Vec::new(),
        new_cgroup_ns: true,
        masked: None,
        rlimits: Vec::new(),
        start_gate: None,
        report_past_gate: false,
        join_ns: Vec::new(),
        sysctl: Vec::new(),
        oom_score_adj: None,
    })
}

/// The working directory as a path relative to the container's root, for
/// the child's openat2 beneath it (made here: the child must not allocate).
fn workdir_beneath_root(cwd: &str) -> std::ffi::CString {
    let rel = cwd.trim_start().trim_start_matches('/');
    sys::cstring(if rel.is_empty() { "." } else { rel })
}

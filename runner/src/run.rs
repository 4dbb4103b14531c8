//! `rrun run` and the dispatch of the other commands.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use engine::layer::marker;
use engine::runtime::{
    ContainerSpec, ExitStatus, Features, NetworkMode, OutputSink, Resources, RootfsSpec,
    SecuritySpec, TaskIo,
};
use engine::Store;
use runner::lifecycle;
use runner::native::container::{Outcome, TaskOptions};
use runner::state::{ExecDefaults, ProcessId, State, Status};
use runner::user;
use runner::volume::spec;

use crate::cli::{self, BadValue, Cli, Command, RunArgs};

/// The library's error that carries its exit code (Docker: 125 rrun's
/// own, 126/127 the command's), which every command returns.
pub use runner::Coded;

/// The error chain on one line, without repeating causes that a message
/// already includes.
pub fn one_line(e: &anyhow::Error) -> String {
    engine::errfmt::one_line(e.chain())
}

pub fn dispatch(cli: Cli) -> Result<i32> {
    let root = cli.root;
    if runner::rootless::active() {
        if let Some((what, why)) = rootless_command_refusal(&cli.command) {
            bail!(Coded(
                125,
                anyhow!("rrun {what} is not available to rootless rbox yet: {why}")
            ));
        }
    }
    match cli.command {
        Command::Run(a) => cmd_run(&root, *a),
        Command::Create(a) => cmd_create(&root, *a),
        Command::Start(a) => crate::commands::start::start(&root, &a),
        Command::Restart(a) => crate::commands::start::restart(&root, &a),
        Command::Ps(a) => crate::commands::ps::ps(&root, &a),
        Command::Inspect(a) => crate::commands::inspect::inspect(&root, &a),
        Command::Wait(a) => crate::commands::wait::wait(&root, &a),
        Command::Attach(a) => crate::commands::attach::attach(&root, &a),
        Command::Rename(a) => crate::commands::rename::rename(&root, &a),
        Command::Diff(a) => crate::commands::diff::diff(&root, &a),
        Command::Top(a) => crate::commands::top::top(&root, &a),
        Command::Port(a) => crate::commands::port::port(&root, &a),
        Command::Stats(a) => crate::commands::stats::stats(&root, &a),
        Command::Pause(a) => crate::commands::pause::pause(&root, &a),
        Command::Unpause(a) => crate::commands::pause::unpause(&root, &a),
        Command::Update(a) => crate::commands::update::update(&root, &a),
        Command::Cp(a) => crate::commands::cp::cp(&root, &a),
        Command::Export(a) => crate::commands::export::export(&root, &a),
        Command::Commit(a) => crate::commands::commit::commit(&root, &a),
        Command::Container(crate::cli::ContainerCommand::Prune(a)) => {
            crate::commands::prune::prune(&root, &a)
        }
        Command::Network(c) => crate::commands::network::network(&root, c),
        Command::Volume(c) => crate::commands::volume::volume(&root, c),
        Command::Stop(a) => crate::admin::stop(&root, &a),
        Command::Kill(a) => crate::admin::kill(&root, &a),
        Command::Rm(a) => crate::admin::rm(&root, &a),
        Command::Logs(a) => crate::admin::logs(&root, &a),
        Command::Exec(a) => crate::admin::exec(&root, &a),
    }
}

pub fn require_root(what: &str) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(Coded(
            125,
            anyhow!("{what} needs root (namespaces, mounts and cgroups): run it as root, e.g. with sudo")
        ));
    }
    Ok(())
}

/// What rootless rbox cannot do for this `rrun run`, said before anything
/// is created (see runner::rootless).
fn rootless_refusal(a: &RunArgs, c: &Checked) -> Option<String> {
    let v2 = runner::cgroup::CgroupDriver::probe()
        .map(|d| d.version() == 2)
        .unwrap_or(false);
    let unavailable = runner::rootless::cgroups_unavailable(v2);
    if let Some(why) = runner::rootless::limits_refusal(&c.resources, unavailable.as_deref()) {
        return Some(why);
    }
    let not_yet =
        |what: &str, why: &str| Some(format!("{what} is not available to rootless rbox: {why}"));
    if c.network == NetworkMode::Bridge {
        return not_yet(
            &format!("--network {}", c.network_given),
            "bridges and user-defined networks need root in the host's network namespace; use --network pasta (user-mode networking, the rootless default), none or host",
        );
    }
    if c.network_given == runner::rootless::pasta::NETWORK {
        if let Err(e) = runner::rootless::pasta::usable() {
            return Some(e.to_string());
        }
        let start = runner::rootless::pasta::unprivileged_port_start();
        if let Some(why) = runner::rootless::pasta::low_port_refusal(&c.ports, start) {
            return Some(why);
        }
    }
    if c.network == NetworkMode::Container {
        return not_yet(
            "--network container:",
            "the other container's namespaces belong to another rrun's user namespace",
        );
    }
    if !c.features.rootless {
        return not_yet(
            &format!("--runtime {}", a.runtime),
            "use the native runtime",
        );
    }
    if a.privileged {
        return not_yet(
            "--privileged",
            "it would need the host's devices and cgroups",
        );
    }
    None
}

/// Commands rootless rbox cannot do yet, and why.
fn rootless_command_refusal(c: &Command) -> Option<(&'static str, &'static str)> {
    const CGROUP: &str = "it works on the container's cgroup, and rootless containers have none";
    Some(match c {
        Command::Stats(_) => ("stats", CGROUP),
        Command::Top(_) => ("top", CGROUP),
        Command::Attach(_) => (
            "attach",
            "its socket is checked to be root's, and a rootless supervisor's is not",
        ),
        Command::Network(_) => (
            "network",
            "networks are bridges, which need root in the host's network namespace",
        ),
        _ => return None,
    })
}

/// Rootless: the running container whose user namespace a command that
/// addresses it joins instead of making one (`runner::rootless::join`):
/// exec, stop, kill, restart, rm -f. `Ok(None)`: a new namespace, and the command
/// finds the container stopped or missing and says so. Each detached
/// container has a namespace of its own, so one running container per
/// command.
pub fn rootless_join_target(root: &Path, c: &Command) -> Result<Option<(i32, u64)>, String> {
    let (what, keys): (&str, Vec<&String>) = match c {
        Command::Exec(a) => ("exec", vec![&a.container]),
        Command::Stop(a) => ("stop", a.containers.iter().collect()),
        Command::Kill(a) => ("kill", a.containers.iter().collect()),
        Command::Restart(a) => ("restart", a.containers.iter().collect()),
        Command::Rm(a) if a.force => ("rm -f", a.containers.iter().collect()),
        _ => return Ok(None),
    };
    let containers = root.join("containers");
    let running: Vec<(String, ProcessId)> = keys
        .iter()
        .filter_map(|k| runner::state::find(&containers, k).ok())
        .filter_map(|(_, st)| {
            st.pid
                .filter(|p| st.status == Status::Running && p.alive())
                .map(|p| (st.name, p))
        })
        .collect();
    match running.as_slice() {
        [] => Ok(None),
        [(_, p)] => Ok(Some((p.pid, p.start_time))),
        [(a, _), (b, _), ..] => Err(format!(
            "rrun {what}: {a} and {b} run in user namespaces of their own (rootless): name one running container at a time"
        )),
    }
}

/// Option values checked before anything is created.
struct Checked {
    resources: Resources,
    /// -v, --mount and --tmpfs, made into mounts by `make`.
    mounts: Vec<spec::Request>,
    network: NetworkMode,
    /// What `--network` said (`container:X` still unresolved).
    network_given: String,
    ports: Vec<runner::network::ports::PortMapping>,
    /// `--expose`: published by `-P` with the image's.
    exposed: Vec<(u16, runner::network::ports::Proto)>,
    security: SecuritySpec,
    restart: runner::state::RestartPolicy,
    options: runner::runopts::RunOptions,
    /// What the chosen runtime can do.
    features: Features,
}

fn check_options(a: &RunArgs) -> Result<Checked, BadValue> {
    let bad = |value: &str, flag: &'static str, reason: &str| BadValue {
        value: value.to_string(),
        flag,
        reason: reason.to_string(),
    };
    // What the runtime can do decides what is refused, never its name.
    let features = runner::runtime_named(&a.runtime)
        .map_err(|_| bad(&a.runtime, "--runtime", "use native, crun, runc or youki"))?
        .features();
    let without = |what: &str| format!("not available with --runtime {} yet: {what}", a.runtime);
    // run and create: 0 (`--cpus`, `--pids-limit`) and -1 (`--pids-limit`)
    // are Docker's "no limit", which a new container has without one.
    let mut r = a.limits.parse()?;
    for limit in [&mut r.cpu_quota_us, &mut r.pids_limit] {
        if *limit == Some(Resources::UNLIMITED) {
            *limit = None;
        }
    }
    if let (Some(s), Some(v)) = (&a.limits.memory_swap, r.memory_swap_bytes) {
        if v != -1 {
            if r.memory_bytes.is_none() {
                return Err(bad(
                    s,
                    "--memory-swap",
                    "you should always set the memory limit when using the memoryswap limit",
                ));
            }
            if v < r.memory_bytes.unwrap_or(0) as i64 {
                return Err(bad(
                    s,
                    "--memory-swap",
                    "minimum memoryswap limit should be larger than memory limit",
                ));
            }
        }
    }
    if let Some(s) = &a.cpu_shares {
        let v = cli::parse_int(s, "-c, --cpu-shares")?;
        if v < 0 {
            return Err(bad(s, "-c, --cpu-shares", "shares must be positive"));
        }
        if v > 0 {
            r.cpu_shares = Some((v as u64).clamp(2, 262_144));
        }
    }
    // Rootless: no bridge (it needs root in the host's network namespace)
    // but pasta, where it can work (or is needed for -p).
    let rootless = runner::rootless::active();
    let default_network = match (features.rootless, rootless) {
        (true, false) => "bridge",
        (true, true)
            if runner::rootless::pasta::usable().is_ok()
                || !a.publish.is_empty()
                || a.publish_all =>
        {
            runner::rootless::pasta::NETWORK
        }
        _ => "none",
    };
    if let Some(h) = &a.hostname {
        // It goes into /etc/hosts files, other containers' too.
        let ok = !h.is_empty()
            && h.len() <= 64
            && h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !ok {
            return Err(bad(
                h,
                "--hostname",
                "use at most 64 letters, digits, '-', '.' and '_'",
            ));
        }
    }
    let given = a.network.as_deref().unwrap_or(default_network);
    let network = match given {
        "bridge" if features.bridge_network => NetworkMode::Bridge,
        "bridge" => return Err(bad("bridge", "--network", &without("use none or host"))),
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        // Its own network namespace, given a network by pasta.
        runner::rootless::pasta::NETWORK if features.rootless && rootless => NetworkMode::None,
        c if c.starts_with("container:") => {
            if !features.join_network {
                return Err(bad(c, "--network", &without("use none or host")));
            }
            if c.len() == "container:".len() {
                return Err(bad(c, "--network", "expected container:NAME|ID"));
            }
            if let Some(p) = a.publish.first() {
                return Err(bad(
                    p,
                    "-p, --publish",
                    "conflicting options: port publishing and the container type network mode (publish on the container whose network this one joins)",
                ));
            }
            if let Some(h) = &a.hostname {
                return Err(bad(
                    h,
                    "--hostname",
                    "conflicting options: hostname and the container type network mode",
                ));
            }
            NetworkMode::Container
        }
        other if features.bridge_network => {
            runner::network::user::check_name(other).map_err(|e| {
                bad(
                    other,
                    "--network",
                    &format!("{e}; use bridge, none, host, container:NAME or a network of rrun network create"),
                )
            })?;
            NetworkMode::Bridge
        }
        other => return Err(bad(other, "--network", &without("use none or host"))),
    };
    let user_network = network == NetworkMode::Bridge && given != "bridge";
    for alias in &a.network_alias {
        if !user_network {
            return Err(bad(
                alias,
                "--network-alias",
                "network-scoped aliases are supported only on user-defined networks",
            ));
        }
        if let Some(why) = name_problem(alias) {
            return Err(bad(alias, "--network-alias", &why));
        }
    }
    check_dns_options(a, network, features.run_options)?;
    let ports = runner::network::ports::parse_all(&a.publish)
        .map_err(|(value, why)| bad(&value, "-p, --publish", &why))?;
    let (publishes, needed) = if rootless {
        (given == runner::rootless::pasta::NETWORK, "pasta")
    } else {
        (network == NetworkMode::Bridge, "bridge")
    };
    if let (Some(p), false) = (a.publish.first(), publishes) {
        return Err(bad(
            p,
            "-p, --publish",
            &format!("publishing ports needs --network {needed}, not {given}"),
        ));
    }
    if a.publish_all && !publishes {
        return Err(bad(
            "true",
            "-P, --publish-all",
            &format!("publishing ports needs --network {needed}, not {given}"),
        ));
    }
    let mut exposed = Vec::new();
    for e in &a.expose {
        exposed.extend(
            runner::network::ports::parse_exposed(e).map_err(|why| bad(e, "--expose", &why))?,
        );
    }
    let mut mounts = Vec::new();
    for v in &a.volume {
        mounts.push(spec::parse_volume(v).map_err(|why| bad(v, "-v, --volume", &why))?);
    }
    for m in &a.mount {
        mounts.push(spec::parse_mount(m).map_err(|why| bad(m, "--mount", &why))?);
    }
    for t in &a.tmpfs {
        mounts.push(spec::parse_tmpfs(t).map_err(|why| bad(t, "--tmpfs", &why))?);
    }
    if let Err(runner::volume::attach::AttachError::Duplicate(t)) =
        runner::volume::attach::check_duplicates(&mounts)
    {
        return Err(bad(&t, "-v, --mount, --tmpfs", "duplicate mount point"));
    }
    let mut security = SecuritySpec {
        capabilities: cli::capabilities(&a.cap_add, &a.cap_drop)?,
        no_new_privileges: false,
        seccomp: true,
        privileged: a.privileged,
    };
    for o in &a.security_opt {
        match o.replace(':', "=").as_str() {
            "no-new-privileges" | "no-new-privileges=true" => security.no_new_privileges = true,
            "no-new-privileges=false" => security.no_new_privileges = false,
            "seccomp=unconfined" => security.seccomp = false,
            _ => {
                return Err(bad(
                    o,
                    "--security-opt",
                    "supported: no-new-privileges, seccomp=unconfined",
                ))
            }
        }
    }
    if a.privileged {
        security.seccomp = false;
    }
    let restart = runner::state::RestartPolicy::parse(&a.restart)
        .map_err(|why| bad(&a.restart, "--restart", &why))?;
    if restart != runner::state::RestartPolicy::No {
        if a.rm {
            return Err(bad(
                &a.restart,
                "--restart",
                "conflicts with --rm (a removed container cannot restart)",
            ));
        }
        if !a.detach {
            return Err(bad(
                &a.restart,
                "--restart",
                "needs -d: the detached supervisor is what restarts the container",
            ));
        }
    }
    Ok(Checked {
        resources: r,
        mounts,
        network,
        network_given: given.to_string(),
        ports,
        exposed,
        security,
        restart,
        options: crate::run_options::check(
            &a.more,
            matches!(network, NetworkMode::Bridge | NetworkMode::None),
            (!features.run_options).then_some(a.runtime.as_str()),
            a.detach,
        )?,
        features,
    })
}

/// `--dns`, `--dns-search`, `--dns-option` and `--add-host`.
fn check_dns_options(a: &RunArgs, network: NetworkMode, supported: bool) -> Result<(), BadValue> {
    use runner::network::{hosts, resolv};
    let bad = |value: &str, flag: &'static str, reason: String| BadValue {
        value: value.to_string(),
        flag,
        reason,
    };
    let given: [(&'static str, &Vec<String>); 4] = [
        ("--dns", &a.dns),
        ("--dns-search", &a.dns_search),
        ("--dns-option", &a.dns_option),
        ("--add-host", &a.add_host),
    ];
    for (flag, values) in given {
        let Some(first) = values.first() else {
            continue;
        };
        if !supported {
            return Err(bad(
                first,
                flag,
                format!("not available with --runtime {} yet", a.runtime),
            ));
        }
        if network == NetworkMode::Container {
            return Err(bad(
                first,
                flag,
                "conflicting options: DNS and host settings and the container type network mode (they are the other container's)".into(),
            ));
        }
        for v in values {
            let checked = match flag {
                "--dns" => resolv::parse_server(v).map(|_| ()),
                "--dns-search" => resolv::check_search(v),
                "--dns-option" => resolv::check_option(v),
                _ => hosts::parse_extra_host(v).and_then(|(_, addr)| {
                    if addr == "host-gateway" && network != NetworkMode::Bridge {
                        Err(format!(
                            "host-gateway needs a bridge network, not {}",
                            network.name()
                        ))
                    } else {
                        Ok(())
                    }
                }),
            };
            checked.map_err(|why| bad(v, flag, why))?;
        }
    }
    Ok(())
}

/// Env as Docker builds it: image Env, then --env-file, then -e; plus
/// PATH, HOSTNAME, HOME (and TERM with -t) when missing.
fn build_env(a: &RunArgs, image_env: &[String], hostname: &str, home: &str) -> Result<Vec<String>> {
    let mut env: Vec<String> = image_env.to_vec();
    let bad_env = |e: runner::envvars::EnvError| Coded(125, e.into());
    let host = |k: &str| std::env::var(k).ok();
    for f in &a.env_file {
        for entry in runner::envvars::read_env_file(f).map_err(bad_env)? {
            runner::envvars::apply(&mut env, &entry, host);
        }
    }
    for e in &a.env {
        runner::envvars::check_entry(e).map_err(bad_env)?;
        runner::envvars::apply(&mut env, e, host);
    }
    let has = |env: &Vec<String>, k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&env, "PATH") {
        env.insert(0, format!("PATH={}", runner::DEFAULT_PATH));
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={hostname}"));
    }
    if a.tty && !has(&env, "TERM") {
        env.push("TERM=xterm".into());
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={home}"));
    }
    Ok(env)
}

/// Docker's entrypoint/cmd rules.
fn build_argv(a: &RunArgs, cfg: &engine::image::RunConfig) -> Result<Vec<String>> {
    let entry: Vec<String> = match &a.entrypoint {
        Some(e) if e.is_empty() => Vec::new(),
        Some(e) => vec![e.clone()],
        None => cfg.entrypoint.clone().unwrap_or_default(),
    };
    let cmd: Vec<String> = if !a.command.is_empty() {
        a.command.clone()
    } else if a.entrypoint.is_some() {
        Vec::new()
    } else {
        cfg.cmd.clone().unwrap_or_default()
    };
    let argv: Vec<String> = entry.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        bail!(Coded(125, anyhow!("no command specified (the image has no Entrypoint or Cmd: give one after the image name)")));
    }
    Ok(argv)
}

/// Overlay lowerdirs, top layer first, a repeated layer once (at its
/// topmost position: `engine::layer::stack`). Layers already unpacked cost
/// one stat each; only missing ones are unpacked.
pub fn image_lowers(store: &Store, image: &engine::Image) -> Result<Vec<PathBuf>> {
    let ids = &image.config.rootfs.diff_ids;
    if !ids.iter().all(|d| store.has_layer(d)) {
        // Killed while unpacking: remove the session's temp names first
        // (engine::interrupt); the old handlers are back before the
        // container starts.
        let _cleanup = engine::interrupt::install().ok();
        engine::layer::unpack_image(store, image)
            .with_context(|| format!("unpack the layers of {}", image.manifest_digest))?;
    }
    Ok(engine::layer::stack::lowerdirs(store, ids))
}

/// The longest container name: a DNS name's length, well inside a path
/// component's 255 bytes (names become directory names in the store).
const MAX_NAME: usize = 253;

/// Docker's rule for names, `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, and at most
/// MAX_NAME bytes: no '/', NUL, "." or "..", so a name is always one safe
/// path component.
pub(crate) fn name_problem(n: &str) -> Option<String> {
    let mut chars = n.chars();
    let ok = chars
        .next()
        .map(|c| c.is_ascii_alphanumeric())
        .unwrap_or(false)
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        Some("only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed".into())
    } else if n.len() > MAX_NAME {
        Some(format!(
            "{} characters, at most {MAX_NAME} are allowed",
            n.len()
        ))
    } else {
        None
    }
}

fn mib(bytes: u64) -> String {
    if bytes & ((1 << 20) - 1) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

pub fn report_outcome(o: &Outcome) -> i32 {
    if o.status == ExitStatus::OutOfMemory {
        match o.memory_limit {
            Some(l) => eprintln!(
                "rrun: container was killed: out of memory (limit {})",
                mib(l)
            ),
            None => eprintln!("rrun: container was killed: out of memory"),
        }
    }
    o.status.code()
}

/// A container made on disk and not started: what `rrun create` leaves,
/// and what `rrun run` starts at once.
struct Made {
    spec: ContainerSpec,
    state: State,
    dir: PathBuf,
    diff_ids: Vec<engine::Digest>,
}

/// Check the options, resolve the image, user and command, and make the
/// container's directory with its recorded spec and state. `supervisor`:
/// the rrun that will wait for it (`None`: `rrun create`, nobody yet).
fn make(root: &Path, a: &RunArgs, supervisor: Option<ProcessId>) -> Result<Made> {
    let mut checked = check_options(a).map_err(|e| Coded(125, e.into()))?;
    if let Some(n) = &a.name {
        if let Some(why) = name_problem(n) {
            let shown: String = n.chars().take(64).collect();
            let more = if shown.len() < n.len() { "..." } else { "" };
            bail!(Coded(
                125,
                anyhow!("invalid container name {shown:?}{more}: {why}")
            ));
        }
    }
    if a.workdir
        .as_deref()
        .map(|w| !w.starts_with('/'))
        .unwrap_or(false)
    {
        bail!(Coded(
            125,
            anyhow!(
                "the working directory {:?} is invalid: it needs to be an absolute path",
                a.workdir.as_deref().unwrap_or("")
            )
        ));
    }
    require_root("rrun run")?;
    if runner::rootless::active() {
        if let Some(why) = rootless_refusal(a, &checked) {
            bail!(Coded(125, anyhow!("{why}")));
        }
    }
    let store = Store::open(root).map_err(|e| Coded(125, e.into()))?;
    let containers = store.root().join("containers");
    let names = lifecycle::reap_leftovers(&containers);
    // The network mode as state keeps it: container:<full id> or a
    // user-defined network's name.
    let network_mode = match checked.network_given.strip_prefix("container:") {
        Some(key) => {
            let (_, target) = runner::state::find(&containers, key)
                .map_err(|e| Coded(125, anyhow!("--network container:{key}: {e}")))?;
            if !target.is_running() {
                bail!(Coded(
                    125,
                    anyhow!("cannot join the network of container {key}: it is not running (start it first)")
                ));
            }
            format!("container:{}", target.id)
        }
        None if checked.network == NetworkMode::Bridge && checked.network_given != "bridge" => {
            runner::network::user::load(store.root(), &checked.network_given)
                .map_err(|e| Coded(125, e.into()))?
                .name
        }
        None if checked.network == NetworkMode::None
            && checked.network_given == runner::rootless::pasta::NETWORK =>
        {
            checked.network_given.clone()
        }
        None => checked.network.name().to_string(),
    };
    let image = find_or_pull(&store, a).map_err(|e| Coded(125, e))?;
    let lowers = image_lowers(&store, &image).map_err(|e| Coded(125, e))?;
    let cfg = &image.config.config;
    if a.publish_all {
        let mut exposed = Vec::new();
        for key in cfg.exposed_ports.keys() {
            match runner::network::ports::parse_exposed(key) {
                Ok(v) => exposed.extend(v),
                Err(why) => eprintln!("rrun: -P: not publishing {key} of the image: {why}"),
            }
        }
        exposed.extend(checked.exposed.iter().copied());
        runner::network::ports::publish_all(&mut checked.ports, &exposed);
    }
    runner::network::ports::choose_host_ports(&mut checked.ports)
        .map_err(|e| Coded(125, anyhow!("choose a free host port for -p: {e}")))?;
    // --userns=keep-id: the user's own ids unless -u (Podman's way).
    let keep_id = checked.options.keep_id.then(|| {
        let id = |v: Option<u32>| v.unwrap_or(u32::MAX);
        let (u, g) = (runner::rootless::host_uid(), runner::rootless::host_gid());
        format!("{}:{}", id(u), id(g))
    });
    let user = user::resolve_in_layers(
        a.user
            .as_deref()
            .or(keep_id.as_deref())
            .or(cfg.user.as_deref())
            .unwrap_or(""),
        &lowers,
    )
    .map_err(|e| Coded(125, e.into()))?;
    let mut user = user;
    if keep_id.is_some() && a.user.is_none() && user.home == "/" {
        // keep-id's passwd entry (runner::rootless::keepid): the user's home.
        if let Some((_, home)) = runner::rootless::keepid::host_user() {
            user.home = home;
        }
    }
    let added =
        runner::runopts::resolve_groups(&checked.options.group_add, &lowers).map_err(|why| {
            let given = checked.options.group_add.join(",");
            Coded(
                125,
                anyhow!("invalid argument {given:?} for \"--group-add\" flag: {why}"),
            )
        })?;
    for g in added {
        if !user.spec.additional_gids.contains(&g) {
            user.spec.additional_gids.push(g);
        }
    }
    // The image's HEALTHCHECK with the flags over it; NONE: no check.
    let given = checked.options.healthcheck.take().unwrap_or_default();
    checked.options.healthcheck =
        runner::health::Healthcheck::merged(cfg.healthcheck.as_ref(), &given)
            .filter(|h| h.argv().is_some());
    if checked.options.stop_signal.is_none() {
        // Docker records the image's STOPSIGNAL as the container's.
        checked.options.stop_signal = cfg.stop_signal.clone().filter(|s| !s.is_empty());
    }
    let argv = build_argv(a, cfg)?;
    let id = lifecycle::new_id(store.root());
    let name = a.name.clone().unwrap_or_else(|| id[..12].to_string());
    if names.contains(&name) {
        bail!(Coded(125, anyhow!("the container name {name:?} is already in use (remove that container first: rrun rm {name})")));
    }
    let hostname = a.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    let env = build_env(a, &cfg.env, &hostname, &user.home)?;
    let cwd = a
        .workdir
        .clone()
        .or(cfg.working_dir.clone())
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let image_volumes: Vec<String> = cfg.volumes.keys().cloned().collect();
    let attached = runner::volume::attach::attach(
        store.root(),
        &checked.mounts,
        &image_volumes,
        &lowers,
        &store.root().join("mnt"),
    )
    .map_err(|e| Coded(125, e.into()))?;

    let dir = containers.join(&id);
    let spec = ContainerSpec {
        id: id.clone(),
        rootfs: RootfsSpec {
            lowers,
            upper: dir.join("upper"),
            work: dir.join("work"),
            merged: mount_point(&store, &dir, checked.features),
            readonly: a.read_only,
            disposable: a.rm,
        },
        args: argv.clone(),
        env: env.clone(),
        cwd: cwd.clone(),
        user: user.spec.clone(),
        hostname,
        mounts: attached.mounts.clone(),
        network: checked.network,
        resources: checked.resources,
        security: checked.security.clone(),
        tty: a.tty,
        stdin: a.interactive,
        init: a.init,
    };
    let state = State {
        id: id.clone(),
        name,
        image: a.image.clone(),
        image_digest: image.manifest_digest.to_string(),
        command: argv,
        status: Status::Created,
        pid: None,
        supervisor,
        created: runner::state::now(),
        finished: None,
        exit_code: None,
        oom_killed: false,
        auto_remove: a.rm,
        detached: a.detach,
        exec: ExecDefaults {
            env,
            cwd,
            uid: user.spec.uid,
            gid: user.spec.gid,
            groups: user.spec.additional_gids.clone(),
            privileged: checked.security.privileged,
            no_new_privileges: checked.security.no_new_privileges,
            seccomp: checked.security.seccomp,
            capabilities: checked.security.capabilities.clone(),
        },
        host: runner::state::HostSettings {
            memory_bytes: spec.resources.memory_bytes,
            nano_cpus: spec
                .resources
                .cpu_quota_us
                .map(|q| q * 1_000_000_000 / spec.resources.cpu_period_us.unwrap_or(100_000)),
            pids_limit: spec.resources.pids_limit,
            binds: a
                .volume
                .iter()
                .filter(|v| v.contains(':'))
                .cloned()
                .collect(),
            network_mode,
            runtime: a.runtime.clone(),
            read_only: a.read_only,
            privileged: checked.security.privileged,
            hostname: spec.hostname.clone(),
            ports: checked.ports.clone(),
            network_aliases: a.network_alias.clone(),
            dns: a.dns.clone(),
            dns_search: a.dns_search.clone(),
            dns_options: a.dns_option.clone(),
            // As Docker shows them: NAME:IP.
            extra_hosts: a
                .add_host
                .iter()
                .filter_map(|h| runner::network::hosts::parse_extra_host(h).ok())
                .map(|(n, ip)| format!("{n}:{ip}"))
                .collect(),
            publish_all: a.publish_all,
            connected: Vec::new(),
            joins: Vec::new(),
        },
        restart: checked.restart.clone(),
        restart_count: 0,
        stop_requested: false,
        options: checked.options.clone(),
        awaited_by: None,
    };
    // `rrun create --rm` is started later, then removed at its exit.
    let record_spec = supervisor.is_none() || !a.rm;
    create_container_dir(&dir, &spec, &state, record_spec, &attached.uses).map_err(|e| {
        let _ = engine::fsutil::remove_tree(&dir);
        attached.abandon();
        Coded(125, e)
    })?;
    let diff_ids = image.config.rootfs.diff_ids.clone();
    Ok(Made {
        spec,
        state,
        dir,
        diff_ids,
    })
}

/// `rrun create`: the container made, its id printed, nothing started. It
/// is started detached by `rrun start`, so `--restart` needs no `-d`.
pub fn cmd_create(root: &Path, mut a: RunArgs) -> Result<i32> {
    a.detach = true;
    let features = runner::runtime_named(&a.runtime)
        .map_err(|e| Coded(125, e.into()))?
        .features();
    if !features.start_later {
        bail!(Coded(
            125,
            anyhow!(
                "rrun create supports the native runtime only, not --runtime {}",
                a.runtime
            )
        ));
    }
    let made = make(root, &a, None)?;
    write_cidfile(&a, &made.dir, &made.state.id)?;
    println!("{}", made.state.id);
    Ok(0)
}

fn cmd_run(root: &Path, a: RunArgs) -> Result<i32> {
    // The store's shared lock is not held past make (a long-running
    // container would make gc wait); containers/<id>/image keeps the image alive.
    let Made {
        spec,
        state,
        dir,
        diff_ids,
    } = make(root, &a, Some(ProcessId::current()))?;
    write_cidfile(&a, &dir, &state.id)?;
    let r = if a.detach {
        crate::detach::run_detached(&spec, &dir, state)
    } else {
        run_foreground(&spec, &dir, state)
    };
    // Layers unpacked long enough ago to be written back are made durable
    // now that the container has ended, off the start path (see
    // engine::layer::marker): until then a reboot would unpack them again.
    // Best effort: a failure only leaves them to be unpacked again.
    let layer_dirs: Vec<PathBuf> = spec
        .rootfs
        .lowers
        .iter()
        .filter_map(|fs| fs.parent().map(PathBuf::from))
        .collect();
    if marker::needs_sync(&layer_dirs, engine::layer::SYNC_AFTER) {
        if let Ok(store) = Store::open(root) {
            let _ = store.sync_image_layers(&diff_ids, engine::layer::SYNC_AFTER);
        }
    }
    r
}

/// Where the container's root is mounted before pivot_root. The native
/// runtime mounts it in the container's own mount namespace, so every
/// container can share one empty directory of the store: nothing to create
/// or remove per container — and removing a directory that was a mount
/// point in a dying namespace costs the kernel a detach (~4 ms here).
/// External OCI runtimes get a directory of their own.
fn mount_point(store: &Store, dir: &Path, features: Features) -> PathBuf {
    if features.private_rootfs_mount {
        store.root().join("mnt")
    } else {
        dir.join("merged")
    }
}

/// `record_spec`: keep the spec for `rrun start` (not for `run --rm`,
/// which nothing starts again: writing it costs that start path ~0.2 ms
/// in a debug build).
fn create_container_dir(
    dir: &Path,
    spec: &ContainerSpec,
    state: &State,
    record_spec: bool,
    volumes: &[runner::volume::Use],
) -> Result<()> {
    let merged = &spec.rootfs.merged;
    // Private, as the store is (engine::store::access); upper and work
    // inside keep their own modes: the container's root directory.
    engine::store::private_dir()
        .create(dir)
        .with_context(|| format!("create {}", dir.display()))?;
    for p in [dir.join("upper"), dir.join("work"), merged.to_path_buf()] {
        std::fs::create_dir_all(&p).with_context(|| format!("create {}", p.display()))?;
    }
    let img = dir.join("image");
    std::fs::write(&img, format!("{}\n", state.image_digest))
        .with_context(|| format!("write {}", img.display()))?;
    // Before the state: `volume rm` finds every user of a volume.
    runner::volume::record(dir, volumes)?;
    // The spec before the state: a container with a state has its spec.
    if record_spec {
        runner::recorded::save(dir, spec)?;
    }
    state.save(dir)?;
    Ok(())
}

/// `--cidfile`: the id written once the container is made; a container
/// whose id could not be written is removed (nothing half-done).
fn write_cidfile(a: &RunArgs, dir: &Path, id: &str) -> Result<()> {
    if let Some(p) = &a.more.cidfile {
        if let Err(e) = crate::run_options::write_cidfile(p, id) {
            let _ = engine::fsutil::remove_tree(dir);
            bail!(Coded(125, e));
        }
    }
    Ok(())
}

/// The runtime `state` records (older records name none: native).
pub fn runtime_of(state: &State) -> Result<Box<dyn engine::runtime::Runtime>> {
    let name = match state.host.runtime.as_str() {
        "" => "native",
        n => n,
    };
    Ok(runner::runtime_named(name).map_err(|e| Coded(125, e.into()))?)
}

/// What a task of the container in `dir` is given besides its spec, for
/// every runtime alike: `forward` rrun's signals (the foreground), or
/// not, and the container then outlives this rrun (a detached supervisor).
pub fn task_io(dir: &Path, state: &State, foreground: bool) -> Result<TaskIo> {
    let mut options = TaskOptions::of(dir, state)?;
    // Started right after it is made.
    options.start_at_once = true;
    Ok(TaskIo {
        output: OutputSink::Inherit,
        forward_signals: foreground,
        outlive_caller: !foreground,
        options: Some(Box::new(options)),
    })
}

/// One run of the container through its runtime's task: create, start
/// (`started` gets its pid), wait, delete. An error is the runtime's,
/// with its exit code; a failed delete after the command ran is a
/// warning, as its exit code stands (`rrun rm` asks the runtime again).
pub fn run_task(
    spec: &ContainerSpec,
    io: TaskIo,
    runtime: &dyn engine::runtime::Runtime,
    started: &mut dyn FnMut(i32),
) -> std::result::Result<Outcome, Coded> {
    let mut task = runtime.create(spec, io).map_err(Coded::of)?;
    let status = task
        .start()
        .map(|()| started(task.pid()))
        .and_then(|()| task.wait());
    let deleted = task.delete();
    let status = status.map_err(Coded::of)?;
    if let Err(e) = deleted {
        eprintln!("rrun: warning: {}", Coded::of(e));
    }
    Ok(Outcome {
        status,
        memory_limit: spec.resources.memory_bytes,
    })
}

fn run_foreground(spec: &ContainerSpec, dir: &Path, state: State) -> Result<i32> {
    let runtime = runtime_of(&state)?;
    let io = task_io(dir, &state, true);
    let state = RefCell::new(state);
    let mut started = |pid: i32| {
        let mut s = state.borrow_mut();
        if let Ok(now) = State::mark_running(dir, &s, pid) {
            *s = now;
        }
    };
    let result = io.and_then(|io| Ok(run_task(spec, io, &*runtime, &mut started)?));
    let s = state.into_inner();
    match result {
        Err(e) => {
            // A container that never ran leaves nothing behind.
            let _ = runner::volume::remove_container_dir(dir, true);
            Err(e)
        }
        Ok(o) => {
            let code = report_outcome(&o);
            if s.auto_remove {
                // With its anonymous volumes, as Docker's --rm.
                runner::volume::remove_container_dir(dir, true)
                    .with_context(|| format!("remove {}", dir.display()))?;
            } else {
                let oom = o.status == ExitStatus::OutOfMemory;
                let _ = State::mark_exited(dir, &s, code, oom);
            }
            Ok(code)
        }
    }
}

/// The image to run: from the store, or pulled from its registry as
/// `docker run` does (`--pull missing`, the default), or always pulled.
fn find_or_pull(store: &Store, a: &RunArgs) -> anyhow::Result<engine::Image> {
    use engine::oci::registry::{self, PullOptions};
    let found = match a.pull.as_str() {
        "always" => Err(None),
        _ => store.find_image(&a.image).map_err(Some),
    };
    match found {
        Ok(image) => Ok(image),
        Err(Some(e))
            if a.pull == "never" || !matches!(e, engine::StoreError::ImageNotFound { .. }) =>
        {
            Err(e.into())
        }
        Err(_) => {
            eprintln!("Unable to find image '{}' locally; pulling it", a.image);
            // The same plain lines as `rbuild pull` off a terminal, one per blob and layer.
            // Killed while pulling: remove the session's temp names first.
            // Dropped before the container starts (which forwards signals).
            let _cleanup = engine::interrupt::install().ok();
            let progress = engine::progress::PlainLines::stderr();
            let opts = PullOptions {
                platform: None,
                insecure: a.insecure_registry,
                // As rbuild's --authfile default: one credentials file for several stores.
                auth_file: std::env::var_os("RBOX_AUTH_FILE").map(Into::into),
                limits: Default::default(),
            };
            registry::find_or_pull(store, &a.image, &opts, &progress).map_err(|e| {
                anyhow::anyhow!(
                    "image {:?} not found in {} and pulling it failed: {e} (try: rbuild images, or --pull never)",
                    a.image,
                    store.root().display()
                )
            })
        }
    }
}

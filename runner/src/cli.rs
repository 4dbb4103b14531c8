//! rrun's command line: Docker's option names and meanings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "rrun",
    about = "Run containers from rbox images",
    version,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Root of the rbox store (other users than root: $XDG_DATA_HOME/rbox)
    #[arg(long, global = true, env = "RBOX_ROOT", default_value_os_t = engine::rootless::default_root())]
    pub root: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and run a new container from an image
    Run(Box<RunArgs>),
    /// Create a new container (takes run's options; started by rrun start)
    Create(Box<RunArgs>),
    /// Start one or more created or stopped containers
    Start(StartArgs),
    /// Restart one or more containers
    Restart(RestartArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// List containers
    Ps(PsArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Return low-level information on containers or images (JSON)
    Inspect(InspectArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(WaitArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(DiffArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Display a live stream of containers' resource usage
    Stats(StatsArgs),
    /// Pause all processes within one or more containers
    Pause(PauseArgs),
    /// Unpause all processes within one or more containers
    Unpause(PauseArgs),
    /// Update the resource limits of one or more containers
    Update(UpdateArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Export a container's filesystem as a tar archive
    Export(ExportArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(crate::commands::volume::VolumeCommand),
}

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create a network: its own bridge and subnet; its containers reach
    /// each other by name and nothing on other networks
    Create(NetworkCreateArgs),
    /// List networks
    #[command(alias = "list")]
    Ls(NetworkLsArgs),
    /// Display detailed information on one or more networks (JSON)
    Inspect(NetworkNamesArgs),
    /// Remove one or more networks (refused while containers run on them)
    #[command(alias = "remove")]
    Rm(NetworkNamesArgs),
    /// Remove all networks no running container uses
    Prune(PruneArgs),
    /// Connect a running container to a network (one more interface)
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network it was connected to
    Disconnect(NetworkDisconnectArgs),
    /// (internal) Serve a network's DNS: started by rrun run
    #[command(hide = true)]
    Resolver(NetworkResolverArgs),
}

#[derive(Args, Debug)]
pub struct NetworkResolverArgs {
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub bridge: String,
    #[arg(long)]
    pub subnet: String,
    #[arg(long)]
    pub gateway: String,
}

#[derive(Args, Debug)]
pub struct NetworkCreateArgs {
    /// Subnet in CIDR format (default: the first free /24 from 10.88.0.0)
    #[arg(long)]
    pub subnet: Option<String>,
    /// Gateway (the bridge's address) in the subnet (default: its first)
    #[arg(long)]
    pub gateway: Option<String>,
    /// Driver to manage the network (only bridge)
    #[arg(short = 'd', long, default_value = "bridge")]
    pub driver: String,
    #[arg(value_name = "NETWORK")]
    pub name: String,
}

#[derive(Args, Debug)]
pub struct NetworkConnectArgs {
    /// Add a network-scoped alias for the container
    #[arg(long = "alias", value_name = "strings")]
    pub alias: Vec<String>,
    /// IPv4 address (default: the network's next free one)
    #[arg(long)]
    pub ip: Option<String>,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct NetworkDisconnectArgs {
    /// Force the container to disconnect: errors removing its interface
    /// are warnings
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(value_name = "NETWORK")]
    pub network: String,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct NetworkLsArgs {
    /// Only display network ids
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct NetworkNamesArgs {
    #[arg(required = true, value_name = "NETWORK")]
    pub names: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub enum ContainerCommand {
    /// Remove all stopped containers
    Prune(PruneArgs),
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR: follow the output until it exits, and exit with its code
    #[arg(short = 'a', long)]
    pub attach: bool,
    /// Attach the container's STDIN (with -a)
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Override the key sequence for detaching a container (with -a -i)
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys", value_name = "string")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process (non-TTY mode only)
    #[arg(long = "sig-proxy", default_value_t = true, action = clap::ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub sig_proxy: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct RestartArgs {
    /// Seconds to wait before killing the container (default: its
    /// --stop-timeout, or 10)
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Commit message (the history entry's comment)
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// Apply Dockerfile instruction to the created image (CMD, ENTRYPOINT,
    /// ENV, LABEL, WORKDIR, EXPOSE, USER, VOLUME, STOPSIGNAL)
    #[arg(short = 'c', long = "change", value_name = "list")]
    pub changes: Vec<String>,
    /// Pause the container during commit
    #[arg(short = 'p', long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pause: bool,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub image: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// CONTAINER:SRC_PATH, a local path, or - (a tar stream on stdin)
    #[arg(value_name = "SRC", allow_hyphen_values = true)]
    pub src: String,
    /// CONTAINER:DEST_PATH, a local path, or - (a tar stream on stdout)
    #[arg(value_name = "DEST", allow_hyphen_values = true)]
    pub dest: String,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format the output using the given template (e.g. '{{.State.Status}}')
    #[arg(short = 'f', long)]
    pub format: Option<String>,
    /// Return JSON for this type only
    #[arg(long = "type", value_parser = ["container", "image"])]
    pub kind: Option<String>,
    #[arg(required = true, value_name = "NAME|ID")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct WaitArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    #[arg(value_name = "CONTAINER")]
    pub old: String,
    #[arg(value_name = "NEW_NAME")]
    pub new: String,
}

#[derive(Args, Debug)]
pub struct DiffArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct TopArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Options for ps (default -ef)
    #[arg(
        value_name = "PS_OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PauseArgs {
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub limits: LimitArgs,
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// The limit flags of run, create and update, parsed in one place
/// (`LimitArgs::parse`).
#[derive(Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Memory limit (at least 6MB; update cannot remove it)
    #[arg(short = 'm', long, value_name = "bytes", allow_hyphen_values = true)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", value_name = "bytes", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs (0: no limit)
    #[arg(long, value_name = "decimal", allow_hyphen_values = true)]
    pub cpus: Option<String>,
    /// Tune container pids limit (0 or -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_hyphen_values = true)]
    pub pids_limit: Option<String>,
}

impl LimitArgs {
    /// The limits the flags give; a flag left out is `None`. `--cpus 0`
    /// and `--pids-limit 0|-1` (Docker's "no limit") are
    /// `Some(Resources::UNLIMITED)`: update removes the limit with it,
    /// run and create set none. A memory limit cannot be removed (Docker
    /// neither), so a negative or zero `-m` is refused, saying so.
    pub fn parse(&self) -> Result<engine::runtime::Resources, BadValue> {
        use engine::runtime::Resources;
        let mut r = Resources::default();
        if let Some(m) = &self.memory {
            let t = m.trim();
            if t.starts_with('-') || t.parse::<f64>().is_ok_and(|n| n == 0.0) {
                return Err(bad(
                    m,
                    "-m, --memory",
                    "a memory limit cannot be removed or set to unlimited (Docker neither): give a size of at least 6MB, or leave -m, --memory out",
                ));
            }
            let bytes = parse_size(m, "-m, --memory")?;
            if bytes < 6 << 20 {
                return Err(bad(
                    m,
                    "-m, --memory",
                    "minimum memory limit allowed is 6MB",
                ));
            }
            r.memory_bytes = Some(bytes);
        }
        if let Some(s) = &self.memory_swap {
            r.memory_swap_bytes = Some(if s.trim() == "-1" {
                -1
            } else {
                parse_size(s, "--memory-swap")? as i64
            });
        }
        if let Some(c) = &self.cpus {
            if c.trim().parse::<f64>().is_ok_and(|n| n == 0.0) {
                r.cpu_quota_us = Some(Resources::UNLIMITED);
            } else {
                let (q, p) = parse_cpus(c)?;
                r.cpu_quota_us = Some(q);
                r.cpu_period_us = Some(p);
            }
        }
        if let Some(p) = &self.pids_limit {
            r.pids_limit = Some(match parse_int(p, "--pids-limit")? {
                0 | -1 => Resources::UNLIMITED,
                v if v > 0 => v as u64,
                _ => {
                    return Err(bad(
                        p,
                        "--pids-limit",
                        "a positive number, or 0 or -1 for unlimited",
                    ))
                }
            });
        }
        Ok(r)
    }
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Containers (default: every running one)
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
    /// Print one sample and exit, instead of refreshing every half second
    #[arg(long)]
    pub no_stream: bool,
    /// Go template: {{.ID}} {{.Name}} {{.CPUPerc}} {{.MemUsage}}
    /// {{.MemPerc}} {{.NetIO}} {{.BlockIO}} {{.PIDs}}, or "table ..."
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct PortArgs {
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Only this one: PRIVATE_PORT[/PROTO] (tcp by default)
    #[arg(value_name = "PRIVATE_PORT[/PROTO]")]
    pub private: Option<String>,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Automatically remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Restart policy when the container exits: no, on-failure[:N], always, unless-stopped (needs -d)
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir", value_name = "string")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long = "user", value_name = "string")]
    pub user: Option<String>,
    /// Container host name
    #[arg(long, value_name = "string")]
    pub hostname: Option<String>,
    /// Bind mount a host path or mount a volume (SRC:DST[:ro|rw], NAME:DST[:ro|rw|nocopy], DST)
    #[arg(short = 'v', long = "volume", value_name = "list")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=,target=,readonly,...)
    #[arg(long, value_name = "mount")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (DST[:options])
    #[arg(long, value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    pub read_only: bool,
    /// Connect a container to a network: bridge (the default: its own
    /// network namespace with outbound access through rbox's bridge and
    /// NAT, no way to the host's loopback), none (only lo), host (the
    /// host's network namespace, no isolation), container:NAME|ID (the
    /// network namespace of that running container; no -p), or the name
    /// of a network made with rrun network create (its own bridge,
    /// isolated from the others; containers on it reach each other by
    /// name). With --runtime crun, runc or youki the default is none.
    #[arg(long = "network", alias = "net", value_name = "network")]
    pub network: Option<String>,
    /// Another name of the container on its user-defined network
    #[arg(long = "network-alias", alias = "net-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// Set custom DNS servers (on a user-defined network: where its
    /// resolver forwards this container's queries)
    #[arg(long = "dns", value_name = "list")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains ('.' for none)
    #[arg(long = "dns-search", value_name = "list")]
    pub dns_search: Vec<String>,
    /// Set DNS options (resolv.conf's options, e.g. ndots:2)
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "list")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (NAME:IP; IP host-gateway: the
    /// network's gateway, the host as the container reaches it)
    #[arg(long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,
    /// Publish a container's port to the host:
    /// [HOSTIP:][HOSTPORT[-END]:]CONTAINERPORT[-END][/tcp|/udp] (IPv4;
    /// ranges pair up and must be the same size, a host range for one
    /// container port gives a free port of it; no HOSTPORT: a free one,
    /// see rrun port). Needs a bridge network,
    /// the default or one of rrun network create (refused with none, host
    /// or container:NAME). The host itself reaches it at its own
    /// addresses too, at 127.0.0.1 through a relay in rrun (TCP only)
    #[arg(short = 'p', long = "publish", value_name = "list")]
    pub publish: Vec<String>,
    /// Publish every exposed port (the image's EXPOSE and --expose) on a
    /// free host port of the ephemeral range (see rrun port)
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports: PORT[-END][/tcp|/udp] (published
    /// by -P)
    #[arg(long, value_name = "list")]
    pub expose: Vec<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares", value_name = "int")]
    pub cpu_shares: Option<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Security Options (no-new-privileges, seccomp=unconfined)
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "command", allow_hyphen_values = true)]
    pub entrypoint: Option<String>,
    /// Runtime to use for this container (native, crun, runc, youki)
    #[arg(long, value_name = "string", default_value = "native")]
    pub runtime: String,
    /// Pull image before running ("always", "missing", "never")
    #[arg(long, value_name = "string", default_value = "missing", value_parser = ["always", "missing", "never"])]
    pub pull: String,
    /// Allow plain http and unverified TLS for registries other than localhost when pulling
    #[arg(long)]
    pub insecure_registry: bool,
    #[command(flatten)]
    pub more: crate::run_options::RunOptionArgs,
    /// The image to run
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The command and its arguments
    #[arg(
        value_name = "COMMAND",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Filter output based on conditions provided (status=, name=, id=, label=, ancestor=)
    #[arg(long, value_name = "filter")]
    pub filter: Vec<String>,
    /// Format output using a template ('table {{.ID}}\t{{.Names}}', '{{.Status}}')
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container (default: its
    /// --stop-timeout, or 10)
    #[arg(short = 't', long = "time")]
    pub time: Option<u64>,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long = "signal", default_value = "KILL")]
    pub signal: String,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Remove the anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    pub volumes: bool,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output until the container stops
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for every line)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps (when each line began, RFC 3339 with nanoseconds)
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Show logs since a timestamp (2024-01-02T15:04:05Z, Unix seconds)
    /// or a relative time (42m)
    #[arg(long, value_name = "string")]
    pub since: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID
    #[arg(short = 'u', long = "user")]
    pub user: Option<String>,
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// A bad option value: one line, exit 125.
#[derive(Debug, thiserror::Error)]
#[error("invalid argument {value:?} for \"{flag}\" flag: {reason}")]
pub struct BadValue {
    pub value: String,
    pub flag: &'static str,
    pub reason: String,
}

pub fn bad(value: &str, flag: &'static str, reason: impl Into<String>) -> BadValue {
    BadValue {
        value: value.to_string(),
        flag,
        reason: reason.into(),
    }
}

/// Docker's RAMInBytes: `512`, `64k`, `32m`, `1.5g`, `2GiB`; binary units.
pub fn parse_size(value: &str, flag: &'static str) -> Result<u64, BadValue> {
    let s = value.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let invalid = || bad(value, flag, format!("invalid size: '{value}'"));
    let n: f64 = num.parse().map_err(|_| invalid())?;
    let unit = unit.trim().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(invalid()),
    };
    Ok((n * mult) as u64)
}

/// `--cpus 1.5` as a CFS quota per 100 ms period.
pub fn parse_cpus(value: &str) -> Result<(u64, u64), BadValue> {
    let n: f64 = value
        .trim()
        .parse()
        .map_err(|_| bad(value, "--cpus", "expected a decimal number of CPUs"))?;
    let available = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64;
    if !(0.01..=available).contains(&n) {
        return Err(bad(
            value,
            "--cpus",
            format!("range of CPUs is from 0.01 to {available:.2}, as there are only {available} CPUs available"),
        ));
    }
    let period = 100_000u64;
    Ok(((n * period as f64).round() as u64, period))
}

pub fn parse_int(value: &str, flag: &'static str) -> Result<i64, BadValue> {
    value
        .trim()
        .parse()
        .map_err(|_| bad(value, flag, "expected an integer"))
}

/// The capability list after --cap-add/--cap-drop (Docker's arithmetic,
/// done by the security module); `None` = the default set.
pub fn capabilities(add: &[String], drop: &[String]) -> Result<Option<Vec<String>>, BadValue> {
    if add.is_empty() && drop.is_empty() {
        return Ok(None);
    }
    let split = |v: &[String]| -> Vec<String> {
        v.iter()
            .flat_map(|a| a.split(','))
            .map(str::to_string)
            .collect()
    };
    runner::native::security::capabilities::resolve(&split(add), &split(drop))
        .map(|caps| Some(caps.iter().map(|c| c.name().to_string()).collect()))
        .map_err(|e| {
            bad(
                &[add, drop].concat().join(","),
                "--cap-add/--cap-drop",
                e.to_string(),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_docker() {
        assert_eq!(parse_size("32m", "-m").unwrap(), 32 << 20);
        assert_eq!(parse_size("1.5g", "-m").unwrap(), 3 << 29);
        assert_eq!(parse_size("64KiB", "-m").unwrap(), 64 << 10);
        assert_eq!(parse_size("100", "-m").unwrap(), 100);
        let e = parse_size("12q", "-m, --memory").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid argument \"12q\" for \"-m, --memory\" flag: invalid size: '12q'"
        );
    }

    #[test]
    fn cpus_become_a_quota() {
        assert_eq!(parse_cpus("0.5").unwrap(), (50_000, 100_000));
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("abc").is_err());
    }

    fn limits(args: &[&str]) -> Result<engine::runtime::Resources, String> {
        let cli = Cli::try_parse_from(["rrun", "update"].iter().chain(args).chain(&["c"]).copied())
            .map_err(|e| e.to_string())?;
        match cli.command {
            Command::Update(u) => u.limits.parse().map_err(|e| e.to_string()),
            other => panic!("not update: {other:?}"),
        }
    }

    #[test]
    fn zero_and_minus_one_remove_a_limit_and_memory_cannot_be() {
        use engine::runtime::Resources;
        let unlimited = Some(Resources::UNLIMITED);
        for v in ["0", "-1"] {
            let r = limits(&["--pids-limit", v]).unwrap();
            assert_eq!(r.pids_limit, unlimited, "--pids-limit {v}");
        }
        let e = limits(&["--pids-limit", "-2"]).unwrap_err();
        assert!(
            e.contains("--pids-limit") && e.contains("-1 for unlimited"),
            "{e}"
        );
        assert_eq!(
            limits(&["--pids-limit", "64"]).unwrap().pids_limit,
            Some(64)
        );
        let r = limits(&["--cpus", "0"]).unwrap();
        assert_eq!((r.cpu_quota_us, r.cpu_period_us), (unlimited, None));
        let r = limits(&["--cpus", "0.5"]).unwrap();
        assert_eq!(r.cpu_quota_us, Some(50_000));
        assert!(limits(&["--cpus", "-1"]).unwrap_err().contains("--cpus"));
        for v in ["-1", "0", "-5m"] {
            let e = limits(&["-m", v]).unwrap_err();
            assert!(
                e.contains("\"-m, --memory\"") && e.contains("cannot be removed"),
                "-m {v}: {e}"
            );
        }
        let r = limits(&["-m", "64m", "--memory-swap", "-1"]).unwrap();
        assert_eq!(
            (r.memory_bytes, r.memory_swap_bytes),
            (Some(64 << 20), Some(-1))
        );
        // run and create take the same flags, parsed the same way.
        let cli = Cli::try_parse_from(["rrun", "run", "--cpus", "0", "--pids-limit", "-1", "img"])
            .unwrap();
        let Command::Run(a) = cli.command else {
            panic!("not run")
        };
        let r = a.limits.parse().unwrap();
        assert_eq!((r.cpu_quota_us, r.pids_limit), (unlimited, unlimited));
    }

    #[test]
    fn caps_add_and_drop() {
        assert_eq!(capabilities(&[], &[]).unwrap(), None);
        let c = capabilities(&["sys_admin".into()], &["chown".into()])
            .unwrap()
            .unwrap();
        assert!(c.contains(&"CAP_SYS_ADMIN".to_string()) && !c.contains(&"CAP_CHOWN".to_string()));
        assert_eq!(
            capabilities(&[], &["ALL".into()]).unwrap().unwrap(),
            Vec::<String>::new()
        );
        assert!(capabilities(&["CAP_NONSENSE".into()], &[]).is_err());
    }
}

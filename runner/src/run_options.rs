//! `rrun run`/`create` options of runner::runopts: their flags, their
//! check (a bad value is refused with exit 125, naming the flag and the
//! value) and `--cidfile`.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use runner::health::{self, Healthcheck};
use runner::runopts::{self, RunOptions};

use crate::cli::{self, BadValue};

#[derive(Args, Debug, Clone, Default)]
pub struct RunOptionArgs {
    /// Ulimit options: NAME=SOFT[:HARD] (nofile, nproc, core, memlock,
    /// stack, ...; -1 or unlimited)
    #[arg(long, value_name = "ulimit")]
    pub ulimit: Vec<String>,
    /// Sysctl options: KEY=VALUE, namespaced keys only (net.* with a
    /// network namespace of the container's own, kernel.msg*, kernel.sem,
    /// kernel.shm*, fs.mqueue.*)
    #[arg(long, value_name = "map")]
    pub sysctl: Vec<String>,
    /// Size of /dev/shm (default 64m)
    #[arg(long = "shm-size", value_name = "bytes")]
    pub shm_size: Option<String>,
    /// Add additional groups to join: GID or a name of the image's /etc/group
    #[arg(long = "group-add", value_name = "list")]
    pub group_add: Vec<String>,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", value_name = "int", allow_hyphen_values = true)]
    pub oom_score_adj: Option<String>,
    /// Set meta data on a container: KEY=VALUE
    #[arg(short = 'l', long = "label", value_name = "list")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    pub label_file: Vec<PathBuf>,
    /// Write the container ID to the file (refused if it exists)
    #[arg(long, value_name = "string")]
    pub cidfile: Option<PathBuf>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Add a host device to the container: HOST[:CONTAINER][:PERMS]
    /// (a character device; PERMS of r, w, m; default rwm)
    #[arg(long, value_name = "list")]
    pub device: Vec<String>,
    /// Command to run to check health (run through /bin/sh -c)
    #[arg(long = "health-cmd", value_name = "string")]
    pub health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h) (default 30s)
    #[arg(long = "health-interval", value_name = "duration")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h) (default 30s)
    #[arg(long = "health-timeout", value_name = "duration")]
    pub health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy (default 3)
    #[arg(
        long = "health-retries",
        value_name = "int",
        allow_hyphen_values = true
    )]
    pub health_retries: Option<String>,
    /// Start period for the container to initialize before failures
    /// count toward retries (ms|s|m|h) (default 0s)
    #[arg(long = "health-start-period", value_name = "duration")]
    pub health_start_period: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Log driver options: max-size=SIZE (rotate past it), max-file=N
    /// (files kept, with max-size)
    #[arg(long = "log-opt", value_name = "list")]
    pub log_opt: Vec<String>,
    /// Signal to stop the container (default: the image's STOPSIGNAL, or SIGTERM)
    #[arg(long = "stop-signal", value_name = "string")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container (rrun stop's default)
    #[arg(long = "stop-timeout", value_name = "int", allow_hyphen_values = true)]
    pub stop_timeout: Option<String>,
    /// User namespace: host (the default) or keep-id (rootless: the
    /// user's uid and gid are the same inside, and the command runs as them)
    #[arg(long, value_name = "mode")]
    pub userns: Option<String>,
}

fn bad(value: &str, flag: &'static str, reason: impl Into<String>) -> BadValue {
    BadValue {
        value: value.to_string(),
        flag,
        reason: reason.into(),
    }
}

/// The options checked. `own_netns`: the container gets a network
/// namespace of its own (net.* sysctls are its own).
/// `detach`: run -d or create (a supervisor will run health checks).
/// `without`: the name of the runtime, if it has no `run_options`.
pub fn check(
    a: &RunOptionArgs,
    own_netns: bool,
    without: Option<&str>,
    detach: bool,
) -> Result<RunOptions, BadValue> {
    let mut o = RunOptions::default();
    for u in &a.ulimit {
        let u2 = runopts::parse_ulimit(u).map_err(|why| bad(u, "--ulimit", why))?;
        o.ulimits.retain(|x| x.name != u2.name);
        o.ulimits.push(u2);
    }
    for s in &a.sysctl {
        let (k, v) = runopts::parse_sysctl(s, own_netns).map_err(|why| bad(s, "--sysctl", why))?;
        o.sysctls.insert(k, v);
    }
    if let Some(s) = &a.shm_size {
        let n = cli::parse_size(s, "--shm-size")?;
        if n > 0 {
            o.shm_size = Some(n);
        }
    }
    for g in &a.group_add {
        if g.is_empty() || g.contains([':', '\n', '\0']) {
            return Err(bad(g, "--group-add", "expected a GID or a group name"));
        }
        o.group_add.push(g.clone());
    }
    if let Some(s) = &a.oom_score_adj {
        o.oom_score_adj =
            Some(runopts::parse_oom_score_adj(s).map_err(|why| bad(s, "--oom-score-adj", why))?);
    }
    for f in &a.label_file {
        let shown = f.display().to_string();
        let text = std::fs::read_to_string(f)
            .map_err(|e| bad(&shown, "--label-file", format!("cannot read it: {e}")))?;
        for (k, v) in
            runopts::labels_of_file(&text).map_err(|why| bad(&shown, "--label-file", why))?
        {
            o.labels.insert(k, v);
        }
    }
    for l in &a.label {
        let (k, v) = runopts::parse_label(l).map_err(|why| bad(l, "-l, --label", why))?;
        o.labels.insert(k, v);
    }
    if let Some(s) = &a.stop_signal {
        runner::lifecycle::parse_signal(s)
            .map_err(|_| bad(s, "--stop-signal", "not a signal name or number"))?;
        o.stop_signal = Some(s.clone());
    }
    if let Some(s) = &a.stop_timeout {
        let n = cli::parse_int(s, "--stop-timeout")?;
        if n < 0 {
            return Err(bad(
                s,
                "--stop-timeout",
                "a whole number of seconds, 0 or more",
            ));
        }
        o.stop_timeout = Some(n as u64);
    }
    match a.userns.as_deref() {
        None | Some("" | "host") => {}
        Some(v @ "keep-id") => {
            if let Some(why) = runner::rootless::keepid::unavailable() {
                return Err(bad(v, "--userns", why));
            }
            o.keep_id = true;
        }
        Some(v) => {
            return Err(bad(
                v,
                "--userns",
                "rbox supports host (the default) and keep-id (rootless)",
            ))
        }
    }
    if let Some(p) = &a.cidfile {
        check_cidfile(p)?;
    }
    for d in &a.device {
        let dev = runopts::parse_device(d).map_err(|why| bad(d, "--device", why))?;
        o.devices
            .retain(|x| x.path_in_container != dev.path_in_container);
        o.devices.push(dev);
    }
    let online = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    if let Some(s) = &a.cpuset_cpus {
        let v = runopts::parse_cpuset(s, &online("/sys/devices/system/cpu/online"), "CPUs")
            .map_err(|why| bad(s, "--cpuset-cpus", why))?;
        o.cpuset_cpus = Some(v);
    }
    if let Some(s) = &a.cpuset_mems {
        // A kernel without NUMA has no node directory: node 0 only.
        let nodes = std::fs::read_to_string("/sys/devices/system/node/online")
            .unwrap_or_else(|_| "0".into());
        let v =
            runopts::parse_cpuset(s, &nodes, "MEMs").map_err(|why| bad(s, "--cpuset-mems", why))?;
        o.cpuset_mems = Some(v);
    }
    o.healthcheck = healthcheck(a)?;
    for l in &a.log_opt {
        match l.split_once('=') {
            Some(("max-size", v)) => {
                let n = cli::parse_size(v, "--log-opt")?;
                if n == 0 {
                    return Err(bad(l, "--log-opt", "max-size must be more than 0"));
                }
                o.log.max_size = Some(n);
            }
            Some(("max-file", v)) => {
                let n = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| bad(l, "--log-opt", "max-file is a number from 1 to 100"))?;
                o.log.max_file = Some(n);
            }
            _ => {
                return Err(bad(
                    l,
                    "--log-opt",
                    "unknown log opt: max-size=SIZE and max-file=N are supported",
                ))
            }
        }
    }
    if o.log.max_file.is_some_and(|n| n > 1) && o.log.max_size.is_none() {
        return Err(bad(
            &a.log_opt.join(","),
            "--log-opt",
            "max-file needs max-size",
        ));
    }
    if let (false, Some(c)) = (detach, &a.health_cmd) {
        return Err(bad(
            c,
            "--health-cmd",
            "health checks run in a detached container's supervisor: use -d (or rrun create and start)",
        ));
    }
    if let (true, Some(v)) = (
        runner::rootless::active(),
        a.cpuset_cpus.as_ref().or(a.cpuset_mems.as_ref()),
    ) {
        return Err(bad(
            v,
            "--cpuset-cpus/--cpuset-mems",
            "not available to rootless rbox: it needs a cgroup of the container's own",
        ));
    }
    if let Some(runtime) = without {
        let given = [
            ("--ulimit", a.ulimit.first()),
            ("--sysctl", a.sysctl.first()),
            ("--shm-size", a.shm_size.as_ref()),
            ("--oom-score-adj", a.oom_score_adj.as_ref()),
            ("--cpuset-cpus", a.cpuset_cpus.as_ref()),
            ("--cpuset-mems", a.cpuset_mems.as_ref()),
            ("--device", a.device.first()),
            ("--health-cmd", a.health_cmd.as_ref()),
            ("--log-opt", a.log_opt.first()),
        ];
        if let Some((flag, Some(v))) = given.into_iter().find(|(_, v)| v.is_some()) {
            return Err(bad(
                v,
                flag,
                format!("not available with --runtime {runtime} yet: use the native runtime"),
            ));
        }
    }
    Ok(o)
}

/// The health flags as a Healthcheck over the image's (`None`: no flag).
fn healthcheck(a: &RunOptionArgs) -> Result<Option<Healthcheck>, BadValue> {
    let dur = |v: &Option<String>, flag: &'static str| -> Result<u64, BadValue> {
        match v {
            None => Ok(0),
            Some(s) => {
                let d = health::parse_duration(s).map_err(|why| bad(s, flag, why))?;
                if !d.is_zero() && d < std::time::Duration::from_millis(1) {
                    return Err(bad(s, flag, "must be at least 1ms"));
                }
                Ok(d.as_nanos() as u64)
            }
        }
    };
    let h = Healthcheck {
        test: a
            .health_cmd
            .iter()
            .map(|c| vec!["CMD-SHELL".to_string(), c.clone()])
            .next()
            .unwrap_or_default(),
        interval: dur(&a.health_interval, "--health-interval")?,
        timeout: dur(&a.health_timeout, "--health-timeout")?,
        start_period: dur(&a.health_start_period, "--health-start-period")?,
        retries: match &a.health_retries {
            None => 0,
            Some(s) => {
                let n = cli::parse_int(s, "--health-retries")?;
                u32::try_from(n).map_err(|_| bad(s, "--health-retries", "cannot be negative"))?
            }
        },
    };
    if let Some(c) = a.health_cmd.as_ref().filter(|c| c.trim().is_empty()) {
        return Err(bad(c, "--health-cmd", "an empty command"));
    }
    if a.no_healthcheck {
        if h != Healthcheck::default() {
            return Err(bad(
                "true",
                "--no-healthcheck",
                "conflicts with --health-* options",
            ));
        }
        return Ok(Some(Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    Ok((h != Healthcheck::default()).then_some(h))
}

/// Docker refuses a cidfile that exists, before anything is made.
fn check_cidfile(p: &Path) -> Result<(), BadValue> {
    if std::fs::symlink_metadata(p).is_ok() {
        return Err(bad(
            &p.display().to_string(),
            "--cidfile",
            format!(
                "container ID file found, make sure the other container isn't running or delete {}",
                p.display()
            ),
        ));
    }
    Ok(())
}

/// Write `id` to the cidfile at once whole: a temp file beside it, then
/// link(2), which refuses an existing name (one made meanwhile too).
pub fn write_cidfile(p: &Path, id: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    let dir = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.unwrap_or_default(),
        std::process::id()
    ));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| f.write_all(id.as_bytes()))
        .with_context(|| format!("--cidfile: write {}", tmp.display()));
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(anyhow::anyhow!(
            "--cidfile: container ID file found, make sure the other container isn't running or delete {}",
            p.display()
        )),
        Err(e) => Err(anyhow::anyhow!("--cidfile: write {}: {e}", p.display())),
    });
    let _ = std::fs::remove_file(&tmp);
    linked
}

//! stop, kill, rm, logs, exec.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use runner::exec::ExecRequest;
use runner::lifecycle;
use runner::state::{self, State};

use crate::cli::{ExecArgs, KillArgs, LogsArgs, RmArgs, StopArgs};
use crate::run::{require_root, Coded};

fn containers(root: &Path) -> PathBuf {
    root.join("containers")
}

fn find(root: &Path, key: &str) -> Result<(PathBuf, State)> {
    state::find(&containers(root), key).map_err(|e| Coded(1, e.into()).into())
}

pub fn stop(root: &Path, a: &StopArgs) -> Result<i32> {
    require_root("rrun stop")?;
    let mut code = 0;
    for c in &a.containers {
        match find(root, c) {
            Ok((dir, s)) => {
                lifecycle::stop(&dir, &s, Duration::from_secs(a.time))?;
                println!("{c}");
            }
            Err(e) => {
                eprintln!("rrun: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn kill(root: &Path, a: &KillArgs) -> Result<i32> {
    require_root("rrun kill")?;
    let sig = lifecycle::parse_signal(&a.signal).map_err(|e| Coded(1, e.into()))?;
    let mut code = 0;
    for c in &a.containers {
        let r = find(root, c)
            .and_then(|(_, s)| lifecycle::signal(&s, sig).map_err(|e| Coded(1, e.into()).into()));
        match r {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("rrun: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn rm(root: &Path, a: &RmArgs) -> Result<i32> {
    require_root("rrun rm")?;
    let mut code = 0;
    for c in &a.containers {
        let r = find(root, c).and_then(|(dir, s)| {
            lifecycle::remove(&dir, &s, a.force).map_err(|e| Coded(1, e.into()).into())
        });
        match r {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("rrun: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn logs(root: &Path, a: &LogsArgs) -> Result<i32> {
    let (dir, _) = find(root, &a.container)?;
    let p = dir.join("container.log");
    match std::fs::File::open(&p) {
        Ok(mut f) => {
            std::io::copy(&mut f, &mut std::io::stdout().lock()).context("write logs")?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => bail!(Coded(1, anyhow!("read {}: {e}", p.display()))),
    }
    Ok(0)
}

/// The environment of an `exec`: the container's, with each `-e KEY=VALUE`
/// (or `-e KEY`, taken from ours, as Docker does) replacing its key. An
/// entry with an empty name (`-e =x`) is refused.
pub fn exec_env(
    base: &[String],
    given: &[String],
) -> Result<Vec<String>, runner::envvars::EnvError> {
    let mut env = base.to_vec();
    for e in given {
        runner::envvars::check_entry(e)?;
        let kv = if e.contains('=') {
            e.clone()
        } else {
            format!("{e}={}", std::env::var(e).unwrap_or_default())
        };
        let key = kv.split('=').next().unwrap_or("").to_string();
        env.retain(|x| x.split('=').next() != Some(key.as_str()));
        env.push(kv);
    }
    Ok(env)
}

pub fn exec(root: &Path, a: &ExecArgs) -> Result<i32> {
    require_root("rrun exec")?;
    let (_, s) = find(root, &a.container)?;
    if !s.is_running() {
        bail!(Coded(1, anyhow!("container {} is not running", s.name)));
    }
    let env = exec_env(&s.exec.env, &a.env).map_err(|e| Coded(125, e.into()))?;
    let (uid, gid, groups) = match &a.user {
        None => (s.exec.uid, s.exec.gid, s.exec.groups.clone()),
        Some(u) => {
            let pid = s.pid.map(|p| p.pid).unwrap_or(0);
            let r =
                runner::user::resolve_in_layers(u, &[PathBuf::from(format!("/proc/{pid}/root"))])
                    .map_err(|e| Coded(125, e.into()))?;
            (r.spec.uid, r.spec.gid, r.spec.additional_gids)
        }
    };
    let devnull = std::fs::File::open("/dev/null").context("open /dev/null")?;
    use std::os::fd::AsRawFd;
    let req = ExecRequest {
        args: a.command.clone(),
        env,
        cwd: a.workdir.clone().unwrap_or_else(|| s.exec.cwd.clone()),
        uid,
        gid,
        groups,
        stdio: [(!a.interactive).then(|| devnull.as_raw_fd()), None, None],
        controlling_tty: false,
        tty: a.tty,
        stdin: a.interactive,
    };
    let status = runner::exec::exec(&s, &req)?;
    Ok(status.code())
}

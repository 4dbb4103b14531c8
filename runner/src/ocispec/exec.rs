//! `exec`: another process in a created or running container, as runc's
//! `exec` makes it.
//!
//! The process is the container's config.json with its `process` replaced:
//! by the `--process` file as it is, or by the config's own process with
//! the command line's arguments and overrides (`--env` appended, `--cwd`,
//! `--user`, `--additional-gids`, `--cap` added to the bounding,
//! effective and permitted sets, `--no-new-privs`, `--tty`). It goes
//! through the same check and translation as `create`'s config
//! (`super::load_value`), and its security settings come from the same
//! function (`lifecycle::process_security`), so an exec'ed process is
//! confined exactly as the container's first process.
//!
//! The process is born in the container's pid namespace (this process
//! joins it for its children and forks, `exec::Target::spawn`). With
//! `detach` we return as soon as it has exec'ed: it is re-parented to our
//! caller (containerd's shim and conmon are subreapers), with no rbox
//! process in between. Without, we wait for it, forwarding signals, and
//! return its exit status (128 + the signal that killed it).

use std::os::fd::OwnedFd;
use std::path::Path;

use serde_json::{json, Value};

use crate::native::exec::{JoinPlan, Target};
use crate::native::spawn::{self, WaitResult};
use crate::sys;

use super::state::Status;
use super::{lifecycle, OciError, Result};

/// Where the process comes from.
#[derive(Debug, Clone, Default)]
pub struct ExecOverrides {
    /// `ARGS...`: the command (required without `--process`).
    pub args: Vec<String>,
    pub tty: bool,
    pub cwd: Option<String>,
    /// `K=V`, appended to the config's environment.
    pub env: Vec<String>,
    /// `UID[:GID]`, numeric.
    pub user: Option<String>,
    pub additional_gids: Vec<u32>,
    /// Capability names, with or without `CAP_`.
    pub caps: Vec<String>,
    pub no_new_privs: bool,
}

pub struct ExecOpts<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    /// `--process`: a runtime-spec process object; the overrides are
    /// then ignored (as runc does).
    pub process: Option<&'a Path>,
    pub overrides: ExecOverrides,
    pub console_socket: Option<&'a Path>,
    pub pid_file: Option<&'a Path>,
    pub detach: bool,
    pub preserve_fds: u32,
    /// Exec into a paused container anyway (the process starts frozen).
    pub ignore_paused: bool,
}

/// Run the process; the exit code to return: its status without
/// `detach`, 0 with it.
pub fn exec(o: &ExecOpts<'_>) -> Result<i32> {
    let (saved, status) = lifecycle::state(o.root, o.id)?;
    let saved = match (saved, status) {
        (Some(s), Status::Created | Status::Running) => s,
        (Some(s), Status::Paused) if o.ignore_paused => s,
        (_, Status::Paused) => {
            return Err(OciError::WrongState {
                id: o.id.to_string(),
                status: status.as_str(),
                what: "resume it before exec (or exec --ignore-paused)",
            })
        }
        _ => {
            return Err(OciError::WrongState {
                id: o.id.to_string(),
                status: status.as_str(),
                what: "cannot exec in a container that is not running",
            })
        }
    };
    let config_path = saved.bundle.join("config.json");
    let mut config = super::read_json(&config_path)?;
    let (process, named) = match o.process {
        Some(p) => (super::read_json(p)?, p.to_path_buf()),
        None => (
            with_overrides(config.get("process").cloned(), &o.overrides)?,
            config_path.clone(),
        ),
    };
    config["process"] = process;
    let b = super::load_value(&saved.bundle, &named, config)?;
    super::check_terminal(b.terminal, o.console_socket)?;
    let console: Option<OwnedFd> = o.console_socket.map(super::connect_console).transpose()?;
    let (driver, name) = super::cgroup_for(saved.cgroups_path.as_deref(), &saved.id)?;
    let target = Target::open(saved.pid, driver.open(&name))
        .map_err(|e| OciError::Other(format!("exec in {}: {e}", o.id)))?;
    let env_path = b.env.iter().rev().find_map(|kv| kv.strip_prefix("PATH="));
    let plan = JoinPlan {
        argv: b.args.iter().map(sys::cstring).collect(),
        envp: b.env.iter().map(sys::cstring).collect(),
        candidates: spawn::exec_candidates(&b.args[0], env_path),
        cwd: sys::cstring(b.cwd.trim_start_matches('/')),
        create_cwd: false,
        uid: b.uid,
        gid: b.gid,
        groups: b.groups.clone(),
        rlimits: b.rlimits.clone(),
        security: lifecycle::process_security(&b)?,
        stdio: [None; 3],
        controlling_tty: false,
        console: console.map(|c| {
            let ws = b.console_size.map(|(rows, cols)| libc::winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            });
            (c, ws)
        }),
        preserve_fds: o.preserve_fds,
    };
    // Blocked before the fork, so none is lost; the child unblocks them.
    let signals = spawn::ForwardedSignals::block();
    let pid = target.spawn(plan).map_err(|e| match e {
        crate::native::exec::ExecError::Command { code, message } => {
            OciError::Spawn(spawn::SpawnError::Child { code, message })
        }
        e => OciError::Other(format!("exec in {}: {e}", o.id)),
    })?;
    if let Some(p) = o.pid_file {
        if let Err(e) = lifecycle::write_pid_file(p, pid) {
            // SAFETY: kill takes integers; pid is our own child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = spawn::try_wait(pid, true);
            return Err(e);
        }
    }
    if o.detach {
        return Ok(0);
    }
    let r = signals
        .wait(pid, || {})
        .map_err(|e| OciError::Other(format!("wait for the exec'ed process {pid}: {e}")))?;
    Ok(match r {
        WaitResult::Exited(c) => c,
        WaitResult::Signaled(s) => 128 + s,
    })
}

/// The config's process with runc exec's command-line overrides.
fn with_overrides(process: Option<Value>, o: &ExecOverrides) -> Result<Value> {
    if o.args.is_empty() {
        return Err(OciError::Other(
            "exec needs a command (ARGS after the id) or --process FILE".into(),
        ));
    }
    let mut p = process.unwrap_or_else(|| json!({"cwd": "/", "user": {"uid": 0, "gid": 0}}));
    p["args"] = json!(o.args);
    p["terminal"] = json!(o.tty);
    if let Some(cwd) = &o.cwd {
        p["cwd"] = json!(cwd);
    }
    if !o.env.is_empty() {
        let mut env: Vec<Value> = p["env"].as_array().cloned().unwrap_or_default();
        for kv in &o.env {
            if !kv.contains('=') {
                return Err(OciError::Other(format!("--env {kv:?}: expected KEY=VALUE")));
            }
            env.push(json!(kv));
        }
        p["env"] = Value::Array(env);
    }
    if let Some(u) = &o.user {
        let (uid, gid) = parse_user(u)?;
        p["user"]["uid"] = json!(uid);
        if let Some(g) = gid {
            p["user"]["gid"] = json!(g);
        }
    }
    if !o.additional_gids.is_empty() {
        p["user"]["additionalGids"] = json!(o.additional_gids);
    }
    for c in &o.caps {
        let up = c.to_ascii_uppercase();
        let name = if up.starts_with("CAP_") {
            up
        } else {
            format!("CAP_{up}")
        };
        for set in ["bounding", "effective", "permitted"] {
            let mut v: Vec<Value> = p["capabilities"][set]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !v.contains(&json!(name)) {
                v.push(json!(name));
            }
            p["capabilities"][set] = Value::Array(v);
        }
    }
    if o.no_new_privs {
        p["noNewPrivileges"] = json!(true);
    }
    Ok(p)
}

/// `UID[:GID]`, numbers only (runc's exec takes no names).
fn parse_user(u: &str) -> Result<(u32, Option<u32>)> {
    let bad = || OciError::Other(format!("--user {u:?}: expected UID[:GID] as numbers"));
    let (uid, gid) = match u.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (u, None),
    };
    let uid = uid.parse().map_err(|_| bad())?;
    let gid = gid.map(|g| g.parse().map_err(|_| bad())).transpose()?;
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_replace_args_and_add_env_user_caps() {
        let base = json!({"args": ["sh"], "env": ["PATH=/bin"], "cwd": "/",
            "user": {"uid": 0, "gid": 0},
            "capabilities": {"bounding": ["CAP_CHOWN"], "effective": ["CAP_CHOWN"]}});
        let o = ExecOverrides {
            args: vec!["id".into(), "-u".into()],
            env: vec!["A=1".into()],
            user: Some("1000:1001".into()),
            caps: vec!["net_admin".into(), "CAP_CHOWN".into()],
            cwd: Some("/tmp".into()),
            no_new_privs: true,
            ..Default::default()
        };
        let p = with_overrides(Some(base), &o).unwrap();
        assert_eq!(p["args"], json!(["id", "-u"]));
        assert_eq!(p["env"], json!(["PATH=/bin", "A=1"]));
        assert_eq!(p["user"], json!({"uid": 1000, "gid": 1001}));
        assert_eq!(p["cwd"], json!("/tmp"));
        assert_eq!(p["terminal"], json!(false));
        assert_eq!(p["noNewPrivileges"], json!(true));
        assert_eq!(
            p["capabilities"]["bounding"],
            json!(["CAP_CHOWN", "CAP_NET_ADMIN"])
        );
        assert_eq!(
            p["capabilities"]["permitted"],
            json!(["CAP_NET_ADMIN", "CAP_CHOWN"])
        );
    }

    #[test]
    fn bad_overrides_are_named() {
        let none = ExecOverrides::default();
        assert!(with_overrides(None, &none)
            .unwrap_err()
            .to_string()
            .contains("needs a command"));
        let o = ExecOverrides {
            args: vec!["true".into()],
            user: Some("nobody".into()),
            ..Default::default()
        };
        assert!(with_overrides(None, &o)
            .unwrap_err()
            .to_string()
            .contains("--user \"nobody\""));
        let o = ExecOverrides {
            args: vec!["true".into()],
            env: vec!["NOEQ".into()],
            ..Default::default()
        };
        assert!(with_overrides(None, &o)
            .unwrap_err()
            .to_string()
            .contains("KEY=VALUE"));
    }
}

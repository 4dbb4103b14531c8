//! `rrun exec [-it] NAME CMD` on a container an external OCI runtime runs:
//! through the runtime's own `exec`, which joins the namespaces, cgroup,
//! capabilities and seccomp filter it gave the container. `--detach`
//! with a pid file, so that the process, re-parented to rrun (a
//! subreaper), is waited for here like the container's first one: its
//! exit code, forwarded signals and the -t relay work as in `run`.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use engine::runtime::ExitStatus;
use runner::console::Relay;
use runner::external::ctl::{become_subreaper, ConsoleSocket, OciContainer, OciExec};
use runner::native::spawn::{ForwardedSignals, WaitResult};

use crate::cli::ExecArgs;
use crate::oci_run::CONSOLE_TIMEOUT;
use crate::run::{require_root, Coded};

/// `Ok(None)`: not a container of an external runtime (or no such
/// container: the native path says so in its own words).
pub fn exec(root: &Path, a: &ExecArgs) -> Result<Option<i32>> {
    let Ok((dir, s)) = runner::state::find(&root.join("containers"), &a.container) else {
        return Ok(None);
    };
    let Some(runtime) = runner::external::ctl::runtime_of(&dir) else {
        return Ok(None);
    };
    require_root("rrun exec")?;
    if !s.is_running() {
        bail!(Coded(1, anyhow!("container {} is not running", s.name)));
    }
    let mut env = crate::admin::exec_env(&s.exec.env, &a.env).map_err(|e| Coded(125, e.into()))?;
    if a.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let (uid, gid) = match &a.user {
        None => (s.exec.uid, s.exec.gid),
        Some(u) => {
            let pid = s.pid.map(|p| p.pid).unwrap_or(0);
            let r =
                runner::user::resolve_in_layers(u, &[PathBuf::from(format!("/proc/{pid}/root"))])
                    .map_err(|e| Coded(125, e.into()))?;
            (r.spec.uid, r.spec.gid)
        }
    };
    let req = OciExec {
        args: a.command.clone(),
        env,
        cwd: a.workdir.clone().unwrap_or_else(|| s.exec.cwd.clone()),
        uid,
        gid,
    };
    let pid = s.pid.map(|p| p.pid).unwrap_or(0);
    if !command_exists(pid, &req.args[0], &req.env) {
        bail!(Coded(
            127,
            anyhow!("{:?}: executable file not found in $PATH", req.args[0])
        ));
    }
    let ctr = OciContainer::new(&runtime, &dir.join("bundle"), &s.id);
    let signals = ForwardedSignals::block();
    become_subreaper()?;
    let console = a.tty.then(ConsoleSocket::bind).transpose()?;
    let pid = ctr
        .exec(
            &req,
            &dir,
            console.as_ref().map(|c| c.path()),
            a.interactive,
        )
        .map_err(|e| Coded(126, e.into()))?;
    let relay = match &console {
        Some(c) => {
            let conn = c.accept(CONSOLE_TIMEOUT)?;
            let relay = Relay::start(conn.as_fd(), pid, [None; 3], a.interactive)?;
            relay.follow_window_size();
            Some(relay)
        }
        None => None,
    };
    let waited = signals.wait(pid, || {
        if let Some(r) = &relay {
            r.follow_window_size();
        }
    });
    if let Some(r) = relay {
        r.finish();
    }
    let status = match waited? {
        WaitResult::Exited(c) => ExitStatus::Exited(c),
        WaitResult::Signaled(s) => ExitStatus::Signaled(s),
    };
    Ok(Some(status.code()))
}

/// Whether `argv0` names a file in the container whose first process is
/// `pid`, looked up as exec would (through PATH unless it has a slash),
/// so a missing command gets Docker's 127 and one line rather than the
/// runtime's message. lstat only: a symlink inside the container must
/// not be followed on the host's side of /proc/PID/root.
fn command_exists(pid: i32, argv0: &str, env: &[String]) -> bool {
    let root = PathBuf::from(format!("/proc/{pid}/root"));
    let at = |p: &str| {
        root.join(p.trim_start_matches('/'))
            .symlink_metadata()
            .is_ok()
    };
    if argv0.contains('/') {
        return at(argv0);
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(runner::DEFAULT_PATH);
    path.split(':')
        .filter(|d| !d.is_empty())
        .any(|d| at(&format!("{d}/{argv0}")))
}

//! One container of an external OCI runtime driven in steps — `create`,
//! `start`, `exec --detach`, `delete` — instead of one `run`, so
//! that rrun itself waits for the container's process: the caller makes
//! itself a child subreaper (`become_subreaper`), the runtime's `create`
//! exits once the process is made, and the process is re-parented to the
//! caller, which gets its exit status from waitpid like the native runner
//! does. That gives detached containers a supervisor of rrun's own, the
//! container's pid for `state.json`, and its cgroup still there after the
//! exit (until `delete`), to read the OOM kill counter from.
//!
//! `-t` goes through the runtime's console socket: a unix socket we listen
//! on, to which the runtime sends the pty master with SCM_RIGHTS.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::external::{runtime_command, OciError};
use crate::native::rootfs::RootfsPlan;

/// A container `binary` knows under `id`, with its state under `root`.
#[derive(Debug, Clone)]
pub struct OciContainer {
    pub binary: String,
    pub root: PathBuf,
    pub id: String,
}

/// A process to start in a running container (`exec`).
#[derive(Debug, Clone, Default)]
pub struct OciExec {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub tty: bool,
}

impl OciExec {
    /// The runtime-spec `process` for `exec --process`: the container's
    /// own (`base`, config.json's: capabilities, noNewPrivileges, rlimits,
    /// umask…) with this request's args, env, cwd, user and terminal.
    /// Through a file because neither crun's nor runc's `exec` has a flag
    /// for additionalGids.
    pub fn process(&self, base: &serde_json::Value) -> serde_json::Value {
        let mut p = match base {
            serde_json::Value::Object(_) => base.clone(),
            _ => serde_json::json!({}),
        };
        let umask = p["user"].get("umask").cloned();
        p["args"] = serde_json::json!(self.args);
        p["env"] = serde_json::json!(self.env);
        p["cwd"] = serde_json::json!(if self.cwd.is_empty() { "/" } else { &self.cwd });
        p["terminal"] = serde_json::json!(self.tty);
        p["user"] = serde_json::json!({
            "uid": self.uid,
            "gid": self.gid,
            "additionalGids": self.additional_gids,
        });
        if let Some(u) = umask {
            p["user"]["umask"] = u;
        }
        if let Some(o) = p.as_object_mut() {
            o.remove("consoleSize");
        }
        p
    }
}

/// The file (in the container's directory) naming the runtime of a
/// container that an external runtime runs; absent for native ones.
pub const RUNTIME_FILE: &str = "runtime";

/// The bundle (config.json, the runtime's state) of the container whose
/// own directory is `dir` (the parent of its merged dir: rrun's
/// `containers/<id>`).
pub fn bundle_dir(dir: &Path) -> PathBuf {
    dir.join("bundle")
}

/// The runtime of the container in `dir`, if an external one runs it.
/// Only the names `rrun run --runtime` accepts: the file decides what
/// binary root runs later.
pub fn runtime_of(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(RUNTIME_FILE)).ok()?;
    let name = text.trim();
    ["crun", "runc", "youki"]
        .contains(&name)
        .then(|| name.to_string())
}

/// For the reaper, after rrun's supervisor of the container in `dir` died:
/// the runtime deletes what it still holds (its state, and its cgroups in
/// every v1 hierarchy it used, not only those the native driver knows).
/// Nothing to do for a native container or one already deleted.
pub fn delete_leftover(dir: &Path, id: &str) {
    let Some(runtime) = runtime_of(dir) else {
        return;
    };
    let bundle = bundle_dir(dir);
    if bundle.join("state").join(id).exists() {
        let _ = OciContainer::new(&runtime, &bundle, id).delete();
    }
}

/// Makes the calling process the reaper of its orphaned descendants: a
/// container process whose runtime exited becomes our child.
pub fn become_subreaper() -> Result<(), OciError> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(OciError::Io {
            what: "become a child subreaper (prctl)",
            path: PathBuf::from("/proc/self"),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

impl OciContainer {
    /// The container `id` of `binary` whose bundle is `bundle` (its
    /// runtime state lives beside the config, so it goes with the bundle).
    pub fn new(binary: &str, bundle: &Path, id: &str) -> OciContainer {
        OciContainer {
            binary: binary.to_string(),
            root: bundle.join("state"),
            id: id.to_string(),
        }
    }

    fn command(&self, overlay: Option<RootfsPlan>) -> Command {
        runtime_command(&self.binary, &self.root, overlay)
    }

    fn failed(&self, what: &'static str, detail: impl Into<String>) -> OciError {
        OciError::Runtime {
            binary: self.binary.clone(),
            what,
            id: self.id.clone(),
            detail: detail.into(),
        }
    }

    /// Runs `cmd` (one that hands no stdio to a container) to its end;
    /// the last line of its stderr names a failure.
    fn status(&self, what: &'static str, mut cmd: Command) -> Result<(), OciError> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let out = cmd.output().map_err(|source| OciError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        if out.status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&out.stderr);
        let last = text.lines().rev().find(|l| !l.trim().is_empty());
        Err(self.failed(
            what,
            match last {
                Some(l) => l.trim().to_string(),
                None => out.status.to_string(),
            },
        ))
    }

    /// `create`: the container's process made, stopped before exec, in a
    /// mount namespace holding `overlay`. Its stdio are ours (`stdin`
    /// null unless `stdin`); with `console` the runtime sends the pty
    /// master there instead. Returns the process's host pid.
    pub fn create(
        &self,
        bundle: &Path,
        overlay: RootfsPlan,
        console: Option<&Path>,
        stdin: bool,
        output: Option<&OwnedFd>,
    ) -> Result<i32, OciError> {
        let pid_file = bundle.join("init.pid");
        let log = bundle.join("runtime.log");
        let mut cmd = self.command(Some(overlay));
        // Its error also goes to a file in a known format, read back by
        // `last_error` for the message of a failed create.
        cmd.arg("--log")
            .arg(&log)
            .arg("--log-format")
            .arg("json")
            .arg("create")
            .arg("--bundle")
            .arg(bundle)
            .arg("--pid-file")
            .arg(&pid_file);
        if let Some(sock) = console {
            cmd.arg("--console-socket").arg(sock);
        }
        cmd.arg(&self.id);
        if !stdin || console.is_some() {
            cmd.stdin(Stdio::null());
        }
        if let Some(fd) = output {
            let dup = |fd: &OwnedFd| {
                fd.try_clone().map_err(|source| OciError::Io {
                    what: "duplicate the output descriptor for",
                    path: bundle.to_path_buf(),
                    source,
                })
            };
            cmd.stdout(Stdio::from(dup(fd)?))
                .stderr(Stdio::from(dup(fd)?));
        }
        // Not captured: without a terminal the container inherits the
        // runtime's stdout and stderr, so its error shows where the
        // container's output would.
        let status = cmd.status().map_err(|source| OciError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        if !status.success() {
            let said = last_error(&log).unwrap_or_else(|| status.to_string());
            return Err(self.failed("create", said));
        }
        read_pid(&pid_file).map_err(|e| self.failed("create", e))
    }

    /// `start`: the created process goes on to exec the command.
    pub fn start(&self) -> Result<(), OciError> {
        let mut cmd = self.command(None);
        cmd.arg("start").arg(&self.id);
        self.status("start", cmd)
    }

    /// `kill ID SIGNAL`: a signal to the container's first process.
    pub fn kill(&self, signal: i32) -> Result<(), OciError> {
        let mut cmd = self.command(None);
        cmd.arg("kill").arg(&self.id).arg(signal.to_string());
        self.status("kill", cmd)
    }

    /// `delete --force`: its runtime state and cgroup go (killing what is
    /// left in it).
    pub fn delete(&self) -> Result<(), OciError> {
        let mut cmd = self.command(None);
        cmd.arg("delete").arg("--force").arg(&self.id);
        self.status("delete", cmd)
    }

    /// `pause`: the runtime freezes the container's cgroup.
    pub fn pause(&self) -> Result<(), OciError> {
        let mut cmd = self.command(None);
        cmd.arg("pause").arg(&self.id);
        self.status("pause", cmd)
    }

    /// `resume`: thaws it.
    pub fn resume(&self) -> Result<(), OciError> {
        let mut cmd = self.command(None);
        cmd.arg("resume").arg(&self.id);
        self.status("resume", cmd)
    }

    /// `update` with the limits `res` sets, as the runtime's flags (runc's
    /// and crun's: --memory, --memory-swap, --cpu-quota, --cpu-period,
    /// --cpu-share, --pids-limit; -1 removes the CPU quota or the pids
    /// limit).
    pub fn update(&self, res: &engine::runtime::Resources) -> Result<(), OciError> {
        let mut cmd = self.command(None);
        cmd.arg("update");
        let mut flag = |name: &str, v: Option<String>| {
            if let Some(v) = v {
                cmd.arg(format!("--{name}={v}"));
            }
        };
        flag("memory", res.memory_bytes.map(|m| m.to_string()));
        flag("memory-swap", res.memory_swap_bytes.map(|m| m.to_string()));
        // Removing a limit: -1, as runc's and crun's flags take it.
        let limit = |v: u64| {
            if v == engine::runtime::Resources::UNLIMITED {
                "-1".to_string()
            } else {
                v.to_string()
            }
        };
        flag("cpu-quota", res.cpu_quota_us.map(limit));
        flag("cpu-period", res.cpu_period_us.map(|p| p.to_string()));
        flag("cpu-share", res.cpu_shares.map(|s| s.to_string()));
        flag("pids-limit", res.pids_limit.map(limit));
        cmd.arg(&self.id);
        self.status("update", cmd)
    }

    /// `state`: the runtime's status of the container (`created`,
    /// `running`, `paused`, `stopped`).
    pub fn state(&self) -> Result<String, OciError> {
        let mut cmd = self.command(None);
        cmd.arg("state")
            .arg(&self.id)
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        let out = cmd.output().map_err(|source| OciError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        if !out.status.success() {
            let text = String::from_utf8_lossy(&out.stderr);
            let last = text.lines().rev().find(|l| !l.trim().is_empty());
            return Err(self.failed(
                "state",
                last.map(|l| l.trim().to_string())
                    .unwrap_or_else(|| out.status.to_string()),
            ));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| self.failed("state", format!("its output is not JSON: {e}")))?;
        v["status"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| self.failed("state", "its output has no status"))
    }

    /// `exec --detach --process FILE`: starts `process` (a runtime-spec
    /// process, `OciExec::process`) in the container and returns its host
    /// pid once it runs; with a subreaper it is then the caller's child.
    /// `dir` holds the process file (0600) and the runtime's pid file
    /// meanwhile. With `console` (and `process.terminal`), a terminal
    /// whose master the runtime sends there.
    pub fn exec(
        &self,
        process: &serde_json::Value,
        dir: &Path,
        console: Option<&Path>,
        stdin: bool,
    ) -> Result<i32, OciError> {
        let me = std::process::id();
        let pid_file = dir.join(format!("exec-{me}.pid"));
        let process_file = dir.join(format!("exec-{me}.json"));
        write_private(&process_file, &serde_json::to_vec(process).expect("json")).map_err(
            |source| OciError::Io {
                what: "write",
                path: process_file.clone(),
                source,
            },
        )?;
        let mut cmd = self.command(None);
        cmd.arg("exec")
            .arg("--detach")
            .arg("--pid-file")
            .arg(&pid_file)
            .arg("--process")
            .arg(&process_file);
        if let Some(sock) = console {
            cmd.arg("--console-socket").arg(sock);
        }
        cmd.arg(&self.id);
        if !stdin || console.is_some() {
            cmd.stdin(Stdio::null());
        }
        // Not captured: the process inherits the runtime's stdio (a pipe
        // here would be the process's stderr, open until it ends).
        let status = cmd.status();
        let _ = std::fs::remove_file(&process_file);
        let status = status.map_err(|source| OciError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        if !status.success() {
            let _ = std::fs::remove_file(&pid_file);
            return Err(self.failed("exec", format!("{status} (its message is above)")));
        }
        let pid = read_pid(&pid_file).map_err(|e| self.failed("exec", e));
        let _ = std::fs::remove_file(&pid_file);
        pid
    }
}

/// `data` in a new file at `path` only its owner can read (mode 0600
/// from its creation, not chmod'ed after).
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

/// The last error a runtime logged with `--log-format json` (crun and
/// runc both write `{"level": "error", "msg": ...}` lines).
fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        (v["level"] == "error")
            .then(|| v["msg"].as_str().map(String::from))
            .flatten()
    })
}

/// Docker's exit code for a command the runtime could not start, read
/// from its message (its wording, crun's and runc's): 127 not found, 126
/// not executable; `None` for any other failure (125).
pub fn command_exit_code(e: &OciError) -> Option<i32> {
    let OciError::Runtime {
        what: "create",
        detail,
        ..
    } = e
    else {
        return None;
    };
    if detail.contains("not found in $PATH") || detail.contains("no such file or directory") {
        Some(127)
    } else if detail.contains("executable") && detail.to_lowercase().contains("permission denied")
        || detail.contains("exec: ") && detail.ends_with("permission denied")
    {
        Some(126)
    } else {
        None
    }
}

fn read_pid(path: &Path) -> Result<i32, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|_| format!("{}: not a pid: {text:?}", path.display()))
}

/// How long the runtime has to connect to a console socket once its
/// `create` or `exec` returned.
pub const CONSOLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The listening end of an OCI console socket. Its path is short (a unix
/// socket path has 108 bytes, a store path may not fit), under /run.
pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

const CONSOLE_DIR: &str = "/run/rbox/console";

impl ConsoleSocket {
    pub fn bind() -> Result<ConsoleSocket, OciError> {
        use std::os::unix::fs::DirBuilderExt;
        let io = |what: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| OciError::Io { what, path, source }
        };
        let dir = Path::new(CONSOLE_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io("create", dir))?;
        let path = dir.join(engine::fsutil::unique_name("c"));
        let listener = UnixListener::bind(&path).map_err(io("listen on", &path))?;
        Ok(ConsoleSocket { path, listener })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The runtime's connection, which carries the master; called after
    /// the runtime's `create`/`exec` returned, so it is queued already
    /// (a missing one fails after `timeout` instead of hanging).
    pub fn accept(&self, timeout: Duration) -> Result<OwnedFd, OciError> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let err = |source| OciError::Io {
            what: "accept the runtime's console connection on",
            path: self.path.clone(),
            source,
        };
        let mut p = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
        let ms = PollTimeout::try_from(timeout.as_millis() as i32).unwrap_or(PollTimeout::NONE);
        match poll(&mut p, ms) {
            Ok(0) => return Err(err(std::io::Error::from(std::io::ErrorKind::TimedOut))),
            Err(e) => return Err(err(e.into())),
            Ok(_) => {}
        }
        let (stream, _) = self.listener.accept().map_err(err)?;
        Ok(stream.into())
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

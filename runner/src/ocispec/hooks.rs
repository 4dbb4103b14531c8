//! OCI hooks (runtime-spec config.md, "POSIX-platform Hooks"): programs
//! run at fixed moments of a container's lifecycle with the container's
//! state as JSON on their stdin.
//!
//! Where each kind runs:
//! - `prestart` (deprecated) and `createRuntime`: in `create`, by the
//!   runtime, in the runtime's namespaces, once the container's
//!   namespaces exist and its mounts are made, before `pivot_root` (the
//!   container's first process waits for them at that point:
//!   `spawn::ChildPlan::hooks`).
//! - `createContainer`: by the container's first process, in the
//!   container's namespaces, at the same point (path resolved in the
//!   runtime's filesystem: the old root is still there).
//! - `startContainer`: by the container's first process after `start`
//!   opened its gate, after the pivot and the switch to the user, just
//!   before execve (path resolved in the container).
//! - `poststart`: by `start`, in the runtime's namespaces, once the gate
//!   is open.
//! - `poststop`: by `delete` (and a failed `create`), once the container
//!   is gone.
//!
//! A failure of any but `poststop` fails the operation and the container
//! is torn down (runtime-spec 1.2 lifecycle steps 3-9); a failing
//! `poststop` is a warning and the remaining hooks still run.
//!
//! A hook's stdin and its stdout/stderr are memfds: the state never
//! blocks on a pipe, the output is read back (its end, bounded) into the
//! error, and nothing needs a thread (the container's first process
//! runs hooks too).

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One hook: `path` with `args` (argv, `args[0]` included) and exactly
/// `env` as its environment, killed after `timeout` seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    pub path: PathBuf,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
}

/// Every hook of a config.json, by kind, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hooks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prestart: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_runtime: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create_container: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub start_container: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststart: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststop: Vec<Hook>,
}

/// The kinds, as config.json names them (`features` lists these).
pub const KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.all().iter().all(|(_, h)| h.is_empty())
    }

    fn all(&self) -> [(&'static str, &Vec<Hook>); 6] {
        [
            (KINDS[0], &self.prestart),
            (KINDS[1], &self.create_runtime),
            (KINDS[2], &self.create_container),
            (KINDS[3], &self.start_container),
            (KINDS[4], &self.poststart),
            (KINDS[5], &self.poststop),
        ]
    }

    /// Whether any hook runs during `create` or in the container's first
    /// process (which then stops before its pivot for them).
    pub fn in_create_or_start(&self) -> bool {
        self.all()[..4].iter().any(|(_, h)| !h.is_empty())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {path}: {what}: {source}")]
    Io {
        kind: &'static str,
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{kind} hook {path} failed: {how}{}", output_suffix(.output))]
    Failed {
        kind: &'static str,
        path: PathBuf,
        how: String,
        output: String,
    },
    #[error("{kind} hook {path} did not finish within its timeout of {secs} s: killed{}", output_suffix(.output))]
    Timeout {
        kind: &'static str,
        path: PathBuf,
        secs: u32,
        output: String,
    },
}

fn output_suffix(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!(" (output: {output})")
    }
}

/// The hooks of a parsed config, checked: absolute paths, `KEY=VALUE`
/// environments, positive timeouts. Errors name the field
/// (`hooks.createRuntime[1].timeout`).
pub fn from_spec(h: Option<&oci_spec::runtime::Hooks>) -> Result<Hooks, super::OciError> {
    let Some(h) = h else {
        return Ok(Hooks::default());
    };
    let list = |kind: &str, v: &Option<Vec<oci_spec::runtime::Hook>>| {
        let mut out = Vec::new();
        for (i, x) in v.iter().flatten().enumerate() {
            let field = |f: &str| format!("hooks.{kind}[{i}].{f}");
            if !x.path().is_absolute() {
                return Err(super::invalid(field("path"), "must be an absolute path"));
            }
            let env = x.env().clone().unwrap_or_default();
            if let Some(j) = env.iter().position(|kv| !kv.contains('=')) {
                return Err(super::invalid(
                    format!("hooks.{kind}[{i}].env[{j}]"),
                    format!("{:?} is not KEY=VALUE", env[j]),
                ));
            }
            let timeout = match x.timeout() {
                None => None,
                Some(t) if t > 0 && t <= u32::MAX as i64 => Some(t as u32),
                Some(t) => {
                    return Err(super::invalid(
                        field("timeout"),
                        format!("{t}: must be a positive number of seconds"),
                    ))
                }
            };
            out.push(Hook {
                path: x.path().clone(),
                args: x.args().clone().unwrap_or_default(),
                env,
                timeout,
            });
        }
        Ok(out)
    };
    Ok(Hooks {
        prestart: list(KINDS[0], h.prestart())?,
        create_runtime: list(KINDS[1], h.create_runtime())?,
        create_container: list(KINDS[2], h.create_container())?,
        start_container: list(KINDS[3], h.start_container())?,
        poststart: list(KINDS[4], h.poststart())?,
        poststop: list(KINDS[5], h.poststop())?,
    })
}

/// Run `hooks` in order, stopping at the first failure.
pub fn run_all(kind: &'static str, hooks: &[Hook], state: &[u8]) -> Result<(), HookError> {
    hooks.iter().try_for_each(|h| run(kind, h, state))
}

/// Run every hook of `hooks` (poststop): failures are warnings.
pub fn run_all_warn(kind: &'static str, hooks: &[Hook], state: &[u8]) {
    for h in hooks {
        if let Err(e) = run(kind, h, state) {
            warn(&e.to_string());
        }
    }
}

static WARN: OnceLock<fn(&str)> = OnceLock::new();

/// Where warnings go (rbox-runtime's log); stderr until set.
pub fn set_warn_sink(f: fn(&str)) {
    let _ = WARN.set(f);
}

fn warn(msg: &str) {
    match WARN.get() {
        Some(f) => f(msg),
        None => eprintln!("rbox-runtime: warning: {msg}"),
    }
}

/// How much of a failed hook's output the error keeps (its end).
const OUTPUT_TAIL: usize = 2048;

/// Run one hook with `state` on its stdin and wait for it, at most its
/// timeout (then SIGKILL).
pub fn run(kind: &'static str, hook: &Hook, state: &[u8]) -> Result<(), HookError> {
    let io = |what: &'static str| {
        move |source: std::io::Error| HookError::Io {
            kind,
            path: hook.path.clone(),
            what,
            source,
        }
    };
    let mut stdin = memfd(c"rbox-hook-state").map_err(io("create its stdin"))?;
    stdin.write_all(state).map_err(io("write the state"))?;
    stdin
        .seek(SeekFrom::Start(0))
        .map_err(io("write the state"))?;
    let mut output = memfd(c"rbox-hook-output").map_err(io("create its output"))?;
    let out2 = output.try_clone().map_err(io("create its output"))?;
    let out3 = output.try_clone().map_err(io("create its output"))?;
    let mut cmd = Command::new(&hook.path);
    if let Some((a0, rest)) = hook.args.split_first() {
        cmd.arg0(a0).args(rest);
    }
    cmd.env_clear();
    for kv in &hook.env {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::from(stdin))
        .stdout(Stdio::from(out2))
        .stderr(Stdio::from(out3));
    let mut child = cmd.spawn().map_err(io("start"))?;
    let exited = wait_for(child.id() as libc::pid_t, hook.timeout).map_err(io("wait"))?;
    if !exited {
        let _ = child.kill();
    }
    let status = child.wait().map_err(io("wait"))?;
    let mut tail = || {
        let mut buf = Vec::new();
        let _ = output.seek(SeekFrom::Start(0));
        let _ = (&mut output).take(1 << 20).read_to_end(&mut buf);
        let s = String::from_utf8_lossy(&buf);
        let s = s.trim();
        let start = s.len().saturating_sub(OUTPUT_TAIL);
        let start = (start..=s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        s[start..].replace('\n', "; ")
    };
    if !exited {
        return Err(HookError::Timeout {
            kind,
            path: hook.path.clone(),
            secs: hook.timeout.unwrap_or(0),
            output: tail(),
        });
    }
    if status.success() {
        return Ok(());
    }
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    };
    Err(HookError::Failed {
        kind,
        path: hook.path.clone(),
        how,
        output: tail(),
    })
}

fn memfd(name: &std::ffi::CStr) -> std::io::Result<std::fs::File> {
    // SAFETY: a valid C string and integer flags.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    Ok(std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// Wait until `pid` (our child) exits, without reaping it; false when
/// `timeout` seconds passed first.
fn wait_for(pid: libc::pid_t, timeout: Option<u32>) -> std::io::Result<bool> {
    let Some(secs) = timeout else {
        return Ok(true);
    };
    // SAFETY: pidfd_open takes integers; the result is a fresh descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let deadline = std::time::Instant::now() + Duration::from_secs(secs.into());
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut p = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one pollfd that lives across the call.
        let n = unsafe { libc::poll(&mut p, 1, ms) };
        if n > 0 {
            return Ok(true);
        }
        if n == 0 {
            return Ok(false);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The hooks the container's first process runs itself, with the state
/// as the container sees it (its own pid: 1 in a new pid namespace).
#[derive(Debug)]
pub struct InContainer {
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub id: String,
    pub bundle: PathBuf,
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl InContainer {
    fn run(&self, kind: &'static str, hooks: &[Hook], status: &str) -> Result<(), String> {
        if hooks.is_empty() {
            return Ok(());
        }
        let pid = std::process::id() as i32;
        let state = state_json(&self.id, status, pid, &self.bundle, &self.annotations);
        run_all(kind, hooks, &state).map_err(|e| e.to_string())
    }
}

impl crate::native::spawn::ChildHooks for InContainer {
    fn before_pivot(&self) -> Result<(), String> {
        self.run(KINDS[2], &self.create_container, "creating")
    }
    fn before_exec(&self) -> Result<(), String> {
        self.run(KINDS[3], &self.start_container, "created")
    }
}

/// The state a hook reads on its stdin (runtime-spec "State").
pub fn state_json(
    id: &str,
    status: &str,
    pid: i32,
    bundle: &std::path::Path,
    annotations: &std::collections::BTreeMap<String, String>,
) -> Vec<u8> {
    let mut v = serde_json::json!({
        "ociVersion": super::state::OCI_VERSION,
        "id": id,
        "status": status,
        "bundle": bundle,
    });
    if pid > 0 {
        v["pid"] = pid.into();
    }
    if !annotations.is_empty() {
        v["annotations"] = serde_json::json!(annotations);
    }
    serde_json::to_vec(&v).expect("state serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Option<u32>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["A=b=c".into()],
            timeout,
        }
    }

    #[test]
    fn state_on_stdin_env_exact_and_failures_name_the_hook() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "cat > {}; echo \"$A|$HOME\" >> {}",
            out.display(),
            out.display()
        );
        run("poststart", &sh(&script, None), b"{\"id\":\"x\"}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"x\"}b=c|\n"
        );
        let e = run("prestart", &sh("echo oops >&2; exit 3", None), b"").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("prestart hook /bin/sh failed: exit status 3"),
            "{msg}"
        );
        assert!(msg.contains("oops"), "{msg}");
        let e = run(
            "poststop",
            &Hook {
                path: "/no/such/hook".into(),
                ..sh("", None)
            },
            b"",
        )
        .unwrap_err();
        assert!(e.to_string().contains("/no/such/hook: start"), "{e}");
    }

    #[test]
    fn a_hook_past_its_timeout_is_killed() {
        let t = std::time::Instant::now();
        let e = run("createRuntime", &sh("exec sleep 30", Some(1)), b"").unwrap_err();
        assert!(matches!(e, HookError::Timeout { secs: 1, .. }), "{e}");
        let took = t.elapsed();
        assert!(took < Duration::from_secs(5), "{took:?}");
        // Within its timeout: fine.
        run("createRuntime", &sh("exit 0", Some(5)), b"").unwrap();
    }

    #[test]
    fn hooks_are_checked_by_field() {
        let parse = |v: serde_json::Value| {
            let h: oci_spec::runtime::Hooks = serde_json::from_value(v).unwrap();
            from_spec(Some(&h)).map_err(|e| e.to_string())
        };
        let h = parse(serde_json::json!({"createRuntime": [{"path": "/a", "args": ["a", "1"], "timeout": 3}]}))
            .unwrap();
        assert_eq!(h.create_runtime[0].timeout, Some(3));
        assert!(h.in_create_or_start());
        let e = parse(serde_json::json!({"poststop": [{"path": "rel"}]})).unwrap_err();
        assert!(e.contains("hooks.poststop[0].path"), "{e}");
        let e =
            parse(serde_json::json!({"prestart": [{"path": "/a"}, {"path": "/b", "timeout": 0}]}))
                .unwrap_err();
        assert!(e.contains("hooks.prestart[1].timeout"), "{e}");
        let e = parse(serde_json::json!({"startContainer": [{"path": "/a", "env": ["X=1", "Y"]}]}))
            .unwrap_err();
        assert!(e.contains("hooks.startContainer[0].env[1]"), "{e}");
        let h = parse(serde_json::json!({"poststop": [{"path": "/a"}]})).unwrap();
        assert!(!h.in_create_or_start());
    }
}

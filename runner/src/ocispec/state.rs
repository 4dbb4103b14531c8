//! rbox-runtime's state directory: `<root>/<id>/state.json` (what
//! `create` decided) and `<root>/<id>/exec.fifo` (present while the
//! container waits for `start`). The status is derived, never stored: the
//! container's first process alive (same pid and start time) and the fifo
//! present is `created`; alive without it is `running`; else `stopped`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{io_err, OciError, Result};

/// The version `state` and `spec` write (what runc and crun of 2023 and on read).
pub const OCI_VERSION: &str = "1.0.2";
pub const FIFO: &str = "exec.fifo";
const STATE: &str = "state.json";

/// What `create` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub id: String,
    pub pid: i32,
    /// Field 22 of /proc/<pid>/stat: tells a reused pid apart.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    /// `linux.cgroupsPath` as translated; `None`: `rbox/<id>`.
    #[serde(default)]
    pub cgroups_path: Option<String>,
    /// The config's hooks (`start` runs poststart, `delete` poststop).
    #[serde(default, skip_serializing_if = "super::hooks::Hooks::is_empty")]
    pub hooks: super::hooks::Hooks,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    /// Running with its cgroup frozen (`pause`); told by `lifecycle::state`.
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// A container id is one path component of letters, digits and `_.-+`
/// (runc's rule), not `.` or `..`.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-+".contains(c));
    if ok {
        Ok(())
    } else {
        Err(OciError::Other(format!(
            "invalid container id {id:?} (letters, digits and _.-+ only)"
        )))
    }
}

pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

pub fn fifo(root: &Path, id: &str) -> PathBuf {
    dir(root, id).join(FIFO)
}

/// Write state.json under a temporary name, then rename it into place.
pub fn save(root: &Path, s: &Saved) -> Result<()> {
    let d = dir(root, &s.id);
    let tmp = d.join(".state.json.tmp");
    let json = serde_json::to_vec_pretty(s).expect("state serializes");
    std::fs::write(&tmp, json).map_err(io_err("write", &tmp))?;
    let dst = d.join(STATE);
    std::fs::rename(&tmp, &dst).map_err(io_err("rename into", &dst))
}

/// `None`: the directory exists but `create` has not finished.
pub fn load(root: &Path, id: &str) -> Result<Option<Saved>> {
    check_id(id)?;
    let d = dir(root, id);
    if !d.is_dir() {
        return Err(OciError::NotFound(id.to_string()));
    }
    let p = d.join(STATE);
    match std::fs::read(&p) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| OciError::Parse {
                path: p.clone(),
                msg: e.to_string(),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("read", &p)(e)),
    }
}

/// (state letter, start time) of a process from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

/// Whether the container's first process is still the one we started and
/// has not exited (a zombie waiting for its parent counts as exited).
pub fn alive(s: &Saved) -> bool {
    matches!(proc_stat(s.pid), Some((st, start)) if start == s.start_time && st != 'Z' && st != 'X')
}

pub fn status(root: &Path, saved: Option<&Saved>) -> Status {
    match saved {
        None => Status::Creating,
        Some(s) if !alive(s) => Status::Stopped,
        Some(s) if fifo(root, &s.id).exists() => Status::Created,
        Some(_) => Status::Running,
    }
}

/// The runtime-spec state object.
pub fn oci_state(s: &Saved, status: Status) -> serde_json::Value {
    let pid = if matches!(status, Status::Created | Status::Running | Status::Paused) {
        s.pid
    } else {
        0
    };
    let mut v = serde_json::json!({
        "ociVersion": OCI_VERSION,
        "id": s.id,
        "status": status.as_str(),
        "pid": pid,
        "bundle": s.bundle,
        "rootfs": s.rootfs,
        "created": s.created,
    });
    if !s.annotations.is_empty() {
        v["annotations"] = serde_json::json!(s.annotations);
    }
    v
}

/// Ids of every container under `root`.
pub fn list(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|id| check_id(id).is_ok())
        .collect();
    ids.sort();
    ids
}

//! `containers/<id>/state.json`: what `ps`, `stop`, `exec` and the reaper
//! know about a container. Written atomically (temp file + rename), so a
//! reader sees either the old or the new state, never half of one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid state: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("{0:?} matches more than one container; use more of the id")]
    Ambiguous(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Exited,
}

/// A process we can recognise later even if its pid is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: i32,
    pub start_time: u64,
}

impl ProcessId {
    pub fn of(pid: i32) -> Option<ProcessId> {
        engine::fsutil::process_start_time(pid as u32)
            .map(|start_time| ProcessId { pid, start_time })
    }

    pub fn current() -> ProcessId {
        ProcessId::of(std::process::id() as i32).unwrap_or(ProcessId {
            pid: std::process::id() as i32,
            start_time: 0,
        })
    }

    /// Still running: not gone, not another process on a reused pid, and
    /// not a zombie (a supervisor, orphaned by its double fork, may wait
    /// for a lazy init to reap it; it has done all it does).
    pub fn alive(&self) -> bool {
        engine::fsutil::running_process_start_time(self.pid as u32) == Some(self.start_time)
    }
}

/// What `exec` needs to start another process like the first one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecDefaults {
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub privileged: bool,
    pub no_new_privileges: bool,
    pub seccomp: bool,
    pub capabilities: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    pub name: String,
    /// The reference the user gave, and the manifest digest it resolved to.
    pub image: String,
    pub image_digest: String,
    pub command: Vec<String>,
    pub status: Status,
    /// The container's first process (PID 1 inside), on the host.
    pub pid: Option<ProcessId>,
    /// The rrun process that waits for it (foreground rrun or the detached supervisor).
    pub supervisor: Option<ProcessId>,
    /// Seconds since the epoch.
    pub created: u64,
    pub finished: Option<u64>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    pub auto_remove: bool,
    pub detached: bool,
    pub exec: ExecDefaults,
    /// What `inspect` reports as HostConfig; absent in states written
    /// before it existed.
    #[serde(default)]
    pub host: HostSettings,
    /// `--restart`, kept by the detached supervisor.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// How many times the supervisor restarted the command.
    #[serde(default)]
    pub restart_count: u32,
    /// Set by stop, kill and rm -f: the supervisor must not restart it.
    #[serde(default)]
    pub stop_requested: bool,
    /// --ulimit, --sysctl, --label, --stop-signal... (crate::runopts).
    #[serde(default)]
    pub options: crate::runopts::RunOptions,
    /// The `rrun start -a` that waits for this run's end: a `--rm`
    /// container's directory is then its to remove, once it has read the
    /// exit code (the supervisor and the reaper leave it while it lives).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaited_by: Option<ProcessId>,
}

/// Docker's restart policies. What happens at a reboot: nothing comes
/// back (rbox has no daemon to start containers at boot); `always` and
/// `unless-stopped` differ only there in Docker, so they act alike here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case")]
pub enum RestartPolicy {
    #[default]
    No,
    /// Restart after a non-zero exit, at most `max` times (0: no limit).
    OnFailure {
        max: u32,
    },
    Always,
    UnlessStopped,
}

impl RestartPolicy {
    pub fn parse(s: &str) -> Result<RestartPolicy, String> {
        match s.split_once(':') {
            None => match s {
                "no" | "" => Ok(RestartPolicy::No),
                "always" => Ok(RestartPolicy::Always),
                "unless-stopped" => Ok(RestartPolicy::UnlessStopped),
                "on-failure" => Ok(RestartPolicy::OnFailure { max: 0 }),
                _ => Err(format!(
                    "invalid restart policy {s:?} (no, on-failure[:N], always, unless-stopped)"
                )),
            },
            Some(("on-failure", n)) => n
                .parse()
                .map(|max| RestartPolicy::OnFailure { max })
                .map_err(|_| format!("invalid restart count {n:?}: a whole number")),
            Some((p, _)) => Err(format!(
                "restart policy {p:?} takes no count (only on-failure:N does)"
            )),
        }
    }

    /// Docker's name for it (`inspect`'s HostConfig.RestartPolicy.Name).
    pub fn name(&self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure { .. } => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }

    /// Whether a command that exited with `code`, after `restarts`
    /// restarts, runs again.
    pub fn restarts(&self, code: i32, restarts: u32) -> bool {
        match self {
            RestartPolicy::No => false,
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure { max } => code != 0 && (*max == 0 || restarts < *max),
        }
    }
}

/// The run options `inspect` shows (Docker's HostConfig), as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSettings {
    pub memory_bytes: Option<u64>,
    /// CPUs in billionths (Docker's NanoCpus).
    pub nano_cpus: Option<u64>,
    pub pids_limit: Option<u64>,
    /// `SRC:DST[:ro]` as given with -v.
    pub binds: Vec<String>,
    pub network_mode: String,
    pub runtime: String,
    pub read_only: bool,
    pub privileged: bool,
    pub hostname: String,
    /// `-p`, with the host ports chosen for `-p CONTAINERPORT`.
    #[serde(default)]
    pub ports: Vec<crate::network::ports::PortMapping>,
    /// `--network-alias`: more names on a user-defined network.
    #[serde(default)]
    pub network_aliases: Vec<String>,
    /// `--dns`, `--dns-search`, `--dns-option`, as given (checked).
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// `--add-host NAME:IP` (IP may be `host-gateway`), as given.
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    /// `-P`: the ports of `ports` it added are the exposed ones.
    #[serde(default)]
    pub publish_all: bool,
    /// Networks joined while running (`rrun network connect`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub connected: Vec<crate::network::connect::Connection>,
    /// Networks to join at every start (`rrun network connect`, kept
    /// until `disconnect`, as Docker keeps them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub joins: Vec<crate::network::connect::Join>,
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl State {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("state.json")
    }

    pub fn load(dir: &Path) -> Result<State, StateError> {
        let p = Self::path(dir);
        let bytes = std::fs::read(&p).map_err(|source| StateError::Io {
            op: "read",
            path: p.clone(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| StateError::Json { path: p, source })
    }

    /// Atomic for readers: write a temp file beside, swap it in. No
    /// fsync: this is runtime state on the start path (an fsync costs
    /// milliseconds to hundreds of them on a busy disk), and after a crash
    /// the reaper treats a missing or stale state as a dead container.
    ///
    /// An existing state is swapped with RENAME_EXCHANGE and the old one
    /// unlinked, rather than renamed over: ext4 (auto_da_alloc) starts
    /// writing back a file renamed over another one, which cost 0.5-3 ms
    /// per start here and is durability this state does not need.
    pub fn save(&self, dir: &Path) -> Result<(), StateError> {
        let p = Self::path(dir);
        let bytes = serde_json::to_vec_pretty(self).expect("state serialises");
        let tmp = dir.join(engine::fsutil::unique_name(".state"));
        let io = |op: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::Io { op, path, source }
        };
        std::fs::write(&tmp, &bytes).map_err(io("write", &tmp))?;
        let placed = match exchange(&tmp, &p) {
            // tmp now holds the previous state.
            Ok(()) => std::fs::remove_file(&tmp).or(Ok(())),
            // No state yet, or a filesystem without RENAME_EXCHANGE.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT) | Some(libc::EINVAL) | Some(libc::ENOSYS)
                ) =>
            {
                std::fs::rename(&tmp, &p)
            }
            Err(e) => Err(e),
        };
        placed.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io("rename into place", &p)(e)
        })
    }

    /// Change the state on disk: load the current file under an exclusive
    /// flock of the container's directory, apply `f`, save. Every writer
    /// after creation goes through here, so a change made by another
    /// process meanwhile (a `rename`) is kept, not overwritten with an old
    /// copy. `known` stands in when the file is unreadable.
    pub fn update(
        dir: &Path,
        known: &State,
        f: impl FnOnce(&mut State),
    ) -> Result<State, StateError> {
        // No child may be cloned holding the lock (see sys::NO_INHERIT).
        let _no_inherit = crate::sys::hold_no_inherit();
        let lock = std::fs::File::open(dir).map_err(|source| StateError::Io {
            op: "open",
            path: dir.to_path_buf(),
            source,
        })?;
        nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| StateError::Io {
                op: "lock",
                path: dir.to_path_buf(),
                source: e.into(),
            })
            .and_then(|_guard| {
                let mut s = State::load(dir).unwrap_or_else(|_| known.clone());
                f(&mut s);
                s.save(dir)?;
                Ok(s)
            })
    }

    /// The command runs as `pid` (on the host).
    pub fn mark_running(dir: &Path, known: &State, pid: i32) -> Result<State, StateError> {
        State::update(dir, known, |s| {
            s.pid = ProcessId::of(pid);
            s.status = Status::Running;
        })
    }

    /// The command ended with `code` (and the OOM killer's verdict).
    pub fn mark_exited(
        dir: &Path,
        known: &State,
        code: i32,
        oom_killed: bool,
    ) -> Result<State, StateError> {
        let mut left = Vec::new();
        let s = State::update(dir, known, |s| {
            s.status = Status::Exited;
            s.exit_code = Some(code);
            s.oom_killed = oom_killed;
            s.finished = Some(now());
            left = std::mem::take(&mut s.host.connected);
        })?;
        // Its networks of `rrun network connect` go with the process.
        for c in &left {
            crate::network::connect::release(c, &s.id);
        }
        Ok(s)
    }

    /// Made by `rrun create` and never started: no process, and no rrun
    /// that waits for one (not a leftover of a killed rrun).
    pub fn awaits_start(&self) -> bool {
        self.status == Status::Created && self.supervisor.is_none() && self.pid.is_none()
    }

    /// Running according to the kernel, not just the file.
    pub fn is_running(&self) -> bool {
        self.status == Status::Running && self.pid.map(|p| p.alive()).unwrap_or(false)
    }

    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

/// renameat2(RENAME_EXCHANGE): atomically swap two existing paths.
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let (a, b) = (crate::sys::cstring(a), crate::sys::cstring(b));
    // SAFETY: two valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Every container directory with a readable state, sorted newest first.
pub fn list(containers: &Path) -> Vec<(PathBuf, State)> {
    let mut v: Vec<(PathBuf, State)> = std::fs::read_dir(containers)
        .map(|rd| {
            rd.flatten()
                // `.removing-…`: a container being removed (lifecycle).
                .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
                .filter_map(|e| {
                    let dir = e.path();
                    State::load(&dir).ok().map(|s| (dir, s))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| b.1.created.cmp(&a.1.created).then(a.1.id.cmp(&b.1.id)));
    v
}

/// Find a container by exact name, full id, or unique id prefix.
pub fn find(containers: &Path, key: &str) -> Result<(PathBuf, State), StateError> {
    let all = list(containers);
    if let Some(hit) = all.iter().find(|(_, s)| s.name == key || s.id == key) {
        return Ok(hit.clone());
    }
    let mut prefixed = all
        .into_iter()
        .filter(|(_, s)| !key.is_empty() && s.id.starts_with(key));
    match (prefixed.next(), prefixed.next()) {
        (Some(hit), None) => Ok(hit),
        (Some(_), Some(_)) => Err(StateError::Ambiguous(key.to_string())),
        _ => Err(StateError::NotFound(key.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(id: &str, name: &str, created: u64) -> State {
        State {
            id: id.into(),
            name: name.into(),
            image: "busybox".into(),
            image_digest: "sha256:00".into(),
            command: vec!["true".into()],
            status: Status::Created,
            pid: None,
            supervisor: None,
            created,
            finished: None,
            exit_code: None,
            oom_killed: false,
            auto_remove: false,
            detached: false,
            exec: ExecDefaults::default(),
            host: HostSettings::default(),
            restart: RestartPolicy::No,
            restart_count: 0,
            stop_requested: false,
            options: Default::default(),
            awaited_by: None,
        }
    }

    #[test]
    fn host_settings_without_ports_still_load() {
        let h: HostSettings = serde_json::from_str(
            r#"{"memory_bytes":null,"nano_cpus":null,"pids_limit":null,"binds":[],
                "network_mode":"bridge","runtime":"native","read_only":false,
                "privileged":false,"hostname":"h"}"#,
        )
        .unwrap();
        assert!(h.ports.is_empty());
    }

    fn store_of(states: &[State]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for s in states {
            let dir = t.path().join(&s.id);
            std::fs::create_dir(&dir).unwrap();
            s.save(&dir).unwrap();
        }
        t
    }

    #[test]
    fn save_replaces_the_state_and_leaves_no_temp_file() {
        let t = store_of(&[state("abc123", "web", 1)]);
        let dir = t.path().join("abc123");
        let mut s = State::load(&dir).unwrap();
        assert_eq!(s.status, Status::Created);
        s.status = Status::Exited;
        s.exit_code = Some(3);
        s.save(&dir).unwrap();
        assert_eq!(State::load(&dir).unwrap(), s);
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
    }

    #[test]
    fn a_container_is_found_by_name_id_or_unique_prefix() {
        let t = store_of(&[
            state("abc123", "web", 1),
            state("abd456", "db", 2),
            state("ffff00", "abc", 3),
        ]);
        let found = |k: &str| find(t.path(), k).map(|(_, s)| s.id);
        assert_eq!(found("web").unwrap(), "abc123");
        assert_eq!(found("abd456").unwrap(), "abd456");
        assert_eq!(found("abc1").unwrap(), "abc123");
        // A name wins over an id prefix it happens to look like.
        assert_eq!(found("abc").unwrap(), "ffff00");
        assert!(matches!(
            find(t.path(), "ab"),
            Err(StateError::Ambiguous(_))
        ));
        assert!(matches!(find(t.path(), "zz"), Err(StateError::NotFound(_))));
        assert!(matches!(find(t.path(), ""), Err(StateError::NotFound(_))));
    }

    #[test]
    fn list_is_newest_first_and_skips_unreadable_states() {
        let t = store_of(&[state("a1", "x", 5), state("b2", "y", 9)]);
        std::fs::create_dir(t.path().join("broken")).unwrap();
        std::fs::write(t.path().join("broken/state.json"), "{").unwrap();
        let ids: Vec<String> = list(t.path()).into_iter().map(|(_, s)| s.id).collect();
        assert_eq!(ids, ["b2", "a1"]);
        let err = State::load(&t.path().join("broken")).unwrap_err();
        assert!(matches!(err, StateError::Json { .. }), "{err}");
    }

    #[test]
    fn restart_policies_parse_and_decide_like_dockers() {
        assert_eq!(RestartPolicy::parse("no"), Ok(RestartPolicy::No));
        assert_eq!(
            RestartPolicy::parse("on-failure:3"),
            Ok(RestartPolicy::OnFailure { max: 3 })
        );
        assert!(RestartPolicy::parse("always:2").is_err());
        assert!(RestartPolicy::parse("sometimes").is_err());
        assert!(RestartPolicy::parse("on-failure:x").is_err());
        let p = RestartPolicy::OnFailure { max: 2 };
        assert!(p.restarts(1, 0) && p.restarts(1, 1) && !p.restarts(1, 2) && !p.restarts(0, 0));
        assert!(RestartPolicy::Always.restarts(0, 1000));
        assert!(!RestartPolicy::No.restarts(1, 0));
        // Old state files have no restart fields.
        let mut v = serde_json::to_value(state("a1", "x", 1)).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("restart");
        o.remove("restart_count");
        let s: State = serde_json::from_value(v).unwrap();
        assert_eq!(s.restart, RestartPolicy::No);
    }

    #[test]
    fn running_means_the_recorded_process_is_alive() {
        let mut s = state("a1", "x", 1);
        s.status = Status::Running;
        assert!(!s.is_running(), "no pid recorded");
        s.pid = Some(ProcessId::current());
        assert!(s.is_running());
        // Same pid, another start time: a reused pid is not our process.
        s.pid = Some(ProcessId {
            pid: std::process::id() as i32,
            start_time: 1,
        });
        assert!(!s.is_running());
        s.pid = Some(ProcessId::current());
        s.status = Status::Exited;
        assert!(!s.is_running());
    }
}

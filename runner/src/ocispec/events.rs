//! `events`: a container's resource usage in runc's `events` shape, once
//! (`--stats`) or every interval until the container stops, with an
//! `oom` event whenever its memory group records another OOM kill.
//!
//! Objects are `{"type": "stats"|"oom", "id": ID, "data": ...}`; `data`
//! of a stats event has runc's `cpu`, `memory`, `pids` and `blkio`, with
//! the values this host's cgroup layout has (`cgroup::Usage`, plus the
//! raw `memory.stat` as `memory.raw`, and the limits).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::cgroup::Cgroup;

use super::state::Status;
use super::{lifecycle, pause, OciError, Result};

/// One `stats` event of a live container.
pub fn stats(root: &Path, id: &str) -> Result<Value> {
    let (saved, status) = lifecycle::state(root, id)?;
    match (saved, status) {
        (Some(s), Status::Created | Status::Running | Status::Paused) => Ok(json!({
            "type": "stats",
            "id": id,
            "data": stats_data(&pause::group(&s)?),
        })),
        _ => Err(OciError::WrongState {
            id: id.to_string(),
            status: status.as_str(),
            what: "a stopped container has no stats",
        }),
    }
}

/// Emit a `stats` event every `interval` and an `oom` event for each new
/// OOM kill (checked every 100 ms at most), until the container stops.
pub fn stream(
    root: &Path,
    id: &str,
    interval: Duration,
    mut emit: impl FnMut(&Value),
) -> Result<()> {
    let (saved, _) = lifecycle::state(root, id)?;
    let Some(saved) = saved else {
        return Err(OciError::WrongState {
            id: id.to_string(),
            status: "creating",
            what: "it has no cgroup yet",
        });
    };
    let group = pause::group(&saved)?;
    let mut ooms = group.oom_kills();
    let tick = interval.min(Duration::from_millis(100));
    let mut next = Instant::now();
    loop {
        let (_, status) = match lifecycle::state(root, id) {
            Ok(s) => s,
            Err(OciError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let n = group.oom_kills();
        if n > ooms {
            for _ in ooms..n {
                emit(&json!({"type": "oom", "id": id}));
            }
            ooms = n;
        }
        if !matches!(status, Status::Created | Status::Running | Status::Paused) {
            return Ok(());
        }
        if Instant::now() >= next {
            emit(&json!({"type": "stats", "id": id, "data": stats_data(&group)}));
            next = Instant::now() + interval;
        }
        std::thread::sleep(tick);
    }
}

/// runc's `Stats` object for `group`; absent values are left out.
pub fn stats_data(group: &Cgroup) -> Value {
    let u = group.usage();
    let num = |name: &str| -> Option<u64> {
        group
            .read_control(name)
            .and_then(|t| t.trim().parse::<u64>().ok())
            .filter(|v| *v < 1 << 62)
    };
    let raw: Map<String, Value> = group
        .read_control("memory.stat")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), json!(v.trim().parse::<u64>().ok()?)))
        })
        .collect();
    let mut memory = Map::new();
    let mut usage = Map::new();
    put(&mut usage, "usage", u.memory_bytes);
    put(&mut usage, "limit", u.memory_limit);
    put(
        &mut usage,
        "max",
        num("memory.max_usage_in_bytes").or_else(|| num("memory.peak")),
    );
    put(&mut usage, "failcnt", num("memory.failcnt"));
    memory.insert("usage".into(), Value::Object(usage));
    if !raw.is_empty() {
        memory.insert("raw".into(), Value::Object(raw));
    }
    let mut pids = Map::new();
    put(&mut pids, "current", u.pids);
    put(&mut pids, "limit", num("pids.max"));
    let mut cpu_usage = Map::new();
    put(&mut cpu_usage, "total", u.cpu_ns);
    let blkio = match (u.block_read, u.block_written) {
        (Some(r), Some(w)) => json!({"ioServiceBytesRecursive": [
            {"op": "Read", "value": r},
            {"op": "Write", "value": w},
        ]}),
        _ => json!({}),
    };
    json!({
        "cpu": {"usage": cpu_usage},
        "memory": memory,
        "pids": pids,
        "blkio": blkio,
    })
}

fn put(m: &mut Map<String, Value>, k: &str, v: Option<u64>) {
    if let Some(v) = v {
        m.insert(k.into(), json!(v));
    }
}

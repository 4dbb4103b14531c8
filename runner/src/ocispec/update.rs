//! `update`: new limits for a live container's cgroup, as runc's
//! `update` takes them: a runtime-spec `LinuxResources` object (a file,
//! or stdin with `-`, as containerd's shim sends it) and flags, the flags
//! winning. Only the limits rbox applies at create (memory, swap, cpu
//! quota/period/shares, pids) are taken; anything else set is refused by
//! its name. As runc, -1 removes the CPU quota or the pids limit (the
//! flags, and `cpu.quota` / `pids.limit` in the JSON); a memory limit
//! cannot be removed, and a negative one is refused by its name.

use std::io::Read;
use std::path::Path;

use engine::runtime::Resources;

use super::state::Status;
use super::{lifecycle, OciError, Result};

/// The flags of `update`; `None`: not given.
#[derive(Debug, Clone, Default)]
pub struct UpdateFlags {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<u64>,
    pub cpu_shares: Option<u64>,
    pub pids_limit: Option<i64>,
}

/// The limits asked for: `resources` (the path of a JSON file, `-` for
/// stdin) under the flags.
pub fn resources(resources: Option<&Path>, f: &UpdateFlags) -> Result<Resources> {
    let mut res = match resources {
        None => Resources::default(),
        Some(p) => {
            let (text, name) = if p == Path::new("-") {
                let mut t = String::new();
                std::io::stdin()
                    .read_to_string(&mut t)
                    .map_err(super::io_err("read", Path::new("stdin")))?;
                (t, p.to_path_buf())
            } else {
                (
                    std::fs::read_to_string(p).map_err(super::io_err("read", p))?,
                    p.to_path_buf(),
                )
            };
            parse_resources(&text, &name)?
        }
    };
    let positive = |flag: &str, v: i64| -> Result<u64> {
        if v > 0 {
            Ok(v as u64)
        } else {
            Err(OciError::Other(format!(
                "{flag} {v}: a positive number (or -1 to remove a CPU quota or a pids limit)"
            )))
        }
    };
    // -1 (any negative, as runc) removes the limit.
    let limit = |flag: &str, v: i64| -> Result<u64> {
        if v < 0 {
            Ok(Resources::UNLIMITED)
        } else {
            positive(flag, v)
        }
    };
    if let Some(m) = f.memory {
        if m < 0 {
            return Err(refuse_negative_memory("--memory", m));
        }
        res.memory_bytes = Some(positive("--memory", m)?);
    }
    if let Some(s) = f.memory_swap {
        if s != -1 {
            positive("--memory-swap", s)?;
        }
        res.memory_swap_bytes = Some(s);
    }
    if let Some(q) = f.cpu_quota {
        res.cpu_quota_us = Some(limit("--cpu-quota", q)?);
    }
    if let Some(p) = f.cpu_period {
        res.cpu_period_us = Some(positive("--cpu-period", p as i64)?);
    }
    if let Some(s) = f.cpu_shares {
        res.cpu_shares = Some(positive("--cpu-share", s as i64)?);
    }
    if let Some(p) = f.pids_limit {
        res.pids_limit = Some(limit("--pids-limit", p)?);
    }
    if res.memory_swap_bytes.is_some() && res.memory_bytes.is_none() {
        return Err(OciError::Other(
            "--memory-swap needs --memory (memory+swap is set with the memory limit)".into(),
        ));
    }
    if res.cpu_period_us.is_some() && res.cpu_quota_us.is_none() {
        return Err(OciError::Other(
            "--cpu-period needs --cpu-quota (rbox writes them together)".into(),
        ));
    }
    Ok(res)
}

/// A `LinuxResources` JSON object, checked key by key as create checks
/// `linux.resources`.
fn parse_resources(text: &str, name: &Path) -> Result<Resources> {
    let parse_err = |e: serde_json::Error| OciError::Parse {
        path: name.to_path_buf(),
        msg: e.to_string(),
    };
    let raw: serde_json::Value = serde_json::from_str(text).map_err(parse_err)?;
    if let Some(field) = super::check::first_unsupported_resources(&raw) {
        return Err(OciError::Unsupported {
            field: format!("update --resources: {field}"),
            why: String::new(),
        });
    }
    let negative = |ptr: &str| raw.pointer(ptr).and_then(|v| v.as_i64()).filter(|v| *v < 0);
    if let Some(m) = negative("/memory/limit") {
        return Err(refuse_negative_memory("memory.limit", m));
    }
    let r: oci_spec::runtime::LinuxResources =
        serde_json::from_value(raw.clone()).map_err(parse_err)?;
    let mut res = super::translate_resources(&r)?;
    // A negative quota or pids limit removes it (runc's update); create
    // reads it as no limit, which a new group has anyway.
    if negative("/cpu/quota").is_some() {
        res.cpu_quota_us = Some(Resources::UNLIMITED);
    }
    if negative("/pids/limit").is_some() {
        res.pids_limit = Some(Resources::UNLIMITED);
    }
    Ok(res)
}

fn refuse_negative_memory(what: &str, v: i64) -> OciError {
    OciError::Other(format!(
        "{what} {v}: a memory limit cannot be removed by update; give a positive number of bytes"
    ))
}

/// Apply `res` to the cgroup of a created, running or paused container.
pub fn update(root: &Path, id: &str, res: &Resources) -> Result<()> {
    let (saved, status) = lifecycle::state(root, id)?;
    match (saved, status) {
        (Some(s), Status::Created | Status::Running | Status::Paused) => {
            Ok(super::pause::group(&s)?.update(res)?)
        }
        _ => Err(OciError::WrongState {
            id: id.to_string(),
            status: status.as_str(),
            what: "only a live container's limits can be updated",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_then_flags() {
        let p = Path::new("r.json");
        let r = parse_resources(
            r#"{"memory": {"limit": 67108864}, "pids": {"limit": 20}, "cpu": {"shares": 512}}"#,
            p,
        )
        .unwrap();
        assert_eq!(r.memory_bytes, Some(64 << 20));
        assert_eq!(r.pids_limit, Some(20));
        assert_eq!(r.cpu_shares, Some(512));
        let e = parse_resources(r#"{"cpu": {"cpus": "0-1"}}"#, p).unwrap_err();
        assert!(e.to_string().contains("cpu.cpus"), "{e}");
        let e = parse_resources(r#"{"blockIO": {"weight": 10}}"#, p).unwrap_err();
        assert!(e.to_string().contains("blockIO"), "{e}");
        let f = UpdateFlags {
            memory: Some(1 << 20),
            pids_limit: Some(7),
            ..Default::default()
        };
        let r = resources(None, &f).unwrap();
        assert_eq!((r.memory_bytes, r.pids_limit), (Some(1 << 20), Some(7)));
        let f = UpdateFlags {
            pids_limit: Some(0),
            ..Default::default()
        };
        assert!(resources(None, &f)
            .unwrap_err()
            .to_string()
            .contains("--pids-limit 0"));
    }

    #[test]
    fn minus_one_removes_the_quota_and_the_pids_limit_never_memory() {
        let f = UpdateFlags {
            pids_limit: Some(-1),
            cpu_quota: Some(-1),
            ..Default::default()
        };
        let r = resources(None, &f).unwrap();
        let unlimited = Some(Resources::UNLIMITED);
        assert_eq!((r.pids_limit, r.cpu_quota_us), (unlimited, unlimited));
        let p = Path::new("r.json");
        let r = parse_resources(r#"{"pids": {"limit": -1}, "cpu": {"quota": -1}}"#, p).unwrap();
        assert_eq!((r.pids_limit, r.cpu_quota_us), (unlimited, unlimited));
        let f = UpdateFlags {
            memory: Some(-1),
            ..Default::default()
        };
        let e = resources(None, &f).unwrap_err().to_string();
        assert!(
            e.contains("--memory -1") && e.contains("cannot be removed"),
            "{e}"
        );
        let e = parse_resources(r#"{"memory": {"limit": -1}}"#, p)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("memory.limit -1") && e.contains("cannot be removed"),
            "{e}"
        );
    }
}

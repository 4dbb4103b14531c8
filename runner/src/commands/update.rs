//! `rrun update [-m] [--memory-swap] [--cpus] [--pids-limit] NAME...`:
//! Docker's `docker update` for the resource limits. A running container
//! gets them through the runtime that runs it (`Container::update`: its
//! cgroup's limit files, or the external runtime's own `update`); every
//! container gets them recorded in its spec and state, so `start` and
//! `restart` apply them again and `inspect` shows them. What cannot be
//! applied (rootless rbox without a delegated cgroup v2, a container
//! without a cgroup of its own) is refused, saying why, and nothing is
//! recorded.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use engine::runtime::Resources;
use runner::state::State;

use crate::cli::{self, BadValue, UpdateArgs};
use crate::run::{require_root, Coded};

pub fn update(root: &Path, a: &UpdateArgs) -> Result<i32> {
    require_root("rrun update")?;
    let asked = asked(a).map_err(|e| Coded(125, e.into()))?;
    if asked == Resources::default() {
        bail!(Coded(
            125,
            anyhow!("you must provide one or more flags when using this command (-m, --memory-swap, --cpus, --pids-limit)")
        ));
    }
    Ok(crate::admin::each_container(
        root,
        &a.containers,
        |dir, s| update_one(dir, s, &asked),
    ))
}

/// The limits the flags set (a field left `None` stays as it is).
fn asked(a: &UpdateArgs) -> Result<Resources, BadValue> {
    let mut r = Resources::default();
    if let Some(m) = &a.memory {
        let bytes = cli::parse_size(m, "-m, --memory")?;
        if bytes < 6 << 20 {
            return Err(cli::bad(
                m,
                "-m, --memory",
                "minimum memory limit allowed is 6MB",
            ));
        }
        r.memory_bytes = Some(bytes);
    }
    if let Some(s) = &a.memory_swap {
        r.memory_swap_bytes = Some(if s.trim() == "-1" {
            -1
        } else {
            cli::parse_size(s, "--memory-swap")? as i64
        });
    }
    if let Some(c) = &a.cpus {
        let (q, p) = cli::parse_cpus(c)?;
        r.cpu_quota_us = Some(q);
        r.cpu_period_us = Some(p);
    }
    if let Some(p) = &a.pids_limit {
        let v = cli::parse_int(p, "--pids-limit")?;
        if v <= 0 {
            return Err(cli::bad(
                p,
                "--pids-limit",
                "rrun update sets a limit only: give a positive number",
            ));
        }
        r.pids_limit = Some(v as u64);
    }
    Ok(r)
}

/// `asked` over the container's `current` limits, with memory and swap
/// made consistent as Docker makes them: swap given, or the one set
/// before, or (none ever set) memory+swap = twice the memory.
fn merged(name: &str, current: &Resources, asked: &Resources) -> Result<Resources> {
    let mut r = current.clone();
    let memory = asked.memory_bytes.or(current.memory_bytes);
    if asked.memory_swap_bytes.is_some() && memory.is_none() {
        bail!(Coded(
            125,
            anyhow!("--memory-swap for {name}: you should always set the memory limit when using the memoryswap limit")
        ));
    }
    if let Some(m) = memory {
        let swap = asked
            .memory_swap_bytes
            .or(current.memory_swap_bytes)
            .unwrap_or_else(|| (m as i64).saturating_mul(2));
        if swap != -1 && swap < m as i64 {
            bail!(Coded(
                125,
                anyhow!("memory limit of {name} should be smaller than its memory+swap limit ({swap} bytes): update --memory-swap at the same time")
            ));
        }
        r.memory_bytes = Some(m);
        r.memory_swap_bytes = Some(swap);
    }
    if asked.cpu_quota_us.is_some() {
        r.cpu_quota_us = asked.cpu_quota_us;
        r.cpu_period_us = asked.cpu_period_us;
    }
    if asked.pids_limit.is_some() {
        r.pids_limit = asked.pids_limit;
    }
    Ok(r)
}

fn update_one(dir: &Path, s: &State, asked: &Resources) -> Result<()> {
    // `run --rm` records no spec: its state's settings are the record.
    let mut spec = runner::recorded::load(dir).ok();
    let current = match &spec {
        Some(spec) => spec.resources.clone(),
        None => Resources {
            memory_bytes: s.host.memory_bytes,
            cpu_quota_us: s.host.nano_cpus.map(|n| n * 100_000 / 1_000_000_000),
            cpu_period_us: s.host.nano_cpus.map(|_| 100_000),
            pids_limit: s.host.pids_limit,
            ..Default::default()
        },
    };
    let new = merged(&s.name, &current, asked)?;
    if s.is_running() {
        let ctr = runner::runtimes::open(dir, s).map_err(|e| Coded(1, anyhow!(e)))?;
        // What changes: memory and swap go together, so that the runtime
        // writes them in an order the kernel accepts.
        let mut change = asked.clone();
        if asked.memory_bytes.is_some() || asked.memory_swap_bytes.is_some() {
            change.memory_bytes = new.memory_bytes;
            change.memory_swap_bytes = new.memory_swap_bytes;
        }
        ctr.update(&change)
            .map_err(|e| Coded(1, anyhow!("update container {}: {e}", s.name)))?;
    } else if runner::rootless::active() {
        let v2 = runner::cgroup::CgroupDriver::probe().is_ok_and(|d| d.version() == 2);
        let unavailable = runner::rootless::cgroups_unavailable(v2);
        if let Some(why) = runner::rootless::limits_refusal(asked, unavailable.as_deref()) {
            bail!(Coded(1, anyhow!("update container {}: {why}", s.name)));
        }
    }
    if let Some(spec) = &mut spec {
        spec.resources = new.clone();
        runner::recorded::save(dir, spec)
            .with_context(|| format!("record the limits of {}", s.name))?;
    }
    let r = &new;
    State::update(dir, s, |st| {
        st.host.memory_bytes = r.memory_bytes;
        st.host.nano_cpus = r
            .cpu_quota_us
            .map(|q| q * 1_000_000_000 / r.cpu_period_us.unwrap_or(100_000));
        st.host.pids_limit = r.pids_limit;
    })
    .with_context(|| format!("record the limits of {}", s.name))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_alone_keeps_the_swap_set_before_or_doubles() {
        let fresh = merged(
            "c",
            &Resources::default(),
            &Resources {
                memory_bytes: Some(64 << 20),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(fresh.memory_swap_bytes, Some(128 << 20));
        let set = Resources {
            memory_bytes: Some(64 << 20),
            memory_swap_bytes: Some(512 << 20),
            pids_limit: Some(10),
            ..Default::default()
        };
        let lower = merged(
            "c",
            &set,
            &Resources {
                memory_bytes: Some(32 << 20),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(lower.memory_swap_bytes, Some(512 << 20));
        assert_eq!(lower.pids_limit, Some(10), "what was not asked stays");
        let err = merged(
            "c",
            &set,
            &Resources {
                memory_bytes: Some(1 << 30),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("--memory-swap"), "{err:#}");
    }
}

//! `rrun update [-m] [--memory-swap] [--cpus] [--pids-limit] NAME...`:
//! Docker's `docker update` for the resource limits. A running container
//! gets them through the runtime that runs it (`Container::update`: its
//! cgroup's limit files, or the external runtime's own `update`); every
//! container gets them recorded in its spec and state, so `start` and
//! `restart` apply them again and `inspect` shows them. What cannot be
//! applied (rootless rbox without a delegated cgroup v2, a container
//! without a cgroup of its own) is refused, saying why, and nothing is
//! recorded. `--cpus 0` and `--pids-limit 0|-1` remove that limit (the
//! record then holds none); a memory limit cannot be removed (Docker
//! neither).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use engine::runtime::Resources;
use runner::state::State;

use crate::cli::UpdateArgs;
use crate::run::{require_root, Coded};

pub fn update(root: &Path, a: &UpdateArgs) -> Result<i32> {
    require_root("rrun update")?;
    let asked = a.limits.parse().map_err(|e| Coded(125, e.into()))?;
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
    // Removed (`Resources::UNLIMITED`): recorded as no limit, which is
    // what start, restart and a policy restart then apply.
    let limit = |v: Option<u64>| v.filter(|v| *v != Resources::UNLIMITED);
    if asked.cpu_quota_us.is_some() {
        r.cpu_quota_us = limit(asked.cpu_quota_us);
        r.cpu_period_us = r.cpu_quota_us.and(asked.cpu_period_us);
    }
    if asked.pids_limit.is_some() {
        r.pids_limit = limit(asked.pids_limit);
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

    #[test]
    fn unlimited_is_recorded_as_no_limit() {
        let set = Resources {
            cpu_quota_us: Some(50_000),
            cpu_period_us: Some(100_000),
            pids_limit: Some(64),
            memory_bytes: Some(64 << 20),
            memory_swap_bytes: Some(128 << 20),
            ..Default::default()
        };
        let asked = Resources {
            cpu_quota_us: Some(Resources::UNLIMITED),
            pids_limit: Some(Resources::UNLIMITED),
            ..Default::default()
        };
        let r = merged("c", &set, &asked).unwrap();
        assert_eq!(
            (r.cpu_quota_us, r.cpu_period_us, r.pids_limit),
            (None, None, None)
        );
        assert_eq!(r.memory_bytes, Some(64 << 20), "what was not asked stays");
    }
}

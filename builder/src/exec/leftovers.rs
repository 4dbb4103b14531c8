//! Cgroups of RUN steps whose rbuild was killed.
//!
//! A RUN step's container is torn down by the rbuild that started it; a
//! `kill -9` of rbuild leaves its group behind (the container dies with it:
//! PDEATHSIG). Step ids name their owner — `rbuild-<pid>-<start time>-…` —
//! so the next build removes the empty groups of owners that are gone,
//! and never one of a live rbuild (pid and start time both match).

use engine::fsutil::process_start_time;
use runner::cgroup::CgroupDriver;

const PREFIX: &str = "rbuild-";

/// A container id for one RUN step of this process.
pub fn step_container_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    let start = process_start_time(pid).unwrap_or(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{pid}-{start}-{n}")
}

/// The owner a step id names, if it is one.
fn owner(id: &str) -> Option<(u32, u64)> {
    let mut parts = id.strip_prefix(PREFIX)?.split('-');
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    Some((pid, start))
}

/// Remove the empty groups of RUN steps whose rbuild is dead. Best effort:
/// a group still holding a process (a container dying right now) is left
/// for the next build.
pub fn reap_dead_step_groups() -> usize {
    let Ok(driver) = CgroupDriver::probe() else {
        return 0;
    };
    let mut removed = 0;
    for id in driver.list() {
        let Some((pid, start)) = owner(&id) else {
            continue;
        };
        if process_start_time(pid) == Some(start) {
            continue;
        }
        // rmdir only: a check of procs() then remove() would SIGKILL a
        // process that joined in between.
        if matches!(driver.open(&id).remove_if_empty(), Ok(true)) {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_this_process_and_parse_back() {
        let id = step_container_id();
        let me = std::process::id();
        assert_eq!(owner(&id), Some((me, process_start_time(me).unwrap())));
        assert_ne!(id, step_container_id(), "ids repeat");
        assert_eq!(
            owner("0123abcd0123abcd"),
            None,
            "an rrun id is not a step's"
        );
        assert_eq!(owner("rbuild-12-x-1"), None);
    }
}

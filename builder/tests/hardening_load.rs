//! Concurrent starts: 16 `rrun run --rm` at once, half on a second store,
//! a few rounds. Every start must succeed. load.sh found starts failing
//! with "cgroup: write .../rbox/<id>/cgroup.procs: No such file or
//! directory" and, rarely, containers killed (137): the start-time reaper
//! (reap_leftovers in runner/src/lifecycle.rs) removes every empty
//! rbox/<64-hex> cgroup that had no directory in *its own* store, but the
//! rbox cgroup parent is shared by every store on the host, and
//! Cgroup::remove SIGKILLed whatever joined the group since the emptiness
//! check. Fixed: groups are listed before directories, ids carry their
//! store's tag so a reaper only touches its own store's orphans, and the
//! reapers remove orphans with Cgroup::remove_if_empty (an rmdir, which
//! the kernel refuses for a group holding a process; it never kills).
//! runner/tests/cgroup_remove.rs tests the removal itself.

mod common;

use std::process::{Command, Stdio};

use common::*;

#[test]
fn sixteen_concurrent_starts_on_two_stores_all_succeed() {
    let first = store_root();
    let second = tempfile::Builder::new()
        .prefix("rbox-load-")
        .tempdir()
        .unwrap();
    {
        let store = engine::Store::open(second.path()).unwrap();
        fixtures::ensure_busybox_image(&store, "busybox").unwrap();
    }
    let rrun = rrun_path();
    let mut failures = Vec::new();
    for round in 0..4 {
        let children: Vec<_> = (0..16)
            .map(|i| {
                let root = if i % 2 == 0 { first } else { second.path() };
                Command::new(&rrun)
                    .arg("--root")
                    .arg(root)
                    .args(["run", "--rm", "busybox", "true"])
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for c in children {
            let o = c.wait_with_output().unwrap();
            if !o.status.success() {
                failures.push(format!(
                    "round {round}: {:?}: {}",
                    o.status.code(),
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 64 concurrent starts failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

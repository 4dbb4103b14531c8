//! `rrun container prune` removes every stopped container of the store,
//! so it has a test binary (and so a store) of its own: beside other
//! tests it would remove their containers.

mod common;

use common::*;

#[test]
fn prune_removes_stopped_containers_and_keeps_running_ones() {
    let o = rrun(&["run", "-d", "--name", "up", "busybox", "sleep", "30"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["run", "--name", "done", "busybox", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let names = || {
        let mut v: Vec<String> = stdout(&rrun(&["ps", "-a", "--format", "{{.Names}}"]))
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(), ["done", "up"]);
    // Without -f and without a terminal it refuses.
    assert_eq!(code(&rrun(&["container", "prune"])), 1);
    assert_eq!(names(), ["done", "up"]);
    let o = rrun(&["container", "prune", "-f"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("Deleted Containers:"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("Total reclaimed space"),
        "{}",
        stdout(&o)
    );
    assert_eq!(names(), ["up"]);
    assert_eq!(code(&rrun(&["rm", "-f", "up"])), 0);
}

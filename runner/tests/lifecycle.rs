//! Detached containers: run -d, ps, logs, exec, stop, kill, rm.

mod common;

use std::time::Duration;

use common::*;

fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn detached_run_ps_logs_exec_stop_rm() {
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "svc",
        "-e",
        "GREETING=hi",
        "busybox",
        "sh",
        "-c",
        "echo $GREETING from svc; echo oops >&2; exec sleep 3600",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert_eq!(id.len(), 64, "run -d prints the id: {id:?}");

    let ps = stdout(&rrun(&["ps"]));
    assert!(
        ps.contains(&id[..12]) && ps.contains("svc") && ps.contains("Up"),
        "{ps}"
    );
    wait_for(|| stdout(&rrun(&["logs", "svc"])).contains("oops"), "logs");
    assert_eq!(stdout(&rrun(&["logs", "svc"])), "hi from svc\noops\n");

    // exec joins every namespace: same hostname, sees sleep as PID 1, same env.
    let o = rrun(&["exec", "svc", "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $GREETING; cat /proc/self/cgroup | grep -c ':/$'"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], &id[..12]);
    assert_eq!(l[1].trim(), "sleep 3600");
    assert_eq!(l[2], "hi");
    assert_ne!(l[3], "0", "exec is not in the container's cgroup: {out}");
    // exec -e as run -e: a bare name unset here is left out, not set empty.
    let o = rrun_cmd(&[
        "exec",
        "-e",
        "RBOX_TEST_UNSET_VAR",
        "-e",
        "GREETING",
        "svc",
        "sh",
        "-c",
        "echo ${RBOX_TEST_UNSET_VAR-left out} ${GREETING-gone}",
    ])
    .env_remove("RBOX_TEST_UNSET_VAR")
    .env_remove("GREETING")
    .output()
    .unwrap();
    assert_eq!(stdout(&o), "left out hi\n", "{}", stderr(&o));
    assert_eq!(code(&rrun(&["exec", "svc", "sh", "-c", "exit 7"])), 7);
    assert_eq!(code(&rrun(&["exec", "svc", "nope"])), 127);

    let o = rrun(&["rm", "svc"]);
    assert_eq!(code(&o), 1, "rm of a running container must refuse");
    assert!(stderr(&o).contains("running"), "{}", stderr(&o));

    // sleep as PID 1 ignores SIGTERM: stop waits -t, then kills.
    let t = std::time::Instant::now();
    assert_eq!(code(&rrun(&["stop", "-t", "1", "svc"])), 0);
    assert!(t.elapsed() >= Duration::from_millis(900));
    let ps = stdout(&rrun(&["ps", "-a"]));
    assert!(ps.contains("Exited (137)"), "{ps}");
    assert!(!stdout(&rrun(&["ps"])).contains("svc"));
    assert_eq!(code(&rrun(&["rm", "svc"])), 0);
    assert!(!stdout(&rrun(&["ps", "-a"])).contains("svc"));
    assert!(!store_root().join("containers").join(&id).exists());
}

#[test]
fn kill_with_a_signal_and_rm_force() {
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "trapper",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 99' USR1; while :; do sleep 0.05; done",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(code(&rrun(&["kill", "-s", "USR1", "trapper"])), 0);
    wait_for(
        || stdout(&rrun(&["ps", "-a"])).contains("Exited (99)"),
        "exit 99 after USR1",
    );
    assert_eq!(code(&rrun(&["rm", "trapper"])), 0);

    let o = rrun(&[
        "run", "-d", "--rm", "--name", "forced", "busybox", "sleep", "3600",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(code(&rrun(&["rm", "-f", "forced"])), 0);
    assert!(!stdout(&rrun(&["ps", "-a"])).contains("forced"));
    assert_eq!(
        code(&rrun(&["kill", "forced"])),
        1,
        "kill of a gone container must fail"
    );
}

#[test]
fn detached_start_errors_are_reported_by_the_foreground_rrun() {
    let o = rrun(&["run", "-d", "--name", "broken", "busybox", "no-such-cmd"]);
    assert_eq!(code(&o), 127, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("executable file not found"),
        "{}",
        stderr(&o)
    );
    assert!(!stdout(&rrun(&["ps", "-a"])).contains("broken"));
}

/// The removal of a container's directory against a writer that keeps
/// adding files to it by path, as the supervisor's health thread writes
/// `.health.json.tmp` and renames it to `health.json` (a check cut short
/// by `rm -f` is recorded just as rm removes the directory: `rm -f` then
/// failed with "Directory not empty"). Thousands of files make the walk
/// long; the writer never stops by itself.
#[test]
fn removing_a_container_directory_wins_against_a_writer() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    for round in 0..5 {
        let tmp = tempfile::tempdir().unwrap();
        let containers = tmp.path().join("containers");
        let dir = containers.join(format!("{round:064x}"));
        std::fs::create_dir_all(dir.join("upper/tmp")).unwrap();
        for i in 0..3000 {
            std::fs::write(dir.join(format!("upper/tmp/f{i}")), b"x").unwrap();
        }
        std::fs::write(dir.join("state.json"), b"{}").unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let (dir, stop) = (dir.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut writes = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let tmp = dir.join(".health.json.tmp");
                    if std::fs::write(&tmp, b"{}").is_ok()
                        && std::fs::rename(&tmp, dir.join("health.json")).is_ok()
                    {
                        writes += 1;
                    }
                }
                writes
            })
        };
        // The writer is at work before the removal starts.
        while !dir.join("health.json").exists() {
            std::thread::yield_now();
        }
        let removed = runner::lifecycle::remove_dir(&dir);
        stop.store(true, Ordering::Relaxed);
        let writes = writer.join().unwrap();
        assert!(writes > 0);
        removed.unwrap_or_else(|e| panic!("round {round}: {e}"));
        let left: Vec<_> = std::fs::read_dir(&containers)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "round {round}: left {left:?}");
    }
}

/// A container waiting out its restart back-off is "restarting", as in
/// Docker: `rm` refuses it, `rm -f` ends it (whatever process it runs by
/// then: a restart may begin meanwhile) and leaves nothing behind.
#[test]
fn rm_refuses_a_restarting_container_and_rm_force_ends_it() {
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "flapping",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // From the fourth restart on, the back-off is 800 ms and more: rm
    // lands in it (or, rarely, in a run, which it refuses too).
    wait_for(
        || {
            stdout(&rrun(&["inspect", "-f", "{{.RestartCount}}", "flapping"]))
                .trim()
                .parse::<u32>()
                .is_ok_and(|n| n >= 4)
        },
        "four restarts",
    );
    let o = rrun(&["rm", "flapping"]);
    assert_ne!(code(&o), 0, "rm of a restarting container succeeded");
    assert!(
        stderr(&o).contains("restarting") || stderr(&o).contains("running"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&rrun(&["ps", "-a", "--format", "{{.Names}}"])).contains("flapping"));
    let id = stdout(&rrun(&["inspect", "-f", "{{.Id}}", "flapping"]))
        .trim()
        .to_string();
    let o = rrun(&["rm", "-f", "flapping"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!stdout(&rrun(&["ps", "-a", "--format", "{{.Names}}"])).contains("flapping"));
    // No supervisor or container process of it is left.
    std::thread::sleep(Duration::from_millis(300));
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&id))
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");
}

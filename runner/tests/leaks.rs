//! Invariant 3: containers leave nothing behind — not a mount, a cgroup or
//! a directory — after many runs, failed starts included.

mod common;

use std::path::Path;

use common::*;

/// Both tests count what is left in the store and the cgroup tree: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// This store's container groups in every hierarchy: their ids end with
/// the store's tag, so tests of other stores running meanwhile (another
/// test binary, a helper on a dev machine) do not count.
fn our_cgroups() -> Vec<String> {
    let tag = runner::lifecycle::store_tag(store_root());
    let mut bases = vec![std::path::PathBuf::from("/sys/fs/cgroup/rbox")];
    if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
        bases.extend(rd.flatten().map(|e| e.path().join("rbox")));
    }
    let mut out = Vec::new();
    for base in bases {
        if let Ok(rd) = std::fs::read_dir(&base) {
            out.extend(
                rd.flatten()
                    .filter(|e| e.path().is_dir())
                    .filter(|e| e.file_name().to_string_lossy().ends_with(&tag))
                    .map(|e| e.path().display().to_string()),
            );
        }
    }
    out.sort();
    out
}

/// Host mounts on or from this store (a leaked overlay, volume or mount
/// point); other mounts come and go with whatever else runs on the host.
fn mounts() -> usize {
    let root = store_root().display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&root))
        .count()
}

fn entries(p: &Path) -> usize {
    std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn two_hundred_runs_leave_no_mount_cgroup_or_directory() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = store_root();
    let (m0, c0) = (mounts(), our_cgroups());
    for i in 0..200 {
        let o = match i % 4 {
            0 => sh(&["-m", "64m", "--pids-limit", "20"], "echo x > /f"),
            1 => sh(&["-v", "/etc:/host-etc:ro", "--tmpfs", "/t"], "exit 3"),
            2 => rrun(&["run", "--rm", "busybox", "no-such-command"]),
            _ => sh(&["--cpus", "0.5", "--read-only"], "true"),
        };
        assert!([0, 3, 127].contains(&code(&o)), "run {i}: {}", stderr(&o));
    }
    assert_eq!(mounts(), m0, "host mounts of the store grew");
    assert_eq!(our_cgroups(), c0, "cgroups left behind");
    assert_eq!(
        entries(&root.join("containers")),
        0,
        "container directories left behind"
    );
    assert_eq!(entries(&root.join("tmp")), 0, "temp names left behind");
}

#[test]
fn leftovers_of_a_killed_rrun_are_reaped_by_the_next_start() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = store_root();
    let mut child = rrun_cmd(&[
        "run", "--name", "doomed", "-m", "64m", "busybox", "sleep", "3600",
    ])
    .spawn()
    .unwrap();
    // Wait until it runs, then kill rrun itself with SIGKILL (no cleanup).
    let containers = root.join("containers");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let dir = loop {
        let hit = std::fs::read_dir(&containers)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                std::fs::read_to_string(p.join("state.json"))
                    .map(|s| s.contains("\"doomed\"") && s.contains("\"running\""))
                    .unwrap_or(false)
            });
        if let Some(d) = hit {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "container never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let id = dir.file_name().unwrap().to_string_lossy().into_owned();
    child.kill().unwrap();
    child.wait().unwrap();
    // The container died with rrun (PDEATHSIG); its cgroup and state remain until reaped.
    let o = rrun(&["ps", "-a"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("doomed"), "{}", stdout(&o));
    assert!(stdout(&o).contains("Exited"), "{}", stdout(&o));
    assert!(
        !our_cgroups().iter().any(|c| c.ends_with(&id)),
        "cgroup of the killed rrun survived"
    );
    assert_eq!(code(&rrun(&["rm", "doomed"])), 0);
    assert!(!dir.exists());
}

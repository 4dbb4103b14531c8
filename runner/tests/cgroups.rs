//! cgroup limits for real, on whichever driver this host has (v1 or
//! hybrid here; v2 in the qemu guest of scripts/test.sh).

mod common;

use std::sync::Mutex;

use common::*;

/// The CPU measurement needs the machine to itself: these tests run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn memory_hog_is_oom_killed_with_137_and_a_message() {
    let _g = serial();
    // `tail` keeps an ever-growing line buffer: /dev/zero has no newline.
    let o = sh(&["-m", "32m"], "tail /dev/zero");
    assert_eq!(code(&o), 137, "stderr: {}", stderr(&o));
    assert!(
        stderr(&o).contains("rrun: container was killed: out of memory (limit 32 MiB)"),
        "no OOM message: {}",
        stderr(&o)
    );
    // The limit is visible inside, in the container's own cgroup.
    let file = if cgroup_v2() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    let o = sh(&["-m", "32m"], &format!("cat {file}"));
    assert_eq!(
        stdout(&o).trim(),
        (32u64 << 20).to_string(),
        "{}",
        stderr(&o)
    );
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let _g = serial();
    let o = sh(
        &["--pids-limit", "10"],
        "for i in $(seq 30); do sleep 2 & done; wait",
    );
    assert!(
        stderr(&o).contains("can't fork"),
        "the fork bomb was not stopped: {}",
        stderr(&o)
    );
    // Without the limit the same loop forks all 30.
    let o = sh(&[], "for i in $(seq 30); do sleep 1 & done; wait");
    assert!(!stderr(&o).contains("can't fork"), "{}", stderr(&o));
    let file = if cgroup_v2() {
        "/sys/fs/cgroup/pids.max"
    } else {
        "/sys/fs/cgroup/pids/pids.max"
    };
    assert_eq!(
        stdout(&sh(&["--pids-limit", "10"], &format!("cat {file}"))).trim(),
        "10"
    );
}

/// (CPU seconds used, periods throttled) for a 2-second busy loop, read
/// from the container's own cgroup (mounted at /sys/fs/cgroup inside).
fn busy_loop(extra: &[&str]) -> (f64, u64, f64) {
    let read = if cgroup_v2() {
        "grep usage_usec /sys/fs/cgroup/cpu.stat | cut -d' ' -f2; grep nr_throttled /sys/fs/cgroup/cpu.stat | cut -d' ' -f2"
    } else {
        "echo $(( $(cat /sys/fs/cgroup/cpuacct/cpuacct.usage) / 1000 )); grep nr_throttled /sys/fs/cgroup/cpu/cpu.stat | cut -d' ' -f2"
    };
    // Two loops: more demand than the quota even on a busy 2-core host.
    let t = std::time::Instant::now();
    let o = sh(
        extra,
        &format!("timeout 2 sh -c 'while :; do :; done' & timeout 2 sh -c 'while :; do :; done'; wait; {read}"),
    );
    let out = stdout(&o);
    let mut l = out.lines();
    let usec: f64 = l
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no cpu usage: {out} {}", stderr(&o)));
    let throttled: u64 = l
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no nr_throttled: {out} {}", stderr(&o)));
    (usec / 1e6, throttled, t.elapsed().as_secs_f64())
}

#[test]
fn cpus_half_throttles_a_busy_loop() {
    let _g = serial();
    // Throttling shows only if the host lets the loops use more than the
    // quota: on a host busy with other work, wait for a quieter moment.
    let mut attempt = 0;
    let (limited, throttled, wall, free, free_throttled) = loop {
        let (free, free_throttled, _) = busy_loop(&[]);
        let (limited, throttled, wall) = busy_loop(&["--cpus", "0.5"]);
        eprintln!(
            "two 2 s busy loops: {limited:.2} s CPU in {wall:.2} s, {throttled} periods throttled with --cpus 0.5; {free:.2} s, {free_throttled} without"
        );
        attempt += 1;
        if free > 1.15 || attempt == 8 {
            assert!(free > 1.15, "the host is too busy to measure CPU limits: two busy loops got {free:.2} s of CPU in 2 s without a limit");
            break (limited, throttled, wall, free, free_throttled);
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    };
    let _ = free;
    assert!(
        limited < 0.5 * wall + 0.2,
        "--cpus 0.5 let two busy loops use {limited:.2} s of CPU in {wall:.2} s"
    );
    assert!(
        throttled >= 3,
        "the CFS quota never throttled the loop ({throttled} periods)"
    );
    assert_eq!(free_throttled, 0, "throttled without a limit");
    let (file, want) = if cgroup_v2() {
        ("/sys/fs/cgroup/cpu.max", "50000 100000")
    } else {
        ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "50000")
    };
    assert_eq!(
        stdout(&sh(&["--cpus", "0.5"], &format!("cat {file}"))).trim(),
        want
    );
}

#[test]
fn cpu_shares_become_shares_or_weight() {
    let (file, want) = if cgroup_v2() {
        ("/sys/fs/cgroup/cpu.weight", "20")
    } else {
        ("/sys/fs/cgroup/cpu/cpu.shares", "512")
    };
    let o = sh(&["--cpu-shares", "512"], &format!("cat {file}"));
    assert_eq!(stdout(&o).trim(), want, "{}", stderr(&o));
}

#[test]
fn the_container_sees_only_its_own_cgroup() {
    let o = sh(&[], "cat /proc/self/cgroup; grep cgroup /proc/mounts");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for line in out.lines().filter(|l| !l.contains(" /sys/fs/cgroup")) {
        let path = line.rsplit(':').next().unwrap();
        if line.contains("memory") || line.contains("pids") || line.starts_with("0::") {
            assert_eq!(
                path, "/",
                "cgroup namespace not rooted at the container's group: {line}"
            );
        }
    }
    assert!(
        out.contains(" /sys/fs/cgroup"),
        "no cgroup mount inside: {out}"
    );
    for l in out
        .lines()
        .filter(|l| l.contains(" /sys/fs/cgroup/") || l.contains("cgroup2 /sys/fs/cgroup "))
    {
        assert!(l.contains(" ro,"), "cgroup mounted writable: {l}");
    }
}

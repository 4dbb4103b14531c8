//! Docker's `run` options that change how the container's process starts
//! or is stopped (--ulimit, --sysctl, --shm-size, --group-add,
//! --oom-score-adj, --label, --cidfile, --stop-signal, --stop-timeout),
//! each observed from inside the container or from rrun, as root.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Generous: the qemu lane may run without KVM, and each health check
/// is an rrun exec.
fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn inspect(name: &str) -> serde_json::Value {
    let o = rrun(&["inspect", name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    v[0].clone()
}

#[test]
fn ulimits_are_set_in_the_container() {
    let o = sh(
        &[
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:2048",
            "--ulimit",
            "core=-1",
            "--ulimit",
            "nproc=300",
        ],
        "ulimit -Sn; ulimit -Hn; ulimit -c; ulimit -u",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "1024\n2048\nunlimited\n300\n");
}

#[test]
fn sysctls_are_the_containers_own() {
    let host_shmmni = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    let o = sh(
        &[
            "--network",
            "none",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "kernel.shmmni=1234",
        ],
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "1\n1234\n");
    // Written in the container's namespaces, not the host's.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
        host_shmmni
    );
}

#[test]
fn shm_size_sizes_dev_shm() {
    let o = sh(
        &["--network", "none", "--shm-size", "128m"],
        "df -k /dev/shm | tail -n 1",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let total: u64 = stdout(&o)
        .split_whitespace()
        .nth(1)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("df: {}", stdout(&o)));
    assert_eq!(total, 128 * 1024, "{}", stdout(&o));
    // Without it: Docker's 64 MiB.
    let o = sh(&["--network", "none"], "df -k /dev/shm | tail -n 1");
    assert!(
        stdout(&o).split_whitespace().nth(1) == Some("65536"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn group_add_by_number_and_by_the_images_names() {
    let o = sh(
        &[
            "--network",
            "none",
            "--group-add",
            "4242",
            "--group-add",
            "nogroup",
            "-u",
            "1000:1000",
        ],
        "id -G",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let mut groups: Vec<&str> = out.split_whitespace().collect();
    groups.sort();
    assert_eq!(groups, ["1000", "4242", "65534"], "{}", stdout(&o));
}

#[test]
fn oom_score_adj_is_the_containers() {
    let o = sh(
        &["--network", "none", "--oom-score-adj", "500"],
        "cat /proc/self/oom_score_adj",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "500\n");
}

#[test]
fn bad_values_are_refused_naming_the_option() {
    let cidfile = std::env::temp_dir().join("rrun-run-options-existing-cid");
    std::fs::write(&cidfile, "x").unwrap();
    let cid = cidfile.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["--ulimit", "bogus=1"], "invalid ulimit type: bogus"),
        (&["--ulimit", "nofile=20:10"], "soft limit"),
        (
            &["--sysctl", "kernel.panic=1"],
            "'kernel.panic' is not allowed",
        ),
        (
            &["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"],
            "network namespace",
        ),
        (&["--shm-size", "12q"], "invalid size"),
        (&["--oom-score-adj", "1001"], "[-1000, 1000]"),
        (
            &["--group-add", "no-such-group"],
            "unable to find group no-such-group",
        ),
        (&["--stop-signal", "SIGNOPE"], "not a signal"),
        (&["--stop-timeout", "-3"], "0 or more"),
        (&["--label", "=v"], "needs a key"),
        (&["--cidfile", cid], "container ID file found"),
    ];
    for (args, why) in cases {
        let mut all = vec!["run", "--name", "opts-refused"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["busybox", "true"]);
        let o = rrun(&all);
        assert_eq!(code(&o), 125, "{args:?}: {}", stderr(&o));
        let err = stderr(&o);
        let value = args[args.len() - 1];
        let flag = args[args.len() - 2];
        assert!(
            err.contains(why) && err.contains(value) && err.contains(flag.trim_start_matches('-')),
            "{args:?}: {err}"
        );
        let left = rrun(&["ps", "-aq", "--filter", "name=opts-refused"]);
        assert_eq!(stdout(&left), "", "{args:?} left a container");
    }
    assert_eq!(std::fs::read_to_string(&cidfile).unwrap(), "x");
    std::fs::remove_file(&cidfile).unwrap();
}

#[test]
fn create_then_start_keeps_the_options_and_inspect_shows_them() {
    let o = rrun(&[
        "create",
        "--name",
        "opts-created",
        "--network",
        "none",
        "--ulimit",
        "nofile=777:888",
        "--oom-score-adj",
        "321",
        "--shm-size",
        "32m",
        "--sysctl",
        "kernel.msgmax=4321",
        "--group-add",
        "4242",
        "--label",
        "tier=web",
        "--stop-signal",
        "SIGUSR1",
        "--stop-timeout",
        "3",
        "busybox",
        "sh",
        "-c",
        "ulimit -n; cat /proc/self/oom_score_adj /proc/sys/kernel/msgmax; id -G; df -k /dev/shm | tail -n 1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["start", "-a", "opts-created"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(&l[..4], ["777", "321", "4321", "0 4242"], "{out}");
    assert_eq!(l[4].split_whitespace().nth(1), Some("32768"), "{out}");

    let v = inspect("opts-created");
    let h = &v["HostConfig"];
    assert_eq!(
        h["Ulimits"],
        serde_json::json!([{"Name": "nofile", "Soft": 777, "Hard": 888}])
    );
    assert_eq!(h["OomScoreAdj"], 321);
    assert_eq!(h["ShmSize"], 32 << 20);
    assert_eq!(h["Sysctls"]["kernel.msgmax"], "4321");
    assert_eq!(h["GroupAdd"], serde_json::json!(["4242"]));
    let c = &v["Config"];
    assert_eq!(c["Labels"]["tier"], "web");
    assert_eq!(c["StopSignal"], "SIGUSR1");
    assert_eq!(c["StopTimeout"], 3);

    // ps --filter label= sees the container's own labels.
    let ps = stdout(&rrun(&[
        "ps",
        "-a",
        "--filter",
        "label=tier=web",
        "--format",
        "{{.Names}}",
    ]));
    assert_eq!(ps.trim(), "opts-created");
    let ps = stdout(&rrun(&[
        "ps",
        "-a",
        "--filter",
        "label=tier=db",
        "--format",
        "{{.Names}}",
    ]));
    assert_eq!(ps.trim(), "");
    assert_eq!(code(&rrun(&["rm", "opts-created"])), 0);
}

#[test]
fn label_file_and_label_flags() {
    let f = std::env::temp_dir().join("rrun-run-options-labels");
    std::fs::write(&f, "# comment\nfrom=file\nboth=file\n\n").unwrap();
    let o = rrun(&[
        "create",
        "--name",
        "opts-labels",
        "--network",
        "none",
        "--label-file",
        f.to_str().unwrap(),
        "-l",
        "both=flag",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v = inspect("opts-labels");
    assert_eq!(v["Config"]["Labels"]["from"], "file");
    assert_eq!(v["Config"]["Labels"]["both"], "flag");
    assert_eq!(code(&rrun(&["rm", "opts-labels"])), 0);
    std::fs::remove_file(&f).unwrap();
}

#[test]
fn cidfile_holds_the_id_and_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let cid = dir.path().join("cid");
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "opts-cid",
        "--network",
        "none",
        "--cidfile",
        cid.to_str().unwrap(),
        "busybox",
        "sleep",
        "3600",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id);
    // Nothing but the file: no temp file left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let o = rrun(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--cidfile",
        cid.to_str().unwrap(),
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("container ID file found"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read_to_string(&cid).unwrap(), id);
    assert_eq!(code(&rrun(&["rm", "-f", "opts-cid"])), 0);
}

#[test]
fn stop_sends_the_stop_signal_and_waits_the_stop_timeout() {
    // The trap sees USR1, not TERM.
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "opts-sig",
        "--network",
        "none",
        "--stop-signal",
        "USR1",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-usr1; exit 7' USR1; trap 'echo got-term; exit 8' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    wait_for(
        || stdout(&rrun(&["logs", "opts-sig"])).contains("ready"),
        "the trap",
    );
    let o = rrun(&["stop", "opts-sig"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&rrun(&["logs", "opts-sig"])).contains("got-usr1"));
    assert_eq!(inspect("opts-sig")["State"]["ExitCode"], 7);
    assert_eq!(code(&rrun(&["rm", "opts-sig"])), 0);

    // A container that ignores its stop signal is killed after
    // --stop-timeout (1 s), not the default 10 s.
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "opts-timeout",
        "--network",
        "none",
        "--stop-timeout",
        "1",
        "busybox",
        "sh",
        "-c",
        "trap '' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    wait_for(
        || stdout(&rrun(&["logs", "opts-timeout"])).contains("ready"),
        "the trap",
    );
    let t = Instant::now();
    let o = rrun(&["stop", "opts-timeout"]);
    let took = t.elapsed();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(9),
        "stop took {took:?}"
    );
    assert_eq!(inspect("opts-timeout")["State"]["ExitCode"], 137);
    assert_eq!(code(&rrun(&["rm", "opts-timeout"])), 0);
}

#[test]
fn cpuset_cpus_confine_the_container() {
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "opts-cpuset",
        "--network",
        "none",
        "--cpuset-cpus",
        "0",
        "--cpuset-mems",
        "0",
        "busybox",
        "sh",
        "-c",
        "grep Cpus_allowed_list /proc/self/status; exec sleep 3600",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    wait_for(
        || stdout(&rrun(&["logs", "opts-cpuset"])).contains("Cpus_allowed_list"),
        "the container's output",
    );
    let logs = stdout(&rrun(&["logs", "opts-cpuset"]));
    assert_eq!(logs.split_whitespace().nth(1), Some("0"), "{logs}");
    // From the host: the group's own cpuset.
    let group = if cgroup_v2() {
        format!("/sys/fs/cgroup/rbox/{id}")
    } else {
        format!("/sys/fs/cgroup/cpuset/rbox/{id}")
    };
    let cpus = std::fs::read_to_string(format!("{group}/cpuset.cpus")).unwrap();
    assert_eq!(cpus.trim(), "0");
    let mems = std::fs::read_to_string(format!("{group}/cpuset.mems")).unwrap();
    assert_eq!(mems.trim(), "0");
    let v = inspect("opts-cpuset");
    assert_eq!(v["HostConfig"]["CpusetCpus"], "0");
    assert_eq!(code(&rrun(&["rm", "-f", "opts-cpuset"])), 0);
    wait_for(
        || !std::path::Path::new(&group).exists(),
        "the cpuset group to go",
    );

    let o = sh(&["--cpuset-cpus", "0-4095"], "true");
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("--cpuset-cpus")
            && stderr(&o).contains("Requested CPUs are not available"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_device_is_made_and_allowed_and_others_are_not() {
    // /dev/mynull: the host's null under another name, usable.
    let o = sh(
        &["--network", "none", "--device", "/dev/null:/dev/mynull"],
        "ls -l /dev/mynull && echo x > /dev/mynull && echo written",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let ls: Vec<String> = stdout(&o).split_whitespace().map(str::to_string).collect();
    assert!(
        ls[0].starts_with('c') && ls[4] == "1," && ls[5] == "3",
        "{}",
        stdout(&o)
    );
    assert!(stdout(&o).ends_with("written\n"), "{}", stdout(&o));
    // /dev/kmsg (1:11) is not in the default list: opened only with
    // --device, and only for what its permissions say. Opened for
    // writing, nothing written (`:`); reading it needs CAP_SYSLOG anyway.
    let probe = "(: > /dev/mykmsg) 2>/dev/null && echo write || echo no-write";
    let o = sh(
        &["--network", "none", "--device", "/dev/kmsg:/dev/mykmsg:w"],
        probe,
    );
    assert_eq!(stdout(&o), "write\n", "{}", stderr(&o));
    let o = sh(
        &["--network", "none", "--device", "/dev/kmsg:/dev/mykmsg:r"],
        probe,
    );
    assert_eq!(stdout(&o), "no-write\n", "{}", stderr(&o));
    let o = sh(
        &["--network", "none"],
        &format!("mknod /dev/mykmsg c 1 11; {probe}"),
    );
    assert_eq!(stdout(&o), "no-write\n", "{}", stderr(&o));
    // inspect shows it.
    let o = rrun(&[
        "create",
        "--name",
        "opts-dev",
        "--network",
        "none",
        "--device",
        "/dev/zero:/dev/z:rw",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d = &inspect("opts-dev")["HostConfig"]["Devices"][0];
    assert_eq!(d["PathOnHost"], "/dev/zero");
    assert_eq!(d["PathInContainer"], "/dev/z");
    assert_eq!(d["CgroupPermissions"], "rw");
    assert_eq!(code(&rrun(&["rm", "opts-dev"])), 0);
    for (arg, why) in [
        ("/no/such/device", "error gathering device information"),
        ("/dev/null:/dev/x:rwx", "invalid device mode"),
        ("/etc/hostname", "not a device node"),
    ] {
        let o = sh(&["--device", arg], "true");
        assert_eq!(code(&o), 125, "{arg}");
        assert!(
            stderr(&o).contains(why) && stderr(&o).contains("--device"),
            "{}",
            stderr(&o)
        );
    }
}

fn health_status(name: &str) -> serde_json::Value {
    inspect(name)["State"]["Health"].clone()
}

#[test]
fn health_checks_go_healthy_then_unhealthy_when_the_check_fails() {
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "opts-health",
        "--network",
        "none",
        "--health-cmd",
        "test -f /tmp/ok && echo fine",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sh",
        "-c",
        "touch /tmp/ok; exec sleep 3600",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    wait_for(
        || health_status("opts-health")["Status"] == "healthy",
        "healthy",
    );
    let h = health_status("opts-health");
    assert_eq!(h["FailingStreak"], 0);
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["ExitCode"], 0);
    assert_eq!(last["Output"], "fine\n");
    let ps = stdout(&rrun(&[
        "ps",
        "--filter",
        "name=opts-health",
        "--format",
        "{{.Status}}",
    ]));
    assert_eq!(ps.trim(), "Up (healthy)");
    let c = &inspect("opts-health")["Config"]["Healthcheck"];
    assert_eq!(
        c["Test"],
        serde_json::json!(["CMD-SHELL", "test -f /tmp/ok && echo fine"])
    );
    assert_eq!(c["Interval"], 200_000_000u64);
    assert_eq!(c["Retries"], 2);

    // The file goes: two failures in a row make it unhealthy.
    assert_eq!(code(&rrun(&["exec", "opts-health", "rm", "/tmp/ok"])), 0);
    wait_for(
        || health_status("opts-health")["Status"] == "unhealthy",
        "unhealthy",
    );
    let h = health_status("opts-health");
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    wait_for(
        || {
            health_status("opts-health")["Log"]
                .as_array()
                .unwrap()
                .len()
                == 5
        },
        "five results kept",
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        health_status("opts-health")["Log"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let ps = stdout(&rrun(&[
        "ps",
        "--filter",
        "name=opts-health",
        "--format",
        "{{.Status}}",
    ]));
    assert_eq!(ps.trim(), "Up (unhealthy)");
    assert_eq!(code(&rrun(&["rm", "-f", "opts-health"])), 0);
}

#[test]
fn a_check_past_its_timeout_fails_and_bad_health_flags_are_refused() {
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "opts-slowcheck",
        "--network",
        "none",
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "100ms",
        "--health-timeout",
        "300ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "3600",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    wait_for(
        || health_status("opts-slowcheck")["Status"] == "unhealthy",
        "unhealthy",
    );
    let h = health_status("opts-slowcheck");
    let out = h["Log"][0]["Output"].as_str().unwrap().to_string();
    assert!(out.contains("exceeded timeout"), "{h}");
    assert_eq!(code(&rrun(&["rm", "-f", "opts-slowcheck"])), 0);

    for (args, why) in [
        (&["--health-interval", "5x"][..], "invalid duration"),
        (&["--health-retries", "-1"][..], "cannot be negative"),
        (
            &["--health-cmd", "true", "--no-healthcheck"][..],
            "conflicts with --health-* options",
        ),
    ] {
        let o = sh(args, "true");
        assert_eq!(code(&o), 125, "{args:?}");
        assert!(stderr(&o).contains(why), "{args:?}: {}", stderr(&o));
    }
}

fn container_dir(id: &str) -> std::path::PathBuf {
    store_root().join("containers").join(id)
}

#[test]
fn logs_rotate_at_max_size_keeping_max_file_files() {
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "opts-logrot",
        "--network",
        "none",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=3",
        "busybox",
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo \"line $i padding-padding-padding\"; i=$((i+1)); done; exec sleep 3600",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    wait_for(
        || stdout(&rrun(&["logs", "--tail", "1", "opts-logrot"])).contains("line 299 "),
        "the last line",
    );
    let dir = container_dir(&id);
    let mut sizes = Vec::new();
    for name in ["container.log", "container.log.1", "container.log.2"] {
        let len = std::fs::metadata(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .len();
        sizes.push(len);
    }
    assert!(
        !dir.join("container.log.3").exists(),
        "more than max-file files"
    );
    // Rotated at a line boundary once past 1 KiB: each at most 1 KiB and a line.
    for s in &sizes {
        assert!(*s <= 1024 + 40, "{sizes:?}");
    }
    assert!(sizes[1] >= 1024 && sizes[2] >= 1024, "{sizes:?}");
    // logs reads across the files, oldest first, whole lines in order.
    let all = stdout(&rrun(&["logs", "opts-logrot"]));
    let nums: Vec<u32> = all
        .lines()
        .map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(*nums.last().unwrap(), 299);
    assert!(nums.windows(2).all(|w| w[1] == w[0] + 1), "{all}");
    assert!(nums[0] > 0, "nothing was dropped: {}", nums[0]);
    assert_eq!(
        stdout(&rrun(&["logs", "--tail", "2", "opts-logrot"]))
            .lines()
            .count(),
        2
    );
    assert_eq!(
        inspect("opts-logrot")["HostConfig"]["LogConfig"]["Config"],
        serde_json::json!({"max-size": "1024", "max-file": "3"})
    );
    assert_eq!(code(&rrun(&["rm", "-f", "opts-logrot"])), 0);

    for (arg, why) in [
        ("max-size=12q", "invalid size"),
        ("max-file=0", "1 to 100"),
        ("mode=non-blocking", "unknown log opt"),
    ] {
        let o = rrun(&["run", "-d", "--log-opt", arg, "busybox", "true"]);
        assert_eq!(code(&o), 125, "{arg}");
        assert!(
            stderr(&o).contains(why) && stderr(&o).contains("--log-opt"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn logs_show_timestamps_and_filter_by_since() {
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "opts-logtime",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo one; sleep 2; echo two; exec sleep 3600",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    wait_for(
        || stdout(&rrun(&["logs", "opts-logtime"])).contains("two"),
        "two",
    );
    // Without -t: the lines as written, as before.
    assert_eq!(stdout(&rrun(&["logs", "opts-logtime"])), "one\ntwo\n");
    let o = rrun(&["logs", "--timestamps", "opts-logtime"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<(&str, &str)> = out.lines().map(|l| l.split_once(' ').unwrap()).collect();
    assert_eq!(
        lines.iter().map(|l| l.1).collect::<Vec<_>>(),
        ["one", "two"]
    );
    let secs = |ts: &str| -> f64 {
        // 2024-01-02T03:04:05.123456789Z: the seconds within the day.
        let t = ts.split('T').nth(1).unwrap().trim_end_matches('Z');
        let p: Vec<f64> = t.split(':').map(|x| x.parse().unwrap()).collect();
        p[0] * 3600.0 + p[1] * 60.0 + p[2]
    };
    let gap = (secs(lines[1].0) - secs(lines[0].0)).rem_euclid(86_400.0);
    assert!((1.5..10.0).contains(&gap), "{out}");
    assert_eq!(
        lines[0].0.len(),
        "2024-01-02T03:04:05.123456789Z".len(),
        "{out}"
    );
    // --since the second line's time: only it.
    let o = rrun(&["logs", "--since", lines[1].0, "opts-logtime"]);
    assert_eq!(stdout(&o), "two\n", "{}", stderr(&o));
    let o = rrun(&["logs", "--since", "1h", "opts-logtime"]);
    assert_eq!(stdout(&o), "one\ntwo\n");
    let o = rrun(&["logs", "--since", "2999-01-01T00:00:00Z", "opts-logtime"]);
    assert_eq!(stdout(&o), "");
    let o = rrun(&["logs", "--since", "yesterday", "opts-logtime"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("--since"), "{}", stderr(&o));
    assert_eq!(code(&rrun(&["rm", "-f", "opts-logtime"])), 0);
}

#[test]
fn logs_follow_goes_on_into_the_rotated_file() {
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "opts-logfollow",
        "--network",
        "none",
        "--log-opt",
        "max-size=200",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "sleep 1; i=1; while [ $i -le 60 ]; do echo \"row $i xxxxxxxxxx\"; i=$((i+1)); sleep 0.01; done",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Started before the first line: it must see every line, through
    // several rotations, and end when the container does.
    let o = rrun(&["logs", "-f", "opts-logfollow"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rows: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    let want: Vec<String> = (1..=60).map(|i| format!("row {i} xxxxxxxxxx")).collect();
    assert_eq!(rows, want);
    assert_eq!(code(&rrun(&["rm", "opts-logfollow"])), 0);

    // start -a follows the same way.
    let o = rrun(&[
        "create",
        "--name",
        "opts-logattach",
        "--network",
        "none",
        "--log-opt",
        "max-size=200",
        "--log-opt",
        "max-file=2",
        "busybox",
        "sh",
        "-c",
        "i=1; while [ $i -le 60 ]; do echo \"row $i xxxxxxxxxx\"; i=$((i+1)); sleep 0.01; done",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["start", "-a", "opts-logattach"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let rows: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(rows, want);
    assert_eq!(code(&rrun(&["rm", "opts-logattach"])), 0);
}

//! Operations on a container an earlier rrun made, through the runtime
//! seam (`Runtime::open` → `Container`): exec, pause/unpause, update,
//! kill, for the native runtime and for crun and runc (a runtime that is
//! not installed fails the test, saying so). What is checked is what
//! the kernel shows: the exec'd process's output and exit status, the
//! frozen processes' state (D or T on v1, `frozen 1` on v2), the limit in the container's own
//! cgroup files and the OOM kill of an allocation over it.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn installed(binary: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(binary).is_file()))
        .unwrap_or(false)
}

/// `--runtime rt` unless native; fails when the runtime is not installed
/// (CONTRIBUTING: tests that need something missing fail loudly).
fn runtime_args(rt: &str) -> Vec<&str> {
    if rt == "native" {
        return Vec::new();
    }
    assert!(installed(rt), "{rt} is not installed: apt-get install {rt}");
    vec!["--runtime", rt]
}

fn detached(rt: &str, name: &str, extra: &[&str]) {
    let _ = rrun(&["rm", "-f", name]);
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend(runtime_args(rt));
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sleep", "1000"]);
    let o = rrun(&args);
    assert_eq!(code(&o), 0, "{rt}: run -d: {}", stderr(&o));
}

fn pid_of(name: &str) -> i32 {
    let o = rrun(&["inspect", "-f", "{{.State.Pid}}", name]);
    assert_eq!(code(&o), 0, "inspect {name}: {}", stderr(&o));
    stdout(&o).trim().parse().expect("a pid")
}

/// The state letter of /proc/PID/stat (R, S, D, T, Z…).
fn proc_state(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .and_then(|(_, r)| r.trim_start().chars().next())
        .unwrap_or('?')
}

/// Whether the freezer holds `pid`: cgroup v1's freezer leaves a task
/// in D (or T); v2's traps it in an interruptible sleep (S), and the
/// kernel says in its group's cgroup.events (`frozen 1`) once every
/// task of the group is trapped.
fn frozen(pid: i32) -> bool {
    if !cgroup_v2() {
        return matches!(proc_state(pid), 'D' | 'T');
    }
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let Some(group) = cgroup.lines().find_map(|l| l.strip_prefix("0::")) else {
        return false;
    };
    std::fs::read_to_string(format!("/sys/fs/cgroup{}/cgroup.events", group.trim()))
        .is_ok_and(|e| e.lines().any(|l| l == "frozen 1"))
}

fn until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A control file of the container's memory/pids/cpu cgroup, read from
/// inside it (its cgroup namespace) by `rrun exec`.
fn control(name: &str, v1: &str, v2: &str) -> String {
    let file = if cgroup_v2() {
        format!("/sys/fs/cgroup/{v2}")
    } else {
        format!("/sys/fs/cgroup/{v1}")
    };
    let o = rrun(&["exec", name, "cat", &file]);
    assert_eq!(code(&o), 0, "{name}: cat {file}: {}", stderr(&o));
    stdout(&o).trim().to_string()
}

fn exec_pause_update_kill(rt: &str) {
    let name = format!("ops-{rt}");
    let name = name.as_str();
    detached(rt, name, &[]);

    // exec: stdout and the exit status of the exec'd process; a missing
    // command is Docker's 127.
    let o = rrun(&[
        "exec",
        "-e",
        "X=42",
        name,
        "sh",
        "-c",
        "echo out-$X; exit 3",
    ]);
    assert_eq!(code(&o), 3, "{rt}: exec: {}", stderr(&o));
    assert_eq!(stdout(&o), "out-42\n", "{rt}: exec");
    let o = rrun(&["exec", name, "no-such-cmd"]);
    assert_eq!(code(&o), 127, "{rt}: {}", stderr(&o));

    // pause: every process frozen (the freezer leaves them in D or T).
    let pid = pid_of(name);
    let o = rrun(&["pause", name]);
    assert_eq!(code(&o), 0, "{rt}: pause: {}", stderr(&o));
    until("the container's process to freeze", || frozen(pid));
    let ps = stdout(&rrun(&["ps", "--filter", &format!("name={name}")]));
    assert!(
        ps.contains("(Paused)"),
        "{rt}: ps of a paused container: {ps}"
    );
    let o = rrun(&["exec", name, "true"]);
    assert_eq!(code(&o), 1, "{rt}: exec into a paused container");
    assert!(stderr(&o).contains("is paused"), "{rt}: {}", stderr(&o));
    let o = rrun(&["pause", name]);
    assert_eq!(code(&o), 1, "{rt}: pause twice");
    assert!(
        stderr(&o).contains(&format!("container {name} is already paused")),
        "{rt}: {}",
        stderr(&o)
    );
    let o = rrun(&["unpause", name]);
    assert_eq!(code(&o), 0, "{rt}: unpause: {}", stderr(&o));
    until("the container's process to thaw", || {
        !frozen(pid) && proc_state(pid) == 'S'
    });
    let o = rrun(&["unpause", name]);
    assert_eq!(code(&o), 1, "{rt}: unpause of a running container");

    // update: the limits in the container's own cgroup, an allocation
    // over the memory limit OOM-killed, the record in inspect.
    let o = rrun(&[
        "update",
        "-m",
        "32m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        name,
    ]);
    assert_eq!(code(&o), 0, "{rt}: update: {}", stderr(&o));
    assert_eq!(stdout(&o), format!("{name}\n"));
    assert_eq!(
        control(name, "memory/memory.limit_in_bytes", "memory.max"),
        (32u64 << 20).to_string(),
        "{rt}: memory limit after update"
    );
    assert_eq!(control(name, "pids/pids.max", "pids.max"), "50", "{rt}");
    let cpu = control(name, "cpu/cpu.cfs_quota_us", "cpu.max");
    assert!(
        cpu.starts_with("50000"),
        "{rt}: cpu quota after update: {cpu}"
    );
    // `tail` keeps an ever-growing line buffer: /dev/zero has no newline.
    let o = rrun(&["exec", name, "tail", "/dev/zero"]);
    assert_eq!(
        code(&o),
        137,
        "{rt}: an allocation over 32 MiB: {}",
        stderr(&o)
    );
    let oom = control(name, "memory/memory.oom_control", "memory.events");
    assert!(
        oom.lines()
            .any(|l| l.starts_with("oom_kill ") && l != "oom_kill 0"),
        "{rt}: no OOM kill counted: {oom}"
    );
    let mem = stdout(&rrun(&["inspect", "-f", "{{.HostConfig.Memory}}", name]));
    assert_eq!(mem.trim(), (32u64 << 20).to_string(), "{rt}: inspect");
    let o = rrun(&["update", "-m", "-1", name]);
    assert_eq!(code(&o), 125, "{rt}: removing the memory limit is refused");
    assert!(stderr(&o).contains("-m, --memory"), "{rt}: {}", stderr(&o));

    // kill of a paused container: the signal through the runtime, then
    // resumed so that it is handled; then every operation names the
    // stopped container.
    let o = rrun(&["pause", name]);
    assert_eq!(code(&o), 0, "{rt}: pause: {}", stderr(&o));
    let o = rrun(&["kill", name]);
    assert_eq!(code(&o), 0, "{rt}: kill: {}", stderr(&o));
    until("the container to stop", || {
        stdout(&rrun(&["inspect", "-f", "{{.State.Running}}", name])).trim() == "false"
    });
    let not_running = format!("container {name} is not running");
    for args in [
        vec!["exec", name, "true"],
        vec!["pause", name],
        vec!["unpause", name],
        vec!["kill", name],
    ] {
        let o = rrun(&args);
        assert_eq!(code(&o), 1, "{rt}: {args:?} on a stopped container");
        assert!(
            stderr(&o).contains(&not_running),
            "{rt}: {args:?}: {}",
            stderr(&o)
        );
    }
    let o = rrun(&["rm", name]);
    assert_eq!(code(&o), 0, "{rt}: rm: {}", stderr(&o));
}

#[test]
fn native_exec_pause_update_kill() {
    exec_pause_update_kill("native");
}

#[test]
fn crun_exec_pause_update_kill() {
    exec_pause_update_kill("crun");
}

#[test]
fn runc_exec_pause_update_kill() {
    exec_pause_update_kill("runc");
}

/// The pids limit and the CPU quota in the container's own cgroup
/// files: (pids.max, quota), the quota as cpu.cfs_quota_us (v1)
/// or the first field of cpu.max (v2).
fn pids_and_quota(name: &str) -> (String, String) {
    let pids = control(name, "pids/pids.max", "pids.max");
    let cpu = control(name, "cpu/cpu.cfs_quota_us", "cpu.max");
    let quota = cpu.split_whitespace().next().unwrap_or("").to_string();
    (pids, quota)
}

/// What the kernel shows for no limit: pids.max `max`, a CFS quota of
/// -1 on v1 and `max` on v2.
fn unlimited() -> (String, String) {
    let quota = if cgroup_v2() { "max" } else { "-1" };
    ("max".to_string(), quota.to_string())
}

/// Docker's `update --pids-limit 0|-1` and `--cpus 0` remove the limit
/// from a running container, read back from its own cgroup files; a
/// memory limit cannot be removed, and saying so names the flag.
fn update_to_unlimited(rt: &str) {
    let name = format!("ops-unlimited-{rt}");
    let name = name.as_str();
    detached(
        rt,
        name,
        &["--pids-limit", "64", "--cpus", "0.5", "-m", "64m"],
    );
    assert_eq!(
        pids_and_quota(name),
        ("64".to_string(), "50000".to_string()),
        "{rt}: limits at run"
    );
    let o = rrun(&["update", "--pids-limit", "-1", "--cpus", "0", name]);
    assert_eq!(code(&o), 0, "{rt}: update to unlimited: {}", stderr(&o));
    assert_eq!(pids_and_quota(name), unlimited(), "{rt}: after -1 and 0");
    let o = rrun(&[
        "inspect",
        "-f",
        "{{.HostConfig.PidsLimit}} {{.HostConfig.NanoCpus}}",
        name,
    ]);
    assert_eq!(
        stdout(&o).trim(),
        "<no value> 0",
        "{rt}: inspect: {}",
        stderr(&o)
    );
    // 0 removes the pids limit too; a limit can be set again after.
    let o = rrun(&["update", "--pids-limit", "32", "--cpus", "0.25", name]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    assert_eq!(
        pids_and_quota(name),
        ("32".to_string(), "25000".to_string()),
        "{rt}: set again"
    );
    let o = rrun(&["update", "--pids-limit", "0", name]);
    assert_eq!(code(&o), 0, "{rt}: --pids-limit 0: {}", stderr(&o));
    assert_eq!(pids_and_quota(name).0, "max", "{rt}: after --pids-limit 0");
    let o = rrun(&["update", "-m", "-1", name]);
    assert_eq!(code(&o), 125, "{rt}: -m -1 must be refused");
    assert!(
        stderr(&o).contains("-m, --memory") && stderr(&o).contains("cannot be removed"),
        "{rt}: {}",
        stderr(&o)
    );
    assert_eq!(
        control(name, "memory/memory.limit_in_bytes", "memory.max"),
        (64u64 << 20).to_string(),
        "{rt}: the memory limit stays"
    );
    let o = rrun(&["rm", "-f", name]);
    assert_eq!(code(&o), 0, "{rt}: rm: {}", stderr(&o));
}

#[test]
fn native_update_to_unlimited() {
    update_to_unlimited("native");
}

#[test]
fn crun_update_to_unlimited() {
    update_to_unlimited("crun");
}

#[test]
fn runc_update_to_unlimited() {
    update_to_unlimited("runc");
}

/// `run --cpus 0 --pids-limit -1`: Docker's "no limit", as without
/// the flags (not a refusal).
#[test]
fn run_with_cpus_0_and_pids_limit_minus_1_sets_no_limit() {
    let name = "ops-run-unlimited";
    detached("native", name, &["--cpus", "0", "--pids-limit", "-1"]);
    assert_eq!(pids_and_quota(name), unlimited());
    let _ = rrun(&["rm", "-f", name]);
}

/// A limit removed by update stays removed when the container starts
/// again (`stop` + `start`, `restart`, a restart by its policy): the
/// record holds no limit, never the one given to run. crun and runc
/// start a new runtime container from that record each time.
#[test]
fn unlimited_persists_across_restarts() {
    for rt in ["native", "crun", "runc"] {
        unlimited_persists_across_restarts_on(rt);
    }
}

fn unlimited_persists_across_restarts_on(rt: &str) {
    let name = format!("ops-unlimited-restart-{rt}");
    let name = name.as_str();
    let limits = ["--pids-limit", "64", "--cpus", "0.5", "--restart", "always"];
    detached(rt, name, &limits);
    let o = rrun(&["update", "--pids-limit", "-1", "--cpus", "0", name]);
    assert_eq!(code(&o), 0, "{rt}: update: {}", stderr(&o));
    let o = rrun(&["stop", "-t", "1", name]);
    assert_eq!(code(&o), 0, "{rt}: stop: {}", stderr(&o));
    let o = rrun(&["start", name]);
    assert_eq!(code(&o), 0, "{rt}: start: {}", stderr(&o));
    assert_eq!(pids_and_quota(name), unlimited(), "{rt}: after stop, start");
    let o = rrun(&["restart", "-t", "1", name]);
    assert_eq!(code(&o), 0, "{rt}: restart: {}", stderr(&o));
    assert_eq!(pids_and_quota(name), unlimited(), "{rt}: after restart");
    let old = pid_of(name);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    until("the policy's restart", || {
        let p = stdout(&rrun(&["inspect", "-f", "{{.State.Pid}}", name]));
        p.trim().parse::<i32>().is_ok_and(|p| p != 0 && p != old)
    });
    assert_eq!(
        pids_and_quota(name),
        unlimited(),
        "{rt}: after a policy restart"
    );
    let _ = rrun(&["rm", "-f", name]);
}

/// Docker keeps `docker update`'s limits across a restart: the recorded
/// spec carries them (`rrun restart` starts the native runtime's
/// containers again from it).
#[test]
fn update_persists_across_restart() {
    let name = "ops-restart";
    detached("native", name, &["-m", "64m"]);
    let o = rrun(&["update", "-m", "40m", "--pids-limit", "30", name]);
    assert_eq!(code(&o), 0, "update: {}", stderr(&o));
    let o = rrun(&["restart", "-t", "1", name]);
    assert_eq!(code(&o), 0, "restart: {}", stderr(&o));
    assert_eq!(
        control(name, "memory/memory.limit_in_bytes", "memory.max"),
        (40u64 << 20).to_string(),
        "memory limit after restart"
    );
    assert_eq!(control(name, "pids/pids.max", "pids.max"), "30");
    // A stopped container's update is recorded for its next start.
    let o = rrun(&["stop", "-t", "1", name]);
    assert_eq!(code(&o), 0, "stop: {}", stderr(&o));
    let o = rrun(&["update", "--pids-limit", "20", name]);
    assert_eq!(code(&o), 0, "update of a stopped container: {}", stderr(&o));
    let o = rrun(&["start", name]);
    assert_eq!(code(&o), 0, "start: {}", stderr(&o));
    assert_eq!(control(name, "pids/pids.max", "pids.max"), "20");
    assert_eq!(
        control(name, "memory/memory.limit_in_bytes", "memory.max"),
        (40u64 << 20).to_string()
    );
    let _ = rrun(&["rm", "-f", name]);
}

#[test]
fn update_refuses_bad_values_and_unknown_containers() {
    let o = rrun(&["update", "no-such-container-x"]);
    assert_eq!(code(&o), 125, "no flag: {}", stderr(&o));
    assert!(stderr(&o).contains("one or more flags"), "{}", stderr(&o));
    let o = rrun(&["update", "-m", "1k", "x"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("minimum memory limit"),
        "{}",
        stderr(&o)
    );
    let o = rrun(&["update", "-m", "64m", "no-such-container-x"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("no-such-container-x"), "{}", stderr(&o));
}

/// `exec -t`: the process gets a terminal of the container's devpts
/// (through the runtime's console socket for crun and runc) and TERM.
fn exec_tty(rt: &str) {
    let name = format!("ops-tty-{rt}");
    let name = name.as_str();
    assert!(
        installed("script"),
        "script is not installed: apt-get install bsdutils"
    );
    detached(rt, name, &[]);
    let line = format!(
        "{RRUN} --root {} exec -t {name} sh -c 'tty; echo term=$TERM; exit 4'",
        store_root().display()
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let out = stdout(&o);
    assert_eq!(code(&o), 4, "{rt}: {out} {}", stderr(&o));
    assert!(out.contains("/dev/pts/"), "{rt}: no terminal: {out}");
    assert!(out.contains("term=xterm"), "{rt}: {out}");
    let o = rrun(&["rm", "-f", name]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
}

#[test]
fn exec_t_native() {
    exec_tty("native");
}

#[test]
fn exec_t_crun() {
    exec_tty("crun");
}

#[test]
fn exec_t_runc() {
    exec_tty("runc");
}

/// A restart by the container's own policy (no `rrun start`) also takes
/// the limits `rrun update` set since the container started.
#[test]
fn update_persists_across_a_policy_restart() {
    let name = "ops-policy";
    detached("native", name, &["-m", "64m", "--restart", "always"]);
    let o = rrun(&["update", "-m", "40m", "--pids-limit", "30", name]);
    assert_eq!(code(&o), 0, "update: {}", stderr(&o));
    // The command dies as in a crash: the policy starts it again.
    let old = pid_of(name);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(old),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    until("the policy's restart", || {
        let o = rrun(&["inspect", "-f", "{{.State.Pid}} {{.RestartCount}}", name]);
        let out = stdout(&o);
        let mut f = out.split_whitespace();
        let pid: i32 = f.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let restarts: u32 = f.next().and_then(|r| r.parse().ok()).unwrap_or(0);
        pid != 0 && pid != old && restarts >= 1
    });
    assert_eq!(
        control(name, "memory/memory.limit_in_bytes", "memory.max"),
        (40u64 << 20).to_string(),
        "memory limit after the policy's restart"
    );
    assert_eq!(control(name, "pids/pids.max", "pids.max"), "30");
    let _ = rrun(&["rm", "-f", name]);
}

/// `exec -u USER`: the process gets USER's supplementary groups from the
/// container's /etc/group as the native runtime gives them (crun and
/// runc through `exec --process`: their flags carry no additionalGids);
/// `-u UID:GID` gets none. Returns the two `id -G` lines.
fn exec_groups(rt: &str, tag: &str) -> (String, String) {
    let name = format!("ops-groups-{rt}-{tag}");
    let name = name.as_str();
    detached(rt, name, &[]);
    let o = rrun(&[
        "exec",
        name,
        "sh",
        "-c",
        "echo 'gus:x:1234:1234::/:/bin/sh' >> /etc/passwd && \
         echo 'staff:x:50:gus' >> /etc/group && echo 'extra:x:61:bin,gus' >> /etc/group",
    ]);
    assert_eq!(code(&o), 0, "{rt}: edit /etc/group: {}", stderr(&o));
    let o = rrun(&["exec", "-u", "gus", name, "id", "-G"]);
    assert_eq!(code(&o), 0, "{rt}: exec -u gus id -G: {}", stderr(&o));
    let as_gus = stdout(&o).trim().to_string();
    // Given uid:gid, no supplementary groups (Docker's rule).
    let o = rrun(&["exec", "-u", "1234:1234", name, "id", "-G"]);
    assert_eq!(code(&o), 0, "{rt}: exec -u 1234:1234 id -G: {}", stderr(&o));
    let as_ids = stdout(&o).trim().to_string();
    // The process files went with their execs.
    let o = rrun(&["inspect", "-f", "{{.Id}}", name]);
    let bundle = store_root()
        .join("containers")
        .join(stdout(&o).trim())
        .join("bundle");
    if let Ok(entries) = std::fs::read_dir(&bundle) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            assert!(!n.starts_with("exec-"), "{rt}: {n} left in {bundle:?}");
        }
    }
    let o = rrun(&["rm", "-f", name]);
    assert_eq!(code(&o), 0, "{rt}: rm: {}", stderr(&o));
    (as_gus, as_ids)
}

#[test]
fn exec_groups_native() {
    let (as_gus, as_ids) = exec_groups("native", "alone");
    assert_eq!(as_gus, "1234 50 61");
    assert_eq!(as_ids, "1234");
}

#[test]
fn exec_groups_crun() {
    let got = exec_groups("crun", "crun");
    assert_eq!(got, exec_groups("native", "crun"), "crun vs native");
    assert_eq!(got.0, "1234 50 61");
}

#[test]
fn exec_groups_runc() {
    let got = exec_groups("runc", "runc");
    assert_eq!(got, exec_groups("native", "runc"), "runc vs native");
    assert_eq!(got.0, "1234 50 61");
}

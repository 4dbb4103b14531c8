//! `rrun run --runtime crun|runc`: the same image through an external OCI
//! runtime, with the same isolation, limits and exit codes, and nothing
//! left behind. Needs crun and runc installed (apt-get install crun runc).

mod common;

use common::*;

fn require(binary: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(binary).is_file()))
        .unwrap_or(false);
    assert!(found, "{binary} is not installed: apt-get install {binary}");
}

fn check_runtime(rt: &str) {
    require(rt);
    let mem = if cgroup_v2() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    let o = rrun(&[
        "run",
        "--rm",
        "--name",
        &format!("oci-{rt}"),
        "--runtime",
        rt,
        "--hostname",
        "oci-box",
        "-m",
        "64m",
        "-e",
        "X=1",
        "busybox",
        "sh",
        "-c",
        &format!("echo $$; hostname; ls /sys/class/net; cat {mem}; echo $X; echo w > /f; exit 7"),
    ]);
    assert_eq!(code(&o), 7, "{rt}: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("1\noci-box\nlo\n{}\n1\n", 64u64 << 20),
        "{rt}: {}",
        stderr(&o)
    );
    let ps = stdout(&rrun(&["ps", "-a"]));
    assert!(
        !ps.contains(&format!("oci-{rt}")),
        "--rm left the container: {ps}"
    );
}

#[test]
fn crun_runs_the_same_image() {
    check_runtime("crun");
}

#[test]
fn runc_runs_the_same_image() {
    check_runtime("runc");
}

#[test]
fn oci_runtime_leaves_no_mount_or_directory() {
    require("crun");
    let mounts = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .count()
    };
    let before = mounts();
    for _ in 0..5 {
        let o = rrun(&[
            "run",
            "--rm",
            "--name",
            "oci-leak",
            "--runtime",
            "crun",
            "busybox",
            "true",
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    assert_eq!(mounts(), before);
    let o = rrun(&["ps", "-a"]);
    assert!(!stdout(&o).contains("oci-leak"), "{}", stdout(&o));
}

/// The container's directory in the test store, by its full id.
fn container_dir(id: &str) -> std::path::PathBuf {
    store_root().join("containers").join(id)
}

/// Where the runtime made the container's memory cgroup (gone once deleted).
fn memory_cgroup(id: &str) -> std::path::PathBuf {
    if cgroup_v2() {
        format!("/sys/fs/cgroup/rbox/{id}").into()
    } else {
        format!("/sys/fs/cgroup/memory/rbox/{id}").into()
    }
}

fn state_of(id: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(container_dir(id).join("state.json"))
        .unwrap_or_else(|e| panic!("state.json of {id}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// `ps -a`'s STATUS column for `name`.
fn ps_status(name: &str) -> String {
    let ps = stdout(&rrun(&["ps", "-a"]));
    let line = ps
        .lines()
        .find(|l| l.ends_with(&format!(" {name}")))
        .unwrap_or_else(|| panic!("{name} not in ps -a:\n{ps}"));
    // Columns: id, image, command (quoted, may hold spaces), created, status, name.
    let after_cmd = &line[line.rfind('"').unwrap() + 1..];
    let ago = after_cmd.find(" ago").unwrap() + 4;
    after_cmd[ago..]
        .trim()
        .trim_end_matches(name)
        .trim()
        .to_string()
}

fn wait_for(what: &str, timeout: std::time::Duration, mut ok: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !ok() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// -d through the runtime: rrun returns with the id while the container
/// runs on under rrun's supervisor; ps, logs, exec, kill, stop and rm
/// work on it, and nothing is left after rm.
fn check_detached(rt: &str) {
    require(rt);
    let name = format!("oci-detached-{rt}");
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        rt,
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-usr1; exit 9' USR1; echo out; echo err >&2; while :; do sleep 0.1; done",
    ]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert_eq!(id.len(), 64, "{rt}: not an id: {id:?}");
    assert_eq!(stderr(&o), "");
    // Still running after rrun returned: its first process is alive on
    // the host, and rrun's own state says so.
    let st = state_of(&id);
    assert_eq!(st["status"], "running", "{rt}: {st}");
    let pid = st["pid"]["pid"].as_i64().unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(ps_status(&name), "Up");
    assert!(
        memory_cgroup(&id).is_dir(),
        "{rt}: no cgroup {:?}",
        memory_cgroup(&id)
    );
    wait_for(
        "the output in the log",
        std::time::Duration::from_secs(10),
        || stdout(&rrun(&["logs", &name])).lines().count() == 2,
    );
    let logs = stdout(&rrun(&["logs", &name]));
    let mut lines: Vec<&str> = logs.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["err", "out"], "{rt}: {logs:?}");

    // exec: in the container's pid and uts namespaces, its exit code back.
    let o = rrun(&[
        "exec",
        "-e",
        "Y=2",
        &name,
        "sh",
        "-c",
        "echo $Y; hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; exit 3",
    ]);
    assert_eq!(code(&o), 3, "{rt}: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "2\n{}\nsh -c trap 'echo got-usr1; exit 9' USR1; echo out; echo err >&2; while :; do sleep 0.1; done \n",
            &id[..12]
        ),
        "{rt}: {}",
        stderr(&o)
    );
    // -u, and the container's seccomp filter on the exec'd process too.
    let o = rrun(&[
        "exec",
        "-u",
        "1000:1000",
        &name,
        "sh",
        "-c",
        "id -u; grep ^Seccomp: /proc/self/status; unshare -U true 2>/dev/null; echo $?",
    ]);
    assert_eq!(
        (code(&o), stdout(&o)),
        (0, "1000\nSeccomp:\t2\n1\n".to_string()),
        "{rt}: {}",
        stderr(&o)
    );
    let o = rrun(&["exec", &name, "no-such-cmd"]);
    assert_eq!(code(&o), 127, "{rt}: {}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "rrun: \"no-such-cmd\": executable file not found in $PATH\n"
    );

    // kill -s: the signal reaches PID 1, whose exit rrun records.
    let o = rrun(&["kill", "-s", "USR1", &name]);
    assert_eq!(
        (code(&o), stdout(&o)),
        (0, format!("{name}\n")),
        "{}",
        stderr(&o)
    );
    wait_for(
        "the exit recorded",
        std::time::Duration::from_secs(10),
        || state_of(&id)["status"] == "exited",
    );
    let status = ps_status(&name);
    assert!(status.starts_with("Exited (9) "), "{rt}: {status}");
    assert!(stdout(&rrun(&["logs", &name])).contains("got-usr1\n"));
    assert!(
        !memory_cgroup(&id).exists(),
        "{rt}: the runtime's cgroup stayed"
    );
    assert!(
        !container_dir(&id).join("bundle").exists(),
        "{rt}: the bundle stayed after the exit"
    );
    let o = rrun(&["exec", &name, "true"]);
    assert_eq!(code(&o), 1, "{rt}: exec on an exited container");
    let o = rrun(&["rm", &name]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    assert!(!container_dir(&id).exists(), "{rt}: rm left the directory");

    // stop -t 1: PID 1 ignores TERM (no handler), so KILL after the grace.
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        rt,
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    let t = std::time::Instant::now();
    let o = rrun(&["stop", "-t", "1", &name]);
    assert_eq!(
        (code(&o), stdout(&o)),
        (0, format!("{name}\n")),
        "{}",
        stderr(&o)
    );
    let took = t.elapsed();
    assert!(
        took >= std::time::Duration::from_secs(1) && took < std::time::Duration::from_secs(8),
        "{rt}: stop -t 1 took {took:?}"
    );
    assert!(ps_status(&name).starts_with("Exited (137) "), "{rt}");
    assert!(
        !memory_cgroup(&id).exists(),
        "{rt}: the runtime's cgroup stayed"
    );
    assert_eq!(code(&rrun(&["rm", &name])), 0);

    // rm -f of a running one.
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        rt,
        "busybox",
        "sleep",
        "1000",
    ]);
    let id = stdout(&o).trim().to_string();
    let o = rrun(&["rm", &name]);
    assert_eq!(code(&o), 1, "{rt}: rm of a running container");
    assert!(
        stderr(&o).contains("it is running (stop it first, or use rm -f)"),
        "{}",
        stderr(&o)
    );
    let o = rrun(&["rm", "-f", &name]);
    assert_eq!(
        (code(&o), stdout(&o)),
        (0, format!("{name}\n")),
        "{}",
        stderr(&o)
    );
    assert!(!container_dir(&id).exists());
    assert!(
        !memory_cgroup(&id).exists(),
        "{rt}: the runtime's cgroup stayed"
    );
}

#[test]
fn crun_detached_lifecycle() {
    check_detached("crun");
}

#[test]
fn runc_detached_lifecycle() {
    check_detached("runc");
}

/// -m through the runtime: an OOM kill in the cgroup the runtime made is
/// reported as natively; a plain exit 137 is not mistaken for one.
fn check_oom(rt: &str) {
    require(rt);
    let o = rrun(&[
        "run",
        "--rm",
        "--runtime",
        rt,
        "-m",
        "32m",
        "busybox",
        "tail",
        "/dev/zero",
    ]);
    assert_eq!(code(&o), 137, "{rt}: {}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "rrun: container was killed: out of memory (limit 32 MiB)\n",
        "{rt}"
    );
    let o = rrun(&[
        "run",
        "--rm",
        "--runtime",
        rt,
        "-m",
        "32m",
        "busybox",
        "sh",
        "-c",
        "exit 137",
    ]);
    assert_eq!((code(&o), stderr(&o)), (137, String::new()), "{rt}");
    // Detached: the line goes to the log, the exit to the state.
    let name = format!("oci-oom-{rt}");
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        rt,
        "-m",
        "32m",
        "busybox",
        "tail",
        "/dev/zero",
    ]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    wait_for("the OOM kill", std::time::Duration::from_secs(60), || {
        state_of(&id)["status"] == "exited"
    });
    let st = state_of(&id);
    assert_eq!(
        (st["exit_code"].as_i64(), st["oom_killed"].as_bool()),
        (Some(137), Some(true)),
        "{rt}: {st}"
    );
    assert_eq!(
        stdout(&rrun(&["logs", &name])),
        "rrun: container was killed: out of memory (limit 32 MiB)\n"
    );
    assert_eq!(code(&rrun(&["rm", &name])), 0);
}

#[test]
fn crun_reports_an_oom_kill() {
    check_oom("crun");
}

#[test]
fn runc_reports_an_oom_kill() {
    check_oom("runc");
}

/// rbox's default seccomp filter reaches config.json: a new user
/// namespace (which the kernel alone allows root) is refused; with
/// CAP_SYS_ADMIN, as in Docker's profile, mount and new namespaces are
/// allowed and the filter stays loaded; seccomp=unconfined lifts it.
fn check_seccomp(rt: &str) {
    require(rt);
    let script = "mount -t tmpfs none /mnt 2>/dev/null; echo mount=$?; \
                  unshare -U true 2>/dev/null; echo unshare=$?; \
                  grep ^Seccomp: /proc/self/status";
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--rm", "--runtime", rt];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "sh", "-c", script]);
        rrun(&args)
    };
    let o = run(&[]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    assert_eq!(stdout(&o), "mount=1\nunshare=1\nSeccomp:\t2\n", "{rt}");
    let o = run(&["--cap-add", "SYS_ADMIN"]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    assert_eq!(stdout(&o), "mount=0\nunshare=0\nSeccomp:\t2\n", "{rt}");
    let o = run(&["--security-opt", "seccomp=unconfined"]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    assert_eq!(stdout(&o), "mount=1\nunshare=0\nSeccomp:\t0\n", "{rt}");
    // Docker's allowed personalities pass (several comparisons of one
    // argument are OR'd by the runtimes).
    let o = sh(
        &["--runtime", rt],
        "linux32 true; echo l32=$?; linux64 true; echo l64=$?",
    );
    assert_eq!(stdout(&o), "l32=0\nl64=0\n", "{rt}: {}", stderr(&o));
}

#[test]
fn crun_loads_the_default_seccomp_filter() {
    check_seccomp("crun");
}

#[test]
fn runc_loads_the_default_seccomp_filter() {
    check_seccomp("runc");
}

/// A command that cannot run: the native runner's codes and last line.
fn check_command_errors(rt: &str) {
    require(rt);
    let last = |o: &std::process::Output| stderr(o).lines().last().unwrap_or("").to_string();
    let o = rrun(&["run", "--rm", "--runtime", rt, "busybox", "no-such-cmd"]);
    assert_eq!(code(&o), 127, "{rt}: {}", stderr(&o));
    assert_eq!(
        last(&o),
        "rrun: \"no-such-cmd\": executable file not found in $PATH"
    );
    let o = rrun(&["run", "--rm", "--runtime", rt, "busybox", "/etc/passwd"]);
    assert_eq!(code(&o), 126, "{rt}: {}", stderr(&o));
    assert_eq!(last(&o), "rrun: \"/etc/passwd\": permission denied");
    let o = rrun(&["run", "-d", "--runtime", rt, "busybox", "no-such-cmd"]);
    assert_eq!(code(&o), 127, "{rt}: {}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "rrun: \"no-such-cmd\": executable file not found in $PATH\n"
    );
    let ps = stdout(&rrun(&["ps", "-a"]));
    assert!(
        !ps.contains("no-such-cmd"),
        "{rt}: a failed start left a container: {ps}"
    );
}

#[test]
fn crun_command_errors_exit_126_and_127() {
    check_command_errors("crun");
}

#[test]
fn runc_command_errors_exit_126_and_127() {
    check_command_errors("runc");
}

/// `-it` through the runtime's console socket, as a person uses it in a
/// tmux pane: prompt, typing, the container's own pty, the window size
/// followed, Ctrl-C to the container's job, the exit code, the terminal
/// cooked again; then `exec -it` into a detached container the same way.
fn check_tty(rt: &str) {
    use fixtures::tmux::Pane;
    use std::time::Duration;
    const T: Duration = Duration::from_secs(20);
    require(rt);
    let name = format!("oci-tty-{rt}");
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        rt,
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    let root = store_root().display().to_string();
    let script = format!(
        "{RRUN} --root {root} run -it --rm --runtime {rt} busybox sh; echo rrun-exit=$?; \
         echo modes: $(stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo)' | tr '\\n' ' '); \
         {RRUN} --root {root} exec -it {name} sh; echo exec-exit=$?; sleep 600"
    );
    let tmux = Pane::start(&format!("oci-tty-{rt}"), 100, 30, &script);
    let prompt = |l: &str| l.ends_with("# ") || l.ends_with('#');
    tmux.wait_line("the container's prompt", T, prompt);
    tmux.type_line("echo hi$((1+1)); tty");
    tmux.wait_line("hi2", T, |l| l == "hi2");
    tmux.wait_line("/dev/pts/0 from tty", T, |l| l == "/dev/pts/0");
    tmux.type_line("stty size");
    tmux.wait_line("30 100", T, |l| l == "30 100");
    tmux.cmd(&["resize-window", "-t", "t", "-x", "120", "-y", "40"]);
    assert_eq!(tmux.size(), "40 120");
    std::thread::sleep(Duration::from_millis(300));
    tmux.type_line("stty size");
    tmux.wait_line("40 120", T, |l| l == "40 120");
    tmux.type_line("sleep 30");
    std::thread::sleep(Duration::from_millis(300));
    tmux.cmd(&["send-keys", "-t", "t", "C-c"]);
    tmux.type_line("echo after-ctrl-c=$?");
    tmux.wait_line("after-ctrl-c=130", T, |l| l == "after-ctrl-c=130");
    tmux.type_line("exit 5");
    tmux.wait_line("rrun-exit=5", T, |l| l == "rrun-exit=5");
    let modes = tmux.wait_line("terminal modes", T, |l| l.starts_with("modes:"));
    assert!(
        modes.split_whitespace().any(|m| m == "icanon")
            && modes.split_whitespace().any(|m| m == "echo"),
        "{rt}: terminal not restored after rrun: {modes}"
    );
    // exec -it: a pty of the container's devpts, the pane's size, the
    // container's pid namespace (sleep is PID 1).
    tmux.wait_screen("the exec'd prompt below the modes", T, |screen| {
        let mut lines = screen
            .lines()
            .skip_while(|l| !l.starts_with("modes:"))
            .skip(1);
        lines.any(|l| prompt(l.trim_end()))
    });
    tmux.type_line("stty size; cat /proc/1/comm; echo in-$((6*7))");
    tmux.wait_line("in-42", T, |l| l == "in-42");
    let screen = tmux.screen();
    assert!(screen.lines().any(|l| l == "40 120"), "{rt}: {screen}");
    assert!(screen.lines().any(|l| l == "sleep"), "{rt}: {screen}");
    tmux.type_line("exit 4");
    tmux.wait_line("exec-exit=4", T, |l| l == "exec-exit=4");
    assert_eq!(code(&rrun(&["rm", "-f", &name])), 0);
}

#[test]
fn crun_interactive_tty_in_tmux() {
    check_tty("crun");
}

#[test]
fn runc_interactive_tty_in_tmux() {
    check_tty("runc");
}

/// Every cgroup directory named after `id`, in any hierarchy (v1: the
/// runtime makes one in each controller it finds, not only ours).
fn cgroups_of(id: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut roots = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    if !cgroup_v2() {
        roots = std::fs::read_dir("/sys/fs/cgroup")
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
    }
    for r in roots {
        let p = r.join("rbox").join(id);
        if p.exists() {
            found.push(p);
        }
    }
    found
}

/// Foreground: a signal to rrun reaches the container's PID 1; and when
/// rrun itself is SIGKILLed, the container dies with it and the runtime
/// forgets it (its state, its cgroups in every hierarchy); the next rrun
/// records the exit.
fn check_signals_and_reaping(rt: &str) {
    use std::os::unix::process::ExitStatusExt;
    require(rt);
    let name = format!("oci-sig-{rt}");
    let mut child = rrun_cmd(&[
        "run",
        "--rm",
        "--name",
        &name,
        "--runtime",
        rt,
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' TERM; echo ready; while :; do sleep 0.1; done",
    ])
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // Only once the trap is set: PID 1 of a pid namespace ignores a
    // signal it has no handler for, so an earlier TERM would be lost and
    // the loop would run forever.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "ready\n", "{rt}");
    // SAFETY: kill takes integers; the child is ours and unreaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let st = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{rt}: SIGTERM to rrun did not end the container within 20 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(st.code(), Some(7), "{rt}: {st:?}");

    // A store of its own: no other test's rrun may reap for us here.
    let root = std::env::temp_dir().join(format!("rrun-test-oci-reap-{rt}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let store = engine::Store::open(&root).unwrap();
    fixtures::ensure_busybox_image(&store, "busybox").expect("the busybox fixture image");
    drop(store);
    let own = |args: &[&str]| {
        let mut c = std::process::Command::new(RRUN);
        c.arg("--root").arg(&root).args(args);
        c.stdin(std::process::Stdio::null());
        c
    };
    let name = format!("oci-reap-{rt}");
    let mut child = own(&[
        "run",
        "--name",
        &name,
        "--runtime",
        rt,
        "busybox",
        "sleep",
        "1000",
    ])
    // Its output not ours: a container left running by a failure here
    // must not hold the harness's pipes open.
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let state = root.join("containers");
    let mut id = String::new();
    wait_for(
        "the container running",
        std::time::Duration::from_secs(20),
        || {
            let Some(d) = std::fs::read_dir(&state).ok().and_then(|mut d| d.next()) else {
                return false;
            };
            id = d.unwrap().file_name().to_string_lossy().into_owned();
            std::fs::read_to_string(state.join(&id).join("state.json"))
                .is_ok_and(|t| t.contains("\"running\""))
        },
    );
    let st: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join(&id).join("state.json")).unwrap())
            .unwrap();
    let pid = st["pid"]["pid"].as_i64().unwrap();
    assert!(!cgroups_of(&id).is_empty(), "{rt}: no cgroup for {id}");
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    // The container dies with its rrun, as natively, and the runtime
    // deletes it (its cgroups in every hierarchy) before any rrun looks.
    wait_for(
        "the container's process gone",
        std::time::Duration::from_secs(10),
        || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
        },
    );
    wait_for(
        "the runtime's cgroups gone",
        std::time::Duration::from_secs(10),
        || cgroups_of(&id).is_empty(),
    );
    wait_for(
        "the runtime forgetting the container",
        std::time::Duration::from_secs(10),
        || !state.join(&id).join("bundle/state").join(&id).exists(),
    );
    // The next rrun records the exit.
    let ps = own(&["ps", "-a"]).output().unwrap();
    assert!(stdout(&ps).contains("Exited (?)"), "{rt}: {}", stdout(&ps));
    let o = own(&["rm", &name]).output().unwrap();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn crun_signals_and_a_killed_rrun() {
    check_signals_and_reaping("crun");
}

#[test]
fn runc_signals_and_a_killed_rrun() {
    check_signals_and_reaping("runc");
}

/// The console sockets under /run/rbox/console (named c-PID-N-NANOS by
/// the rrun that listens on one).
fn console_sockets() -> Vec<String> {
    std::fs::read_dir("/run/rbox/console")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Every mode leaves nothing: -t (its console socket), -d then rm, and
/// -d --rm: no cgroup of the runtime's in any hierarchy, no container
/// directory, no socket of a finished rrun.
fn check_modes_leave_nothing(rt: &str) {
    require(rt);
    let before = console_sockets();
    let mut ids = Vec::new();
    for i in 0..3 {
        let o = rrun(&["run", "-t", "--rm", "--runtime", rt, "busybox", "true"]);
        assert_eq!(code(&o), 0, "{rt} -t: {}", stderr(&o));
        let name = format!("oci-modes-{rt}-{i}");
        let o = rrun(&[
            "run",
            "-d",
            "--name",
            &name,
            "--runtime",
            rt,
            "busybox",
            "true",
        ]);
        assert_eq!(code(&o), 0, "{rt} -d: {}", stderr(&o));
        let id = stdout(&o).trim().to_string();
        wait_for(
            "the exit recorded",
            std::time::Duration::from_secs(10),
            || state_of(&id)["status"] == "exited",
        );
        assert_eq!(code(&rrun(&["rm", &name])), 0);
        ids.push(id);
        let o = rrun(&["run", "-d", "--rm", "--runtime", rt, "busybox", "true"]);
        assert_eq!(code(&o), 0, "{rt} -d --rm: {}", stderr(&o));
        let id = stdout(&o).trim().to_string();
        wait_for(
            "the --rm container gone",
            std::time::Duration::from_secs(10),
            || !container_dir(&id).exists(),
        );
        ids.push(id);
    }
    for id in &ids {
        assert_eq!(cgroups_of(id), Vec::<std::path::PathBuf>::new(), "{rt}");
        assert!(!container_dir(id).exists(), "{rt}: {id} left its directory");
    }
    // New sockets may belong to other tests' live rruns, never to a dead one.
    for name in console_sockets().iter().filter(|n| !before.contains(n)) {
        let pid = name.split('-').nth(1).unwrap();
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "{rt}: console socket {name} outlived its rrun"
        );
    }
}

#[test]
fn crun_modes_leave_nothing() {
    check_modes_leave_nothing("crun");
}

#[test]
fn runc_modes_leave_nothing() {
    check_modes_leave_nothing("runc");
}

/// What an external runtime lacks is refused by asking its features,
/// with the option named, before anything is made; its default network
/// is none, and an unknown runtime is refused too.
#[test]
fn an_external_runtime_refuses_what_it_lacks_naming_the_option() {
    require("crun");
    let refused = [
        (vec!["--network", "bridge"], "--network"),
        (vec!["--network", "container:x"], "--network"),
        (vec!["--network", "mynet"], "--network"),
        (vec!["--dns", "192.0.2.1"], "--dns"),
        (vec!["--ulimit", "nofile=10"], "--ulimit"),
    ];
    for (extra, flag) in refused {
        let mut args = vec!["run", "--rm", "--runtime", "crun"];
        args.extend(&extra);
        args.extend(["busybox", "true"]);
        let o = rrun(&args);
        assert_eq!(code(&o), 125, "{extra:?}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(flag) && err.contains("not available with --runtime crun"),
            "{extra:?}: {err}"
        );
    }
    let o = rrun(&[
        "run",
        "--rm",
        "--runtime",
        "crun",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "lo\n"),
        "{}",
        stderr(&o)
    );
    let o = rrun(&["run", "--rm", "--runtime", "kata", "busybox", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(stderr(&o).contains("--runtime"), "{}", stderr(&o));
}

/// `-d` through the runtime's task, with the supervisor every runtime
/// shares: the output goes through its log writer (`logs -t` has each
/// line's time), `-i` gets the attach hub's stdin pipe, `stop` and
/// `rm -f` end it and leave no runtime state, cgroup or directory.
fn check_detached_supervisor(rt: &str) {
    require(rt);
    let name = format!("oci-sup-{rt}");
    let o = rrun(&[
        "run",
        "-d",
        "-i",
        "--name",
        &name,
        "--runtime",
        rt,
        "busybox",
        "sh",
        "-c",
        "trap 'exit 4' TERM; echo hello; while :; do sleep 0.1; done",
    ]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    wait_for("the first line", std::time::Duration::from_secs(10), || {
        stdout(&rrun(&["logs", &name])) == "hello\n"
    });
    let logs = stdout(&rrun(&["logs", "-t", &name]));
    let (time, line) = logs.trim_end().split_once(' ').unwrap_or(("", ""));
    assert_eq!(line, "hello", "{rt}: {logs:?}");
    assert!(
        time.len() > 20 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "{rt}: no RFC 3339 time in {logs:?}"
    );
    // -i: stdin is the hub's pipe, open while the container runs.
    let st = state_of(&id);
    let pid = st["pid"]["pid"].as_i64().unwrap();
    let stdin = std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap();
    assert!(
        stdin.to_string_lossy().starts_with("pipe:"),
        "{rt}: stdin is {stdin:?}"
    );
    let o = rrun(&["stop", "-t", "5", &name]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    wait_for(
        "the exit recorded",
        std::time::Duration::from_secs(10),
        || state_of(&id)["status"] == "exited",
    );
    assert_eq!(state_of(&id)["exit_code"], 4, "{rt}");
    assert!(
        !container_dir(&id).join("bundle").exists(),
        "{rt}: the runtime still knows the stopped container"
    );
    assert_eq!(code(&rrun(&["rm", &name])), 0);

    let o = rrun(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        rt,
        "busybox",
        "sleep",
        "100",
    ]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    let pid = state_of(&id)["pid"]["pid"].as_i64().unwrap();
    let o = rrun(&["rm", "-f", &name]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    assert!(
        !container_dir(&id).exists(),
        "{rt}: rm -f left the directory"
    );
    wait_for(
        "the container's process gone",
        std::time::Duration::from_secs(10),
        || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
        },
    );
    assert_eq!(cgroups_of(&id), Vec::<std::path::PathBuf>::new(), "{rt}");
}

#[test]
fn crun_detached_through_the_shared_supervisor() {
    check_detached_supervisor("crun");
}

#[test]
fn runc_detached_through_the_shared_supervisor() {
    check_detached_supervisor("runc");
}

/// `rrun start` of a stopped container runs its command again in the
/// same filesystem, as Docker does: the runtime's old container is gone
/// (crun and runc cannot start a stopped one), a new one is made from the
/// recorded spec on the same upper dir. `start -a` shows the output and
/// passes the exit code through; `restart`, a `--restart on-failure`
/// policy and `create` + `start` work too; `rm` leaves nothing.
fn check_start_again(rt: &str) {
    require(rt);
    let name = format!("oci-again-{rt}");
    let _ = rrun(&["rm", "-f", &name]);
    let count = "echo x >> /data.txt; wc -l < /data.txt; exit 3";
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        rt,
        "busybox",
        "sh",
        "-c",
        count,
    ]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    let exited = || state_of(&id)["status"] == "exited" && ps_status(&name).starts_with("Exited");
    wait_for("the first exit", std::time::Duration::from_secs(10), exited);
    let o = rrun(&["start", "-a", &name]);
    assert_eq!(
        (code(&o), stdout(&o).trim()),
        (3, "2"),
        "{rt}: start -a: {}",
        stderr(&o)
    );
    assert!(
        ps_status(&name).starts_with("Exited (3) "),
        "{rt}: {}",
        ps_status(&name)
    );
    let o = rrun(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]);
    assert_eq!(stdout(&o).trim(), "exited 3", "{rt}: {}", stderr(&o));
    let o = rrun(&["restart", &name]);
    assert_eq!(
        (code(&o), stdout(&o)),
        (0, format!("{name}\n")),
        "{rt}: restart: {}",
        stderr(&o)
    );
    wait_for(
        "the exit after restart",
        std::time::Duration::from_secs(10),
        || exited() && stdout(&rrun(&["logs", &name])).lines().count() == 3,
    );
    assert_eq!(stdout(&rrun(&["logs", &name])), "1\n2\n3\n", "{rt}");
    // restart of a running container: stopped, then started again.
    let o = rrun(&["rm", &name]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        rt,
        "busybox",
        "sh",
        "-c",
        "echo x >> /data.txt; wc -l < /data.txt; exec sleep 1000",
    ]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    let id2 = stdout(&o).trim().to_string();
    let o = rrun(&["restart", "-t", "0", &name]);
    assert_eq!(code(&o), 0, "{rt}: restart: {}", stderr(&o));
    wait_for(
        "the run after restart",
        std::time::Duration::from_secs(10),
        || stdout(&rrun(&["logs", &name])) == "1\n2\n",
    );
    assert_eq!(state_of(&id2)["status"], "running", "{rt}");
    let o = rrun(&["exec", &name, "cat", "/data.txt"]);
    assert_eq!(stdout(&o), "x\nx\n", "{rt}: {}", stderr(&o));
    let o = rrun(&["rm", "-f", &name]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    // A --restart policy: two restarts, each in the same filesystem.
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        rt,
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        count,
    ]);
    assert_eq!(code(&o), 0, "{rt}: {}", stderr(&o));
    let id3 = stdout(&o).trim().to_string();
    wait_for(
        "two policy restarts",
        std::time::Duration::from_secs(20),
        || {
            let o = rrun(&[
                "inspect",
                "-f",
                "{{.State.Status}} {{.RestartCount}}",
                &name,
            ]);
            // (Its count goes up before the back-off ends: the third
            // run's line tells it ran.)
            stdout(&o).trim() == "exited 2"
                && stdout(&rrun(&["logs", &name])).lines().count() == 3
                && state_of(&id3)["exit_code"] == 3
        },
    );
    assert_eq!(stdout(&rrun(&["logs", &name])), "1\n2\n3\n", "{rt}");
    // create, then start.
    let made = format!("{name}-made");
    let _ = rrun(&["rm", "-f", &made]);
    let o = rrun(&[
        "create",
        "--name",
        &made,
        "--runtime",
        rt,
        "busybox",
        "sh",
        "-c",
        count,
    ]);
    assert_eq!(code(&o), 0, "{rt}: create: {}", stderr(&o));
    let id4 = stdout(&o).trim().to_string();
    let o = rrun(&["start", "-a", &made]);
    assert_eq!(
        (code(&o), stdout(&o).trim()),
        (3, "1"),
        "{rt}: {}",
        stderr(&o)
    );
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for (n, i) in [(&name, &id3), (&made, &id4)] {
        let o = rrun(&["rm", n]);
        assert_eq!(code(&o), 0, "{rt}: rm: {}", stderr(&o));
        assert!(!container_dir(i).exists(), "{rt}: rm left the directory");
        assert_eq!(cgroups_of(i), Vec::<std::path::PathBuf>::new(), "{rt}");
        for state in ["/run/crun", "/run/runc"] {
            assert!(
                !std::path::Path::new(state).join(i).exists(),
                "{rt}: {state}/{i}"
            );
        }
        assert!(!mounts_before.contains(i.as_str()), "{rt}: a mount of {i}");
    }
    for i in [&id, &id2] {
        assert!(!container_dir(i).exists(), "{rt}");
        assert_eq!(cgroups_of(i), Vec::<std::path::PathBuf>::new(), "{rt}");
    }
}

#[test]
fn crun_starts_a_stopped_container_again() {
    check_start_again("crun");
}

#[test]
fn runc_starts_a_stopped_container_again() {
    check_start_again("runc");
}

//! The everyday inspection commands against real containers: inspect,
//! wait, rename, diff, top, ps --filter/--format, container prune.

mod common;

use common::*;
use std::time::{Duration, Instant};

fn wait_for(mut f: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn detached(name: &str, script: &str) {
    let o = rrun(&["run", "-d", "--name", name, "busybox", "sh", "-c", script]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

fn inspect(args: &[&str]) -> (i32, String) {
    let mut a = vec!["inspect"];
    a.extend_from_slice(args);
    let o = rrun(&a);
    (code(&o), stdout(&o))
}

#[test]
fn inspect_a_running_container_and_an_image() {
    detached("insp", "sleep 30");
    let (c, out) = inspect(&["insp"]);
    assert_eq!(c, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let c0 = &v[0];
    assert_eq!(c0["Name"], "/insp");
    assert_eq!(c0["State"]["Status"], "running");
    assert_eq!(c0["State"]["Running"], true);
    assert!(c0["State"]["Pid"].as_i64().unwrap() > 1);
    assert_eq!(c0["Config"]["Image"], "busybox");
    assert_eq!(
        c0["Config"]["Cmd"],
        serde_json::json!(["sh", "-c", "sleep 30"])
    );
    let (_, f) = inspect(&[
        "-f",
        "{{.State.Status}} {{.Name}} {{json .Config.Cmd}}",
        "insp",
    ]);
    assert_eq!(f, "running /insp [\"sh\",\"-c\",\"sleep 30\"]\n");
    let (c, img) = inspect(&["--type", "image", "busybox"]);
    assert_eq!(c, 0);
    let v: serde_json::Value = serde_json::from_str(&img).unwrap();
    assert!(
        v[0]["RepoTags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "busybox:latest"),
        "{img}"
    );
    assert_eq!(v[0]["RootFS"]["Type"], "layers");
    let (c, _) = inspect(&["no-such-thing"]);
    assert_eq!(c, 1);
    let o = rrun(&["inspect", "-f", "{{.State.Nope}}", "insp"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains(".State.Nope"), "{}", stderr(&o));
    assert_eq!(code(&rrun(&["rm", "-f", "insp"])), 0);
}

#[test]
fn wait_prints_the_exit_code_and_a_rename_survives_the_exit() {
    detached("waiter", "sleep 1; exit 3");
    let o = rrun(&["rename", "waiter", "renamed"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // The supervisor records the exit after the rename: the new name stays.
    let o = rrun(&["wait", "renamed"]);
    assert_eq!(
        (code(&o), stdout(&o)),
        (0, "3\n".to_string()),
        "{}",
        stderr(&o)
    );
    let (_, f) = inspect(&[
        "-f",
        "{{.Name}} {{.State.Status}} {{.State.ExitCode}}",
        "renamed",
    ]);
    assert_eq!(f, "/renamed exited 3\n");
    assert_eq!(code(&rrun(&["inspect", "waiter"])), 1);
    // Names are checked like run's.
    assert_eq!(code(&rrun(&["rename", "renamed", "bad/name"])), 1);
    detached("other", "true");
    let o = rrun(&["rename", "renamed", "other"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("already in use"), "{}", stderr(&o));
    assert_eq!(code(&rrun(&["rm", "-f", "renamed", "other"])), 0);
}

#[test]
fn diff_lists_added_changed_and_deleted_paths() {
    let o = rrun(&[
        "run",
        "--name",
        "differ",
        "busybox",
        "sh",
        "-c",
        "echo x > /new; rm /etc/group; echo y >> /etc/passwd; mkdir -p /tmp/d/e",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["diff", "differ"]);
    let out = stdout(&o);
    for line in [
        "A /new",
        "D /etc/group",
        "C /etc/passwd",
        "C /etc",
        "A /tmp/d",
        "A /tmp/d/e",
    ] {
        assert!(
            out.lines().any(|l| l == line),
            "{line:?} missing from:\n{out}"
        );
    }
    assert_eq!(code(&rrun(&["rm", "differ"])), 0);
}

#[test]
fn top_shows_only_the_containers_processes() {
    detached("topper", "sleep 31 & sleep 32");
    wait_for(
        || stdout(&rrun(&["top", "topper"])).contains("sleep 32"),
        "top",
    );
    let out = stdout(&rrun(&["top", "topper"]));
    assert!(out.starts_with("UID"), "{out}");
    assert!(
        out.contains("sleep 31") && out.contains("sleep 32"),
        "{out}"
    );
    assert!(!out.contains("rrun"), "a host process is listed:\n{out}");
    let out = stdout(&rrun(&["top", "topper", "-o", "pid,comm"]));
    assert_eq!(
        out.lines().filter(|l| l.contains("sleep")).count(),
        2,
        "{out}"
    );
    assert_eq!(code(&rrun(&["rm", "-f", "topper"])), 0);
    let o = rrun(&["top", "topper"]);
    assert_eq!(code(&o), 1);
}

#[test]
fn ps_filters_formats_and_prune_keeps_running_containers() {
    detached("ps-up", "sleep 30");
    let o = rrun(&["run", "--name", "ps-done", "busybox", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let names = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["ps", "--format", "{{.Names}} {{.State}}"];
        a.extend_from_slice(args);
        let mut v: Vec<String> = stdout(&rrun(&a))
            .lines()
            .filter(|l| l.starts_with("ps-"))
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&[]), ["ps-up running"]);
    assert_eq!(names(&["-a"]), ["ps-done exited", "ps-up running"]);
    assert_eq!(names(&["--filter", "status=exited"]), ["ps-done exited"]);
    assert_eq!(names(&["-a", "--filter", "name=done"]), ["ps-done exited"]);
    assert!(names(&["-a", "--filter", "label=nope"]).is_empty());
    let o = rrun(&["ps", "--filter", "colour=red"]);
    assert_eq!(code(&o), 125);
    let table = stdout(&rrun(&["ps", "--format", "table {{.ID}}\\t{{.Names}}"]));
    assert!(table.starts_with("ID\tNAMES\n"), "{table}");
    assert_eq!(code(&rrun(&["rm", "ps-done"])), 0);
    assert_eq!(code(&rrun(&["rm", "-f", "ps-up"])), 0);
}

#[test]
fn logs_tail_and_follow() {
    detached(
        "logger",
        "for i in 1 2 3 4 5; do echo line$i; done; sleep 1; echo late",
    );
    wait_for(
        || stdout(&rrun(&["logs", "logger"])).contains("line5"),
        "first lines",
    );
    assert_eq!(
        stdout(&rrun(&["logs", "--tail", "2", "logger"])),
        "line4\nline5\n"
    );
    // -f returns once the container has stopped, with everything it wrote.
    let o = rrun(&["logs", "-f", "-n", "1", "logger"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.ends_with("late\n"), "{out}");
    assert!(!out.contains("line4"), "{out}");
    assert_eq!(code(&rrun(&["logs", "--tail", "x", "logger"])), 125);
    assert_eq!(code(&rrun(&["rm", "logger"])), 0);
}

#[test]
fn restart_policies_restart_until_the_limit_or_a_stop() {
    // on-failure:2: the first run and two restarts, then it stays exited.
    detached_with(&["--restart", "on-failure:2"], "flaky", "echo run; exit 3");
    let o = rrun(&["wait", "flaky"]);
    assert_eq!(stdout(&o), "3\n", "{}", stderr(&o));
    wait_for(
        || stdout(&rrun(&["logs", "flaky"])) == "run\nrun\nrun\n",
        "three runs",
    );
    wait_for(
        || inspect(&["-f", "{{.RestartCount}} {{.State.Status}}", "flaky"]).1 == "2 exited\n",
        "two restarts",
    );
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        stdout(&rrun(&["logs", "flaky"])),
        "run\nrun\nrun\n",
        "a fourth run"
    );
    let (_, p) = inspect(&["-f", "{{json .HostConfig.RestartPolicy}}", "flaky"]);
    assert_eq!(p, "{\"MaximumRetryCount\":2,\"Name\":\"on-failure\"}\n");
    // always: it keeps coming back until stopped, then stays down.
    detached_with(&["--restart", "always"], "phoenix", "sleep 0.2");
    wait_for(
        || {
            inspect(&["-f", "{{.RestartCount}}", "phoenix"])
                .1
                .trim()
                .parse::<u32>()
                .unwrap_or(0)
                >= 2
        },
        "restarts of an always container",
    );
    assert_eq!(code(&rrun(&["stop", "-t", "1", "phoenix"])), 0);
    let after = inspect(&["-f", "{{.RestartCount}}", "phoenix"]).1;
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        inspect(&["-f", "{{.RestartCount}} {{.State.Status}}", "phoenix"]).1,
        format!("{} exited\n", after.trim())
    );
    // Refused combinations.
    let o = rrun(&[
        "run",
        "--rm",
        "-d",
        "--restart",
        "always",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("--rm"), "{}", stderr(&o));
    assert_eq!(
        code(&rrun(&["run", "--restart", "always", "busybox", "true"])),
        125
    );
    assert_eq!(
        code(&rrun(&[
            "run",
            "-d",
            "--restart",
            "sometimes",
            "busybox",
            "true"
        ])),
        125
    );
    assert_eq!(code(&rrun(&["rm", "-f", "flaky", "phoenix"])), 0);
}

/// Removes the container when the test ends, passed or not (a failed
/// assertion must not leave a busy loop running).
struct RemoveOnDrop(&'static str);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = rrun(&["rm", "-f", self.0]);
    }
}

fn detached_with(opts: &[&str], name: &str, script: &str) {
    let mut a = vec!["run", "-d", "--name", name];
    a.extend_from_slice(opts);
    a.extend_from_slice(&["busybox", "sh", "-c", script]);
    let o = rrun(&a);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn stats_reads_cpu_memory_and_pids_from_the_cgroup() {
    // One busy loop, a sleeper beside it, a 64 MiB limit.
    let _rm = RemoveOnDrop("statsy");
    detached_with(
        &["-m", "64m", "--network", "none"],
        "statsy",
        "sleep 300 & while :; do :; done",
    );
    wait_for(
        || stdout(&rrun(&["top", "statsy"])).contains("sleep 300"),
        "the sleeper",
    );
    let o = rrun(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}|{{.NetIO}}",
        "statsy",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let line = stdout(&o);
    let f: Vec<&str> = line.trim().split('|').collect();
    assert_eq!(f[0], "statsy", "{line}");
    let cpu: f64 = f[1].trim_end_matches('%').parse().unwrap();
    // A busy loop: well above zero even on a loaded 2-core machine or a
    // TCG guest (a broken sample reads 0 or nonsense).
    assert!(
        cpu > 5.0 && cpu < 250.0,
        "a busy loop at {cpu}% CPU: {line}"
    );
    assert!(f[2].ends_with(" / 64MiB"), "{line}");
    assert_eq!(f[3], "2", "sh (running the loop) and sleep: {line}");
    assert_eq!(f[4], "0B / 0B", "--network none: {line}");
    // The default table lists every running container, with a header.
    let all = stdout(&rrun(&["stats", "--no-stream"]));
    assert!(all.starts_with("CONTAINER ID"), "{all}");
    assert!(all.lines().any(|l| l.contains("statsy")), "{all}");
    assert_eq!(code(&rrun(&["rm", "-f", "statsy"])), 0);
    let o = rrun(&["stats", "--no-stream", "statsy"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
}

#[test]
fn pause_freezes_every_process_until_unpause() {
    let _rm = RemoveOnDrop("pausy");
    detached_with(
        &["--network", "none"],
        "pausy",
        "trap 'exit 0' TERM; while :; do cat /proc/uptime > /tick; usleep 20000; done",
    );
    let id = stdout(&rrun(&["inspect", "--format", "{{.Id}}", "pausy"]));
    let tick = store_root()
        .join("containers")
        .join(id.trim())
        .join("upper/tick");
    let read = || std::fs::read_to_string(&tick).unwrap_or_default();
    wait_for(|| !read().is_empty(), "the first tick");
    let o = rrun(&["pause", "pausy"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Frozen: the loop writes nothing more.
    let frozen = read();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(read(), frozen, "the container still runs while paused");
    assert!(stdout(&rrun(&["ps"])).contains("Up (Paused)"));
    let st = stdout(&rrun(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.Paused}}",
        "pausy",
    ]));
    assert_eq!(st.trim(), "paused true");
    let o = rrun(&["pause", "pausy"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("already paused"), "{}", stderr(&o));
    let o = rrun(&["exec", "pausy", "true"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("is paused"), "{}", stderr(&o));

    assert_eq!(code(&rrun(&["unpause", "pausy"])), 0);
    wait_for(|| read() != frozen, "a tick after unpause");
    let o = rrun(&["unpause", "pausy"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("not paused"), "{}", stderr(&o));

    // A paused container still stops (thawed after the signal).
    assert_eq!(code(&rrun(&["pause", "pausy"])), 0);
    let t = Instant::now();
    assert_eq!(code(&rrun(&["stop", "-t", "5", "pausy"])), 0);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "SIGTERM was not handled"
    );
    assert!(stdout(&rrun(&["ps", "-a"])).contains("Exited"));
    assert_eq!(code(&rrun(&["rm", "pausy"])), 0);
}

#[test]
fn create_then_start_restart_and_remove() {
    let o = rrun(&[
        "create",
        "--name",
        "made",
        "-e",
        "GREETING=hello",
        "busybox",
        "sh",
        "-c",
        "echo $GREETING run; sleep 30",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    assert_eq!(id.len(), 64, "create prints the id: {id}");
    // Created: no process, listed by ps -a, not by ps.
    let (_, status) = inspect(&["-f", "{{.State.Status}} {{.State.Pid}}", "made"]);
    assert_eq!(status, "created 0\n");
    let ps = stdout(&rrun(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]));
    assert!(ps.lines().any(|l| l == "made Created"), "{ps}");
    let ps = stdout(&rrun(&["ps", "--format", "{{.Names}}"]));
    assert!(!ps.lines().any(|l| l == "made"), "{ps}");
    // Another rrun's start-up reaping leaves a created container alone.
    assert_eq!(code(&rrun(&["run", "--rm", "busybox", "true"])), 0);
    let (_, status) = inspect(&["-f", "{{.State.Status}}", "made"]);
    assert_eq!(status, "created\n");

    // start: detached, with the options given to create.
    let o = rrun(&["start", "made"]);
    assert_eq!(
        (code(&o), stdout(&o)),
        (0, "made\n".into()),
        "{}",
        stderr(&o)
    );
    let (_, status) = inspect(&["-f", "{{.State.Status}}", "made"]);
    assert_eq!(status, "running\n");
    wait_for(
        || stdout(&rrun(&["logs", "made"])) == "hello run\n",
        "the first run's output",
    );
    let pid1 = inspect(&["-f", "{{.State.Pid}}", "made"]).1;
    // A second start of a running container changes nothing.
    assert_eq!(code(&rrun(&["start", "made"])), 0);
    assert_eq!(inspect(&["-f", "{{.State.Pid}}", "made"]).1, pid1);

    // restart: stopped, then started again as another process.
    let o = rrun(&["restart", "-t", "1", "made"]);
    assert_eq!(
        (code(&o), stdout(&o)),
        (0, "made\n".into()),
        "{}",
        stderr(&o)
    );
    let (_, status) = inspect(&["-f", "{{.State.Status}}", "made"]);
    assert_eq!(status, "running\n");
    assert_ne!(inspect(&["-f", "{{.State.Pid}}", "made"]).1, pid1);
    wait_for(
        || stdout(&rrun(&["logs", "made"])) == "hello run\nhello run\n",
        "the second run's output",
    );
    assert_eq!(code(&rrun(&["stop", "-t", "1", "made"])), 0);
    let (_, status) = inspect(&["-f", "{{.State.Status}}", "made"]);
    assert_eq!(status, "exited\n");

    // start -a of an exited container: its output and its exit code; the
    // files it left are still there.
    let o = rrun(&[
        "create",
        "--name",
        "once",
        "busybox",
        "sh",
        "-c",
        "cat /left 2>/dev/null; echo run >> /left; exit 7",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["start", "-a", "once"]);
    assert_eq!((code(&o), stdout(&o)), (7, "".into()), "{}", stderr(&o));
    let o = rrun(&["start", "-a", "once"]);
    assert_eq!(
        (code(&o), stdout(&o)),
        (7, "run\n".into()),
        "{}",
        stderr(&o)
    );
    let o = rrun(&["wait", "once"]);
    assert_eq!(stdout(&o), "7\n");

    // rm of a created container; start of a missing one.
    let o = rrun(&["create", "--name", "never", "busybox", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(code(&rrun(&["rm", "never"])), 0);
    let o = rrun(&["start", "never"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("no such container"), "{}", stderr(&o));
    // Bad run options are refused by create as by run.
    let o = rrun(&["create", "-m", "12q", "busybox", "true"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("--memory"), "{}", stderr(&o));
    for c in ["made", "once"] {
        assert_eq!(code(&rrun(&["rm", "-f", c])), 0);
    }
}

/// `create --rm` + `start -a` of a command that ends at once: its output
/// and exit code reach `start -a`, and the container is removed. The
/// supervisor once removed the directory before its attach hub had
/// logged the output, and `start -a` (reading the log) printed nothing;
/// that lost 1 start in 40 on an idle host, so this starts 25 of them.
#[test]
fn a_created_rm_container_starts_and_is_removed_at_its_exit() {
    for i in 0..25 {
        let name = format!("made-rm-{i}");
        let o = rrun(&[
            "create",
            "--rm",
            "--name",
            &name,
            "busybox",
            "sh",
            "-c",
            "echo once; exit 3",
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let o = rrun(&["start", "-a", &name]);
        assert_eq!(
            (code(&o), stdout(&o)),
            (3, "once\n".into()),
            "start {i}: {}",
            stderr(&o)
        );
        wait_for(
            || code(&rrun(&["inspect", &name])) == 1,
            "the --rm container's removal",
        );
    }
}

/// `rrun ... | head -1`: the reader goes away before rrun is done. Here it
/// is gone before rrun writes anything, so every write to stdout fails.
fn with_closed_stdout(args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    rrun_cmd(args).stdout(writer).output().expect("run rrun")
}

#[test]
fn listing_commands_end_quietly_when_the_reader_closes() {
    use std::os::unix::process::ExitStatusExt;
    detached("pipelog", "seq 1 20000");
    wait_for(
        || stdout(&rrun(&["inspect", "-f", "{{.State.Status}}", "pipelog"])) == "exited\n",
        "pipelog's exit",
    );
    for args in [
        &["ps", "-a"][..],
        &["logs", "pipelog"],
        &["inspect", "pipelog"],
        &["network", "ls"],
        &["volume", "ls"],
    ] {
        let o = with_closed_stdout(args);
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "rrun {args:?}: {err}");
        assert_ne!(o.status.code(), Some(101), "rrun {args:?}: {err}");
        // As docker: ended by the signal, with nothing on stderr.
        assert_eq!(
            o.status.signal(),
            Some(libc::SIGPIPE),
            "rrun {args:?}: {:?} {err}",
            o.status
        );
        assert_eq!(err, "", "rrun {args:?}");
    }
    assert_eq!(code(&rrun(&["rm", "-f", "pipelog"])), 0);
    // A command that runs a container is never killed by a closed reader:
    // the container's writes fail, rrun sees it to its end and removes it.
    let o = with_closed_stdout(&[
        "run",
        "--rm",
        "--name",
        "pipe-run",
        "busybox",
        "sh",
        "-c",
        "trap '' PIPE; echo lost; echo after >&2; exit 3",
    ]);
    assert_eq!(code(&o), 3, "{:?} {}", o.status, stderr(&o));
    assert!(stderr(&o).contains("after"), "{}", stderr(&o));
    assert_eq!(code(&rrun(&["inspect", "pipe-run"])), 1, "--rm left it");
}

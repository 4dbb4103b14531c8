//! Both runtimes behind the engine's `Runtime` seam, through the trait
//! only: `create` leaves the process waiting before its command, `start`
//! runs it, `wait` reports how it ended, `kill` signals it, `delete`
//! leaves nothing behind but the upper dir. Needs crun and runc
//! installed for the external runtime (apt-get install crun runc).

mod common;

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use engine::runtime::{
    ContainerSpec, ExitStatus, NetworkMode, OutputSink, Resources, RootfsSpec, Runtime, TaskIo,
};

use common::*;

fn runtimes() -> Vec<Box<dyn Runtime>> {
    ["native", "crun", "runc"]
        .iter()
        .map(|n| runner::runtime_named(n).unwrap())
        .collect()
}

fn spec(dir: &Path, id: &str, script: &str) -> ContainerSpec {
    spec_in(store_root(), dir, id, script)
}

fn spec_in(root: &Path, dir: &Path, id: &str, script: &str) -> ContainerSpec {
    let store = engine::Store::open(root).unwrap();
    let lowers = fixtures::image_lowerdirs(&store, "busybox").expect("busybox lowerdirs");
    ContainerSpec {
        env: vec![format!("PATH={}", runner::DEFAULT_PATH)],
        resources: Resources {
            pids_limit: Some(100),
            ..Default::default()
        },
        ..ContainerSpec::new(
            id,
            RootfsSpec::under(dir, lowers),
            vec!["sh".into(), "-c".into(), script.into()],
        )
    }
}

/// The state letter of /proc/PID/stat (R, S, Z, …), None once it is gone.
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.trim_start().chars().next()
}

fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    let base = Path::new("/sys/fs/cgroup");
    let mut dirs = vec![base.join("rbox").join(id)];
    for c in ["memory", "pids", "cpu,cpuacct", "devices", "freezer"] {
        dirs.push(base.join(c).join("rbox").join(id));
    }
    dirs
}

fn pipe() -> (std::fs::File, OwnedFd) {
    let (rd, wr) = runner::sys::pipe().unwrap();
    (std::fs::File::from(rd), wr)
}

#[test]
fn create_waits_before_the_command_and_start_runs_it() {
    for rt in runtimes() {
        let dir = tempfile::tempdir_in(store_root()).unwrap();
        let id = format!("task-start-{}", rt.name());
        let s = spec(dir.path(), &id, "echo out; echo ran > /ran; exit 5");
        let (mut rd, wr) = pipe();
        let mut task = rt
            .create(
                &s,
                TaskIo {
                    output: OutputSink::Fd(wr),
                    ..TaskIo::default()
                },
            )
            .unwrap_or_else(|e| panic!("{}: create: {e}", rt.name()));
        let pid = task.pid();
        assert!(proc_state(pid).is_some(), "{}: no process {pid}", rt.name());
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(
            !dir.path().join("upper/ran").exists(),
            "{}: the command ran before start",
            rt.name()
        );
        task.start().unwrap();
        assert_eq!(task.wait().unwrap(), ExitStatus::Exited(5), "{}", rt.name());
        task.delete().unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut rd, &mut out).unwrap();
        assert_eq!(out, "out\n", "{}", rt.name());
        assert_eq!(
            std::fs::read_to_string(dir.path().join("upper/ran")).unwrap(),
            "ran\n",
            "{}",
            rt.name()
        );
        for d in cgroup_dirs(&id) {
            assert!(!d.exists(), "{}: {} left behind", rt.name(), d.display());
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{}: {left:?} left behind", rt.name());
    }
}

#[test]
fn kill_ends_a_started_task_and_delete_ends_an_unstarted_one() {
    for rt in runtimes() {
        let dir = tempfile::tempdir_in(store_root()).unwrap();
        let id = format!("task-kill-{}", rt.name());
        let mut task = rt
            .create(&spec(dir.path(), &id, "sleep 100"), TaskIo::default())
            .unwrap();
        task.start().unwrap();
        task.kill(libc::SIGKILL).unwrap();
        assert_eq!(
            task.wait().unwrap(),
            ExitStatus::Signaled(libc::SIGKILL),
            "{}",
            rt.name()
        );
        assert!(
            task.kill(libc::SIGTERM).is_err(),
            "{}: killed a reaped task",
            rt.name()
        );
        task.delete().unwrap();

        // Never started: delete kills the waiting process and cleans up.
        let id = format!("task-unstarted-{}", rt.name());
        let task = rt
            .create(
                &spec(dir.path(), &id, "echo ran > /ran2"),
                TaskIo::default(),
            )
            .unwrap();
        let pid = task.pid();
        task.delete().unwrap();
        assert!(
            !matches!(proc_state(pid), Some(s) if s != 'Z'),
            "{}: process {pid} survived delete",
            rt.name()
        );
        assert!(!dir.path().join("upper/ran2").exists(), "{}", rt.name());
        for d in cgroup_dirs(&id) {
            assert!(!d.exists(), "{}: {} left behind", rt.name(), d.display());
        }
    }
}

#[test]
fn a_command_that_cannot_run_is_127_for_every_runtime() {
    for rt in runtimes() {
        let dir = tempfile::tempdir_in(store_root()).unwrap();
        let mut s = spec(dir.path(), &format!("task-127-{}", rt.name()), "");
        s.args = vec!["no-such-tool".into()];
        let err = rt.run(&s).unwrap_err();
        assert_eq!(runner::exit_code(&*err), 127, "{}: {err}", rt.name());
        assert!(
            err.to_string().contains("executable file not found"),
            "{}: {err}",
            rt.name()
        );
    }
}

#[test]
fn features_decide_what_is_refused_never_the_name() {
    for rt in runtimes() {
        let dir = tempfile::tempdir_in(store_root()).unwrap();
        let s = ContainerSpec {
            network: NetworkMode::Bridge,
            ..spec(dir.path(), &format!("task-feat-{}", rt.name()), "true")
        };
        if rt.features().bridge_network {
            continue;
        }
        let err = rt.run(&s).unwrap_err().to_string();
        assert!(
            err.contains("--network bridge is not available"),
            "{}: {err}",
            rt.name()
        );
    }
    assert!(
        runner::runtime_named("native")
            .unwrap()
            .features()
            .bridge_network
    );
    let err = runner::runtime_named("kata").err().unwrap().to_string();
    assert!(err.contains("unknown runtime \"kata\""), "{err}");
}

/// In the re-executed test binary: the caller of
/// `a_task_dies_with_its_killed_caller`, multi-threaded as rbuild is,
/// on the parent's store.
fn be_a_caller(dir: &str) -> ! {
    let rt = runner::runtime_named(&std::env::var("RBOX_TEST_CALLER_RT").unwrap()).unwrap();
    std::thread::spawn(|| loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    });
    let id = std::env::var("RBOX_TEST_CALLER_ID").unwrap();
    let mut task = rt
        .create(
            &spec_in(
                Path::new(&std::env::var("RBOX_TEST_CALLER_STORE").unwrap()),
                Path::new(dir),
                &id,
                "sleep 1000",
            ),
            TaskIo::default(),
        )
        .unwrap();
    task.start().unwrap();
    println!("pid {}", task.pid());
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

/// A task's container dies with its caller when that is SIGKILLed (by
/// default: `TaskIo::outlive_caller` false), with every runtime, from a
/// multi-threaded caller; an external runtime also forgets it (its
/// `delete` ran: no runtime state, no cgroup).
#[test]
fn a_task_dies_with_its_killed_caller() {
    use std::io::BufRead;
    if let Ok(dir) = std::env::var("RBOX_TEST_CALLER_DIR") {
        be_a_caller(&dir);
    }
    for rt in runtimes() {
        let dir = tempfile::tempdir_in(store_root()).unwrap();
        let id = format!("task-orphan-{}-{}", rt.name(), std::process::id());
        let mut caller = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_task_dies_with_its_killed_caller",
                "--nocapture",
            ])
            .env("RBOX_TEST_CALLER_DIR", dir.path())
            .env("RBOX_TEST_CALLER_RT", rt.name())
            .env("RBOX_TEST_CALLER_ID", &id)
            // Never the child's own store_root(): that wipes the store.
            .env("RBOX_TEST_CALLER_STORE", store_root())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(caller.stdout.take().unwrap());
        let mut line = String::new();
        let pid = loop {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "{}: the caller ended without a task",
                rt.name()
            );
            if let Some(p) = line.trim().strip_prefix("pid ") {
                break p.parse::<i32>().unwrap();
            }
        };
        assert_eq!(
            proc_state(pid).map(|s| s != 'Z'),
            Some(true),
            "{}",
            rt.name()
        );
        caller.kill().unwrap();
        caller.wait().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        let gone = |d: &Path| !d.exists();
        loop {
            let dead = !matches!(proc_state(pid), Some(s) if s != 'Z');
            let forgotten = rt.name() == "native"
                || (gone(&dir.path().join("bundle").join("state").join(&id))
                    && cgroup_dirs(&id).iter().all(|d| gone(d)));
            if dead && forgotten {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: 15 s after its caller was killed: process {pid} {:?}, runtime state {}, cgroups {:?}",
                rt.name(),
                proc_state(pid),
                dir.path().join("bundle/state").join(&id).exists(),
                cgroup_dirs(&id).into_iter().filter(|d| d.exists()).collect::<Vec<_>>()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        // The native cgroup is its caller's to remove (rrun's reaper), in
        // every hierarchy.
        for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let _ = std::fs::remove_dir(h.path().join("rbox").join(&id));
        }
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup/rbox").join(&id));
    }
}

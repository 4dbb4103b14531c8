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
    let store = engine::Store::open(store_root()).unwrap();
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
        assert_eq!(
            runner::runtime_exit_code(&*err),
            127,
            "{}: {err}",
            rt.name()
        );
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

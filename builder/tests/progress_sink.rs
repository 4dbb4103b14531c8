//! The `Runtime::run_with_output` seam the builder's progress view reads
//! RUN output through: the container's stdout and stderr both reach the
//! sink, nothing reaches ours, and the reader sees EOF when the container
//! is gone, even if it left a process behind. For the native runtime and
//! for crun and runc (apt-get install crun runc).

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use engine::runtime::{ContainerSpec, ExitStatus, OutputSink, RootfsSpec, Runtime};

use common::*;

fn busybox_lowers() -> Vec<PathBuf> {
    let store = engine::Store::open(store_root()).unwrap();
    fixtures::image_lowerdirs(&store, "busybox").expect("the busybox image's lowerdirs")
}

fn spec(dir: &Path, id: &str, script: &str) -> ContainerSpec {
    ContainerSpec {
        env: vec![format!("PATH={}", runner::DEFAULT_PATH)],
        hostname: "sink".into(),
        ..ContainerSpec::new(
            id,
            RootfsSpec::under(dir, busybox_lowers()),
            vec!["sh".into(), "-c".into(), script.into()],
        )
    }
}

/// Run `script` with a pipe as its output; returns (status, what the pipe carried).
/// One at a time (the runtimes' leftover reaping and pipes of concurrent
/// runs stay apart), and a reader that gives up after two minutes: a
/// missing EOF fails the test instead of hanging CI (it hung once in the
/// cgroup-v2 guest with two of these side by side).
fn run_to_pipe(rt: &dyn Runtime, id: &str, script: &str) -> (ExitStatus, String) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir_in(store_root()).unwrap();
    let s = spec(dir.path(), id, script);
    let (rd, wr) = runner::sys::pipe().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        std::fs::File::from(rd).read_to_string(&mut text).unwrap();
        let _ = tx.send(text);
    });
    let status = rt
        .run_with_output(&s, OutputSink::Fd(wr))
        .unwrap_or_else(|e| panic!("{} run_with_output: {e}", rt.name()));
    let text = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .unwrap_or_else(|_| {
            panic!(
                "{}: no EOF on the sink 120 s after the container ended ({status:?})",
                rt.name()
            )
        });
    (status, text)
}

/// `in_order`: the runtime hands the sink to the container itself, so
/// stdout and stderr interleave as written (runc relays each through a
/// pipe and goroutine of its own: only the content is certain).
fn check(rt: &dyn Runtime, id: &str, in_order: bool) {
    // More than a pipe holds (64 KiB): the runtime must not wait on the reader.
    let (status, text) = run_to_pipe(
        rt,
        id,
        "echo to-stdout; echo to-stderr >&2; i=0; while [ $i -lt 3000 ]; do \
         echo ............................................filler; i=$((i+1)); done; \
         sleep 1000 & echo last; exit 4",
    );
    let name = rt.name();
    assert_eq!(status, ExitStatus::Exited(4), "{name}");
    let lines: Vec<&str> = text.lines().collect();
    let count = |l: &str| lines.iter().filter(|x| **x == l).count();
    assert_eq!(count("to-stdout"), 1, "{name}: stdout lost");
    assert_eq!(count("to-stderr"), 1, "{name}: stderr lost");
    assert_eq!(count("last"), 1, "{name}: the end lost");
    assert_eq!(lines.len(), 3003, "{name}");
    if in_order {
        assert_eq!(&lines[..2], ["to-stdout", "to-stderr"], "{name}");
        assert_eq!(lines.last(), Some(&"last"), "{name}");
    }
}

#[test]
fn native_runtime_sends_stdout_and_stderr_to_the_sink() {
    check(&runner::native::NativeRuntime::new(), "sink-native", true);
}

fn require(binary: &str) {
    assert!(
        std::process::Command::new(binary)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "{binary} is not installed: apt-get install {binary}"
    );
}

#[test]
fn crun_sends_stdout_and_stderr_to_the_sink() {
    require("crun");
    check(
        &runner::external::OciRuntime::new("crun"),
        "sink-crun",
        true,
    );
}

#[test]
fn runc_sends_stdout_and_stderr_to_the_sink() {
    require("runc");
    check(
        &runner::external::OciRuntime::new("runc"),
        "sink-runc",
        false,
    );
}

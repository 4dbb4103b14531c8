//! `NativeRuntime` through the engine's `Runtime` trait, as the builder
//! uses it.

mod common;

use engine::runtime::{ContainerSpec, ExitStatus, Resources, RootfsSpec, Runtime, UserSpec};
use runner::native::NativeRuntime;

use common::*;

fn spec(
    lowers: Vec<std::path::PathBuf>,
    dir: &std::path::Path,
    id: &str,
    script: &str,
) -> ContainerSpec {
    ContainerSpec {
        env: vec![format!("PATH={}", runner::DEFAULT_PATH)],
        hostname: "builder".into(),
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

fn busybox_lowers() -> Vec<std::path::PathBuf> {
    let store = engine::Store::open(store_root()).unwrap();
    fixtures::image_lowerdirs(&store, "busybox").expect("the busybox image's lowerdirs")
}

#[test]
fn a_run_step_writes_only_its_upper_and_cleans_up() {
    let lowers = busybox_lowers();
    let dir = tempfile::tempdir_in(store_root()).unwrap();
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count();
    let rt = NativeRuntime::new();
    assert_eq!(rt.name(), "native");
    let s = spec(
        lowers.clone(),
        dir.path(),
        "native-step-1",
        "mkdir -p /app && echo built > /app/out && rm /bin/vi && hostname",
    );
    assert_eq!(rt.run(&s).unwrap(), ExitStatus::Exited(0));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("upper/app/out")).unwrap(),
        "built\n"
    );
    assert!(
        !lowers[0].join("app").exists(),
        "the step wrote into the image layer"
    );
    // Only the upper's contents remain; no mount, no cgroup, no generated files.
    assert_eq!(
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .count(),
        mounts_before
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.ends_with("-etc")), "{names:?}");

    let s = spec(lowers.clone(), dir.path(), "native-step-2", "exit 3");
    assert_eq!(rt.run(&s).unwrap(), ExitStatus::Exited(3));
    let mut s = spec(lowers, dir.path(), "native-step-3", "");
    s.args = vec!["no-such-tool".into()];
    let err = rt.run(&s).unwrap_err().to_string();
    assert!(err.contains("executable file not found"), "{err}");
}

/// Regression: a raw clone of a multi-threaded caller (the builder runs
/// stages on threads, and rayon pools) hung in glibc's setgroups/setuid,
/// which wait for every thread glibc knows of — threads the child does not
/// have. Threads that are being created and exiting while we clone make
/// the hang near-certain with the glibc wrappers.
#[test]
fn a_multi_threaded_caller_never_hangs_the_child() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let lowers = busybox_lowers();
    let stop = Arc::new(AtomicBool::new(false));
    let churn: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let _ = std::thread::spawn(|| {}).join();
                }
            })
        })
        .collect();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let runner = std::thread::spawn(move || {
        for i in 0..20 {
            let dir = tempfile::tempdir_in(store_root()).unwrap();
            let mut s = spec(
                lowers.clone(),
                dir.path(),
                &format!("native-mt-{i}"),
                "id -u",
            );
            s.user = UserSpec {
                uid: 65534,
                gid: 65534,
                additional_gids: vec![100],
            };
            assert_eq!(NativeRuntime::new().run(&s).unwrap(), ExitStatus::Exited(0));
        }
        done_tx.send(()).unwrap();
    });
    let finished = done_rx.recv_timeout(std::time::Duration::from_secs(120));
    stop.store(true, Ordering::Relaxed);
    for t in churn {
        t.join().unwrap();
    }
    assert!(
        finished.is_ok(),
        "a container child hung while the caller had other threads"
    );
    runner.join().unwrap();
}

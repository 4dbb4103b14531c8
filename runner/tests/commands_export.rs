//! `rrun export`: a container's filesystem as a tar, running or stopped,
//! with its changes and deletions applied, and never half-written.

mod common;

use common::*;
use std::collections::BTreeMap;
use std::io::Read;

fn ok(o: &std::process::Output) -> String {
    assert_eq!(code(o), 0, "stderr: {}", stderr(o));
    stdout(o)
}

/// Entry name → body of regular files (empty for everything else).
fn entries(tar_bytes: &[u8]) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut a = tar::Archive::new(tar_bytes);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut body = String::new();
        if e.header().entry_type().is_file() && e.size() < 4096 {
            e.read_to_string(&mut body).unwrap();
        }
        m.insert(name, body);
    }
    m
}

fn check(m: &BTreeMap<String, String>) {
    assert_eq!(
        m.get("added").map(String::as_str),
        Some("new\n"),
        "the new file"
    );
    assert!(m.contains_key("bin/busybox"), "image content");
    assert!(
        !m.contains_key("bin/ls"),
        "a deleted image file is not exported"
    );
    assert_eq!(m.get("etc/only").map(String::as_str), Some("x\n"));
    assert!(
        !m.contains_key("etc/passwd"),
        "a replaced directory hides the image's"
    );
    assert!(!m.keys().any(|k| k.contains(".wh.")), "no whiteout entries");
    // What the container mounted is not its filesystem.
    assert!(
        !m.keys().any(|k| k.starts_with("proc/") && k != "proc/"),
        "/proc is not exported"
    );
}

#[test]
fn export_a_running_and_a_stopped_container() {
    let o = rrun(&[
        "run", "-d", "--name", "exp", "busybox", "sh", "-c",
        "echo new > /added; rm /bin/ls; rm -rf /etc; mkdir /etc; echo x > /etc/only; touch /ready; sleep 60",
    ]);
    ok(&o);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while code(&rrun(&["exec", "exp", "test", "-e", "/ready"])) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the container never got ready"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let t = tempfile::tempdir().unwrap();
    let file = t.path().join("exp.tar");
    ok(&rrun(&["export", "exp", "-o", file.to_str().unwrap()]));
    let running = entries(&std::fs::read(&file).unwrap());
    check(&running);
    // Nothing but the tar is left in the directory.
    let names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["exp.tar"]);
    // To stdout, the same.
    let o = rrun(&["export", "exp"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(entries(&o.stdout), running);
    // Stopped: the same tree.
    ok(&rrun(&["stop", "-t", "0", "exp"]));
    let o = rrun(&["export", "exp"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let stopped = entries(&o.stdout);
    check(&stopped);
    assert_eq!(
        stopped.keys().collect::<Vec<_>>(),
        running.keys().collect::<Vec<_>>()
    );
    let o = rrun(&["export", "nosuch", "-o", file.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("no such container"), "{}", stderr(&o));
    assert_eq!(code(&rrun(&["rm", "exp"])), 0);
}

#[test]
fn export_fails_whole_when_the_disk_is_full() {
    ok(&rrun(&["run", "--name", "exp-full", "busybox", "true"]));
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("small");
    std::fs::create_dir(&dir).unwrap();
    // A 256 KiB tmpfs (in a mount namespace of the script's own): the
    // busybox tree does not fit.
    let script = format!(
        "mount -t tmpfs -o size=256k tmpfs {d} && echo old > {d}/out.tar && \
         {rrun} --root {root} export exp-full -o {d}/out.tar; echo code=$?; \
         cat {d}/out.tar; ls -A {d}",
        d = dir.display(),
        rrun = RRUN,
        root = store_root().display()
    );
    let o = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let out = stdout(&o);
    assert!(
        out.contains("code=1"),
        "the export should fail: {out} {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("No space left"), "{}", stderr(&o));
    // The old file is whole, and no temp file is left beside it.
    assert!(out.ends_with("old\nout.tar\n"), "{out}");
    assert_eq!(code(&rrun(&["rm", "exp-full"])), 0);
}

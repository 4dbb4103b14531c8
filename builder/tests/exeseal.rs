//! rbuild's RUN steps are containers that rbuild forks (CVE-2019-5736, see
//! runner/src/native/exeseal.rs): while a build runs, rbuild and its step's
//! process must execute a read-only clone of the binary, never the
//! writable file the user started. The attack itself against the shared
//! runner code is in runner/tests/exeseal.rs.

mod common;
use common::*;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Whether `/proc/<pid>/exe` is on a read-only mount (None: gone).
fn exe_read_only(pid: u32) -> Option<bool> {
    let st = nix::sys::statvfs::statvfs(format!("/proc/{pid}/exe").as_str()).ok()?;
    Some(st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

#[test]
fn build_runs_from_a_read_only_clone_of_rbuild() {
    assert_eq!(
        exe_read_only(std::process::id()),
        Some(false),
        "the test needs rbuild on a writable filesystem"
    );
    let ctx = context(&[("Containerfile", "FROM busybox\nRUN sleep 2\n")]);
    let child = Command::new(RBUILD)
        .arg("--root")
        .arg(store_root())
        .args([
            "build",
            "--progress",
            "plain",
            "--no-cache",
            "-t",
            "exeseal:1",
        ])
        .arg(ctx.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let start = Instant::now();
    let mut read_only = false;
    // rbuild re-executes itself (same pid) before anything else; the
    // step then runs for two seconds.
    while start.elapsed() < Duration::from_secs(20) {
        match exe_read_only(pid) {
            Some(true) => {
                read_only = true;
                break;
            }
            Some(false) => std::thread::sleep(Duration::from_millis(20)),
            None => break,
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        read_only,
        "rbuild ran its build from the writable binary, not a read-only clone"
    );
}

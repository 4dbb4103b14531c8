//! Crash consistency, short CI version of scripts/hardening/crash.sh (which
//! runs 50 kills each): `rbuild import`, `rbuild build` and `rrun run` are
//! killed with SIGKILL at random points; after each kill `rbuild fsck`
//! must report a consistent store and the same command must succeed.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

#[test]
fn kill_9_at_random_points_leaves_a_consistent_store() {
    require_root();
    let work = tempfile::Builder::new()
        .prefix("rbox-crash-")
        .tempdir()
        .unwrap();
    let base = work.path().join("busybox.tar.zst");
    fixtures::busybox_rootfs_tar(&base, fixtures::Compression::Zstd).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/hardening/crash.sh");
    let kills = std::env::var("RBOX_CRASH_KILLS").unwrap_or_else(|_| "5".into());
    let o = Command::new("bash")
        .arg(&script)
        .arg(&kills)
        .env("RBUILD", RBUILD)
        .env("RRUN", rrun_path())
        .env("BASE_TAR", &base)
        .env("WORK", work.path().join("w"))
        // About a thousand small files: big enough for kills mid-unpack, small
        // enough for CI and the VM lane.
        .env("BIG_DIR", "/usr/include/linux")
        .output()
        .expect("run scripts/hardening/crash.sh");
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "crash.sh failed:\n{out}\n{err}");
    for kind in ["import:", "build:", "run:"] {
        assert!(out.contains(kind), "crash.sh skipped {kind}\n{out}");
    }
    eprintln!("{out}");
}

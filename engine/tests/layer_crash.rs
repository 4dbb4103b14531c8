//! Crash safety: a process unpacking a layer is SIGKILLed at random points;
//! after each kill no layer directory lacks its completion marker, and the
//! next unpack succeeds with the whole tree.

mod layer_common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use engine::layer::{self, WriteOptions};
use engine::{Descriptor, Digest, Store};
use layer_common::*;

const ITERATIONS: usize = 20;

/// Child half: unpack the layer named in the environment (no-op otherwise).
#[test]
fn child_unpacks_layer_when_asked() {
    let Ok(root) = std::env::var("RBOX_CRASH_ROOT") else {
        return;
    };
    let desc: Descriptor =
        serde_json::from_str(&std::env::var("RBOX_CRASH_BLOB").unwrap()).unwrap();
    let diff_id: Digest = std::env::var("RBOX_CRASH_DIFF_ID")
        .unwrap()
        .parse()
        .unwrap();
    let store = Store::open(Path::new(&root)).unwrap();
    layer::unpack_layer(&store, &desc, &diff_id).unwrap();
}

fn assert_store_consistent(root: &Path) {
    for name in listing(&root.join("layers")) {
        let dir = root.join("layers").join(&name);
        assert!(
            dir.join("complete").is_file() && dir.join("fs").is_dir(),
            "layers/{name} exists without its completion marker after a kill"
        );
    }
}

#[test]
fn killed_unpacks_leave_nothing_that_looks_finished() {
    require_root();
    let dir = scratch();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let tree = dir.path().join("tree");
    for d in 0..10 {
        let sub = tree.join(format!("d{d:02}"));
        fs::create_dir_all(&sub).unwrap();
        for f in 0..60 {
            fs::write(
                sub.join(format!("f{f:03}")),
                vec![(d * f) as u8; 2000 + f * 97],
            )
            .unwrap();
        }
    }
    fs::write(tree.join("big"), vec![9u8; 4 << 20]).unwrap();
    let want = snapshot(&tree);
    let blob = layer::write_layer(&store, &tree, &WriteOptions::default())
        .unwrap()
        .unwrap();
    let desc = serde_json::to_string(&blob.descriptor()).unwrap();
    let exe = std::env::current_exe().unwrap();
    let child = || {
        Command::new(&exe)
            .args([
                "--exact",
                "child_unpacks_layer_when_asked",
                "--test-threads=1",
                "--quiet",
            ])
            .env("RBOX_CRASH_ROOT", &root)
            .env("RBOX_CRASH_BLOB", &desc)
            .env("RBOX_CRASH_DIFF_ID", blob.diff_id.to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let remove_layer = || {
        let d = store.layer_dir(&blob.diff_id);
        if d.exists() {
            fs::remove_dir_all(&d).unwrap();
        }
    };

    // How long one whole unpack takes, to spread the kills across it.
    let t0 = Instant::now();
    assert!(
        child().wait().unwrap().success(),
        "the unkilled child failed"
    );
    let full = t0.elapsed().max(Duration::from_millis(20));
    eprintln!("one unpack by a child process: {full:?}");
    assert!(store.has_layer(&blob.diff_id));
    remove_layer();

    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
        | 1;
    let mut killed_mid_way = 0;
    for i in 0..ITERATIONS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = full.mul_f64((seed % 1000) as f64 / 1000.0);
        let mut c = child();
        std::thread::sleep(delay);
        let finished = c.try_wait().unwrap().is_some();
        // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
        unsafe { libc::kill(c.id() as i32, libc::SIGKILL) };
        c.wait().unwrap();
        if !finished && !store.has_layer(&blob.diff_id) {
            killed_mid_way += 1;
        }
        assert_store_consistent(&root);
        // The next start reaps the dead session's temp dir and unpacks whole.
        let next = Store::open(&root).unwrap();
        let fs_dir = layer::unpack_layer(&next, &blob.descriptor(), &blob.diff_id)
            .unwrap_or_else(|e| panic!("iteration {i}: unpack after a kill failed: {e}"));
        assert_eq!(
            snapshot(&fs_dir).len(),
            want.len(),
            "iteration {i}: incomplete layer"
        );
        drop(next);
        remove_layer();
    }
    assert!(
        // At least a few kills must land mid-unpack for the test to mean
        // anything; how many depends on the machine's speed (an idle,
        // fast machine finishes before most kill points).
        killed_mid_way >= 3,
        "only {killed_mid_way} kills landed mid-unpack"
    );
    assert_same_tree(
        &want,
        &snapshot(&layer::unpack_layer(&store, &blob.descriptor(), &blob.diff_id).unwrap()),
    );
    // Only live sessions remain in tmp.
    assert_eq!(
        listing(&root.join("tmp")).len(),
        1,
        "{:?}",
        listing(&root.join("tmp"))
    );
}

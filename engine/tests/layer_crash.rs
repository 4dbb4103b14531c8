//! Crash safety: a process unpacking a layer is SIGKILLed at random points;
//! after each kill no layer directory lacks its completion marker, and the
//! next unpack succeeds with the whole tree.

mod layer_common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
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
    // Tell the parent the unpack starts now, so its kill points fall inside
    // the unpack and not in process start-up.
    let mut out = std::io::stdout();
    out.write_all(b"unpacking\n").unwrap();
    out.flush().unwrap();
    layer::unpack_layer(&store, &desc, &diff_id).unwrap();
}

/// Blocks until the child says its unpack has started.
fn wait_for_start(c: &mut Child) {
    // libtest prints its own lines ("running 1 test") first.
    let out = BufReader::new(c.stdout.as_mut().unwrap());
    for line in out.lines() {
        if line.unwrap() == "unpacking" {
            return;
        }
    }
    panic!("the child died before unpacking");
}

fn assert_store_consistent(root: &Path) {
    for name in listing(&root.join("layers")) {
        let dir = root.join("layers").join(&name);
        let diff_id: Digest = format!("blake3:{name}").parse().unwrap();
        let state = layer::marker::state(&dir, &diff_id);
        assert!(
            state.trusted() && dir.join("fs").is_dir(),
            "layers/{name} exists without a valid completion marker after a kill ({state:?})"
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
                "--nocapture",
            ])
            .env("RBOX_CRASH_ROOT", &root)
            .env("RBOX_CRASH_BLOB", &desc)
            .env("RBOX_CRASH_DIFF_ID", blob.diff_id.to_string())
            .stdout(Stdio::piped())
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
    let mut c = child();
    wait_for_start(&mut c);
    let t0 = Instant::now();
    assert!(c.wait().unwrap().success(), "the unkilled child failed");
    let full = t0.elapsed().max(Duration::from_millis(5));
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
        // One kill point in each of ITERATIONS equal slices of the unpack,
        // jittered within its slice: spread over the whole run, every time.
        let at = (i as f64 + (seed % 1000) as f64 / 1000.0) / ITERATIONS as f64;
        let delay = full.mul_f64(at);
        let mut c = child();
        wait_for_start(&mut c);
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
    eprintln!("{killed_mid_way} of {ITERATIONS} kills landed mid-unpack");
    assert!(
        // Kill points are spread over the measured unpack, so most land
        // mid-way; a run that got slower or faster than the measured one
        // shifts a few either way.
        killed_mid_way >= ITERATIONS / 4,
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

//! Full disk: a store on a 16 MiB tmpfs. Imports, builds and runs go on
//! until the filesystem is full; every failure must be a clear error (exit
//! code, what failed on which path, no panic), the store must stay
//! consistent, and rmi + gc must give the space back.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

struct Tmpfs {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Containers of a failed test may still hold mounts below it.
        let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
    }
}

fn small_tmpfs() -> Tmpfs {
    require_root();
    let dir = tempfile::Builder::new()
        .prefix("rbox-disk-")
        .tempdir()
        .unwrap();
    let path = dir.path().to_path_buf();
    nix::mount::mount(
        Some("tmpfs"),
        &path,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=16m"),
    )
    .expect("mount a 16 MiB tmpfs for the full-disk test (needs root and tmpfs)");
    Tmpfs { _dir: dir, path }
}

fn free_bytes(p: &Path) -> u64 {
    let s = nix::sys::statvfs::statvfs(p).unwrap();
    s.blocks_available() as u64 * s.fragment_size() as u64
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A failed command on a full disk: exit code 1 or 125 (never a signal or
/// a panic's 101), and a message naming ENOSPC and a path.
fn assert_clear_enospc(what: &str, o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "{what} succeeded on a full disk: {}",
        text(o)
    );
    assert!(
        !err.contains("panicked") && o.status.code() != Some(101) && o.status.code().is_some(),
        "{what} crashed on a full disk: {}",
        text(o)
    );
    assert!(
        err.contains("No space left on device"),
        "{what}: the error does not say the disk is full: {}",
        text(o)
    );
    assert!(
        err.contains('/'),
        "{what}: the error names no path: {}",
        text(o)
    );
}

/// What failed on what: the message names the file in the store that
/// could not be written (any '/' passed `assert_clear_enospc`, and a
/// source path did).
fn assert_names_store_path(what: &str, o: &Output, root: &Path) {
    let err = String::from_utf8_lossy(&o.stderr);
    let root = root.to_str().unwrap();
    assert!(
        err.split_whitespace()
            .any(|w| w.starts_with(root) && w.len() > root.len() + 1),
        "{what} on a full disk names no path in the store {root}: {}",
        text(o)
    );
}

fn fsck(root: &Path) {
    let o = Command::new(RBUILD)
        .arg("--root")
        .arg(root)
        .arg("fsck")
        .output()
        .unwrap();
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).contains("consistent"),
        "fsck after ENOSPC: {}",
        text(&o)
    );
}

/// A 3 MiB tarball of random bytes (nothing compresses it), unique per n.
fn random_tar(dir: &Path, n: u32) -> PathBuf {
    let d = dir.join(format!("src{n}"));
    std::fs::create_dir_all(&d).unwrap();
    let mut rng = fixtures::prng::Prng::new(u64::from(n) + 1);
    let bytes: Vec<u8> = (0..(3 << 20) / 8)
        .flat_map(|_| rng.next_u64().to_le_bytes())
        .collect();
    std::fs::write(d.join("random"), &bytes).unwrap();
    let tar = dir.join(format!("r{n}.tar"));
    let st = Command::new("tar")
        .arg("-C")
        .arg(&d)
        .arg("-cf")
        .arg(&tar)
        .arg("random")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

#[test]
fn a_full_store_fails_clearly_stays_consistent_and_frees_with_rmi_gc() {
    let fs = small_tmpfs();
    let root = fs.path.join("store");
    let rb = |args: &[&str]| {
        Command::new(RBUILD)
            .arg("--root")
            .arg(&root)
            .args(args)
            .output()
            .unwrap()
    };
    let rr = |args: &[&str]| {
        Command::new(rrun_path())
            .arg("--root")
            .arg(&root)
            .args(args)
            .output()
            .unwrap()
    };
    let scratch = tempfile::tempdir().unwrap();
    let base = scratch.path().join("busybox.tar.zst");
    fixtures::busybox_rootfs_tar(&base, fixtures::Compression::Zstd).unwrap();
    let o = rb(&[
        "import",
        "--change",
        "CMD [\"sh\"]",
        base.to_str().unwrap(),
        "busybox",
    ]);
    assert!(
        o.status.success(),
        "import busybox on the small tmpfs: {}",
        text(&o)
    );
    let free_at_start = free_bytes(&fs.path);

    // Import until the disk is full.
    let mut imported = 0;
    let full = loop {
        assert!(
            imported < 20,
            "16 MiB never filled after {imported} imports of 3 MiB"
        );
        let tar = random_tar(scratch.path(), imported);
        let o = rb(&["import", tar.to_str().unwrap(), &format!("r:{imported}")]);
        if !o.status.success() {
            break o;
        }
        imported += 1;
    };
    assert_clear_enospc("rbuild import", &full);
    // The store file being written, not the source tarball (it once said
    // "copy into the store <source>").
    assert_names_store_path("rbuild import", &full, &root);
    assert!(imported >= 1, "not even one import fitted: {}", text(&full));
    fsck(&root);
    eprintln!(
        "{imported} imports of 3 MiB fitted; then: {}",
        String::from_utf8_lossy(&full.stderr).trim()
    );

    // A build and a run on the full store.
    let ctx = scratch.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=8\n",
    )
    .unwrap();
    let o = rb(&["build", "-t", "big", ctx.to_str().unwrap()]);
    assert!(
        !o.status.success(),
        "a build of 8 MiB fitted into a full store: {}",
        text(&o)
    );
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("panicked"),
        "{}",
        text(&o)
    );
    eprintln!(
        "build on the full store: {}",
        String::from_utf8_lossy(&o.stderr).trim()
    );
    fsck(&root);

    let o = rr(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "dd if=/dev/zero of=/x bs=1M count=8",
    ]);
    assert!(
        !o.status.success(),
        "8 MiB written into a full store: {}",
        text(&o)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{}", text(&o));
    assert!(err.contains("No space left on device"), "{}", text(&o));
    eprintln!("run on the full store: {}", err.trim());
    fsck(&root);
    let o = rr(&["ps", "-aq"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "",
        "a --rm container stayed: {}",
        text(&o)
    );
    let left = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(root.to_str().unwrap()))
        .count();
    assert_eq!(left, 0, "mounts left under the full store");

    // Not one byte free: rrun cannot even create its container directory.
    let filler = fs.path.join("filler");
    let _ = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", filler.display()))
        .arg("bs=64k")
        .output()
        .unwrap();
    assert!(
        free_bytes(&fs.path) < 64 << 10,
        "the filler did not fill the tmpfs"
    );
    let o = rr(&["run", "--rm", "busybox", "true"]);
    assert_clear_enospc("rrun run on a store with 0 bytes free", &o);
    assert_names_store_path("rrun run on a store with 0 bytes free", &o, &root);
    eprintln!(
        "run with 0 bytes free: {}",
        String::from_utf8_lossy(&o.stderr).trim()
    );
    let o = rb(&["build", "-t", "big", ctx.to_str().unwrap()]);
    assert_clear_enospc("rbuild build on a store with 0 bytes free", &o);
    eprintln!(
        "build with 0 bytes free: {}",
        String::from_utf8_lossy(&o.stderr).trim()
    );
    fsck(&root);
    std::fs::remove_file(&filler).unwrap();
    let o = rr(&["ps", "-aq"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "",
        "{}",
        text(&o)
    );

    // rmi + gc give the space back; the store works again.
    let mut args = vec!["rmi".to_string()];
    args.extend((0..imported).map(|n| format!("r:{n}")));
    let o = rb(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "rmi: {}", text(&o));
    let o = rb(&["gc"]);
    assert!(o.status.success(), "gc on the full store: {}", text(&o));
    let free = free_bytes(&fs.path);
    assert!(
        free + (1 << 20) >= free_at_start,
        "gc freed too little: {free} bytes free, {free_at_start} before the imports"
    );
    fsck(&root);
    let o = rr(&["run", "--rm", "busybox", "echo", "alive"]);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "alive\n",
        "{}",
        text(&o)
    );
    // The build's upper dir and its committed layer each hold the file.
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=3\n",
    )
    .unwrap();
    let o = rb(&["build", "-t", "small", ctx.to_str().unwrap()]);
    assert!(o.status.success(), "a 3 MiB build after gc: {}", text(&o));
    fsck(&root);
}

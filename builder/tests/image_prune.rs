//! `rbuild image prune [-a] [-f]` on stores of its own (it removes images
//! the other tests would want).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

/// A fresh store holding the busybox image.
fn private_store() -> tempfile::TempDir {
    require_root();
    fixtures::netns::require_private_netns();
    let dir = tempfile::tempdir().unwrap();
    let store = engine::Store::open(dir.path()).unwrap();
    fixtures::ensure_busybox_image(&store, "busybox").unwrap();
    dir
}

/// Imports a one-file image of `kb` KiB as `name`; its manifest digest.
fn import(root: &Path, name: &str, kb: usize) -> String {
    let src = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..kb * 1024).map(|i| (i * 7 + name.len()) as u8).collect();
    std::fs::write(src.path().join(name.replace([':', '/'], "_")), data).unwrap();
    let tar: PathBuf = src.path().join("rootfs.tar");
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(src.path())
        .arg(name.replace([':', '/'], "_"))
        .status()
        .unwrap();
    assert!(st.success());
    let o = rbuild_in(root, &["import", tar.to_str().unwrap(), name]);
    assert!(o.status.success(), "{}", stderr(&o));
    let inspect = rbuild_in(root, &["inspect", name]);
    assert!(inspect.status.success(), "{}", stderr(&inspect));
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    v["Id"].as_str().unwrap().to_string()
}

fn prune_with_input(root: &Path, args: &[&str], input: &str) -> Output {
    let mut c = Command::new(RBUILD)
        .arg("--root")
        .arg(root)
        .arg("image")
        .arg("prune")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

fn has_blob(root: &Path, digest: &str) -> bool {
    let (alg, hex) = digest.split_once(':').unwrap();
    root.join("blobs").join(alg).join(hex).exists()
}

#[test]
fn image_prune_removes_dangling_images_only() {
    let store = private_store();
    let root = store.path();
    let gone = import(root, "old:1", 200);
    let kept = import(root, "kept:1", 10);
    let o = rbuild_in(root, &["rmi", "old:1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(has_blob(root, &gone), "rmi only untags");

    // Without -f it asks; anything but y keeps everything.
    let o = prune_with_input(root, &[], "n\n");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("WARNING! This will remove all dangling images."),
        "{}",
        stdout(&o)
    );
    assert!(has_blob(root, &gone), "pruned without a yes");

    let o = prune_with_input(root, &[], "y\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Deleted Images:"), "{out}");
    assert!(out.contains(&format!("deleted: {gone}")), "{out}");
    assert!(!out.contains(&kept), "a tagged image went: {out}");
    let total = out
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(total.ends_with("kB") || total.ends_with("MB"), "{out}");
    assert!(!has_blob(root, &gone));
    assert!(has_blob(root, &kept));
    let images = stdout(&rbuild_in(root, &["images"]));
    assert!(
        images.contains("kept") && images.contains("busybox"),
        "{images}"
    );

    // Nothing dangling now.
    let o = rbuild_in(root, &["image", "prune", "-f"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "Total reclaimed space: 0B");
}

#[test]
fn image_prune_all_keeps_what_containers_use() {
    let store = private_store();
    let root = store.path();
    let unused = import(root, "unused:1", 50);
    // A created (never started) container still keeps its image.
    let o = Command::new(rrun_path())
        .arg("--root")
        .arg(root)
        .args(["create", "--name", "keeper", "busybox", "true"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = rbuild_in(root, &["image", "prune", "-a", "-f"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("untagged: unused:1"), "{out}");
    assert!(out.contains(&format!("deleted: {unused}")), "{out}");
    assert!(!out.contains("busybox"), "{out}");
    assert!(!has_blob(root, &unused));
    let images = stdout(&rbuild_in(root, &["images"]));
    assert!(
        images.contains("busybox") && !images.contains("unused"),
        "{images}"
    );
    let o = Command::new(rrun_path())
        .arg("--root")
        .arg(root)
        .args(["rm", "keeper"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // With no container left, -a takes busybox too.
    let o = rbuild_in(root, &["image", "prune", "-a", "-f"]);
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.starts_with("untagged: ") && l.contains("busybox")),
        "{out}"
    );
    assert!(stdout(&rbuild_in(root, &["images", "-q"]))
        .trim()
        .is_empty());
}

//! Images as files: OCI layouts (tarball and directory), docker-archives,
//! flattened exports; checked against skopeo and umoci, the real peers.

mod interop_common;

use std::fs;
use std::process::Command;

use interop_common::*;

#[test]
fn oci_tarball_round_trips_to_the_same_image_and_runs() {
    let src = busybox_store();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("bb.tar");
    rbuild_ok(
        src.path(),
        &["save", "busybox", "-o", file.to_str().unwrap()],
    );
    let dst = empty_store();
    let out = rbuild_ok(dst.path(), &["load", "-i", file.to_str().unwrap()]);
    assert!(out.contains("Loaded image: busybox:latest"), "{out}");
    // Same layers, same config: the very same image (blake3 manifest digest).
    assert_eq!(
        resolve(dst.path(), "busybox"),
        resolve(src.path(), "busybox")
    );
    // Layers were unpacked while loading: the first run needs no unpack.
    let image = engine::Store::open(dst.path())
        .unwrap()
        .find_image("busybox")
        .unwrap();
    for d in &image.config.rootfs.diff_ids {
        assert!(
            dst.path()
                .join("layers")
                .join(d.hex())
                .join("complete")
                .exists(),
            "layer {d} not unpacked by load"
        );
    }
    assert_eq!(
        rrun_ok(dst.path(), "busybox", &["echo", "loaded"]).trim(),
        "loaded"
    );
    // -t renames.
    rbuild_ok(
        dst.path(),
        &[
            "load",
            "-i",
            file.to_str().unwrap(),
            "-t",
            "team/renamed:v2",
        ],
    );
    assert_eq!(
        resolve(dst.path(), "team/renamed:v2"),
        resolve(src.path(), "busybox")
    );
}

#[test]
fn oci_directory_is_read_by_umoci_and_skopeo_and_comes_back() {
    require_tool("umoci");
    require_tool("skopeo");
    let src = busybox_store();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let spec = format!("oci:{}:v1", layout.display());
    rbuild_ok(src.path(), &["save", "busybox", "-o", &spec]);

    // umoci (0.4, reads no zstd) unpacks our gzip layout into the same tree
    // as our own export.
    let gz = work.path().join("gz-layout");
    rbuild_ok(
        src.path(),
        &[
            "save",
            "busybox",
            "--compression",
            "gzip",
            "-o",
            &format!("oci:{}:v1", gz.display()),
        ],
    );
    let bundle = work.path().join("bundle");
    run_tool(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:v1", gz.display()))
            .arg(&bundle),
    );
    let ours = exported_tree(src.path(), "busybox", work.path());
    let theirs = tree(&bundle.join("rootfs"));
    assert!(
        ours.len() > 10,
        "the busybox tree is suspiciously small: {ours:?}"
    );
    assert_eq!(ours, theirs, "umoci's rootfs differs from rbuild export's");

    // skopeo: our layout → its docker-archive (gzip layers: docker has no
    // zstd) → rbuild load.
    let archive = work.path().join("skopeo-docker.tar");
    run_tool(
        Command::new("skopeo")
            .arg("copy")
            .arg(format!("oci:{}:v1", gz.display()))
            .arg(format!(
                "docker-archive:{}:from/skopeo:v3",
                archive.display()
            )),
    );
    let dst = empty_store();
    let out = rbuild_ok(dst.path(), &["load", "-i", archive.to_str().unwrap()]);
    assert!(out.contains("from/skopeo:v3"), "{out}");
    assert_eq!(
        diff_ids(dst.path(), "from/skopeo:v3"),
        diff_ids(src.path(), "busybox")
    );
    assert_eq!(
        rrun_ok(dst.path(), "from/skopeo:v3", &["echo", "via-archive"]).trim(),
        "via-archive"
    );

    // skopeo: our layout → its own OCI layout (re-encoded by it) → rbuild load oci:DIR:TAG.
    let relayout = work.path().join("relayout");
    run_tool(
        Command::new("skopeo")
            .arg("copy")
            .arg(&spec)
            .arg(format!("oci:{}:back", relayout.display())),
    );
    rbuild_ok(
        dst.path(),
        &[
            "load",
            "-i",
            &format!("oci:{}:back", relayout.display()),
            "-t",
            "back:1",
        ],
    );
    assert_eq!(
        diff_ids(dst.path(), "back:1"),
        diff_ids(src.path(), "busybox")
    );
    assert_eq!(exported_tree(dst.path(), "back:1", work.path()), ours);
}

#[test]
fn docker_archive_and_gzip_layers_for_older_clients() {
    require_tool("skopeo");
    let src = busybox_store();
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("da.tar");
    rbuild_ok(
        src.path(),
        &[
            "save",
            "busybox",
            "--format",
            "docker-archive",
            "-o",
            archive.to_str().unwrap(),
        ],
    );
    let list = run_tool(Command::new("tar").arg("tf").arg(&archive));
    assert!(
        list.contains("manifest.json") && list.contains("repositories"),
        "{list}"
    );
    let manifest = run_tool(
        Command::new("tar")
            .arg("-xOf")
            .arg(&archive)
            .arg("manifest.json"),
    );
    assert!(
        manifest.contains(r#""RepoTags":["busybox:latest"]"#),
        "{manifest}"
    );
    // skopeo reads it as a docker-archive (and checks every digest on the way to a layout).
    let copied = work.path().join("from-archive");
    run_tool(
        Command::new("skopeo")
            .arg("copy")
            .arg(format!("docker-archive:{}", archive.display()))
            .arg(format!("oci:{}:x", copied.display())),
    );

    let gz = work.path().join("gz");
    rbuild_ok(
        src.path(),
        &[
            "save",
            "busybox",
            "--compression",
            "gzip",
            "-o",
            &format!("oci:{}:gz", gz.display()),
        ],
    );
    let raw = run_tool(
        Command::new("skopeo")
            .arg("inspect")
            .arg("--raw")
            .arg(format!("oci:{}:gz", gz.display())),
    );
    assert!(
        raw.contains("application/vnd.oci.image.layer.v1.tar+gzip"),
        "{raw}"
    );
    for l in serde_json::from_str::<serde_json::Value>(&raw).unwrap()["layers"]
        .as_array()
        .unwrap()
    {
        let hex = &l["digest"].as_str().unwrap()[7..];
        let head = fs::read(gz.join("blobs/sha256").join(hex)).unwrap();
        assert_eq!(&head[..2], &[0x1f, 0x8b], "layer {hex} is not gzip");
    }
    let dst = empty_store();
    rbuild_ok(dst.path(), &["load", "-i", archive.to_str().unwrap()]);
    rbuild_ok(
        dst.path(),
        &[
            "load",
            "-i",
            &format!("oci:{}:gz", gz.display()),
            "-t",
            "gz:1",
        ],
    );
    assert_eq!(
        diff_ids(dst.path(), "busybox"),
        diff_ids(src.path(), "busybox")
    );
    assert_eq!(
        diff_ids(dst.path(), "gz:1"),
        diff_ids(src.path(), "busybox")
    );
    assert_eq!(rrun_ok(dst.path(), "gz:1", &["echo", "gz"]).trim(), "gz");
}

#[test]
fn a_tampered_blob_is_refused_and_nothing_is_stored() {
    let src = busybox_store();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    rbuild_ok(
        src.path(),
        &[
            "save",
            "busybox",
            "-o",
            &format!("oci:{}", layout.display()),
        ],
    );
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("blobs/sha256").join(&m[7..])).unwrap())
            .unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let path = layout.join("blobs/sha256").join(&layer[7..]);
    let mut bytes = fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55; // same size, different content
    fs::write(&path, bytes).unwrap();

    let dst = empty_store();
    let err = rbuild_err(
        dst.path(),
        &[
            "load",
            "-i",
            &format!("oci:{}", layout.display()),
            "-t",
            "bad:1",
        ],
    );
    assert!(
        err.contains("hashes to") && err.contains(layer),
        "unclear error: {err}"
    );
    assert_store_empty(dst.path());
}

/// Two layers made by GNU tar, the second deleting a file and a directory
/// with whiteouts and making a directory opaque: our load + export must give
/// the tree umoci gives, and rrun must see it.
#[test]
fn foreign_layers_with_whiteouts_load_and_export_flattened() {
    require_tool("umoci");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let l1 = w.join("l1");
    let l2 = w.join("l2");
    for d in ["bin", "gone-dir/sub", "opaque", "etc"] {
        fs::create_dir_all(l1.join(d)).unwrap();
    }
    let busybox = fixtures::busybox::find_busybox().expect("busybox-static is needed");
    fs::copy(&busybox, l1.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", l1.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink("busybox", l1.join("bin/ls")).unwrap();
    std::os::unix::fs::symlink("busybox", l1.join("bin/cat")).unwrap();
    fs::write(l1.join("etc/gone"), "x").unwrap();
    fs::write(l1.join("etc/kept"), "kept").unwrap();
    fs::write(l1.join("gone-dir/sub/f"), "y").unwrap();
    fs::write(l1.join("opaque/old"), "old").unwrap();
    for d in ["etc", "opaque"] {
        fs::create_dir_all(l2.join(d)).unwrap();
    }
    fs::write(l2.join("etc/.wh.gone"), "").unwrap();
    fs::write(l2.join(".wh.gone-dir"), "").unwrap();
    fs::write(l2.join("opaque/.wh..wh..opq"), "").unwrap();
    fs::write(l2.join("opaque/new"), "new").unwrap();

    // An OCI layout by hand: plain tar layers, gzip for the second.
    let layout = w.join("layout");
    let blobs = layout.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let mut layers = Vec::new();
    let mut diffs = Vec::new();
    for (dir, gzip) in [(&l1, false), (&l2, true)] {
        let tar = w.join("layer.tar");
        run_tool(
            Command::new("tar")
                .arg("-C")
                .arg(dir)
                .arg("--numeric-owner")
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        );
        let plain = fs::read(&tar).unwrap();
        diffs.push(engine::Digest::sha256_of(&plain).to_string());
        let (bytes, mt) = if gzip {
            run_tool(Command::new("gzip").arg("-kf").arg(&tar));
            (
                fs::read(w.join("layer.tar.gz")).unwrap(),
                "application/vnd.oci.image.layer.v1.tar+gzip",
            )
        } else {
            (plain, "application/vnd.oci.image.layer.v1.tar")
        };
        let d = engine::Digest::sha256_of(&bytes);
        fs::write(blobs.join(d.hex()), &bytes).unwrap();
        layers.push(
            serde_json::json!({"mediaType": mt, "digest": d.to_string(), "size": bytes.len()}),
        );
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diffs}
    }))
    .unwrap();
    let cd = engine::Digest::sha256_of(&config);
    fs::write(blobs.join(cd.hex()), &config).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd.to_string(), "size": config.len()},
        "layers": layers
    })).unwrap();
    let md = engine::Digest::sha256_of(&manifest);
    fs::write(blobs.join(md.hex()), &manifest).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    fs::write(layout.join("index.json"), serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md.to_string(), "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": "wh"}}]
    })).unwrap()).unwrap();

    let store = empty_store();
    rbuild_ok(
        store.path(),
        &[
            "load",
            "-i",
            &format!("oci:{}:wh", layout.display()),
            "-t",
            "wh:1",
        ],
    );
    let ours = exported_tree(store.path(), "wh:1", w);
    assert!(
        ours.contains_key("etc/kept") && ours.contains_key("opaque/new"),
        "{ours:?}"
    );
    for gone in ["etc/gone", "gone-dir", "opaque/old"] {
        assert!(
            !ours.contains_key(gone),
            "{gone} survived its whiteout: {ours:?}"
        );
    }
    assert!(
        !ours.keys().any(|k| k.contains(".wh.")),
        "whiteout files leaked into the export: {ours:?}"
    );
    let bundle = w.join("bundle");
    run_tool(
        Command::new("umoci")
            .arg("unpack")
            .arg("--image")
            .arg(format!("{}:wh", layout.display()))
            .arg(&bundle),
    );
    let mut theirs = tree(&bundle.join("rootfs"));
    let mut ours_cmp = ours.clone();
    // The root's own mode is the only thing tar and umoci may disagree on.
    theirs.remove("");
    ours_cmp.remove("");
    assert_eq!(ours_cmp, theirs);
    let ls = rrun_ok(store.path(), "wh:1", &["ls", "/opaque", "/etc"]);
    assert!(
        ls.contains("new") && !ls.contains("old") && !ls.contains("gone"),
        "{ls}"
    );
}

//! A 3-layer image with a whiteout layer unpacked in parallel; the same
//! layer unpacked by two threads and by two processes at once; import.

mod layer_common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;

use engine::image::ImageConfig;
use engine::layer::{self, WriteOptions};
use engine::{ImageRef, Store};
use layer_common::*;

fn layer_of(store: &Store, tree: &Path) -> layer::LayerBlob {
    layer::write_layer(store, tree, &WriteOptions::default())
        .unwrap()
        .unwrap()
}

/// Three upperdirs: a base, one deleting a file and replacing a directory
/// (whiteout + opaque), one adding more.
fn three_layer_image(store: &Store, work: &Path) -> engine::Image {
    let l1 = work.join("l1");
    fs::create_dir_all(l1.join("etc/conf.d")).unwrap();
    fs::create_dir_all(l1.join("usr/share/doc")).unwrap();
    for i in 0..300 {
        fs::write(
            l1.join(format!("usr/share/doc/f{i}")),
            format!("doc {i}").repeat(i + 1),
        )
        .unwrap();
    }
    fs::write(l1.join("etc/motd"), b"hello").unwrap();
    fs::write(l1.join("etc/conf.d/a"), b"a").unwrap();
    let l2 = work.join("l2");
    fs::create_dir_all(l2.join("etc/conf.d")).unwrap();
    mknod(&l2.join("etc/motd"), libc::S_IFCHR, 0, 0, 0);
    set_xattr(&l2.join("etc/conf.d"), "trusted.overlay.opaque", b"y");
    fs::write(l2.join("etc/conf.d/b"), b"b").unwrap();
    let l3 = work.join("l3");
    fs::create_dir_all(l3.join("srv")).unwrap();
    fs::write(l3.join("srv/big"), vec![3u8; 6 << 20]).unwrap();

    let blobs: Vec<_> = [&l1, &l2, &l3].iter().map(|t| layer_of(store, t)).collect();
    let mut config = ImageConfig::scratch();
    config.rootfs.diff_ids = blobs.iter().map(|b| b.diff_id.clone()).collect();
    let m = store
        .put_image(&config, blobs.iter().map(|b| b.descriptor()).collect())
        .unwrap();
    store
        .tag(&"test/three:v1".parse::<ImageRef>().unwrap(), &m)
        .unwrap();
    store.find_image("test/three:v1").unwrap()
}

#[test]
fn three_layers_unpack_side_by_side_each_with_its_own_whiteouts() {
    require_root();
    let dir = scratch();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let image = three_layer_image(&store, dir.path());
    let expected: Vec<_> = ["l1", "l2", "l3"]
        .iter()
        .map(|l| snapshot(&dir.path().join(l)))
        .collect();

    let lowers = layer::unpack_image(&store, &image).unwrap();
    assert_eq!(lowers.len(), 3);
    for (i, lower) in lowers.iter().enumerate() {
        assert_eq!(lower, &store.layer_fs(&image.config.rootfs.diff_ids[i]));
        assert_same_tree(&expected[i], &snapshot(lower));
    }
    // containerd #13030: the whiteout lives in layer 2 only; layer 1 keeps its file.
    let motd1 = fs::symlink_metadata(lowers[0].join("etc/motd")).unwrap();
    assert!(motd1.is_file());
    let motd2 = fs::symlink_metadata(lowers[1].join("etc/motd")).unwrap();
    assert!(motd2.file_type().is_char_device() && motd2.rdev() == 0);
    assert!(!lowers[2].join("etc").exists());

    // Again: nothing to do, same answer.
    assert_eq!(layer::unpack_image(&store, &image).unwrap(), lowers);
}

#[test]
fn two_threads_unpacking_the_same_layer_both_succeed() {
    require_root();
    let dir = scratch();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let image = three_layer_image(&store, dir.path());
    let results: Vec<_> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let root = root.clone();
                let image = image.clone();
                s.spawn(move || {
                    let store = Store::open(&root).unwrap();
                    layer::unpack_image(&store, &image)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(results[0].as_ref().unwrap(), results[1].as_ref().unwrap());
    for d in &image.config.rootfs.diff_ids {
        assert!(store.has_layer(d));
    }
    assert!(listing(&root.join("layers")).len() == 3);
}

/// Child half of the two-process test (does nothing when run directly).
#[test]
fn child_unpacks_image_when_asked() {
    let (Ok(root), Ok(image)) = (
        std::env::var("RBOX_TEST_ROOT"),
        std::env::var("RBOX_TEST_IMAGE"),
    ) else {
        return;
    };
    let store = Store::open(Path::new(&root)).unwrap();
    let image = store.find_image(&image).unwrap();
    layer::unpack_image(&store, &image).unwrap();
}

#[test]
fn two_processes_unpacking_the_same_image_both_succeed() {
    require_root();
    let dir = scratch();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let image = three_layer_image(&store, dir.path());
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "child_unpacks_image_when_asked",
                    "--test-threads=1",
                ])
                .env("RBOX_TEST_ROOT", &root)
                .env("RBOX_TEST_IMAGE", "test/three:v1")
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        let st = c.wait().unwrap();
        assert!(st.success(), "a concurrent unpacking process failed: {st}");
    }
    let lowers = layer::unpack_image(&store, &image).unwrap();
    assert_eq!(listing(&lowers[2].join("srv")), vec!["big"]);
}

#[test]
fn import_stores_the_tarball_as_is_and_unpacks_it() {
    require_root();
    let dir = scratch();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let tree = dir.path().join("rootfs");
    fs::create_dir_all(tree.join("bin")).unwrap();
    fs::write(tree.join("bin/sh"), b"#!shell").unwrap();
    std::os::unix::fs::symlink("sh", tree.join("bin/ash")).unwrap();
    for (flag, ext, mt) in [
        ("--zstd", "tar.zst", engine::image::media_type::LAYER_ZSTD),
        ("--gzip", "tar.gz", engine::image::media_type::LAYER_GZIP),
        (
            "--no-auto-compress",
            "tar",
            engine::image::media_type::LAYER_TAR,
        ),
    ] {
        let tarball = dir.path().join(format!("rootfs.{ext}"));
        let st = Command::new("tar")
            .args([flag, "--numeric-owner", "-C"])
            .arg(&tree)
            .arg("-cf")
            .arg(&tarball)
            .arg(".")
            .status()
            .expect("GNU tar is needed to build the import fixture (apt-get install tar zstd)");
        assert!(st.success());
        let blob = layer::import_tarball(&store, &tarball).unwrap();
        assert_eq!(blob.media_type, mt);
        assert_eq!(
            fs::read(store.blob_path(&blob.digest)).unwrap(),
            fs::read(&tarball).unwrap()
        );
        let fs_dir = store.layer_fs(&blob.diff_id);
        assert!(store.has_layer(&blob.diff_id));
        assert_same_tree(&snapshot(&tree), &snapshot(&fs_dir));
        // The stored blob unpacks to the same diff id through the normal path.
        assert_eq!(
            layer::unpack_layer(&store, &blob.descriptor(), &blob.diff_id).unwrap(),
            fs_dir
        );
    }
}

#[test]
fn sparse_files_from_gnu_tar_import_with_their_content() {
    require_root();
    let dir = scratch();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let tree = dir.path().join("rootfs");
    fs::create_dir_all(tree.join("var/lib")).unwrap();
    let sparse = tree.join("var/lib/sparse.db");
    let f = fs::File::create(&sparse).unwrap();
    f.set_len(20 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"head", 0).unwrap();
    f.write_all_at(b"middle", 7 << 20).unwrap();
    f.write_all_at(b"tail", (20 << 20) - 4).unwrap();
    drop(f);
    // posix = PAX sparse 1.0 (GNUSparseFile.<pid>/name); gnu = old 'S' entries.
    for format in ["posix", "gnu"] {
        let tarball = dir.path().join(format!("{format}.tar"));
        let st = Command::new("tar")
            .args([&format!("--format={format}"), "-S", "--numeric-owner", "-C"])
            .arg(&tree)
            .arg("-cf")
            .arg(&tarball)
            .arg(".")
            .status()
            .expect("GNU tar is needed for this test");
        assert!(st.success());
        let blob = layer::import_tarball(&store, &tarball).unwrap();
        let got = store.layer_fs(&blob.diff_id).join("var/lib/sparse.db");
        assert_eq!(
            fs::read(&got).unwrap(),
            fs::read(&sparse).unwrap(),
            "{format}: content differs"
        );
        assert_same_tree(&snapshot(&tree), &snapshot(&store.layer_fs(&blob.diff_id)));
    }
}

/// GNU tar's old sparse format chains extension blocks after the header
/// once a file has more than 4 data segments. The header guard follows
/// them (it must not lose track of the stream, nor refuse a real map):
/// a 30-segment sparse file, then an entry with a GNU long name, then
/// another file, all unpack with their content.
#[test]
fn gnu_sparse_maps_with_extension_blocks_unpack() {
    require_root();
    let dir = scratch();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let tree = dir.path().join("rootfs");
    let deep = format!("{}/file", "long-directory-name".repeat(8));
    fs::create_dir_all(tree.join(&deep).parent().unwrap()).unwrap();
    let f = fs::File::create(tree.join("a-sparse")).unwrap();
    f.set_len(64 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    for i in 0..30u64 {
        f.write_all_at(format!("segment {i}").as_bytes(), i * (2 << 20) + 4096)
            .unwrap();
    }
    drop(f);
    fs::write(tree.join(&deep), b"after the sparse map").unwrap();
    fs::write(tree.join("z-last"), b"last").unwrap();
    let tarball = dir.path().join("gnu.tar");
    let st = Command::new("tar")
        .args(["--format=gnu", "-S", "--numeric-owner", "-C"])
        .arg(&tree)
        .arg("-cf")
        .arg(&tarball)
        .args(["a-sparse", &deep, "z-last"])
        .status()
        .expect("GNU tar is needed for this test");
    assert!(st.success());
    let raw = fs::read(&tarball).unwrap();
    let h = tar::Header::from_byte_slice(&raw[..512]);
    assert!(
        h.entry_type().is_gnu_sparse(),
        "GNU tar wrote no sparse entry"
    );
    assert!(h.as_gnu().unwrap().is_extended(), "no extension blocks");
    let blob = layer::import_tarball(&store, &tarball).unwrap();
    let fs_dir = store.layer_fs(&blob.diff_id);
    assert_eq!(
        fs::read(fs_dir.join("a-sparse")).unwrap(),
        fs::read(tree.join("a-sparse")).unwrap()
    );
    assert_eq!(
        fs::read(fs_dir.join(&deep)).unwrap(),
        b"after the sparse map"
    );
    assert_eq!(fs::read(fs_dir.join("z-last")).unwrap(), b"last");
}

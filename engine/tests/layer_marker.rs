//! Layers published unsynced (see `engine::layer::marker`): trusted in the
//! boot that wrote them, never after a reboot; replaced whole when used
//! again; made durable by `sync_layers`.

mod layer_common;

use std::fs;
use std::time::Duration;

use engine::layer::marker::{self, MarkerState, MARKER};
use engine::layer::{self, WriteOptions};
use engine::Store;
use layer_common::*;

fn boot() -> &'static str {
    marker::boot_id().expect(
        "/proc/sys/kernel/random/boot_id is not readable: mount /proc (the unpacker then syncs every layer)",
    )
}

#[test]
fn unsynced_marker_from_another_boot_is_not_trusted_and_the_layer_is_unpacked_again() {
    require_root();
    let dir = scratch();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("etc")).unwrap();
    fs::write(tree.join("etc/hostname"), b"box\n").unwrap();
    fs::write(tree.join("big"), vec![7u8; 3 << 20]).unwrap();
    let want = snapshot(&tree);
    let blob = layer::write_layer(&store, &tree, &WriteOptions::default())
        .unwrap()
        .unwrap();
    let fs_dir = layer::unpack_layer(&store, &blob.descriptor(), &blob.diff_id).unwrap();
    let layer_dir = store.layer_dir(&blob.diff_id);
    let marker_path = layer_dir.join(MARKER);

    // Fresh: published without a sync, naming this boot.
    let text = fs::read_to_string(&marker_path).unwrap();
    assert_eq!(
        text,
        format!("unsynced-boot {}\n{}\n", boot(), blob.diff_id),
        "a fresh layer should be published unsynced with this boot's id"
    );
    assert!(store.has_layer(&blob.diff_id));

    // As if the machine crashed before the data reached the disk: the
    // marker names another boot, and the tree lost a file.
    let other_boot = "00000000-0000-4000-8000-000000000000";
    assert_ne!(other_boot, boot());
    fs::write(
        &marker_path,
        format!("unsynced-boot {other_boot}\n{}\n", blob.diff_id),
    )
    .unwrap();
    fs::remove_file(fs_dir.join("big")).unwrap();
    assert_eq!(
        marker::state(&layer_dir, &blob.diff_id),
        MarkerState::UnsyncedEarlierBoot
    );
    assert!(
        !store.has_layer(&blob.diff_id),
        "an unsynced layer of another boot must not be trusted"
    );
    let report = engine::fsck::fsck(&store).unwrap();
    assert!(report.is_consistent(), "{:?}", report.problems);
    assert_eq!(report.layers_unsynced_earlier_boot, vec![layer_dir.clone()]);

    // The next use unpacks it again, replacing the damaged tree whole.
    let again = layer::unpack_layer(&store, &blob.descriptor(), &blob.diff_id).unwrap();
    assert_eq!(again, fs_dir);
    assert_same_tree(&want, &snapshot(&again));
    assert_eq!(
        marker::state(&layer_dir, &blob.diff_id),
        MarkerState::UnsyncedThisBoot
    );
    // Nothing of the old tree is left in the store's tmp.
    let left = walk_count(store.tmp_dir());
    assert_eq!(left, 0, "the replaced layer was not removed from tmp");

    // A torn marker is not trusted either, and is replaced the same way.
    fs::write(&marker_path, "unsynced-bo").unwrap();
    assert!(!store.has_layer(&blob.diff_id));
    layer::unpack_layer(&store, &blob.descriptor(), &blob.diff_id).unwrap();
    assert!(store.has_layer(&blob.diff_id));
}

#[test]
fn sync_layers_marks_this_boots_layers_synced() {
    require_root();
    let dir = scratch();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("f"), b"x").unwrap();
    let blob = layer::write_layer(&store, &tree, &WriteOptions::default())
        .unwrap()
        .unwrap();
    layer::unpack_layer(&store, &blob.descriptor(), &blob.diff_id).unwrap();
    let layer_dir = store.layer_dir(&blob.diff_id);
    assert_eq!(
        marker::state(&layer_dir, &blob.diff_id),
        MarkerState::UnsyncedThisBoot
    );
    // Too young: left alone.
    assert_eq!(store.sync_layers(Duration::from_secs(3600)).unwrap(), 0);
    assert_eq!(store.sync_layers(Duration::ZERO).unwrap(), 1);
    assert_eq!(
        fs::read_to_string(layer_dir.join(MARKER)).unwrap(),
        format!("{}\n", blob.diff_id)
    );
    assert_eq!(
        marker::state(&layer_dir, &blob.diff_id),
        MarkerState::Synced
    );
    assert!(store.has_layer(&blob.diff_id));
    // Nothing left to do; no temp file left behind.
    assert_eq!(store.sync_layers(Duration::ZERO).unwrap(), 0);
    assert_eq!(walk_count(store.tmp_dir()), 0);
}

#[test]
fn one_images_layers_are_checked_and_synced_alone() {
    require_root();
    let dir = scratch();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let mut blobs = Vec::new();
    for name in ["a", "b"] {
        let tree = dir.path().join(name);
        fs::create_dir_all(&tree).unwrap();
        fs::write(tree.join(name), name).unwrap();
        let blob = layer::write_layer(&store, &tree, &WriteOptions::default())
            .unwrap()
            .unwrap();
        layer::unpack_layer(&store, &blob.descriptor(), &blob.diff_id).unwrap();
        blobs.push(blob);
    }
    let (a, b) = (&blobs[0].diff_id, &blobs[1].diff_id);
    let image = [a.clone()];
    let dirs = [store.layer_dir(a)];
    assert!(
        !marker::needs_sync(&dirs, Duration::from_secs(3600)),
        "too young"
    );
    assert!(marker::needs_sync(&dirs, Duration::ZERO));
    assert_eq!(store.sync_image_layers(&image, Duration::ZERO).unwrap(), 1);
    assert!(!marker::needs_sync(&dirs, Duration::ZERO));
    assert_eq!(marker::state(&store.layer_dir(a), a), MarkerState::Synced);
    // The other image's layer was not touched.
    assert_eq!(
        marker::state(&store.layer_dir(b), b),
        MarkerState::UnsyncedThisBoot
    );
}

fn walk_count(dir: &std::path::Path) -> usize {
    fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

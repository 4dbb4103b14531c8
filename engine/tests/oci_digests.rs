//! sha256 beside blake3: computed once per blob and diff id, then read from
//! the index; exported JSON names only sha256.

use std::fs;

use engine::image::ImageConfig;
use engine::layer::{write_layer, WriteOptions};
use engine::oci::digests;
use engine::oci::export::{export_image, ExportCompression};
use engine::{Digest, Store};

fn image_with_one_layer(store: &Store) -> engine::Image {
    let tree = tempfile::tempdir().unwrap();
    fs::create_dir(tree.path().join("etc")).unwrap();
    fs::write(tree.path().join("etc/hello"), "hello\n").unwrap();
    let layer = write_layer(store, tree.path(), &WriteOptions::default())
        .unwrap()
        .unwrap();
    let mut config = ImageConfig::scratch();
    config.rootfs.diff_ids.push(layer.diff_id.clone());
    let m = store.put_image(&config, vec![layer.descriptor()]).unwrap();
    store.image_by_digest(&m).unwrap()
}

#[test]
fn sha256_is_computed_once_and_kept_beside_blake3() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let image = image_with_one_layer(&store);
    let blob = &image.manifest.layers[0].digest;
    let first = export_image(&store, &image, ExportCompression::Keep).unwrap();
    let bytes = fs::read(store.blob_path(blob)).unwrap();
    assert_eq!(first.layers[0].descriptor.digest, Digest::sha256_of(&bytes));
    let json = String::from_utf8(first.manifest.clone()).unwrap();
    assert!(
        !json.contains("blake3"),
        "exported manifest names blake3: {json}"
    );
    assert!(!String::from_utf8_lossy(&first.config).contains("blake3"));
    assert_eq!(
        digests::blob_by_sha256(&store, &first.layers[0].descriptor.digest).as_ref(),
        Some(blob)
    );

    // Prove the second export reads the index instead of hashing again: a
    // planted (wrong) index entry is what comes back.
    let planted = Digest::sha256_of(b"planted");
    let entry = dir.path().join("blobs/sha256-index/blob").join(blob.hex());
    assert!(entry.exists(), "no index entry at {}", entry.display());
    fs::write(&entry, format!("{planted}\n")).unwrap();
    let second = export_image(&store, &image, ExportCompression::Keep).unwrap();
    assert_eq!(second.layers[0].descriptor.digest, planted);
    // The diff id (sha256 of the uncompressed tar) is cached the same way.
    let diff_entry = dir
        .path()
        .join("blobs/sha256-index/diff")
        .join(image.config.rootfs.diff_ids[0].hex());
    assert_eq!(
        fs::read_to_string(diff_entry).unwrap().trim(),
        first.layers[0].diff_id.to_string()
    );
}

#[test]
fn gzip_export_recompresses_with_the_same_diff_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let image = image_with_one_layer(&store);
    let zstd = export_image(&store, &image, ExportCompression::Keep).unwrap();
    let gzip = export_image(&store, &image, ExportCompression::Gzip).unwrap();
    assert_eq!(zstd.layers[0].diff_id, gzip.layers[0].diff_id);
    assert_ne!(
        zstd.layers[0].descriptor.digest,
        gzip.layers[0].descriptor.digest
    );
    assert_eq!(
        gzip.layers[0].descriptor.media_type,
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let bytes = fs::read(&gzip.layers[0].path).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
    assert_eq!(Digest::sha256_of(&bytes), gzip.layers[0].descriptor.digest);
    assert_eq!(bytes.len() as u64, gzip.layers[0].descriptor.size);
}

/// A layer taken in from a gzip or a zstd blob is published at once but
/// unsynced (its marker names this boot; `sync_layers` makes it durable
/// later), and a blob that does not hash to its descriptor publishes
/// nothing: no layer, no blob, no index entry, no temp file.
#[test]
fn ingested_layers_publish_unsynced_and_a_bad_blob_publishes_nothing() {
    use engine::layer::marker::{self, MarkerState};
    use engine::oci::ingest::{ingest_layer, LayerIn, Watch};
    let src = tempfile::tempdir().unwrap();
    let src_store = Store::open(src.path()).unwrap();
    let image = image_with_one_layer(&src_store);
    for compression in [ExportCompression::Keep, ExportCompression::Gzip] {
        let exported = export_image(&src_store, &image, compression).unwrap();
        let layer = &exported.layers[0];
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();

        let mut wrong = layer.descriptor.clone();
        wrong.digest = Digest::sha256_of(b"not this blob");
        let bad = LayerIn {
            expected: Some(&wrong),
            size: None,
            diff_id: &layer.diff_id,
            label: "bad",
            watch: Watch::none(),
        };
        let err = ingest_layer(&store, fs::File::open(&layer.path).unwrap(), &bad).unwrap_err();
        assert!(err.to_string().contains(&wrong.digest.to_string()), "{err}");
        for sub in ["layers", "blobs/blake3", "blobs/sha256-index"] {
            let n = fs::read_dir(dir.path().join(sub)).map_or(0, |d| d.count());
            assert_eq!(n, 0, "{sub} not empty after a bad blob");
        }
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);

        let good = LayerIn {
            expected: Some(&layer.descriptor),
            ..bad
        };
        let got = ingest_layer(&store, fs::File::open(&layer.path).unwrap(), &good).unwrap();
        assert!(store.has_blob(&got.digest) && store.has_layer(&got.diff_id));
        let layer_dir = store.layer_fs(&got.diff_id).parent().unwrap().to_path_buf();
        assert_eq!(
            fs::read(layer_dir.join("fs/etc/hello")).unwrap(),
            b"hello\n"
        );
        if marker::boot_id().is_some() {
            assert_eq!(
                marker::state(&layer_dir, &got.diff_id),
                MarkerState::UnsyncedThisBoot
            );
            store.sync_layers(std::time::Duration::ZERO).unwrap();
        }
        assert_eq!(marker::state(&layer_dir, &got.diff_id), MarkerState::Synced);
    }
}

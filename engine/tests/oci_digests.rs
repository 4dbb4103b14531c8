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

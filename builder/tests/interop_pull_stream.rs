//! `rbuild pull` streams each layer from the socket into the unpacker,
//! checks the blob's digest on the same pass and publishes nothing of the
//! image unless every layer matches. Debian's docker-registry on loopback,
//! fed by skopeo from OCI layouts of the synthetic distro-like layers, gzip
//! and zstd.

mod interop_common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use fixtures::{write_oci_layout, write_synthetic_layers, Compression, SyntheticSpec};
use interop_common::*;

/// A 3-layer image (base, headers, a clean-up layer of whiteouts) of a
/// few MB per layer, as an OCI layout tagged `v1`.
fn layout(work: &Path, compression: Compression) -> PathBuf {
    let spec = SyntheticSpec {
        seed: 0x7075_6c6c,
        packages: 64,
        total_bytes: 24_000_000,
        large_files: 2,
    };
    let dir = work.join(compression.name());
    let layers = write_synthetic_layers(&spec, &dir, compression).unwrap();
    let oci = dir.join("oci");
    write_oci_layout(&layers, &oci, "v1").unwrap();
    oci
}

fn push(reg: &Registry, oci: &Path, name: &str) -> String {
    let remote = format!("{}/{name}", reg.host());
    run_tool(
        Command::new(require_tool("skopeo"))
            .args(["copy", "-q", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:v1", oci.display()))
            .arg(format!("docker://{remote}")),
    );
    remote
}

/// Every unpacked layer of `image`, by diff id, as (path → description).
fn layer_trees(
    root: &Path,
    image: &str,
) -> Vec<(String, std::collections::BTreeMap<String, String>)> {
    let store = engine::Store::open(root).unwrap();
    let img = store.find_image(image).unwrap();
    img.config
        .rootfs
        .diff_ids
        .iter()
        .map(|d| (d.to_string(), tree(&store.layer_dir(d).join("fs"))))
        .collect()
}

#[test]
fn gzip_and_zstd_pulls_unpack_what_load_of_the_same_layout_does() {
    let reg = Registry::start(None);
    let work = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for c in [Compression::Gzip, Compression::Zstd] {
        let oci = layout(work.path(), c);
        let remote = push(&reg, &oci, &format!("synth/{}:v1", c.name()));
        let pulled = empty_store();
        rbuild_ok(pulled.path(), &["pull", "-q", &remote]);
        let loaded = empty_store();
        rbuild_ok(
            loaded.path(),
            &[
                "load",
                "-q",
                "-i",
                &format!("oci:{}:v1", oci.display()),
                "-t",
                "l:1",
            ],
        );
        let p = layer_trees(pulled.path(), &remote);
        let l = layer_trees(loaded.path(), "l:1");
        assert_eq!(p.len(), 3, "{} layers pulled", p.len());
        assert!(
            p.iter().all(|(_, t)| !t.is_empty()),
            "an unpacked layer is empty"
        );
        assert!(
            p[2].1.keys().any(|k| k.ends_with("doc")),
            "the clean-up layer's whiteouts are missing: {:?}",
            p[2].1.keys().collect::<Vec<_>>()
        );
        assert_eq!(p, l, "{}: pull and load unpacked different trees", c.name());
        // The blob is kept (for push and save), under the registry's digest.
        rbuild_ok(
            pulled.path(),
            &[
                "save",
                &remote,
                "-o",
                &format!(
                    "oci:{}",
                    work.path().join(format!("saved-{}", c.name())).display()
                ),
            ],
        );
        all.push(p);
    }
    assert_eq!(
        all[0], all[1],
        "the gzip and zstd images unpacked differently"
    );
}

/// The registry's own copy of a layer is corrupted after its first MiB: the
/// pull fails naming the layer's digest and publishes nothing of the image
/// (no layer directory, no blob, no tag, no temp files), although the
/// other two layers are sound.
#[test]
fn a_layer_corrupted_in_the_registry_publishes_nothing() {
    let reg = Registry::start(None);
    let work = tempfile::tempdir().unwrap();
    for c in [Compression::Gzip, Compression::Zstd] {
        let oci = layout(work.path(), c);
        let remote = push(&reg, &oci, &format!("bad/{}:v1", c.name()));
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(oci.join("index.json")).unwrap()).unwrap();
        let manifest = index["manifests"][0]["digest"].as_str().unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(
            &fs::read(
                oci.join("blobs/sha256")
                    .join(manifest.trim_start_matches("sha256:")),
            )
            .unwrap(),
        )
        .unwrap();
        let big = manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let hex = big.trim_start_matches("sha256:");
        let data = reg
            .dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data");
        let mut bytes = fs::read(&data).unwrap();
        assert!(
            bytes.len() > 2 << 20,
            "layer 1 is only {} bytes",
            bytes.len()
        );
        let at = bytes.len() / 2;
        bytes[at] ^= 0x55;
        fs::write(&data, &bytes).unwrap();

        let dst = empty_store();
        let err = rbuild_err(dst.path(), &["pull", &remote]);
        assert!(
            err.contains(&big) && err.contains("hashes to"),
            "{}: the error does not name the layer's digest: {err}",
            c.name()
        );
        assert_store_empty(dst.path());
        let tmp = dst.path().join("tmp");
        let left: Vec<_> = fs::read_dir(&tmp)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{}: temp files left: {left:?}", c.name());
        assert!(resolve(dst.path(), &remote).is_none());
    }
}

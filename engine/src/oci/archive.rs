//! `docker save` archives ("docker-archive"): `manifest.json` listing each
//! image's config and uncompressed layer tars by path, and `repositories`.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};

use serde::{Deserialize, Serialize};

use super::export::{write_uncompressed, ExportedImage};
use super::ingest::{finish_image, ingest_layer, LayerIn, Watch};
use super::layout::{append, Loaded};
use super::tarindex::Members;
use super::{io_err, json, verify_bytes, OciError, Result};
use crate::digest::Digest;
use crate::fsutil;
use crate::image::ImageConfig;
use crate::layer::LayerBlob;
use crate::store::Store;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ArchiveEntry {
    pub config: String,
    #[serde(default)]
    pub repo_tags: Option<Vec<String>>,
    pub layers: Vec<String>,
}

/// Write a docker-archive holding one image, named `repo_tag` (`name:tag`).
/// Layers are written uncompressed, as `docker save` does, so each layer
/// file's digest is its diff id.
pub fn save<W: Write>(
    store: &Store,
    image: &ExportedImage,
    out: W,
    repo_tag: Option<&str>,
) -> Result<W> {
    let mut tar = tar::Builder::new(out);
    let e = |e: io::Error| OciError::Format(format!("writing the docker archive failed: {e}"));
    let config_name = format!("{}.json", image.config_descriptor.digest.hex());
    append(
        &mut tar,
        &config_name,
        image.config.len() as u64,
        &image.config[..],
    )
    .map_err(e)?;
    let mut layer_names = Vec::new();
    for l in &image.layers {
        let name = format!("{}.tar", l.diff_id.hex());
        if !layer_names.contains(&name) {
            // The tar header needs the size first: decompress to a temp file.
            let tmp = store.tmp_dir().join(fsutil::unique_name("archive-layer"));
            let r = (|| {
                let f = File::create(&tmp).map_err(io_err("create", &tmp))?;
                let mut w = BufWriter::new(f);
                write_uncompressed(store, l, &mut w)?;
                w.flush().map_err(io_err("write", &tmp))?;
                let size = std::fs::metadata(&tmp).map_err(io_err("stat", &tmp))?.len();
                let f = File::open(&tmp).map_err(io_err("open", &tmp))?;
                append(
                    &mut tar,
                    &name,
                    size,
                    io::BufReader::with_capacity(1 << 20, f),
                )
                .map_err(e)
            })();
            let _ = std::fs::remove_file(&tmp);
            r?;
        }
        layer_names.push(name);
    }
    let entry = ArchiveEntry {
        config: config_name,
        repo_tags: repo_tag.map(|t| vec![t.to_string()]),
        layers: layer_names.clone(),
    };
    let manifest = serde_json::to_vec(&[entry]).expect("manifest.json serialises");
    append(
        &mut tar,
        "manifest.json",
        manifest.len() as u64,
        &manifest[..],
    )
    .map_err(e)?;
    if let Some((name, tag)) = repo_tag.and_then(|t| t.rsplit_once(':')) {
        let mut repos: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let top = image
            .layers
            .last()
            .map(|l| l.diff_id.hex().to_string())
            .unwrap_or_default();
        repos
            .entry(name.to_string())
            .or_default()
            .insert(tag.to_string(), top);
        let bytes = serde_json::to_vec(&repos).expect("repositories serialises");
        append(&mut tar, "repositories", bytes.len() as u64, &bytes[..]).map_err(e)?;
    }
    tar.into_inner().map_err(e)
}

/// The 64-hex digest a member's name carries (`<hex>.json`, `blobs/sha256/<hex>`), if any.
fn digest_in_name(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next()?;
    let hex = base.split('.').next()?;
    format!("sha256:{hex}").parse().ok()
}

/// Load every image of a docker-archive. Configs are checked against the
/// digest in their names; layers against the config's diff ids.
pub fn load(store: &Store, members: &Members, watch: Watch<'_>) -> Result<Vec<Loaded>> {
    let entries: Vec<ArchiveEntry> = json("manifest.json", &members.read_small("manifest.json")?)?;
    let mut out = Vec::new();
    for entry in entries {
        let config_bytes = members.read_small(&entry.config)?;
        if let Some(d) = digest_in_name(&entry.config) {
            verify_bytes(&format!("config {}", entry.config), &config_bytes, &d)?;
        }
        let config: ImageConfig = json(&entry.config, &config_bytes)?;
        if config.rootfs.diff_ids.len() != entry.layers.len() {
            return Err(OciError::Format(format!(
                "manifest.json lists {} layers for {} but its config lists {} diff ids",
                entry.layers.len(),
                entry.config,
                config.rootfs.diff_ids.len()
            )));
        }
        let results: Vec<Result<LayerBlob>> = std::thread::scope(|s| {
            let handles: Vec<_> = entry
                .layers
                .iter()
                .zip(&config.rootfs.diff_ids)
                .map(|(path, diff_id)| {
                    s.spawn(move || {
                        let reader = members.read(path)?;
                        let layer = LayerIn {
                            expected: None,
                            size: members.size(path),
                            diff_id,
                            label: path,
                            watch,
                        };
                        ingest_layer(store, reader, &layer)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a layer thread panicked"))
                .collect()
        });
        let layers = results.into_iter().collect::<Result<Vec<_>>>()?;
        let manifest = finish_image(store, config, layers)?;
        out.push(Loaded {
            name: entry.repo_tags.and_then(|t| t.into_iter().next()),
            manifest,
        });
    }
    Ok(out)
}

//! OCI image layouts (image-spec "image-layout"): `oci-layout`,
//! `index.json`, `blobs/sha256/<hex>`, as a directory or a tarball.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::export::{open_layer, ExportedImage};
use super::ingest::{import_manifest, BlobFetch, Watch};
use super::tarindex::Members;
use super::{io_err, json, verify_bytes, OciError, Result, CONTAINERD_NAME, REF_NAME};
use crate::digest::Digest;
use crate::image::{media_type, Descriptor};
use crate::store::Store;

const LAYOUT_FILE: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl std::str::FromStr for Platform {
    type Err = String;
    /// `os/arch[/variant]`, as `--platform` takes it.
    fn from_str(s: &str) -> Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(format!(
                "platform {s:?} is not OS/ARCH[/VARIANT] (e.g. linux/amd64)"
            )),
        }
    }
}

impl Platform {
    pub fn linux_amd64() -> Platform {
        "linux/amd64".parse().expect("valid")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl IndexEntry {
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            annotations: Default::default(),
        }
    }
}

/// An image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<IndexEntry>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

pub fn is_index_type(mt: &str) -> bool {
    mt == media_type::INDEX || mt == media_type::DOCKER_MANIFEST_LIST
}

/// Nested indexes followed below the one we start from, at most.
pub const MAX_INDEX_DEPTH: usize = 4;
/// Nested indexes opened while looking for one platform, at most (an index
/// may list many indexes; each costs a fetch).
pub const MAX_INDEXES_OPENED: usize = 16;

fn platform_matches(have: Option<&Platform>, want: &Platform) -> bool {
    have.is_some_and(|p| {
        p.os == want.os
            && p.architecture == want.architecture
            && (want.variant.is_none() || p.variant == want.variant)
    })
}

fn platform_name(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{v}", p.os, p.architecture),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// The manifest entry of `index` meant for `platform` (variant matched only
/// when asked for). An entry that is itself an index is looked into
/// (through `open`) when the index has no manifest for the platform and the
/// entry's platform matches or is not given, [`MAX_INDEX_DEPTH`] deep and
/// [`MAX_INDEXES_OPENED`] indexes in all.
pub fn resolve_platform(
    index: &Index,
    platform: &Platform,
    open: &mut dyn FnMut(&IndexEntry) -> Result<Index>,
) -> Result<IndexEntry> {
    let mut have = Vec::new();
    let mut budget = MAX_INDEXES_OPENED;
    if let Some(e) = search(index, platform, open, 0, &mut budget, &mut have)? {
        return Ok(e);
    }
    Err(OciError::Unsupported(format!(
        "no image for platform {} in the index (it has: {}; try: --platform)",
        platform_name(platform),
        if have.is_empty() {
            "no image with a platform".to_string()
        } else {
            have.join(", ")
        }
    )))
}

fn search(
    index: &Index,
    platform: &Platform,
    open: &mut dyn FnMut(&IndexEntry) -> Result<Index>,
    depth: usize,
    budget: &mut usize,
    have: &mut Vec<String>,
) -> Result<Option<IndexEntry>> {
    let (nested, manifests): (Vec<&IndexEntry>, Vec<&IndexEntry>) = index
        .manifests
        .iter()
        .partition(|m| is_index_type(&m.media_type));
    if let Some(e) = manifests
        .iter()
        .find(|m| platform_matches(m.platform.as_ref(), platform))
    {
        return Ok(Some((*e).clone()));
    }
    // For the error: what the images here are for, and what the indexes
    // not looked into say theirs are for.
    let (open_these, skipped): (Vec<&IndexEntry>, Vec<&IndexEntry>) = nested
        .into_iter()
        .partition(|e| e.platform.is_none() || platform_matches(e.platform.as_ref(), platform));
    for p in manifests
        .iter()
        .chain(&skipped)
        .filter_map(|m| m.platform.as_ref())
    {
        let name = platform_name(p);
        if !have.contains(&name) {
            have.push(name);
        }
    }
    for e in open_these {
        if depth == MAX_INDEX_DEPTH {
            return Err(OciError::Unsupported(format!(
                "image indexes nested more than {MAX_INDEX_DEPTH} deep (at {})",
                e.digest
            )));
        }
        if *budget == 0 {
            return Err(OciError::Unsupported(format!(
                "more than {MAX_INDEXES_OPENED} nested image indexes to look through (at {})",
                e.digest
            )));
        }
        *budget -= 1;
        let inner = open(e)?;
        if let Some(found) = search(&inner, platform, open, depth + 1, budget, have)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// What a layout names an image: the full name if it carries one, else the tag.
fn entry_name(e: &IndexEntry) -> Option<String> {
    e.annotations
        .get(CONTAINERD_NAME)
        .or_else(|| e.annotations.get(REF_NAME))
        .cloned()
}

fn index_entry(image: &ExportedImage, full_name: Option<&str>, tag: Option<&str>) -> IndexEntry {
    let mut annotations = BTreeMap::new();
    if let Some(t) = tag {
        annotations.insert(REF_NAME.to_string(), t.to_string());
    }
    if let Some(n) = full_name {
        annotations.insert(CONTAINERD_NAME.to_string(), n.to_string());
    }
    IndexEntry {
        media_type: media_type::MANIFEST.to_string(),
        digest: image.manifest_descriptor.digest.clone(),
        size: image.manifest_descriptor.size,
        platform: Some(Platform {
            architecture: image.image_config.architecture.clone(),
            os: image.image_config.os.clone(),
            variant: None,
        }),
        annotations,
    }
}

fn new_index(entries: Vec<IndexEntry>) -> Index {
    Index {
        schema_version: 2,
        media_type: Some(media_type::INDEX.to_string()),
        manifests: entries,
        annotations: BTreeMap::new(),
    }
}

/// Write (or add to) an OCI layout directory. An existing entry with the
/// same tag is replaced, as skopeo does.
pub fn save_dir(
    image: &ExportedImage,
    dir: &Path,
    full_name: Option<&str>,
    tag: Option<&str>,
) -> Result<()> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io_err("create directory", &blobs))?;
    let put = |d: &Digest, bytes: &[u8]| -> Result<()> {
        let p = blobs.join(d.hex());
        if !p.exists() {
            write_via_tmp(&p, |f| f.write_all(bytes))?;
        }
        Ok(())
    };
    for l in &image.layers {
        let p = blobs.join(l.descriptor.digest.hex());
        if !p.exists() {
            let mut src = open_layer(l)?;
            write_via_tmp(&p, |f| io::copy(&mut src, f).map(drop))?;
        }
    }
    put(&image.config_descriptor.digest, &image.config)?;
    put(&image.manifest_descriptor.digest, &image.manifest)?;
    write_via_tmp(&dir.join("oci-layout"), |f| {
        f.write_all(LAYOUT_FILE.as_bytes())
    })?;
    let index_path = dir.join("index.json");
    let mut index = match fs::read(&index_path) {
        Ok(b) => json::<Index>(&format!("{}", index_path.display()), &b)?,
        Err(_) => new_index(Vec::new()),
    };
    if let Some(t) = tag {
        index
            .manifests
            .retain(|m| m.annotations.get(REF_NAME).map(String::as_str) != Some(t));
    }
    index.manifests.push(index_entry(image, full_name, tag));
    let bytes = serde_json::to_vec(&index).expect("index serialises");
    write_via_tmp(&index_path, |f| f.write_all(&bytes))
}

/// Write `dest` whole or not at all, through a random O_EXCL temp name
/// beside it (the layout directory may be one other users write to).
fn write_via_tmp(dest: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> Result<()> {
    let r = (|| {
        let mut out = crate::outfile::OutputFile::create(dest)?;
        fill(out.file())?;
        out.commit()
    })();
    r.map_err(io_err("write", dest))
}

/// Append a member to a tar stream (regular file, mode 0644, mtime 0: the
/// same image gives the same tarball).
pub(crate) fn append<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    size: u64,
    data: impl io::Read,
) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, name, data)
}

pub(crate) fn append_dir<W: Write>(tar: &mut tar::Builder<W>, name: &str) -> io::Result<()> {
    let mut h = tar::Header::new_ustar();
    h.set_size(0);
    h.set_mode(0o755);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Directory);
    tar.append_data(&mut h, name, io::empty())
}

/// Write an OCI layout as a tarball (what `skopeo copy oci-archive:` and
/// `docker load` read).
pub fn save_tar<W: Write>(
    image: &ExportedImage,
    out: W,
    full_name: Option<&str>,
    tag: Option<&str>,
) -> Result<W> {
    let mut tar = tar::Builder::new(out);
    let e = |e: io::Error| OciError::Format(format!("writing the layout tarball failed: {e}"));
    append(
        &mut tar,
        "oci-layout",
        LAYOUT_FILE.len() as u64,
        LAYOUT_FILE.as_bytes(),
    )
    .map_err(e)?;
    let index = serde_json::to_vec(&new_index(vec![index_entry(image, full_name, tag)]))
        .expect("index serialises");
    append(&mut tar, "index.json", index.len() as u64, &index[..]).map_err(e)?;
    append_dir(&mut tar, "blobs/").map_err(e)?;
    append_dir(&mut tar, "blobs/sha256/").map_err(e)?;
    let mut seen = std::collections::HashSet::new();
    for l in &image.layers {
        if seen.insert(l.descriptor.digest.clone()) {
            append(
                &mut tar,
                &format!("blobs/sha256/{}", l.descriptor.digest.hex()),
                l.descriptor.size,
                open_layer(l)?,
            )
            .map_err(e)?;
        }
    }
    append(
        &mut tar,
        &format!("blobs/sha256/{}", image.config_descriptor.digest.hex()),
        image.config.len() as u64,
        &image.config[..],
    )
    .map_err(e)?;
    append(
        &mut tar,
        &format!("blobs/sha256/{}", image.manifest_descriptor.digest.hex()),
        image.manifest.len() as u64,
        &image.manifest[..],
    )
    .map_err(e)?;
    tar.into_inner().map_err(e)
}

struct LayoutBlobs<'a>(&'a Members);

impl BlobFetch for LayoutBlobs<'_> {
    fn fetch(&self, desc: &Descriptor) -> Result<Box<dyn io::Read + Send + '_>> {
        self.0.read(&format!(
            "blobs/{}/{}",
            desc.digest.algorithm().name(),
            desc.digest.hex()
        ))
    }
}

/// An image loaded from a layout: its name in the layout (if any) and its
/// manifest digest in the store.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub name: Option<String>,
    pub manifest: Digest,
}

/// Load images from a layout (directory or tarball). `tag` picks the entry
/// with that `org.opencontainers.image.ref.name`; without it, every entry.
pub fn load(
    store: &Store,
    members: &Members,
    tag: Option<&str>,
    platform: &Platform,
    watch: Watch<'_>,
) -> Result<Vec<Loaded>> {
    let index: Index = json("index.json", &members.read_small("index.json")?)?;
    let entries: Vec<&IndexEntry> = match tag {
        Some(t) => {
            let e: Vec<_> = index
                .manifests
                .iter()
                .filter(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(t))
                .collect();
            if e.is_empty() {
                return Err(OciError::Format(format!(
                    "the layout has no image tagged {t:?}"
                )));
            }
            e
        }
        None => index.manifests.iter().collect(),
    };
    if entries.is_empty() {
        return Err(OciError::Format(
            "the layout's index.json lists no images".into(),
        ));
    }
    let src = LayoutBlobs(members);
    let mut out = Vec::new();
    for e in entries {
        let mut manifest_desc = e.descriptor();
        let mut bytes = super::ingest::read_small(&src, &manifest_desc, "manifest")?;
        if is_index_type(&e.media_type) {
            let nested: Index = json("nested index", &bytes)?;
            let mut open = |e: &IndexEntry| -> Result<Index> {
                let bytes = super::ingest::read_small(&src, &e.descriptor(), "image index")?;
                json("nested index", &bytes)
            };
            manifest_desc = resolve_platform(&nested, platform, &mut open)?.descriptor();
            bytes = super::ingest::read_small(&src, &manifest_desc, "manifest")?;
        }
        verify_bytes("manifest", &bytes, &manifest_desc.digest)?;
        let manifest = import_manifest(store, &src, &bytes, watch)?;
        out.push(Loaded {
            name: entry_name(e),
            manifest,
        });
    }
    Ok(out)
}

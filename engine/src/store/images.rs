//! Images and their names: manifests and configs (JSON blobs) and the tags
//! `images/<name>/<tag>` that point at a manifest digest.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::error::{io_err, Result, StoreError};
use super::{read_dir_or_empty, Store};
use crate::digest::Digest;
use crate::fsutil::write_atomic;
use crate::image::{media_type, Descriptor, ImageConfig, Manifest};
use crate::reference::ImageRef;

/// An image as stored: the manifest, its config, and how it was found.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    pub config_digest: Digest,
    pub config: ImageConfig,
}

impl Store {
    /// Store config and manifest for an image; returns the manifest digest.
    pub fn put_image(&self, config: &ImageConfig, layers: Vec<Descriptor>) -> Result<Digest> {
        let (config_digest, config_size) = self.put_json(config)?;
        let manifest = Manifest::new(
            Descriptor {
                media_type: media_type::CONFIG.to_string(),
                digest: config_digest,
                size: config_size,
                annotations: Default::default(),
            },
            layers,
        );
        Ok(self.put_json(&manifest)?.0)
    }

    pub fn image_by_digest(&self, manifest_digest: &Digest) -> Result<Image> {
        let manifest: Manifest = self.read_json("manifest", manifest_digest)?;
        let config_digest = manifest.config.digest.clone();
        let config: ImageConfig = self.read_json("config", &config_digest)?;
        Ok(Image {
            manifest_digest: manifest_digest.clone(),
            manifest,
            config_digest,
            config,
        })
    }

    /// Find an image by `name[:tag]`, by full digest, or by a unique prefix
    /// of at least 12 hex digits of a manifest digest (as `docker` takes ids).
    pub fn find_image(&self, reference: &str) -> Result<Image> {
        if let Ok(digest) = reference.parse::<Digest>() {
            if self.has_blob(&digest) {
                return self.image_by_digest(&digest);
            }
        }
        if let Ok(r) = reference.parse::<ImageRef>() {
            if let Some(d) = self.resolve(&r)? {
                return self.image_by_digest(&d);
            }
        }
        if reference.len() >= 12 && reference.bytes().all(|b| b.is_ascii_hexdigit()) {
            let matches: Vec<Digest> = self
                .list_refs()?
                .into_iter()
                .map(|(_, d)| d)
                .filter(|d| d.hex().starts_with(reference))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            if matches.len() == 1 {
                return self.image_by_digest(&matches[0]);
            }
        }
        Err(StoreError::ImageNotFound {
            reference: reference.to_string(),
            root: self.root.clone(),
        })
    }

    // ------------------------------------------------------------------ refs

    fn ref_path(&self, r: &ImageRef) -> PathBuf {
        // ImageRef validation rules out "", "." and ".." components.
        self.root.join("images").join(&r.name).join(&r.tag)
    }

    pub fn tag(&self, r: &ImageRef, manifest_digest: &Digest) -> Result<()> {
        let path = self.ref_path(r);
        let dir = path.parent().expect("ref path has a parent");
        fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        write_atomic(
            self.session()?,
            &path,
            format!("{manifest_digest}\n").as_bytes(),
        )
        .map_err(io_err("write", &path))
    }

    pub fn resolve(&self, r: &ImageRef) -> Result<Option<Digest>> {
        let path = self.ref_path(r);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(s.trim().parse().ok()),
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                Ok(None)
            }
            Err(e) => Err(io_err("read", &path)(e)),
        }
    }

    /// Remove a tag; returns whether it existed.
    pub fn untag(&self, r: &ImageRef) -> Result<bool> {
        let path = self.ref_path(r);
        match fs::remove_file(&path) {
            Ok(()) => {
                // Tidy empty repository directories up to images/.
                let images = self.root.join("images");
                let mut dir = path.parent().map(Path::to_path_buf);
                while let Some(d) = dir {
                    if d == images || fs::remove_dir(&d).is_err() {
                        break;
                    }
                    dir = d.parent().map(Path::to_path_buf);
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("remove", &path)(e)),
        }
    }

    /// Every tag in the store, sorted by name and tag.
    pub fn list_refs(&self) -> Result<Vec<(ImageRef, Digest)>> {
        let images = self.root.join("images");
        let mut out = Vec::new();
        walk_refs(&images, &images, &mut out)?;
        out.sort();
        Ok(out)
    }
}

fn walk_refs(base: &Path, dir: &Path, out: &mut Vec<(ImageRef, Digest)>) -> Result<()> {
    for path in read_dir_or_empty(dir)? {
        let meta = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
        if meta.is_dir() {
            walk_refs(base, &path, out)?;
        } else if meta.is_file() {
            let rel = path.strip_prefix(base).expect("walk stays under base");
            let (Some(name), Some(tag)) = (rel.parent(), rel.file_name()) else {
                continue;
            };
            let r = format!("{}:{}", name.display(), tag.to_string_lossy());
            let Ok(r) = r.parse::<ImageRef>() else {
                continue;
            };
            let mut s = String::new();
            File::open(&path)
                .and_then(|mut f| f.read_to_string(&mut s))
                .map_err(io_err("read", &path))?;
            if let Ok(d) = s.trim().parse() {
                out.push((r, d));
            }
        }
    }
    Ok(())
}

//! Images of the bench corpora put into an rbox store directly through the
//! engine's store API (blobs and manifest only; unpacking is what is timed).

use std::path::{Path, PathBuf};

use engine::image::{media_type, Descriptor, ImageConfig};
use engine::reference::ImageRef;
use engine::store::Store;

use crate::corpus::LayeredImage;

/// Put `img`'s zstd layers and an image naming them into the store at
/// `root`, tagged `name:latest` (blobs only: nothing is unpacked here).
pub fn ingest(root: &Path, img: &LayeredImage, name: &str) -> Result<(), String> {
    let layers: Vec<(PathBuf, PathBuf)> =
        (0..img.layers).map(|i| (img.tar(i), img.zst(i))).collect();
    ingest_layers(root, &layers, name)
}

/// The same for any list of (uncompressed tar, zstd blob) pairs, bottom first.
pub fn ingest_layers(root: &Path, pairs: &[(PathBuf, PathBuf)], name: &str) -> Result<(), String> {
    let store = Store::open(root).map_err(|e| e.to_string())?;
    let mut layers = Vec::new();
    let mut config = ImageConfig::scratch();
    for (tar, zst) in pairs {
        let mut w = store.blob_writer().map_err(|e| e.to_string())?;
        let mut f = std::fs::File::open(zst).map_err(|e| format!("open {}: {e}", zst.display()))?;
        std::io::copy(&mut f, &mut w).map_err(|e| format!("copy {}: {e}", zst.display()))?;
        let (digest, size) = w.commit().map_err(|e| e.to_string())?;
        let mut hw = engine::digest::HashingWriter::new(std::io::sink());
        let mut f = std::fs::File::open(tar).map_err(|e| format!("open {}: {e}", tar.display()))?;
        std::io::copy(&mut f, &mut hw).map_err(|e| format!("hash {}: {e}", tar.display()))?;
        let (_, diff_id, _) = hw.finish();
        config.rootfs.diff_ids.push(diff_id);
        layers.push(Descriptor {
            media_type: media_type::LAYER_ZSTD.to_string(),
            digest,
            size,
            annotations: Default::default(),
        });
    }
    let manifest = store
        .put_image(&config, layers)
        .map_err(|e| e.to_string())?;
    let r = ImageRef::new(name, "latest").map_err(|e| e.to_string())?;
    store.tag(&r, &manifest).map_err(|e| e.to_string())
}

/// Forget every unpacked layer so the next unpack starts from blobs.
pub fn forget_unpacked(root: &Path) -> Result<(), String> {
    let layers = root.join("layers");
    crate::tools::clean_dir(&layers).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(&layers).map_err(|e| format!("create {}: {e}", layers.display()))
}

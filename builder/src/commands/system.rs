//! `rbuild system df`: how much disk the store uses, as `docker system
//! df` shows it: images (blobs and unpacked layers), containers (their
//! upper dirs), the build cache (step records). ACTIVE images are those a
//! container uses; RECLAIMABLE is what `rbuild rmi` + `gc` or `rrun
//! container prune` could give back. The build cache's size is what only
//! its step records keep alive (blobs and unpacked layers no tag and no
//! container reaches), as Docker leaves shared records out of it; those
//! bytes are not counted again under Images.

use std::collections::HashSet;
use std::path::Path;

use engine::{Digest, Store};

#[derive(clap::Subcommand)]
pub enum SystemCommand {
    /// Show the store's disk usage
    Df,
}

pub fn run(root: &Path, cmd: SystemCommand) -> anyhow::Result<()> {
    let SystemCommand::Df = cmd;
    let store = super::open_store(root)?;
    let refs = store.list_refs()?;
    let images: HashSet<String> = refs.iter().map(|(_, d)| d.to_string()).collect();
    let containers = runner::state::list(&root.join("containers"));
    let used: HashSet<&str> = containers
        .iter()
        .map(|(_, s)| s.image_digest.as_str())
        .collect();
    let active_images = images.iter().filter(|d| used.contains(d.as_str())).count();
    let cache_entries = builder::cache::recorded_images(&store);
    let kept: Vec<Digest> = refs
        .iter()
        .map(|(_, d)| d.clone())
        .chain(used.iter().filter_map(|d| d.parse().ok()))
        .collect();
    let cache_bytes = bytes_only_reached_from(&store, &cache_entries, &kept);
    let image_bytes = (engine::fsutil::disk_usage(&root.join("blobs"))
        + engine::fsutil::disk_usage(&root.join("layers")))
    .saturating_sub(cache_bytes);
    let running = containers.iter().filter(|(_, s)| s.is_running()).count();
    let mut container_bytes = 0;
    let mut stopped_bytes = 0;
    for (dir, s) in &containers {
        let b = engine::fsutil::disk_usage(&dir.join("upper"));
        container_bytes += b;
        if !s.is_running() {
            stopped_bytes += b;
        }
    }
    let pct = |part: u64, all: u64| (part * 100).checked_div(all).unwrap_or(0);
    println!(
        "{:<16} {:<8} {:<8} {:<12} RECLAIMABLE",
        "TYPE", "TOTAL", "ACTIVE", "SIZE"
    );
    let h = super::human_size;
    println!(
        "{:<16} {:<8} {:<8} {:<12} {}",
        "Images",
        images.len(),
        active_images,
        h(image_bytes),
        if active_images == 0 {
            format!("{} ({}%)", h(image_bytes), pct(image_bytes, image_bytes))
        } else {
            "-".to_string()
        }
    );
    println!(
        "{:<16} {:<8} {:<8} {:<12} {} ({}%)",
        "Containers",
        containers.len(),
        running,
        h(container_bytes),
        h(stopped_bytes),
        pct(stopped_bytes, container_bytes)
    );
    println!("{:<16} {:<8} {:<8} {:<12} 0B", "Local Volumes", 0, 0, "0B");
    // No build holds a record in use once it has ended: all reclaimable.
    println!(
        "{:<16} {:<8} {:<8} {:<12} {}",
        "Build Cache",
        cache_entries.len(),
        0,
        h(cache_bytes),
        h(cache_bytes)
    );
    Ok(())
}

/// The blobs and unpacked layers of the images `roots` name.
fn reached(store: &Store, roots: &[Digest]) -> (HashSet<Digest>, HashSet<Digest>) {
    let mut blobs = HashSet::new();
    let mut layers = HashSet::new();
    for root in roots {
        // A record whose image is gone keeps nothing alive (as gc).
        let Ok(image) = store.image_by_digest(root) else {
            continue;
        };
        blobs.insert(root.clone());
        blobs.insert(image.config_digest.clone());
        blobs.extend(image.manifest.layers.iter().map(|l| l.digest.clone()));
        layers.extend(image.config.rootfs.diff_ids.iter().cloned());
    }
    (blobs, layers)
}

/// Disk usage of what `roots` reach and `kept` does not: what removing
/// `roots` and a gc would give back.
fn bytes_only_reached_from(store: &Store, roots: &[Digest], kept: &[Digest]) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let (blobs, layers) = reached(store, roots);
    let (kept_blobs, kept_layers) = reached(store, kept);
    let blob_bytes: u64 = blobs
        .difference(&kept_blobs)
        .filter_map(|d| std::fs::symlink_metadata(store.blob_path(d)).ok())
        .map(|m| m.blocks() * 512)
        .sum();
    let layer_bytes: u64 = layers
        .difference(&kept_layers)
        .map(|d| engine::fsutil::disk_usage(&store.layer_dir(d)))
        .sum();
    blob_bytes + layer_bytes
}

//! `rbuild system df`: how much disk the store uses, as `docker system
//! df` shows it: images (blobs and unpacked layers), containers (their
//! upper dirs), the build cache (step records). ACTIVE images are those a
//! container uses; RECLAIMABLE is what `rbuild rmi` + `gc` or `rrun
//! container prune` could give back.

use std::collections::HashSet;
use std::path::Path;

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
    let image_bytes = engine::fsutil::disk_usage(&root.join("blobs"))
        + engine::fsutil::disk_usage(&root.join("layers"));
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
    let cache_entries = std::fs::read_dir(root.join("cache/steps"))
        .map(|rd| rd.count())
        .unwrap_or(0);
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
    println!(
        "{:<16} {:<8} {:<8} {:<12} 0B",
        "Build Cache", cache_entries, 0, "0B"
    );
    Ok(())
}

//! `rbuild images`, `rmi`, `inspect`, `gc`.

use std::path::Path;

use anyhow::{bail, Context};
use engine::ImageRef;

#[derive(clap::Args)]
pub struct ImagesArgs {
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show full image IDs
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(clap::Args)]
pub struct RmiArgs {
    /// Images to remove, NAME[:TAG]
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(clap::Args)]
pub struct TagArgs {
    /// Image to tag: NAME[:TAG] or ID
    pub source: String,
    /// The new reference, NAME[:TAG]
    pub target: String,
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Image, NAME[:TAG] or ID
    pub image: String,
}

pub fn list(root: &Path, args: ImagesArgs) -> anyhow::Result<()> {
    let store = super::open_store(root)?;
    let refs = store.list_refs()?;
    if !args.quiet {
        println!(
            "{:<40} {:<16} {:<14} {:<22} {:>10}",
            "REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"
        );
    }
    for (r, digest) in refs {
        let id = if args.no_trunc {
            digest.to_string()
        } else {
            digest.short().to_string()
        };
        if args.quiet {
            println!("{id}");
            continue;
        }
        let (created, size) = match store.image_by_digest(&digest) {
            Ok(img) => (
                img.config.created.clone().unwrap_or_else(|| "-".into()),
                super::human_size(img.manifest.layers.iter().map(|l| l.size).sum()),
            ),
            Err(e) => ("<broken>".into(), format!("{e}")),
        };
        println!(
            "{:<40} {:<16} {:<14} {:<22} {:>10}",
            r.name, r.tag, id, created, size
        );
    }
    Ok(())
}

pub fn remove(root: &Path, args: RmiArgs) -> anyhow::Result<()> {
    let store = super::open_store(root)?;
    let mut failed = false;
    for name in &args.images {
        let r: ImageRef = name.parse()?;
        if store.untag(&r)? {
            println!("Untagged: {r}");
        } else {
            eprintln!(
                "rbuild: image {name:?} not found in {} (try: rbuild images)",
                root.display()
            );
            failed = true;
        }
    }
    if failed {
        bail!("some images were not removed");
    }
    Ok(())
}

/// `docker tag`: one more name for an image; an existing TARGET moves.
pub fn tag(root: &Path, args: TagArgs) -> anyhow::Result<()> {
    let store = super::open_store(root)?;
    let target: ImageRef = args
        .target
        .parse()
        .with_context(|| format!("target image name {:?}", args.target))?;
    let image = store.find_image(&args.source)?;
    store
        .tag(&target, &image.manifest_digest)
        .with_context(|| format!("tag {} as {target}", args.source))?;
    Ok(())
}

pub fn inspect(root: &Path, args: InspectArgs) -> anyhow::Result<()> {
    let store = super::open_store(root)?;
    let image = store.find_image(&args.image)?;
    let tags: Vec<String> = store
        .list_refs()?
        .into_iter()
        .filter(|(_, d)| *d == image.manifest_digest)
        .map(|(r, _)| r.to_string())
        .collect();
    let out = serde_json::json!({
        "Id": image.manifest_digest,
        "RepoTags": tags,
        "Config": image.config,
        "Manifest": image.manifest,
        "Layers": image.manifest.layers.iter().zip(&image.config.rootfs.diff_ids).map(|(l, diff)| {
            serde_json::json!({
                "Digest": l.digest,
                "DiffID": diff,
                "MediaType": l.media_type,
                "Size": l.size,
                "Unpacked": store.has_layer(diff),
            })
        }).collect::<Vec<_>>(),
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).context("serialising inspect output")?
    );
    Ok(())
}

pub fn gc(root: &Path) -> anyhow::Result<()> {
    let store = super::open_store(root)?;
    let report = store.gc()?;
    // Layers are published before they reach the disk and are not trusted
    // after a reboot until synced (engine::layer::marker): gc is where a
    // user tidies the store, so make every kept layer durable too.
    let synced = store
        .sync_layers(std::time::Duration::ZERO)
        .context("syncing unpacked layers")?;
    println!(
        "removed {} blobs and {} unpacked layers, freed {}; {synced} layers made durable",
        report.blobs_removed,
        report.layers_removed,
        super::human_size(report.bytes_freed)
    );
    Ok(())
}

pub fn fsck(root: &Path) -> anyhow::Result<()> {
    let store = super::open_store(root)?;
    let report = engine::fsck::fsck(&store).context("checking the store")?;
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    println!(
        "checked {} blobs, {} images, {} unpacked layers: {}",
        report.blobs_checked,
        report.images_checked,
        report.layers_checked,
        if report.is_consistent() {
            "consistent".to_string()
        } else {
            format!("{} problems", report.problems.len())
        }
    );
    if !report.is_consistent() {
        bail!("the store at {} is not consistent", root.display());
    }
    Ok(())
}

//! `rbuild load -i FILE|oci:DIR[:TAG] [-t NAME[:TAG]]`: an OCI layout
//! (tarball or directory) or a `docker save` archive; layers are unpacked
//! while loading.

use std::path::Path;

use anyhow::{bail, Context};
use engine::oci::ingest::Watch;
use engine::oci::layout::Platform;
use engine::oci::{self};
use engine::progress::Phase;
use engine::ImageRef;

use crate::transfer_progress;

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Tarball (OCI layout or docker-archive, told apart by content), or oci:DIR[:TAG]
    #[arg(short, long)]
    pub input: String,
    /// Name the loaded image NAME[:TAG] (default: the name inside the file)
    #[arg(short, long)]
    pub tag: Option<String>,
    /// Platform to pick from an image index
    #[arg(long, default_value = "linux/amd64")]
    pub platform: String,
    /// Print nothing on success (no progress, no summary)
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(root: &Path, args: LoadArgs) -> anyhow::Result<()> {
    let platform: Platform = args.platform.parse().map_err(anyhow::Error::msg)?;
    let rename: Option<ImageRef> = args.tag.as_deref().map(str::parse).transpose()?;
    let store = super::open_store(root)?;
    let (path, tag) = match super::save::parse_oci_dir(&args.input) {
        Some((dir, tag)) => (dir, tag),
        None => (args.input.clone().into(), None),
    };
    let members = oci::tarindex::Members::open(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let progress = transfer_progress::for_stderr(args.quiet);
    let watch = Watch {
        progress: progress.as_ref(),
        phase: Phase::Read,
    };
    let loaded = if members.contains("oci-layout") && members.contains("index.json") {
        oci::layout::load(&store, &members, tag.as_deref(), &platform, watch)
    } else if members.contains("manifest.json") {
        oci::archive::load(&store, &members, watch)
    } else {
        bail!("{} is neither an OCI layout (oci-layout, index.json) nor a docker-archive (manifest.json)", path.display());
    }
    .with_context(|| format!("cannot load {}", path.display()))?;
    drop(progress);
    if rename.is_some() && loaded.len() != 1 {
        bail!(
            "{} holds {} images; -t names exactly one (pick one with oci:DIR:TAG)",
            path.display(),
            loaded.len()
        );
    }
    for l in loaded {
        let name = match &rename {
            Some(r) => Some(r.clone()),
            None => l.name.as_deref().map(docker_short_name).and_then(|n| {
                n.parse::<ImageRef>()
                    .ok()
                    .filter(|_| n.contains(':') || n.contains('/'))
            }),
        };
        match name {
            Some(r) => {
                store.tag(&r, &l.manifest)?;
                if !args.quiet {
                    println!("Loaded image: {r} ({})", l.manifest)
                }
            }
            None if args.quiet => {}
            None => println!(
                "Loaded image ID: {} (unnamed in the file; name it with -t)",
                l.manifest
            ),
        }
    }
    Ok(())
}

/// `docker.io/library/busybox:1` → `busybox:1`, `docker.io/team/app` → `team/app`, as Docker shows them.
fn docker_short_name(n: &str) -> &str {
    n.strip_prefix("docker.io/library/")
        .or_else(|| n.strip_prefix("docker.io/"))
        .unwrap_or(n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn shortens_docker_hub_names() {
        assert_eq!(
            super::docker_short_name("docker.io/library/busybox:1"),
            "busybox:1"
        );
        assert_eq!(super::docker_short_name("docker.io/da/bb:v2"), "da/bb:v2");
        assert_eq!(
            super::docker_short_name("localhost:5000/a:b"),
            "localhost:5000/a:b"
        );
    }
}

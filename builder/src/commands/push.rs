//! `rbuild push IMAGE [REF] [--compression zstd|gzip] [--chunk-size N] [--mount-from REPO] [--insecure] [-q]`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use engine::oci::registry::{self, PushOptions};
use engine::oci::ExportCompression;

use crate::transfer_progress;

#[derive(clap::Args)]
pub struct PushArgs {
    /// Image in the store (NAME[:TAG] or id)
    pub image: String,
    /// Destination [REGISTRY/]NAME[:TAG] (default: IMAGE itself)
    pub reference: Option<String>,
    /// Layer compression: zstd (ours) or gzip (for older clients); default keeps what is stored
    #[arg(long, value_parser = ["zstd", "gzip"])]
    pub compression: Option<String>,
    /// Upload blobs in chunks of this many bytes (default: one request per blob)
    #[arg(long)]
    pub chunk_size: Option<u64>,
    /// Try a cross-repository blob mount from this repository of the same
    /// registry first (mounts from repositories a blob was pulled from or
    /// pushed to are tried anyway)
    #[arg(long)]
    pub mount_from: Option<String>,
    /// Allow plain http to a registry that is not on loopback
    #[arg(long)]
    pub insecure: bool,
    /// Print nothing on success (no progress, no summary)
    #[arg(short, long)]
    pub quiet: bool,
    /// Credentials file (default: <store root>/auth.json); Docker's ~/.docker/config.json works too
    #[arg(long, env = "RBOX_AUTH_FILE", value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

pub fn run(root: &Path, args: PushArgs) -> anyhow::Result<()> {
    let store = super::open_store(root)?;
    let image = store.find_image(&args.image)?;
    let dest = args.reference.clone().unwrap_or_else(|| args.image.clone());
    let opts = PushOptions {
        insecure: args.insecure,
        compression: match args.compression.as_deref() {
            Some(c) => c.parse::<ExportCompression>().map_err(anyhow::Error::msg)?,
            None => ExportCompression::Keep,
        },
        chunk_size: args.chunk_size,
        mount_from: args.mount_from.clone(),
        auth_file: args.authfile.clone(),
        limits: Default::default(),
    };
    let progress = transfer_progress::for_stderr(args.quiet);
    let digest = registry::push(&store, &image, &dest, &opts, progress.as_ref())
        .with_context(|| format!("cannot push {} to {dest}", args.image))?;
    drop(progress);
    if !args.quiet {
        println!("Pushed {dest} ({digest})");
    }
    Ok(())
}

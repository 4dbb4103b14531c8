//! `rbuild pull REF [--platform OS/ARCH] [--insecure] [-q]`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use engine::oci::layout::Platform;
use engine::oci::registry::{self, PullOptions};

use crate::transfer_progress;

#[derive(clap::Args)]
pub struct PullArgs {
    /// [REGISTRY/]NAME[:TAG][@DIGEST]; bare names are docker.io/library/NAME
    pub reference: String,
    /// Platform to pick from an image index
    #[arg(long, default_value = "linux/amd64")]
    pub platform: String,
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

pub fn run(root: &Path, args: PullArgs) -> anyhow::Result<()> {
    let platform: Platform = args.platform.parse().map_err(anyhow::Error::msg)?;
    let store = super::open_store(root)?;
    let opts = PullOptions {
        platform: Some(platform),
        insecure: args.insecure,
        auth_file: args.authfile,
        limits: Default::default(),
    };
    let progress = transfer_progress::for_stderr(args.quiet);
    let digest = registry::pull(&store, &args.reference, &opts, progress.as_ref())
        .with_context(|| format!("cannot pull {}", args.reference))?;
    drop(progress);
    if !args.quiet {
        println!("Pulled {} ({digest})", args.reference);
    }
    Ok(())
}

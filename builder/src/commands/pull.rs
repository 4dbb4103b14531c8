//! `rbuild pull REF [--platform OS/ARCH] [--insecure] [-q]`.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use engine::oci::layout::Platform;
use engine::oci::registry::{self, Event, PullOptions};

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
    /// Print only the image digest
    #[arg(short, long)]
    pub quiet: bool,
}

/// Progress lines on stderr (one per blob: start, then done with size and
/// rate) as plain lines, terminal or not; nothing when quiet.
pub fn printer(quiet: bool, verb: &'static str) -> impl Fn(Event) + Sync {
    move |e| {
        if quiet {
            return;
        }
        let line = match e {
            Event::Start { digest, size } => {
                format!("{}: {verb} {}", digest.short(), super::human_size(size))
            }
            Event::Done { digest, size, took } => {
                let rate = size as f64 / took.as_secs_f64().max(1e-6);
                format!(
                    "{}: done {} in {:.2}s ({}/s)",
                    digest.short(),
                    super::human_size(size),
                    took.as_secs_f64(),
                    super::human_size(rate as u64)
                )
            }
            Event::Exists { digest } => format!("{}: already exists", digest.short()),
            Event::Mounted { digest, from } => format!("{}: mounted from {from}", digest.short()),
            Event::Manifest { digest } => format!("manifest {digest}"),
        };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{line}");
    }
}

pub fn run(root: &Path, args: PullArgs) -> anyhow::Result<()> {
    let platform: Platform = args.platform.parse().map_err(anyhow::Error::msg)?;
    let store = super::open_store(root)?;
    let opts = PullOptions {
        platform: Some(platform),
        insecure: args.insecure,
    };
    let progress = printer(args.quiet, "downloading");
    let digest = registry::pull(&store, &args.reference, &opts, &progress)
        .with_context(|| format!("cannot pull {}", args.reference))?;
    if args.quiet {
        println!("{digest}");
    } else {
        println!("Pulled {} ({digest})", args.reference);
    }
    Ok(())
}

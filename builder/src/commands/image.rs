//! `rbuild image prune [-a] [-f]`, as `docker image prune`: remove the
//! dangling images (untagged, used by no container), or with `-a` every
//! image no container uses, its tags first. Built on the store's gc
//! (engine::store::gc), which also keeps what the build cache's step
//! records name: that is build cache, apart from images, as BuildKit's
//! cache is apart from `docker image prune`.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::Path;

#[derive(clap::Subcommand)]
pub enum ImageCommand {
    /// Remove unused images
    Prune(PruneArgs),
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

pub fn run(root: &Path, cmd: ImageCommand) -> anyhow::Result<()> {
    let ImageCommand::Prune(a) = cmd;
    prune(root, &a)
}

fn confirm(all: bool) -> anyhow::Result<bool> {
    let warning = if all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    let mut out = std::io::stdout().lock();
    write!(out, "{warning}\nAre you sure you want to continue? [y/N] ")?;
    out.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

fn prune(root: &Path, a: &PruneArgs) -> anyhow::Result<()> {
    if !a.force && !confirm(a.all)? {
        return Ok(());
    }
    let store = super::open_store(root)?;
    let mut untagged = Vec::new();
    if a.all {
        // Every container, running or not, keeps its image and its tags.
        let used: HashSet<String> = runner::state::list(&root.join("containers"))
            .into_iter()
            .map(|(_, s)| s.image_digest)
            .collect();
        for (r, digest) in store.list_refs()? {
            if used.contains(&digest.to_string()) {
                continue;
            }
            if store.untag(&r)? {
                untagged.push(r.to_string());
            }
        }
    }
    let report = store.gc()?;
    let mut out = std::io::stdout().lock();
    if !untagged.is_empty() || !report.images_removed.is_empty() {
        writeln!(out, "Deleted Images:")?;
        for r in &untagged {
            writeln!(out, "untagged: {r}")?;
        }
        for d in &report.images_removed {
            writeln!(out, "deleted: {d}")?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        super::human_size(report.bytes_freed)
    )?;
    Ok(())
}

//! `rrun container prune [-f]`: remove every stopped container, as
//! `docker container prune`. Without `-f` it asks first, on a terminal;
//! with no terminal to ask on it refuses rather than guess.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use runner::{lifecycle, state};

use crate::cli::PruneArgs;
use crate::run::{require_root, Coded};

pub fn prune(root: &Path, a: &PruneArgs) -> Result<i32> {
    require_root("rrun container prune")?;
    if !a.force {
        if !std::io::stdin().is_terminal() {
            bail!(Coded(
                1,
                anyhow!("refusing to remove stopped containers without a terminal to confirm on: use -f")
            ));
        }
        eprint!("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let containers = root.join("containers");
    let _ = lifecycle::reap_leftovers(&containers);
    let mut freed = 0u64;
    let mut removed = Vec::new();
    let mut code = 0;
    for (dir, s) in state::list(&containers) {
        if s.is_running() {
            continue;
        }
        let size = engine::fsutil::disk_usage(&dir.join("upper"));
        match lifecycle::remove(&dir, &s, false) {
            Ok(()) => {
                freed += size;
                removed.push(s.id);
            }
            Err(e) => {
                eprintln!("rrun: {e}");
                code = 1;
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if !removed.is_empty() {
        writeln!(out, "Deleted Containers:")?;
        for id in &removed {
            writeln!(out, "{id}")?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        engine::progress::human_size_decimal(freed)
    )?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_like_dockers() {
        assert_eq!(engine::progress::human_size_decimal(0), "0B");
        assert_eq!(engine::progress::human_size_decimal(999), "999B");
        assert_eq!(engine::progress::human_size_decimal(1_500), "1.5kB");
        assert_eq!(engine::progress::human_size_decimal(12_345_678), "12.346MB");
        assert_eq!(engine::progress::human_size_decimal(2_000_000_000), "2GB");
    }
}

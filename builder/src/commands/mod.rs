//! One module per `rbuild` subcommand family.

pub mod build;
pub mod export;
pub mod history;
pub mod images;
pub mod import;
pub mod load;
pub mod login;
pub mod pull;
pub mod push;
pub mod save;
pub mod system;

use std::path::Path;

use anyhow::Context;

pub fn open_store(root: &Path) -> anyhow::Result<engine::Store> {
    engine::Store::open(root)
        .with_context(|| format!("cannot open the image store at {}", root.display()))
}

/// Human-readable sizes as `docker images` prints them (decimal units).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[unit]
    }
}

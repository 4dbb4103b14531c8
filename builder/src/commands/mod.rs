//! One module per `rbuild` subcommand family.

pub mod build;
pub mod export;
pub mod history;
pub mod image;
pub mod images;
pub mod import;
pub mod load;
pub mod login;
pub mod output;
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
    engine::progress::human_size_decimal(bytes)
}

//! `delete [--force] ID`

use runner::ocispec::{lifecycle, OciError};

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Kill a running container first.
    #[arg(short = 'f', long)]
    pub force: bool,
    pub id: String,
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), OciError> {
    lifecycle::delete(&cli.root, &a.id, a.force)
}

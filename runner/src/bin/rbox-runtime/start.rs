//! `start ID`

use runner::ocispec::{lifecycle, OciError};

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), OciError> {
    lifecycle::start(&cli.root, &a.id)?;
    crate::log::debug(&format!("started {}", a.id));
    Ok(())
}

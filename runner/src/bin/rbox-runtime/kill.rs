//! `kill [--all] ID [SIGNAL]`: by number or name, with or without SIG.

use runner::ocispec::{lifecycle, OciError};

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Signal every process in the container's cgroup.
    #[arg(short = 'a', long)]
    pub all: bool,
    pub id: String,
    #[arg(default_value = "SIGTERM")]
    pub signal: String,
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), OciError> {
    let sig = lifecycle::parse_signal(&a.signal)
        .ok_or_else(|| OciError::Other(format!("unknown signal {:?}", a.signal)))?;
    lifecycle::kill(&cli.root, &a.id, sig, a.all)
}

//! `pause ID` and `resume ID`: freeze and thaw the container's cgroup.

use runner::ocispec::{pause, OciError};

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

pub fn pause(cli: &Cli, a: &Args) -> Result<(), OciError> {
    pause::pause(&cli.root, &a.id)
}

pub fn resume(cli: &Cli, a: &Args) -> Result<(), OciError> {
    pause::resume(&cli.root, &a.id)
}

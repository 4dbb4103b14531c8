//! `run [--bundle B] [--pid-file F] [--console-socket S] ID`: create,
//! start, wait; the exit status is the container's.

use runner::ocispec::{lifecycle, OciError};

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub create: crate::create::CreateArgs,
    /// Refused: run in the foreground only (yet).
    #[arg(short = 'd', long)]
    pub detach: bool,
}

pub fn run(cli: &Cli, a: &RunArgs) -> Result<i32, OciError> {
    if a.detach {
        return Err(OciError::Other(
            "run --detach is not supported by rbox-runtime yet (use create and start)".into(),
        ));
    }
    let code = lifecycle::run(&crate::create::opts(cli, &a.create)?)?;
    crate::log::debug(&format!("{} exited with status {code}", a.create.id));
    Ok(code)
}

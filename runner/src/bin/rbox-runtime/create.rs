//! `create [--bundle B] [--pid-file F] [--console-socket S] ID`

use std::path::PathBuf;

use runner::ocispec::lifecycle::{self, CreateOpts};
use runner::ocispec::OciError;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container process's pid here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to send the terminal's master to (process.terminal).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Accepted: rbox never creates a session keyring.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Refused: rbox always uses pivot_root.
    #[arg(long)]
    pub no_pivot: bool,
    /// Pass this many descriptors beyond 0-2 (only 0 is supported).
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

pub fn opts<'a>(cli: &'a Cli, a: &'a CreateArgs) -> Result<CreateOpts<'a>, OciError> {
    if a.no_pivot {
        return Err(OciError::Other(
            "--no-pivot is not supported by rbox-runtime".into(),
        ));
    }
    if a.preserve_fds != 0 {
        return Err(OciError::Other(
            "--preserve-fds is not supported by rbox-runtime yet".into(),
        ));
    }
    Ok(CreateOpts {
        root: &cli.root,
        id: &a.id,
        bundle: &a.bundle,
        pid_file: a.pid_file.as_deref(),
        console_socket: a.console_socket.as_deref(),
    })
}

pub fn run(cli: &Cli, a: &CreateArgs) -> Result<(), OciError> {
    let saved = lifecycle::create(&opts(cli, a)?)?;
    crate::log::debug(&format!("created {} with pid {}", saved.id, saved.pid));
    Ok(())
}

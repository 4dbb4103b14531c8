//! `rbuild`: build images from a Containerfile and manage the image store.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

#[derive(Parser)]
#[command(
    name = "rbuild",
    version,
    about = "Build container images from a Containerfile and manage rbox's image store",
    long_about = None
)]
struct Cli {
    /// Root of the image store
    #[arg(long, global = true, env = "RBOX_ROOT", default_value = engine::store::DEFAULT_ROOT)]
    root: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import the contents from a tarball to create a filesystem image
    Import(commands::import::ImportArgs),
    /// List images
    Images(commands::images::ImagesArgs),
    /// Remove one or more images
    Rmi(commands::images::RmiArgs),
    /// Display detailed information on an image (config and layers as JSON)
    Inspect(commands::images::InspectArgs),
    /// Remove blobs and unpacked layers no image references
    Gc,
    /// Check the store: every blob against its digest, every image's references, every unpacked layer's completion marker
    Fsck,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "rbuild: this command needs root privileges (mounts, namespaces and the store at {}); run it as root",
            cli.root.display()
        );
        return ExitCode::from(1);
    }
    let result = match cli.command {
        Command::Import(args) => commands::import::run(&cli.root, args),
        Command::Images(args) => commands::images::list(&cli.root, args),
        Command::Rmi(args) => commands::images::remove(&cli.root, args),
        Command::Inspect(args) => commands::images::inspect(&cli.root, args),
        Command::Gc => commands::images::gc(&cli.root),
        Command::Fsck => commands::images::fsck(&cli.root),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rbuild: {e:#}");
            ExitCode::from(1)
        }
    }
}

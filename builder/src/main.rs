//! `rbuild`: build images from a Containerfile and manage the image store.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod transfer_progress;

#[derive(Parser)]
#[command(
    name = "rbuild",
    version,
    about = "Build container images from a Containerfile and manage rbox's image store",
    long_about = None
)]
struct Cli {
    /// Root of the image store (other users than root: $XDG_DATA_HOME/rbox)
    #[arg(long, global = true, env = "RBOX_ROOT", default_value_os_t = engine::rootless::default_root())]
    root: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a Containerfile
    Build(Box<commands::build::BuildArgs>),
    /// Import the contents from a tarball to create a filesystem image
    Import(commands::import::ImportArgs),
    /// List images
    Images(commands::images::ImagesArgs),
    /// Remove one or more images
    Rmi(commands::images::RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(commands::images::TagArgs),
    /// Display detailed information on an image (config and layers as JSON)
    Inspect(commands::images::InspectArgs),
    /// Show the history of an image: its steps, newest first
    History(commands::history::HistoryArgs),
    /// Manage images
    #[command(subcommand)]
    Image(commands::image::ImageCommand),
    /// Manage the store as a whole
    #[command(subcommand)]
    System(commands::system::SystemCommand),
    /// Remove blobs and unpacked layers no image references
    Gc,
    /// Check the store: every blob against its digest, every image's references, every unpacked layer's completion marker
    Fsck,
    /// Save an image to an OCI layout (tarball or oci:DIR[:TAG]) or a docker-archive
    Save(commands::save::SaveArgs),
    /// Load images from an OCI layout or a docker-archive (as `docker save` and skopeo write)
    Load(commands::load::LoadArgs),
    /// Write an image's flattened root filesystem as a tar
    Export(commands::export::ExportArgs),
    /// Pull an image from a registry
    Pull(commands::pull::PullArgs),
    /// Push an image to a registry
    Push(commands::push::PushArgs),
    /// Log in to a registry (credentials saved in <root>/auth.json or --authfile FILE, mode 0600)
    Login(commands::login::LoginArgs),
    /// Log out from a registry
    Logout(commands::login::LogoutArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Images(_)
            | Command::Inspect(_)
            | Command::History(_)
            | Command::System(commands::system::SystemCommand::Df)
    ) {
        // These only print what they read (`rbuild images | head -1`): a
        // closed reader ends them as it ends `docker images`, by SIGPIPE,
        // instead of a panic in `println!` (Rust's runtime ignores it).
        // Not the commands that write the store or run RUN steps: they
        // keep ignoring it and clean up on EPIPE as on any error.
        // SAFETY: signal() with SIG_DFL; no handler runs Rust code.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // Not root: in a user namespace of our own from here on (rootless).
    if let Err(e) = runner::rootless::init("rbuild") {
        eprintln!("rbuild: {e}");
        return ExitCode::from(1);
    }
    if matches!(cli.command, Command::Build(_)) {
        // RUN steps are containers: from here on this process runs from a
        // read-only clone of its binary (CVE-2019-5736). First: it re-executes.
        if let Err(e) = runner::native::exeseal::reexec_sealed() {
            eprintln!("rbuild: {e}");
            return ExitCode::from(1);
        }
    }
    if matches!(cli.command, Command::Build(_) | Command::Export(_)) {
        // Views of stages are mounted by this process: in a mount namespace
        // of its own they vanish with it, even when it is killed. This must
        // happen before any thread starts (unshare(CLONE_NEWNS) needs a
        // single-threaded process).
        if let Err(e) = private_mount_namespace() {
            eprintln!("rbuild: cannot create a private mount namespace: {e}");
            return ExitCode::from(1);
        }
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "rbuild: this command needs root privileges (mounts, namespaces and the store at {}); run it as root",
            cli.root.display()
        );
        return ExitCode::from(1);
    }
    // SIGTERM, SIGINT or SIGHUP: remove this process's temp names (its
    // store session, an output's temp file), then die of the signal.
    let _cleanup = match engine::interrupt::install() {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("rbuild: warning: cannot install signal handlers (temp files are then left to the next run): {e}");
            None
        }
    };
    let result = match cli.command {
        Command::Build(args) => commands::build::run(&cli.root, *args),
        Command::Import(args) => commands::import::run(&cli.root, args),
        Command::Images(args) => commands::images::list(&cli.root, args),
        Command::Rmi(args) => commands::images::remove(&cli.root, args),
        Command::Tag(args) => commands::images::tag(&cli.root, args),
        Command::Inspect(args) => commands::images::inspect(&cli.root, args),
        Command::History(args) => commands::history::run(&cli.root, args),
        Command::Image(cmd) => commands::image::run(&cli.root, cmd),
        Command::System(cmd) => commands::system::run(&cli.root, cmd),
        Command::Gc => commands::images::gc(&cli.root),
        Command::Fsck => commands::images::fsck(&cli.root),
        Command::Save(args) => commands::save::run(&cli.root, args),
        Command::Load(args) => commands::load::run(&cli.root, args),
        Command::Export(args) => commands::export::run(&cli.root, args),
        Command::Pull(args) => commands::pull::run(&cli.root, args),
        Command::Push(args) => commands::push::run(&cli.root, args),
        Command::Login(args) => commands::login::login(&cli.root, args),
        Command::Logout(args) => commands::login::logout(&cli.root, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rbuild: {}", engine::errfmt::one_line(e.chain()));
            ExitCode::from(1)
        }
    }
}

fn private_mount_namespace() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(()); // the root check below reports it
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    runner::native::rootfs::make_private().map_err(|e| e.to_string())
}

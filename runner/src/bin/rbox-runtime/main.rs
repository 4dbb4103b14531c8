//! rbox-runtime: a runc-compatible OCI runtime on rbox's native runtime
//! (first slice). Callers (containerd's shim, conmon, docker) run
//! `rbox-runtime [global flags] create --bundle B ID`, then `start`,
//! `state`, `exec`, `pause`/`resume`, `update`, `events`, `kill` and
//! `delete`. The library side is `runner::ocispec`.

mod checkpoint;
mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod log;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "rbox-runtime",
    about = "A runc-compatible OCI runtime on rbox's native runtime",
    version = concat!(env!("CARGO_PKG_VERSION"), "\nspec: ", "1.2.0"),
    disable_version_flag = true
)]
pub struct Cli {
    /// Directory for the containers' state.
    #[arg(long, global = true, default_value = "/run/rbox-runtime")]
    pub root: PathBuf,
    /// Write log messages (and errors) to this file too.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Format of --log: text or json.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Log debug messages too.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Manage cgroups through systemd (not supported: refused).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Print the version.
    #[arg(short = 'v', long, action = clap::ArgAction::Version)]
    version: Option<bool>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create a container from a bundle; its process waits for `start`.
    Create(create::CreateArgs),
    /// Run a created container's process.
    Start(start::Args),
    /// Print a container's state as runtime-spec JSON.
    State(state::Args),
    /// Send a signal to a container's process (default SIGTERM).
    Kill(kill::Args),
    /// Remove a stopped container's cgroup and state.
    Delete(delete::Args),
    /// Create, start and wait for a container; exit with its status.
    Run(run::RunArgs),
    /// Write a default config.json.
    Spec(spec::Args),
    /// Print what this runtime supports, as JSON.
    Features,
    /// List containers.
    List(list::Args),
    /// The pids of a container's processes (--format json: a JSON array).
    Ps(ps::Args),
    /// Run another process in a container; exit with its status.
    Exec(exec::Args),
    /// Freeze every process of a container.
    Pause(pause::Args),
    /// Thaw a paused container.
    Resume(pause::Args),
    /// Change a container's cgroup limits.
    Update(update::Args),
    /// Print a container's stats (--stats) or stream its events.
    Events(events::Args),
    /// Not supported: refused.
    Checkpoint(checkpoint::Args),
    /// Not supported: refused.
    Restore(checkpoint::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            return if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            };
        }
    };
    // What forks a process that enters a container (create's first
    // process, which waits at the start gate inside the container's
    // namespaces; run; exec) runs from a read-only clone of this binary,
    // as rrun does: otherwise a container whose command resolves to
    // /proc/self/exe gets a handle to the host's rbox-runtime
    // (CVE-2019-5736; runner::native::exeseal). The clone re-executes
    // this process with the same arguments and pid.
    let sealed = if matches!(cli.cmd, Cmd::Create(_) | Cmd::Run(_) | Cmd::Exec(_)) {
        runner::native::exeseal::reexec_sealed()
    } else {
        Ok(())
    };
    log::init(cli.log.as_deref(), &cli.log_format, cli.debug);
    if let Err(e) = sealed {
        log::error(&format!("{e}"));
        return ExitCode::from(1);
    }
    runner::ocispec::hooks::set_warn_sink(log::warn);
    runner::ocispec::set_debug_log(log::debug);
    if cli.systemd_cgroup {
        log::error(
            "--systemd-cgroup is not supported by rbox-runtime yet (it manages cgroupfs directly)",
        );
        return ExitCode::from(1);
    }
    let r = match &cli.cmd {
        Cmd::Create(a) => create::run(&cli, a).map(|()| 0),
        Cmd::Start(a) => start::run(&cli, a).map(|()| 0),
        Cmd::State(a) => state::run(&cli, a).map(|()| 0),
        Cmd::Kill(a) => kill::run(&cli, a).map(|()| 0),
        Cmd::Delete(a) => delete::run(&cli, a).map(|()| 0),
        Cmd::Run(a) => run::run(&cli, a),
        Cmd::Spec(a) => spec::run(a).map(|()| 0),
        Cmd::Features => features::run().map(|()| 0),
        Cmd::List(a) => list::run(&cli, a).map(|()| 0),
        Cmd::Ps(a) => ps::run(&cli, a).map(|()| 0),
        Cmd::Exec(a) => exec::run(&cli, a),
        Cmd::Pause(a) => pause::pause(&cli, a).map(|()| 0),
        Cmd::Resume(a) => pause::resume(&cli, a).map(|()| 0),
        Cmd::Update(a) => update::run(&cli, a).map(|()| 0),
        Cmd::Events(a) => events::run(&cli, a).map(|()| 0),
        Cmd::Checkpoint(_) => checkpoint::refuse("checkpoint").map(|()| 0),
        Cmd::Restore(_) => checkpoint::refuse("restore").map(|()| 0),
    };
    match r {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            log::error(&e.to_string());
            ExitCode::from(1)
        }
    }
}

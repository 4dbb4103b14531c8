//! `exec [--process FILE | ARGS...] [--detach] [--pid-file F]
//! [--console-socket S] [--tty] [--cwd D] [--env K=V]... [--user UID[:GID]]
//! [--additional-gids G] [--cap C] [--no-new-privs] [--preserve-fds N]
//! [--ignore-paused] ID`: runc's flags.

use std::path::PathBuf;

use runner::ocispec::exec::{self, ExecOpts, ExecOverrides};
use runner::ocispec::OciError;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A runtime-spec process object (JSON) to run; the flags below that
    /// change the process are then ignored, as runc does.
    #[arg(short = 'p', long)]
    pub process: Option<PathBuf>,
    /// Return once the process has started (it is left as our caller's child).
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Write the process's pid here.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// A unix socket to send the terminal's master to (with --tty).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Give the process a terminal.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Working directory in the container.
    #[arg(long)]
    pub cwd: Option<String>,
    /// KEY=VALUE added to the environment (repeatable).
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// UID[:GID] to run as.
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Additional group ids (repeatable).
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    /// A capability to add (repeatable).
    #[arg(short = 'c', long = "cap")]
    pub cap: Vec<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Pass this many descriptors beyond 0-2 to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Exec into a paused container (the process starts frozen).
    #[arg(long)]
    pub ignore_paused: bool,
    /// Refused: rbox sets no process labels.
    #[arg(long)]
    pub process_label: Option<String>,
    /// Refused: rbox does not use AppArmor.
    #[arg(long)]
    pub apparmor: Option<String>,
    pub id: String,
    /// The command and its arguments (without --process).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(cli: &Cli, a: &Args) -> Result<i32, OciError> {
    if a.process_label.is_some() || a.apparmor.is_some() {
        return Err(OciError::Other(
            "exec --process-label and --apparmor are not supported by rbox-runtime".into(),
        ));
    }
    if a.process.is_some() && !a.args.is_empty() {
        return Err(OciError::Other(
            "exec: give either --process FILE or a command, not both".into(),
        ));
    }
    let o = ExecOpts {
        root: &cli.root,
        id: &a.id,
        process: a.process.as_deref(),
        overrides: ExecOverrides {
            args: a.args.clone(),
            tty: a.tty,
            cwd: a.cwd.clone(),
            env: a.env.clone(),
            user: a.user.clone(),
            additional_gids: a.additional_gids.clone(),
            caps: a.cap.clone(),
            no_new_privs: a.no_new_privs,
        },
        console_socket: a.console_socket.as_deref(),
        pid_file: a.pid_file.as_deref(),
        detach: a.detach,
        preserve_fds: a.preserve_fds,
        ignore_paused: a.ignore_paused,
    };
    let code = exec::exec(&o)?;
    crate::log::debug(&format!("exec in {} returned {code}", a.id));
    Ok(code)
}

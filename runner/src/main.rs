//! rrun: run containers from rbox images (Docker's CLI shape).

mod admin;
mod cli;
mod detach;
mod oci_exec;
mod oci_run;
mod oci_watchdog;
mod run;

use std::process::ExitCode;

use clap::Parser;

use cli::Cli;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // Docker exits 125 on bad usage; keep clap's message, one line first.
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("invalid usage");
            eprintln!("rrun: {}", first.trim_start_matches("error: "));
            eprintln!("See 'rrun --help'.");
            return ExitCode::from(125);
        }
    };
    // Before anything else: everything that may start or join a container
    // runs from a read-only clone of this binary (CVE-2019-5736).
    if matches!(cli.command, cli::Command::Run(_) | cli::Command::Exec(_)) {
        if let Err(e) = runner::exeseal::reexec_sealed() {
            eprintln!("rrun: {e}");
            return ExitCode::from(125);
        }
    }
    let code = match run::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rrun: {}", run::one_line(&e));
            run::exit_code_of(&e)
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

//! rrun: run containers from rbox images (Docker's CLI shape).

mod admin;
mod cli;
mod commands;
mod detach;
mod run;
mod run_options;

use std::process::ExitCode;

use clap::Parser;

use cli::Cli;

fn main() -> ExitCode {
    // Before anything else, even the parse (it would run twice): what may
    // start or join a container runs from a read-only clone of this
    // binary (CVE-2019-5736).
    if may_enter_a_container(std::env::args_os().skip(1)) {
        if let Err(e) = runner::native::exeseal::reexec_sealed() {
            eprintln!("rrun: {e}");
            return ExitCode::from(125);
        }
    }
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
    if only_prints(&cli.command) {
        die_quietly_on_closed_stdout();
    }
    // Not root: from here on in a user namespace of our own (rootless),
    // then sealed as root's rrun is (the first call did nothing for a user).
    let user = !nix::unistd::geteuid().is_root();
    // A command addressing a running container joins its namespace.
    let join = match user.then(|| run::rootless_join_target(&cli.root, &cli.command)) {
        Some(Err(e)) => {
            eprintln!("rrun: {e}");
            return ExitCode::from(125);
        }
        Some(Ok(j)) => j,
        None => None,
    };
    if let Err(e) = runner::rootless::init_joining("rrun", join) {
        eprintln!("rrun: {e}");
        return ExitCode::from(125);
    }
    if user && may_enter_a_container(std::env::args_os().skip(1)) {
        if let Err(e) = runner::native::exeseal::reexec_sealed() {
            eprintln!("rrun: {e}");
            return ExitCode::from(125);
        }
    }
    let code = match run::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rrun: {}", run::one_line(&e));
            runner::exit_code_of(&e)
        }
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// Commands that only print what they read (`rrun ps -a | head -1`):
/// a closed reader ends them as it ends `docker ps`. Never a command that
/// starts, attaches to or supervises a container: rrun keeps ignoring
/// SIGPIPE there, so a closed reader never kills it while a container runs
/// under it (a relayed write then fails with EPIPE, which it handles).
fn only_prints(c: &cli::Command) -> bool {
    use cli::{Command as C, NetworkCommand as N};
    use commands::volume::VolumeCommand as V;
    matches!(
        c,
        C::Ps(_)
            | C::Inspect(_)
            | C::Logs(_)
            | C::Diff(_)
            | C::Top(_)
            | C::Port(_)
            | C::Stats(_)
            | C::Network(N::Ls(_) | N::Inspect(_))
            | C::Volume(V::Ls(_) | V::Inspect(_))
    )
}

/// The default disposition of SIGPIPE, which Rust's runtime sets to
/// ignored: a write to a closed stdout then ends the process by the signal
/// (status 141 in a shell) instead of a panic in `println!` (exit 101).
fn die_quietly_on_closed_stdout() {
    // SAFETY: signal() with SIG_DFL; no handler runs Rust code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
}

/// Whether the subcommand may be `run` or `exec`: every subcommand but the
/// few that never enter a container, found without clap (`--root` is the
/// only option taking a value before it). A misspelt command is sealed
/// too, and then refused by clap.
fn may_enter_a_container(mut args: impl Iterator<Item = std::ffi::OsString>) -> bool {
    use std::os::unix::ffi::OsStrExt;
    while let Some(a) = args.next() {
        let a = a.as_bytes();
        if a == b"--root" {
            args.next();
        } else if !a.starts_with(b"-") {
            return !matches!(a, b"ps" | b"stop" | b"kill" | b"rm" | b"logs" | b"network");
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::may_enter_a_container;

    fn check(line: &str) -> bool {
        may_enter_a_container(line.split_whitespace().map(Into::into))
    }

    #[test]
    fn run_exec_and_anything_unknown_are_sealed() {
        assert!(check("run --rm busybox true"));
        assert!(check("--root /x exec c sh"));
        assert!(check("--root=/x run busybox"));
        assert!(check("--root ps run busybox"));
        assert!(check("-- run busybox"));
        assert!(check("runn busybox"));
    }

    #[test]
    fn commands_that_never_enter_a_container_are_not() {
        assert!(!check("ps -a"));
        assert!(!check("--root /x logs c"));
        assert!(!check("rm -f run"));
        assert!(!check("--help"));
        assert!(!check(""));
    }
}

//! `rrun attach [--detach-keys K] [--no-stdin] [--sig-proxy=B] NAME`: this
//! terminal on a detached container's stdio through its supervisor's
//! attach socket (runner::attach), as `docker attach` does. Also the
//! attach of `rrun start -a [-i]`.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use runner::attach::{self, AttachError, ClientIo, Ended};
use runner::state::{self, State, Status};

use crate::cli::AttachArgs;
use crate::run::{require_root, Coded};

/// Docker's default detach sequence.
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Signals `--sig-proxy` forwards (those Docker's CLI can catch that make
/// sense to a container; SIGCHLD, SIGPIPE, SIGURG and SIGWINCH are not).
const PROXIED: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGCONT,
];

pub struct Options<'a> {
    pub detach_keys: Option<&'a str>,
    /// Forward this terminal's input (if the container has `-i`).
    pub stdin: bool,
    pub sig_proxy: bool,
    /// Replay the log from here first (`rrun start -a`).
    pub replay_from: Option<u64>,
}

pub fn attach(root: &Path, a: &AttachArgs) -> Result<i32> {
    require_root("rrun attach")?;
    let containers = root.join("containers");
    runner::lifecycle::reap_leftovers(&containers);
    let (dir, s) = state::find(&containers, &a.container)
        .map_err(|_| Coded(1, anyhow!("No such container: {}", a.container)))?;
    attach_to(
        &dir,
        &s,
        &Options {
            detach_keys: a.detach_keys.as_deref(),
            stdin: !a.no_stdin,
            sig_proxy: a.sig_proxy,
            replay_from: None,
        },
    )
}

/// With `replay_from` (`start -a`): the supervisor ended as we connected
/// and never served us; the caller reads the log instead.
#[derive(Debug, thiserror::Error)]
#[error("container {0} ended as we attached")]
pub struct EndedAsWeAttached(pub String);

/// Attach to the container in `dir`; its exit code, or 0 after a detach.
pub fn attach_to(dir: &Path, s: &State, o: &Options<'_>) -> Result<i32> {
    let keys = attach::parse_detach_keys(o.detach_keys.unwrap_or(DEFAULT_DETACH_KEYS))
        .map_err(|e| Coded(1, e.into()))?;
    if !s.is_running() {
        bail!(Coded(
            1,
            anyhow!("You cannot attach to a stopped container, start it first")
        ));
    }
    if runner::lifecycle::paused(s) {
        bail!(Coded(
            1,
            anyhow!("You cannot attach to a paused container, unpause it first")
        ));
    }
    let spec = runner::recorded::load(dir).map_err(|e| Coded(1, e.into()))?;
    let mut sock = attach::connect(dir, &s.name).map_err(|e| Coded(1, e.into()))?;
    let stdin_fd = std::io::stdin();
    let stdout_fd = std::io::stdout();
    let forward_input = o.stdin && spec.stdin;
    let input = forward_input.then(|| stdin_fd.as_fd());
    // -t: the container's terminal is this one, in raw mode, while attached.
    let _raw = match input {
        Some(i) if spec.tty && runner::tty::is_terminal(i) => {
            Some(runner::tty::RawModeGuard::new(i).map_err(|e| Coded(1, e.into()))?)
        }
        _ => None,
    };
    // Without a tty, signals this process gets go to the container's
    // (with a tty, ^C and the like reach it through the terminal). With a
    // tty on a terminal, SIGWINCH resizes the container's.
    let proxy = o.sig_proxy && !spec.tty;
    let winsize_from = match input {
        Some(i) if spec.tty && runner::tty::is_terminal(i) => Some(i),
        _ => None,
    };
    let mut set = SigSet::empty();
    if proxy {
        for sig in PROXIED {
            set.add(sig);
        }
    }
    if winsize_from.is_some() {
        set.add(Signal::SIGWINCH);
    }
    let sfd = if proxy || winsize_from.is_some() {
        set.thread_block()?;
        Some(SignalFd::with_flags(
            &set,
            SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
        )?)
    } else {
        None
    };
    // SAFETY: the signalfd lives to the end of this function.
    let wake = sfd
        .as_ref()
        .map(|p| unsafe { BorrowedFd::borrow_raw(p.as_raw_fd()) });
    let ended = attach::relay(
        &mut sock,
        ClientIo {
            stdin: input,
            stdout: stdout_fd.as_fd(),
            detach_keys: keys,
            wake,
            replay_from: o.replay_from,
            winsize_from,
        },
        || {
            let mut resized = false;
            let Some(p) = sfd.as_ref() else {
                return false;
            };
            while let Ok(Some(info)) = p.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGWINCH {
                    resized = true;
                } else if let Ok(now) = State::load(dir) {
                    let _ = runner::lifecycle::signal(dir, &now, sig);
                }
            }
            resized
        },
    );
    drop(_raw);
    match ended.map_err(|e: AttachError| Coded(1, e.into()))? {
        Ended::Exited(code) => Ok(code),
        Ended::Detached => {
            eprintln!("read escape sequence");
            Ok(0)
        }
        Ended::Closed => Ok(recorded_exit(dir)),
        // `start -a` reads what it missed from the log instead.
        Ended::Unserved if o.replay_from.is_some() => bail!(EndedAsWeAttached(s.name.clone())),
        Ended::Unserved => Ok(recorded_exit(dir)),
    }
}

/// The connection closed without a code (the supervisor died, or ended
/// as we connected): the code the state records, once it records one.
pub fn recorded_exit(dir: &Path) -> i32 {
    for _ in 0..250 {
        match State::load(dir) {
            Err(_) => return 0, // removed (--rm): its code went with it
            Ok(s) if s.status == Status::Exited => return s.exit_code.unwrap_or(0),
            Ok(s) if !s.supervisor.map(|p| p.alive()).unwrap_or(false) => {
                return s.exit_code.unwrap_or(125)
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    125
}

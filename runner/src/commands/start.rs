//! `rrun start [-a] NAME...` and `rrun restart [-t N] NAME...`: start a
//! created or exited container again from its recorded spec
//! (`runner::recorded`), with the detached supervisor of `rrun run -d`;
//! `-a` then attaches to it (commands::attach; `-i` forwards input) until
//! it exits and returns its code.

use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use runner::state::{self, ProcessId, State, Status};

use crate::cli::{RestartArgs, StartArgs};
use crate::run::{require_root, Coded};

/// Start the container in `dir` (a no-op when it runs already).
/// `attached`: this rrun (`start -a`) waits for the run's end, and removes
/// a `--rm` container itself once it has its exit code.
fn start_one(root: &Path, dir: &Path, s: &State, attached: bool) -> Result<()> {
    if s.is_running() {
        return Ok(());
    }
    // Older records name no runtime: the native one ran them.
    let startable = match s.host.runtime.as_str() {
        "" => true,
        name => runner::runtime_named(name).is_ok_and(|r| r.features().start_later),
    };
    if !startable {
        bail!(Coded(
            1,
            anyhow!(
                "container {} runs with --runtime {}, which cannot start a container again",
                s.name,
                s.host.runtime
            )
        ));
    }
    // The last run's supervisor tears down its cgroup and network after
    // recording the exit: let it finish before a new run takes them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.supervisor.map(|p| p.alive()).unwrap_or(false) {
        if Instant::now() > deadline {
            bail!(Coded(
                1,
                anyhow!("container {} is still stopping; try again", s.name)
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
        if let Ok(now) = State::load(dir) {
            if now.is_running() {
                return Ok(());
            }
        }
    }
    let mut spec = runner::recorded::load(dir).map_err(|e| {
        Coded(
            1,
            anyhow!("cannot start container {}: {e} (it was made before rrun recorded specs; run a new one)", s.name),
        )
    })?;
    let store = engine::Store::open(root).map_err(|e| Coded(125, e.into()))?;
    let image = super::container_image(&store, s)?;
    // Layers are unpacked again if something removed them since.
    spec.rootfs.lowers = crate::run::image_lowers(&store, &image)?;
    drop(store);
    let fresh = State::update(dir, s, |s| {
        s.status = Status::Created;
        s.pid = None;
        s.supervisor = Some(ProcessId::current());
        s.exit_code = None;
        s.finished = None;
        s.oom_killed = false;
        s.stop_requested = false;
        s.detached = true;
        s.awaited_by = attached.then(ProcessId::current);
    })
    .with_context(|| format!("update the state of {}", s.name))?;
    crate::detach::run_detached_for(&spec, dir, fresh, true)?;
    Ok(())
}

/// Copy what the container writes to its log, from `offset`, until it has
/// exited; its exit code.
fn follow(dir: &Path, mut f: std::fs::File, offset: u64) -> Result<i32> {
    let p = dir.join(runner::logfile::LOG);
    f.seek(std::io::SeekFrom::Start(offset))?;
    let mut out = std::io::stdout().lock();
    let mut buf = vec![0u8; 64 << 10];
    // The code last seen recorded: a `--rm` container's record goes soon
    // after its exit is written.
    let mut code = 0;
    loop {
        let st = State::load(dir).ok();
        if let Some(c) = st.as_ref().and_then(|s| s.exit_code) {
            code = c;
        }
        // --log-opt max-size: a log rotated away (seen before the read)
        // gets nothing more; the new one is read from its start.
        let rotated_away = {
            use std::os::unix::fs::MetadataExt;
            match (f.metadata(), std::fs::metadata(&p)) {
                (Ok(a), Ok(b)) => a.ino() != b.ino(),
                _ => false,
            }
        };
        let n = f.read(&mut buf)?;
        if n > 0 {
            out.write_all(&buf[..n])?;
            continue;
        }
        if rotated_away {
            f = std::fs::File::open(&p).with_context(|| format!("read {}", p.display()))?;
            continue;
        }
        out.flush()?;
        let done = match &st {
            // Removed (--rm): everything it wrote is in the log, read.
            None => return Ok(code),
            Some(s) => {
                s.status == Status::Exited && !s.supervisor.map(|p| p.alive()).unwrap_or(false)
            }
        };
        if done {
            // Anything written between the last read and the exit.
            std::io::copy(&mut f, &mut out)?;
            return Ok(st.and_then(|s| s.exit_code).unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn start(root: &Path, a: &StartArgs) -> Result<i32> {
    require_root("rrun start")?;
    let containers = root.join("containers");
    runner::lifecycle::reap_leftovers(&containers);
    if a.attach {
        if a.containers.len() != 1 {
            bail!(Coded(
                1,
                anyhow!("you cannot start and attach multiple containers at once")
            ));
        }
        let (dir, s) =
            state::find(&containers, &a.containers[0]).map_err(|e| Coded(1, e.into()))?;
        // The log, opened before the start (made if need be; the
        // supervisor appends to the same file): a short command's output
        // stays readable through it even once `--rm` removed the directory.
        let p = dir.join(runner::logfile::LOG);
        let log = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&p)
            .with_context(|| format!("open {}", p.display()))?;
        let offset = log.metadata().map(|m| m.len()).unwrap_or(0);
        start_one(root, &dir, &s, true)?;
        let code = attach_or_follow(&dir, log, offset, a);
        // A `--rm` container waited for us to read its exit code.
        if s.auto_remove {
            remove_when_supervised_no_more(&dir);
        }
        return code;
    }
    Ok(crate::admin::each_container(
        root,
        &a.containers,
        |dir, s| start_one(root, dir, s, false),
    ))
}

/// `start -a` once the container is started: its output and exit code,
/// through the attach socket (input too with -i); a container that is
/// gone already, or has no socket, is read from its log.
fn attach_or_follow(dir: &Path, log: std::fs::File, offset: u64, a: &StartArgs) -> Result<i32> {
    match State::load(dir) {
        Ok(now) if now.is_running() && dir.join(runner::attach::SOCKET).exists() => {
            let o = super::attach::Options {
                detach_keys: a.detach_keys.as_deref(),
                stdin: a.interactive,
                sig_proxy: true,
                replay_from: Some(offset),
            };
            match super::attach::attach_to(dir, &now, &o) {
                // It ended between our look and attach's (a short
                // command): all it wrote is in the log.
                Err(e)
                    if e.is::<super::attach::EndedAsWeAttached>()
                        || !State::load(dir).is_ok_and(|s| s.is_running()) =>
                {
                    follow(dir, log, offset)
                }
                r => r,
            }
        }
        _ => follow(dir, log, offset),
    }
}

/// The end of `start -a` of a `--rm` container: once its exit is recorded
/// and its supervisor gone, its directory goes (with its anonymous
/// volumes). One still running (the detach keys were typed) is left to
/// its supervisor, which removes it at its end since we are gone by then.
fn remove_when_supervised_no_more(dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Ok(s) = State::load(dir) {
        let supervised = s.supervisor.is_some_and(|p| p.alive());
        if s.status == Status::Exited && !supervised {
            let _ = runner::volume::remove_container_dir(dir, true);
            return;
        }
        // Exited, or exiting (its supervisor records it in a moment).
        let ending = s.status == Status::Exited || !s.pid.is_some_and(|p| p.alive());
        if !ending || !supervised || Instant::now() > deadline {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn restart(root: &Path, a: &RestartArgs) -> Result<i32> {
    require_root("rrun restart")?;
    runner::lifecycle::reap_leftovers(&root.join("containers"));
    Ok(crate::admin::each_container(
        root,
        &a.containers,
        |dir, s| {
            runner::lifecycle::stop(dir, s, runner::lifecycle::stop_grace(s, a.time))?;
            let now = State::load(dir).with_context(|| format!("read the state of {}", s.name))?;
            start_one(root, dir, &now, false)
        },
    ))
}

//! stop, kill, rm, logs, exec.

use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use engine::runtime::{ProcessSpec, RuntimeError, TaskState, UserSpec};
use runner::lifecycle;
use runner::state::{self, State};

use crate::cli::{ExecArgs, KillArgs, LogsArgs, RmArgs, StopArgs};
use crate::run::{require_root, Coded};

fn containers(root: &Path) -> PathBuf {
    root.join("containers")
}

fn find(root: &Path, key: &str) -> Result<(PathBuf, State)> {
    state::find(&containers(root), key).map_err(|e| Coded(1, e.into()).into())
}

/// Apply `act` to each named container as Docker's multi-container
/// commands do: the name on stdout for each success, one error line for
/// each failure, exit status 1 if any failed.
pub fn each_container(
    root: &Path,
    names: &[String],
    mut act: impl FnMut(&Path, &State) -> Result<()>,
) -> i32 {
    let mut code = 0;
    for c in names {
        match find(root, c).and_then(|(dir, s)| act(&dir, &s)) {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("rrun: {e:#}");
                code = 1;
            }
        }
    }
    code
}

pub fn stop(root: &Path, a: &StopArgs) -> Result<i32> {
    require_root("rrun stop")?;
    Ok(each_container(root, &a.containers, |dir, s| {
        Ok(lifecycle::stop(dir, s, lifecycle::stop_grace(s, a.time))?)
    }))
}

pub fn kill(root: &Path, a: &KillArgs) -> Result<i32> {
    require_root("rrun kill")?;
    let sig = lifecycle::parse_signal(&a.signal).map_err(|e| Coded(1, e.into()))?;
    Ok(each_container(root, &a.containers, |dir, s| {
        // As Docker: killed with SIGKILL or the stop signal, it stays
        // down whatever its restart policy; other signals are messages.
        if sig == libc::SIGKILL || sig == lifecycle::stop_signal(s) {
            lifecycle::keep_down(dir, s);
        }
        lifecycle::signal(dir, s, sig).map_err(|e| Coded(1, e.into()).into())
    }))
}

pub fn rm(root: &Path, a: &RmArgs) -> Result<i32> {
    require_root("rrun rm")?;
    Ok(each_container(root, &a.containers, |dir, s| {
        // -v: its anonymous volumes too, once it is gone.
        let uses = if a.volumes {
            runner::volume::recorded(dir)
        } else {
            Vec::new()
        };
        lifecycle::remove(dir, s, a.force).map_err(|e| Coded(1, e.into()))?;
        runner::volume::remove_anonymous(root, &uses).map_err(|e| Coded(1, e.into()).into())
    }))
}

pub fn logs(root: &Path, a: &LogsArgs) -> Result<i32> {
    let tail: Option<usize> = match a.tail.as_str() {
        "all" => None,
        n => Some(n.parse().map_err(|_| {
            Coded(
                125,
                anyhow!("invalid --tail {n:?}: a number of lines, or \"all\""),
            )
        })?),
    };
    let now = now_ns();
    let since = match &a.since {
        None => None,
        Some(s) => Some(runner::logfile::parse_since(s, now).map_err(|why| {
            Coded(
                125,
                anyhow!("invalid argument {s:?} for \"--since\" flag: {why}"),
            )
        })?),
    };
    let (dir, _) = find(root, &a.container)?;
    let p = dir.join("container.log");
    let mut out = std::io::stdout().lock();
    let rotated = runner::logfile::files(&dir).len() > 1;
    let mut f = if a.timestamps || since.is_some() || rotated {
        // Line by line, across the rotated files.
        let lines =
            runner::logfile::read_lines(&dir).with_context(|| format!("read {}", p.display()))?;
        let kept: Vec<&runner::logfile::Line> = lines
            .iter()
            .filter(|l| since.is_none_or(|t| l.time_ns.is_some_and(|lt| lt >= t)))
            .collect();
        let skip = tail.map_or(0, |n| kept.len().saturating_sub(n));
        for l in &kept[skip..] {
            print_line(&mut out, l.time_ns, &l.bytes, a.timestamps)?;
        }
        match std::fs::File::open(&p) {
            Ok(mut f) => {
                f.seek(std::io::SeekFrom::End(0))?;
                f
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => bail!(Coded(1, anyhow!("read {}: {e}", p.display()))),
        }
    } else {
        let mut f = match std::fs::File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => bail!(Coded(1, anyhow!("read {}: {e}", p.display()))),
        };
        if let Some(n) = tail {
            let start = tail_offset(&mut f, n).with_context(|| format!("read {}", p.display()))?;
            f.seek(std::io::SeekFrom::Start(start))?;
        }
        std::io::copy(&mut f, &mut out).context("write logs")?;
        f
    };
    if a.follow {
        // Until the container has stopped and everything it wrote is out;
        // a rotated log is followed into the new file.
        let mut pending = Vec::new();
        loop {
            // Its supervisor writes the last lines after the exit.
            let running = State::load(&dir)
                .map(|s| s.is_running() || s.supervisor.is_some_and(|p| p.alive()))
                .unwrap_or(false);
            // Looked at before the read: once the log was rotated away,
            // nothing more is written to it, so a read that then finds
            // nothing has everything it had.
            let rotated_away = replaced(&f, &p);
            let start = f.stream_position()?;
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut buf).context("read logs")?;
            if !buf.is_empty() {
                if a.timestamps {
                    pending.extend_from_slice(&buf);
                    let times = runner::logfile::times_at(&p);
                    // Where `pending` (a partial line, then this) begins.
                    let mut off = start - (pending.len() - buf.len()) as u64;
                    while let Some(i) = pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=i).collect();
                        let t = times.iter().find(|(o, _)| *o == off).map(|(_, t)| *t);
                        print_line(&mut out, t.or(Some(now_ns())), &line, true)?;
                        off += line.len() as u64;
                    }
                } else {
                    out.write_all(&buf)?;
                }
                continue;
            }
            if rotated_away {
                match std::fs::File::open(&p) {
                    Ok(nf) => {
                        f = nf;
                        pending.clear();
                        continue;
                    }
                    Err(_) => break,
                }
            }
            if !running {
                if !pending.is_empty() {
                    print_line(&mut out, Some(now_ns()), &pending, a.timestamps)?;
                }
                break;
            }
            out.flush()?;
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(0)
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn print_line(
    out: &mut impl Write,
    time_ns: Option<u128>,
    line: &[u8],
    timestamps: bool,
) -> std::io::Result<()> {
    if let (true, Some(t)) = (timestamps, time_ns) {
        write!(out, "{} ", runner::logfile::timestamp(t))?;
    }
    out.write_all(line)
}

/// The log at `p` is another file than `f` now (rotated away).
fn replaced(f: &std::fs::File, p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (f.metadata(), std::fs::metadata(p)) {
        (Ok(a), Ok(b)) => a.ino() != b.ino(),
        _ => false,
    }
}

/// Where the last `n` lines of `f` start (a final line without a
/// newline counts), reading backwards in blocks.
fn tail_offset(f: &mut std::fs::File, n: usize) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = f.seek(SeekFrom::End(0))?;
    if n == 0 {
        return Ok(len);
    }
    let mut pos = len;
    let mut newlines = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_byte = true;
    while pos > 0 {
        let step = (pos as usize).min(buf.len());
        pos -= step as u64;
        f.seek(SeekFrom::Start(pos))?;
        f.read_exact(&mut buf[..step])?;
        for i in (0..step).rev() {
            if buf[i] == b'\n' {
                // The file's own final newline ends the last line.
                if !(last_byte && pos + i as u64 == len - 1) {
                    newlines += 1;
                    if newlines == n {
                        return Ok(pos + i as u64 + 1);
                    }
                }
            }
            last_byte = false;
        }
    }
    Ok(0)
}

/// The environment of an `exec`: the container's, with each `-e` applied
/// as `run -e` applies it ([`runner::envvars::apply`]: a bare `-e KEY` is
/// taken from ours and left out when we have none). An entry with an
/// empty name (`-e =x`) is refused.
pub fn exec_env(
    base: &[String],
    given: &[String],
) -> Result<Vec<String>, runner::envvars::EnvError> {
    let mut env = base.to_vec();
    for e in given {
        runner::envvars::check_entry(e)?;
        runner::envvars::apply(&mut env, e, |k| std::env::var(k).ok());
    }
    Ok(env)
}

/// `rrun exec`: another process in the container, through the runtime
/// that runs it (`Container::exec`), with our stdio.
pub fn exec(root: &Path, a: &ExecArgs) -> Result<i32> {
    require_root("rrun exec")?;
    let (dir, s) = find(root, &a.container)?;
    let ctr = runner::runtimes::open(&dir, &s).map_err(|e| Coded(1, anyhow!(e)))?;
    if ctr.state().map_err(|e| Coded(1, anyhow!(e)))? == TaskState::Paused {
        bail!(Coded(
            1,
            anyhow!("container {} is paused: unpause it before exec", s.name)
        ));
    }
    let mut env = exec_env(&s.exec.env, &a.env).map_err(|e| Coded(125, e.into()))?;
    if a.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let user = match &a.user {
        None => UserSpec {
            uid: s.exec.uid,
            gid: s.exec.gid,
            additional_gids: s.exec.groups.clone(),
        },
        Some(u) => {
            let pid = s.pid.map(|p| p.pid).unwrap_or(0);
            runner::user::resolve_in_layers(u, &[PathBuf::from(format!("/proc/{pid}/root"))])
                .map_err(|e| Coded(125, e.into()))?
                .spec
        }
    };
    let process = ProcessSpec {
        args: a.command.clone(),
        env,
        cwd: a.workdir.clone().unwrap_or_else(|| s.exec.cwd.clone()),
        user,
        tty: a.tty,
        stdin: a.interactive,
    };
    let coded = |e: RuntimeError| Coded(runner::exit_code(&*e), anyhow!(e));
    let status = ctr.exec(&process).map_err(coded)?.wait().map_err(coded)?;
    Ok(status.code())
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom, Write};

    fn tail(text: &str, n: usize) -> String {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        let at = super::tail_offset(&mut f, n).unwrap();
        f.seek(SeekFrom::Start(at)).unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn tail_takes_whole_lines_from_the_end() {
        assert_eq!(tail("a\nb\nc\n", 2), "b\nc\n");
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
        assert_eq!(tail("a\nb\n", 5), "a\nb\n");
        assert_eq!(tail("a\nb\n", 0), "");
        assert_eq!(tail("", 3), "");
        let big: String = (0..100_000).map(|i| format!("{i}\n")).collect();
        assert_eq!(tail(&big, 2), "99998\n99999\n");
    }
}

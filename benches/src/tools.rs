//! Running peer tools: finding them, timing them, turning a failure into a
//! one-line reason for a "skipped" row.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{BenchError, Result};

/// The first executable called `name` on PATH (plus the sbin directories,
/// which a non-login root shell may lack).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| is_executable(p));
    found
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// A shell-like rendering of a command, for tables and error messages.
pub fn render(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        if a.contains(' ') || a.contains(';') || a.is_empty() {
            s.push_str(&format!(" '{a}'"));
        } else {
            s.push(' ');
            s.push_str(&a);
        }
    }
    s
}

/// Run to completion with stdout discarded; a non-zero exit becomes an
/// error carrying the last lines of stderr.
pub fn run_quiet(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| BenchError::Command {
            command: render(cmd),
            status: "could not start".into(),
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(BenchError::Command {
            command: render(cmd),
            status: out.status.to_string(),
            stderr: tail(&String::from_utf8_lossy(&out.stderr), 3),
        })
    }
}

/// [`run_quiet`], timed from spawn to reaped exit.
pub fn time_quiet(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    run_quiet(cmd)?;
    Ok(start.elapsed())
}

/// Run and return stdout.
pub fn run_stdout(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| BenchError::Command {
            command: render(cmd),
            status: "could not start".into(),
            stderr: e.to_string(),
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(BenchError::Command {
            command: render(cmd),
            status: out.status.to_string(),
            stderr: tail(&String::from_utf8_lossy(&out.stderr), 3),
        })
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..].join(" / ")
}

/// Read every file once so the next timed run starts from a warm page
/// cache for its inputs (this VM evicts page cache on its own).
pub fn warm_page_cache(files: &[PathBuf]) -> Result<()> {
    for f in files {
        let mut r = std::fs::File::open(f).map_err(crate::io_err("open", f))?;
        std::io::copy(&mut r, &mut std::io::sink()).map_err(crate::io_err("read", f))?;
    }
    Ok(())
}

/// Flush dirty pages so one run's writeback does not land in the next
/// run's time.
pub fn sync() {
    nix::unistd::sync();
}

/// Unmount everything mounted at or below `dir` (deepest first), e.g. what a
/// peer's storage driver left behind, so the directory can be removed.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut targets: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.components().count()));
    for t in targets {
        let _ = nix::mount::umount2(&t, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Remove a directory tree if it exists (after unmounting what is below it).
pub fn clean_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        unmount_under(dir);
        std::fs::remove_dir_all(dir).map_err(crate::io_err("remove", dir))?;
    }
    Ok(())
}

//! `rrun top NAME [ps OPTIONS]`: the host's `ps` (default `-ef`), keeping
//! the header and the rows of the container's processes, as `docker top`
//! does. The container's processes are its cgroup's members.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use anyhow::{anyhow, bail, Result};
use runner::cgroup::CgroupDriver;
use runner::state;

use crate::cli::TopArgs;
use crate::run::Coded;

/// Keep `ps` output rows whose PID column is in `pids`.
pub fn filter(ps_output: &str, pids: &HashSet<i32>) -> Result<String, String> {
    let mut lines = ps_output.lines();
    let header = lines.next().ok_or("ps printed nothing")?;
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| {
            format!("ps output has no PID column: {header:?} (keep PID in the -o list)")
        })?;
    let mut out = String::from(header);
    out.push('\n');
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(l);
            out.push('\n');
        }
    }
    Ok(out)
}

pub fn top(root: &Path, a: &TopArgs) -> Result<i32> {
    let (_, s) =
        state::find(&root.join("containers"), &a.container).map_err(|e| Coded(1, e.into()))?;
    if !s.is_running() {
        bail!(Coded(1, anyhow!("container {} is not running", s.name)));
    }
    let driver = CgroupDriver::probe().map_err(|e| Coded(1, e.into()))?;
    let pids: HashSet<i32> = driver.open(&s.id).procs().into_iter().collect();
    let args: Vec<String> = if a.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        a.ps_args.clone()
    };
    let o = Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| Coded(1, anyhow!("run ps: {e}")))?;
    if !o.status.success() {
        bail!(Coded(
            1,
            anyhow!(
                "ps {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            )
        ));
    }
    let text = String::from_utf8_lossy(&o.stdout);
    print!(
        "{}",
        filter(&text, &pids).map_err(|e| Coded(1, anyhow!(e)))?
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_of_the_containers_pids_under_the_header() {
        let ps = "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 init\nroot 42 1 0 10:01 ? 00:00:00 sleep 9\n";
        let pids = [42].into_iter().collect();
        assert_eq!(
            super::filter(ps, &pids).unwrap(),
            "UID PID PPID C STIME TTY TIME CMD\nroot 42 1 0 10:01 ? 00:00:00 sleep 9\n"
        );
        assert!(super::filter("USER CMD\n", &pids)
            .unwrap_err()
            .contains("no PID column"));
    }
}

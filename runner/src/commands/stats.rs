//! `rrun stats [--no-stream] [--format T] [CONTAINER...]`: each running
//! container's CPU, memory, network, block I/O and pids, as `docker
//! stats` shows them. Everything comes from the container's cgroup
//! (`cgroup::Usage`, on v1 and v2) and, for the network, from
//! `/proc/<pid>/net/dev` of its first process.
//!
//! CPU % is the group's CPU time over wall time between two samples,
//! ×100: 200% is two cores busy, as in Docker. Without a memory limit,
//! the limit shown is the host's memory, as in Docker.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use runner::cgroup::{CgroupDriver, Usage};
use runner::state::{self, State};
use serde_json::json;

use super::format::Template;
use crate::cli::StatsArgs;
use crate::run::Coded;

/// Between the two samples of a CPU %.
const INTERVAL: Duration = Duration::from_millis(500);

/// Docker's column titles.
const TITLES: [(&str, &str); 8] = [
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

const TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";

/// One container's row.
struct Row {
    id: String,
    name: String,
    usage: Usage,
    cpu_percent: Option<f64>,
    net: Option<(u64, u64)>,
}

/// Bytes received and sent on the container's interfaces other than lo.
fn net_io(pid: i32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    Some(parse_net_dev(&text))
}

/// Sum of receive and transmit bytes over the interfaces of a
/// `/proc/net/dev` listing, loopback left out.
pub fn parse_net_dev(text: &str) -> (u64, u64) {
    let mut rx = 0;
    let mut tx = 0;
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}

/// Docker's byte formats: binary units for memory (`1.5MiB`), decimal
/// ones for network and block I/O (`648B`, `1.2kB`).
pub fn bytes(v: u64, binary: bool) -> String {
    let (base, units): (f64, [&str; 5]) = if binary {
        (1024.0, ["B", "KiB", "MiB", "GiB", "TiB"])
    } else {
        (1000.0, ["B", "kB", "MB", "GB", "TB"])
    };
    let mut x = v as f64;
    let mut u = 0;
    while x >= base && u < units.len() - 1 {
        x /= base;
        u += 1;
    }
    if u == 0 {
        format!("{v}B")
    } else {
        let s = format!("{x:.3}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{s}{}", units[u])
    }
}

fn host_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

impl Row {
    fn value(&self, host_mem: Option<u64>) -> serde_json::Value {
        let u = &self.usage;
        let limit = u.memory_limit.or(host_mem);
        let dash = || "--".to_string();
        let pair = |a: Option<u64>, b: Option<u64>, binary: bool| match (a, b) {
            (Some(a), Some(b)) => format!("{} / {}", bytes(a, binary), bytes(b, binary)),
            _ => dash(),
        };
        let mem_perc = match (u.memory_bytes, limit) {
            (Some(m), Some(l)) if l > 0 => format!("{:.2}%", m as f64 * 100.0 / l as f64),
            _ => dash(),
        };
        json!({
            "ID": &self.id[..12.min(self.id.len())],
            "Container": self.name,
            "Name": self.name,
            "CPUPerc": self.cpu_percent.map(|c| format!("{c:.2}%")).unwrap_or_else(dash),
            "MemUsage": pair(u.memory_bytes, limit, true),
            "MemPerc": mem_perc,
            "NetIO": pair(self.net.map(|n| n.0), self.net.map(|n| n.1), false),
            "BlockIO": pair(u.block_read, u.block_written, false),
            "PIDs": u.pids.map(|p| p.to_string()).unwrap_or_else(dash),
        })
    }
}

fn targets(root: &Path, names: &[String]) -> Result<Vec<State>> {
    let dir = root.join("containers");
    if names.is_empty() {
        let mut all: Vec<State> = state::list(&dir)
            .into_iter()
            .map(|(_, s)| s)
            .filter(State::is_running)
            .collect();
        all.sort_by_key(|s| s.created);
        return Ok(all);
    }
    let mut out = Vec::new();
    for n in names {
        let (_, s) = state::find(&dir, n).map_err(|e| Coded(1, e.into()))?;
        if !s.is_running() {
            bail!(Coded(1, anyhow!("container {} is not running", s.name)));
        }
        out.push(s);
    }
    Ok(out)
}

/// Two samples `INTERVAL` apart, one row per container.
fn sample(driver: &CgroupDriver, containers: &[State]) -> Vec<Row> {
    let groups: Vec<_> = containers.iter().map(|s| driver.open(&s.id)).collect();
    let first: Vec<Option<u64>> = groups.iter().map(|g| g.usage().cpu_ns).collect();
    let t0 = Instant::now();
    std::thread::sleep(INTERVAL);
    let wall = t0.elapsed().as_nanos() as f64;
    containers
        .iter()
        .zip(groups.iter().zip(first))
        .map(|(s, (g, cpu0))| {
            let usage = g.usage();
            let cpu_percent = match (cpu0, usage.cpu_ns) {
                (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 * 100.0 / wall),
                _ => None,
            };
            Row {
                id: s.id.clone(),
                name: s.name.clone(),
                net: s.pid.and_then(|p| net_io(p.pid)),
                usage,
                cpu_percent,
            }
        })
        .collect()
}

pub fn stats(root: &Path, a: &StatsArgs) -> Result<i32> {
    let template =
        Template::parse(a.format.as_deref().unwrap_or(TABLE)).map_err(|e| Coded(125, e.into()))?;
    let driver = CgroupDriver::probe().map_err(|e| Coded(1, e.into()))?;
    let host_mem = host_memory();
    let mut out = std::io::stdout().lock();
    loop {
        let containers = targets(root, &a.containers)?;
        let rows = sample(&driver, &containers);
        let mut text = String::new();
        if template.table {
            text.push_str(&template.header_named(&TITLES));
            text.push('\n');
        }
        for r in &rows {
            text.push_str(
                &template
                    .render(&r.value(host_mem))
                    .map_err(|e| Coded(125, e.into()))?,
            );
            text.push('\n');
        }
        if a.no_stream {
            out.write_all(text.as_bytes())?;
            return Ok(0);
        }
        // Redraw in place, as docker stats does on a terminal.
        write!(out, "\x1b[2J\x1b[H{text}")?;
        out.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_sums_all_but_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:  500   5    0    0    0     0          0         0      500   5    0    0    0     0       0          0\n  eth0: 1200  10    0    0    0     0          0         0      648   6    0    0    0     0       0          0\n";
        assert_eq!(parse_net_dev(text), (1200, 648));
    }

    #[test]
    fn sizes_as_docker_prints_them() {
        assert_eq!(bytes(648, false), "648B");
        assert_eq!(bytes(1200, false), "1.2kB");
        assert_eq!(bytes(1536 * 1024, true), "1.5MiB");
        assert_eq!(bytes(2 << 30, true), "2GiB");
    }

    #[test]
    fn a_row_shows_limits_percentages_and_dashes() {
        let r = Row {
            id: "0123456789abcdef".into(),
            name: "web".into(),
            usage: Usage {
                cpu_ns: Some(5),
                memory_bytes: Some(1 << 20),
                memory_limit: Some(4 << 20),
                pids: Some(2),
                block_read: None,
                block_written: None,
            },
            cpu_percent: Some(12.345),
            net: Some((1200, 648)),
        };
        let v = r.value(Some(1 << 30));
        assert_eq!(v["ID"], "0123456789ab");
        assert_eq!(v["CPUPerc"], "12.35%");
        assert_eq!(v["MemUsage"], "1MiB / 4MiB");
        assert_eq!(v["MemPerc"], "25.00%");
        assert_eq!(v["NetIO"], "1.2kB / 648B");
        assert_eq!(v["BlockIO"], "--");
        assert_eq!(v["PIDs"], "2");
    }
}

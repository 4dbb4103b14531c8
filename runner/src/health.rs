//! Health checks (`--health-cmd` and friends, or the image's HEALTHCHECK):
//! Docker's configuration and status rules. The detached container's
//! supervisor runs the check on schedule (`watch`), each run through
//! `rrun exec`'s path (the caller's `run_check`), and keeps the status in
//! `containers/<id>/health.json`, which `ps` and `inspect` read. A
//! container in the foreground has no supervisor: no checks run for it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Docker's `Config.Healthcheck` (durations in nanoseconds; 0: default).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Healthcheck {
    /// `["CMD-SHELL", cmd]`, `["CMD", arg...]`, or `["NONE"]`.
    pub test: Vec<String>,
    pub interval: u64,
    pub timeout: u64,
    pub start_period: u64,
    pub retries: u32,
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
/// How many results `Log` keeps, as Docker.
const KEEP: usize = 5;
/// How much of a check's output is kept, as Docker (4 KiB).
pub const MAX_OUTPUT: usize = 4096;

impl Healthcheck {
    /// The argv to run in the container, or None (no check, `NONE`).
    pub fn argv(&self) -> Option<Vec<String>> {
        match self.test.first().map(String::as_str) {
            Some("CMD-SHELL") if self.test.len() == 2 => {
                Some(vec!["/bin/sh".into(), "-c".into(), self.test[1].clone()])
            }
            Some("CMD") if self.test.len() > 1 => Some(self.test[1..].to_vec()),
            _ => None,
        }
    }

    pub fn interval(&self) -> Duration {
        nonzero(self.interval).unwrap_or(DEFAULT_INTERVAL)
    }

    pub fn timeout(&self) -> Duration {
        nonzero(self.timeout).unwrap_or(DEFAULT_TIMEOUT)
    }

    pub fn start_period(&self) -> Duration {
        Duration::from_nanos(self.start_period)
    }

    pub fn retries(&self) -> u32 {
        if self.retries == 0 {
            DEFAULT_RETRIES
        } else {
            self.retries
        }
    }

    /// The image's HEALTHCHECK (its config's JSON), with `over` (the
    /// flags given) on top, field by field as Docker merges them.
    pub fn merged(image: Option<&serde_json::Value>, over: &Healthcheck) -> Option<Healthcheck> {
        let base: Healthcheck = image
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        let h = Healthcheck {
            test: if over.test.is_empty() {
                base.test
            } else {
                over.test.clone()
            },
            interval: pick(over.interval, base.interval),
            timeout: pick(over.timeout, base.timeout),
            start_period: pick(over.start_period, base.start_period),
            retries: if over.retries != 0 {
                over.retries
            } else {
                base.retries
            },
        };
        (!h.test.is_empty()).then_some(h)
    }
}

fn pick(a: u64, b: u64) -> u64 {
    if a != 0 {
        a
    } else {
        b
    }
}

fn nonzero(ns: u64) -> Option<Duration> {
    (ns != 0).then(|| Duration::from_nanos(ns))
}

/// A Go duration (`1m30s`, `500ms`, `2h`, `0`), as Docker's flags take it.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("time: invalid duration {s:?} (e.g. 30s, 1m30s, 500ms)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut rest = s;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[u..];
        total += value * unit;
    }
    if !(0.0..=1e9).contains(&total) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

/// One check's result, as Docker's `State.Health.Log` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    /// Unix seconds.
    pub start: u64,
    pub end: u64,
    pub exit_code: i32,
    pub output: String,
}

/// Docker's `State.Health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    pub log: Vec<Probe>,
}

impl Default for Health {
    fn default() -> Health {
        Health {
            status: "starting".into(),
            failing_streak: 0,
            log: Vec::new(),
        }
    }
}

impl Health {
    /// Docker's rules: a success makes it healthy; a failure counts
    /// toward `retries` (not while starting within the start period),
    /// and `retries` in a row make it unhealthy.
    pub fn record(&mut self, p: Probe, retries: u32, in_start_period: bool) {
        if p.exit_code == 0 {
            self.status = "healthy".into();
            self.failing_streak = 0;
        } else if !(in_start_period && self.status == "starting") {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = "unhealthy".into();
            }
        }
        self.log.push(p);
        if self.log.len() > KEEP {
            self.log.remove(0);
        }
    }
}

pub fn path(dir: &Path) -> PathBuf {
    dir.join("health.json")
}

/// The status the supervisor last wrote, if the container has a check.
pub fn load(dir: &Path) -> Option<Health> {
    serde_json::from_slice(&std::fs::read(path(dir)).ok()?).ok()
}

/// Atomic for readers: a temp file renamed over the last.
fn save(dir: &Path, h: &Health) -> std::io::Result<()> {
    let tmp = dir.join(".health.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec(h).expect("health serialises"))?;
    std::fs::rename(&tmp, path(dir))
}

/// What a check's run gives: exit code (-1: it could not run or timed
/// out) and its output.
pub type CheckResult = (i32, String);

/// The supervisor's loop: every interval while the container runs
/// (`running` says so; false ends the loop once it is gone for good, see
/// `gone`), run the check with its timeout and record the result.
pub fn watch(
    dir: &Path,
    hc: &Healthcheck,
    running: impl Fn() -> bool,
    gone: impl Fn() -> bool,
    run_check: impl Fn(&[String], Duration) -> CheckResult,
) {
    let Some(argv) = hc.argv() else {
        return;
    };
    let mut health = Health::default();
    let _ = save(dir, &health);
    let mut started = Instant::now();
    let mut was_running = false;
    loop {
        std::thread::sleep(hc.interval());
        if gone() {
            return;
        }
        if !running() {
            // Stopped (or between restarts): the next run starts afresh.
            was_running = false;
            continue;
        }
        if !was_running {
            was_running = true;
            if !health.log.is_empty() || health.status != "starting" {
                health = Health::default();
                started = Instant::now();
            }
        }
        let start = crate::state::now();
        let (code, mut output) = run_check(&argv, hc.timeout());
        if output.len() > MAX_OUTPUT {
            let mut cut = MAX_OUTPUT;
            while !output.is_char_boundary(cut) {
                cut -= 1;
            }
            output.truncate(cut);
        }
        let p = Probe {
            start,
            end: crate::state::now(),
            exit_code: code,
            output,
        };
        health.record(p, hc.retries(), started.elapsed() < hc.start_period());
        if gone() {
            return;
        }
        let _ = save(dir, &health);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_gos() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        for bad in ["", "10", "s", "3x", "-1s", "1s2"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    fn probe(code: i32) -> Probe {
        Probe {
            start: 0,
            end: 0,
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn status_follows_dockers_rules() {
        let mut h = Health::default();
        h.record(probe(1), 2, true);
        assert_eq!((h.status.as_str(), h.failing_streak), ("starting", 0));
        h.record(probe(0), 2, true);
        assert_eq!(h.status, "healthy");
        h.record(probe(1), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 1));
        h.record(probe(1), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), ("unhealthy", 2));
        h.record(probe(0), 2, false);
        assert_eq!((h.status.as_str(), h.failing_streak), ("healthy", 0));
        for _ in 0..10 {
            h.record(probe(1), 2, false);
        }
        assert_eq!(h.log.len(), 5);
    }

    #[test]
    fn flags_override_the_image_field_by_field() {
        let image = serde_json::json!({"Test": ["CMD", "true"], "Interval": 5_000_000_000u64, "Retries": 7});
        let over = Healthcheck {
            interval: 1_000_000_000,
            ..Default::default()
        };
        let h = Healthcheck::merged(Some(&image), &over).unwrap();
        assert_eq!(h.test, ["CMD", "true"]);
        assert_eq!(h.interval(), Duration::from_secs(1));
        assert_eq!(h.retries(), 7);
        assert_eq!(h.timeout(), Duration::from_secs(30));
        assert_eq!(h.argv().unwrap(), ["true"]);
        let none = Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        };
        assert_eq!(
            Healthcheck::merged(Some(&image), &none).unwrap().argv(),
            None
        );
        assert!(Healthcheck::merged(None, &Healthcheck::default()).is_none());
        let shell = Healthcheck {
            test: vec!["CMD-SHELL".into(), "test -f /x".into()],
            ..Default::default()
        };
        assert_eq!(shell.argv().unwrap(), ["/bin/sh", "-c", "test -f /x"]);
    }
}

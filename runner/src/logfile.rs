//! A detached container's log: `container.log` holds what it wrote, byte
//! for byte (the format rrun always had), and `container.log.times` the
//! time each line began (`OFFSET NANOS` per line, a sidecar: readers of
//! the plain log keep working). The supervisor writes both from the pipe
//! the container's stdout and stderr go to, and rotates them at a line
//! boundary past `--log-opt max-size`, keeping `max-file` files in all
//! (`container.log.1` the newest rotated one).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// `--log-opt` values (Docker's json-file names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// Rotate once the log is this big (None: never).
    pub max_size: Option<u64>,
    /// Files kept in all, the current one included (1 without rotation).
    pub max_file: Option<u32>,
}

impl LogConfig {
    fn files(&self) -> u32 {
        self.max_file.unwrap_or(1).max(1)
    }
}

pub const LOG: &str = "container.log";

fn times_of(log: &Path) -> PathBuf {
    let mut s = log.as_os_str().to_owned();
    s.push(".times");
    PathBuf::from(s)
}

/// The log files, oldest first, that exist: `container.log.N` ... `.1`,
/// `container.log`.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = (1..1000)
        .map(|i| dir.join(format!("{LOG}.{i}")))
        .take_while(|p| p.exists())
        .collect();
    v.reverse();
    v.push(dir.join(LOG));
    v
}

/// The writer the supervisor's relay feeds.
pub struct Writer {
    dir: PathBuf,
    cfg: LogConfig,
    log: File,
    times: File,
    size: u64,
    at_line_start: bool,
}

fn append(p: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(p)
}

impl Writer {
    pub fn open(dir: &Path, cfg: LogConfig) -> std::io::Result<Writer> {
        let p = dir.join(LOG);
        let log = append(&p)?;
        let size = log.metadata()?.len();
        Ok(Writer {
            dir: dir.to_path_buf(),
            cfg,
            times: append(&times_of(&p))?,
            log,
            size,
            at_line_start: true,
        })
    }

    /// Write `buf` (what the container wrote), timing each line's start
    /// with `now_ns`.
    pub fn write(&mut self, mut buf: &[u8], now_ns: u128) -> std::io::Result<()> {
        while !buf.is_empty() {
            if self.at_line_start {
                if self.cfg.max_size.is_some_and(|m| self.size >= m) {
                    self.rotate()?;
                }
                writeln!(self.times, "{} {now_ns}", self.size)?;
            }
            let n = buf
                .iter()
                .position(|&b| b == b'\n')
                .map_or(buf.len(), |i| i + 1);
            self.log.write_all(&buf[..n])?;
            self.size += n as u64;
            self.at_line_start = buf[n - 1] == b'\n';
            buf = &buf[n..];
        }
        Ok(())
    }

    /// `.N-1` becomes `.N` (the oldest is dropped), the current one `.1`,
    /// and new empty files are the current ones.
    fn rotate(&mut self) -> std::io::Result<()> {
        let keep = self.cfg.files();
        let name = |i: u32| {
            if i == 0 {
                self.dir.join(LOG)
            } else {
                self.dir.join(format!("{LOG}.{i}"))
            }
        };
        let _ = std::fs::remove_file(name(keep - 1));
        let _ = std::fs::remove_file(times_of(&name(keep - 1)));
        for i in (0..keep - 1).rev() {
            let (from, to) = (name(i), name(i + 1));
            if from.exists() {
                std::fs::rename(&from, &to)?;
                let _ = std::fs::rename(times_of(&from), times_of(&to));
            }
        }
        let p = self.dir.join(LOG);
        self.log = append(&p)?;
        self.times = append(&times_of(&p))?;
        self.size = 0;
        Ok(())
    }
}

/// The (offset, time) records of the log file at `log`.
pub fn times_at(log: &Path) -> Vec<(u64, u128)> {
    std::fs::read_to_string(times_of(log))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (o, t) = l.split_once(' ')?;
            Some((o.parse().ok()?, t.parse().ok()?))
        })
        .collect()
}

/// One line of a log: when it began (None: a log written before rrun
/// timed lines) and its bytes.
pub struct Line {
    pub time_ns: Option<u128>,
    pub bytes: Vec<u8>,
}

/// Every line of the container's logs, oldest first.
pub fn read_lines(dir: &Path) -> std::io::Result<Vec<Line>> {
    let mut out = Vec::new();
    for p in files(dir) {
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let times = times_at(&p);
        let mut start = 0usize;
        while start < bytes.len() {
            let end = bytes[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |i| start + i + 1);
            let time_ns = times
                .binary_search_by_key(&(start as u64), |(o, _)| *o)
                .ok()
                .map(|i| times[i].1);
            out.push(Line {
                time_ns,
                bytes: bytes[start..end].to_vec(),
            });
            start = end;
        }
    }
    Ok(out)
}

/// Docker's `--timestamps` form: RFC 3339 with nanoseconds, UTC.
pub fn timestamp(ns: u128) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let s = engine::image::rfc3339(secs);
    format!("{}.{:09}Z", s.trim_end_matches('Z'), ns % 1_000_000_000)
}

/// `--since`: a duration before `now_ns` (`10m`, `1h30m`), Unix seconds
/// (`1700000000`, `1700000000.5`) or RFC 3339 UTC
/// (`2024-01-02T03:04:05Z`, fractions allowed); in nanoseconds.
pub fn parse_since(s: &str, now_ns: u128) -> Result<u128, String> {
    if let Ok(d) = crate::health::parse_duration(s) {
        return Ok(now_ns.saturating_sub(d.as_nanos()));
    }
    if let Ok(secs) = s.parse::<f64>() {
        if secs >= 0.0 {
            return Ok((secs * 1e9) as u128);
        }
    }
    parse_rfc3339(s).ok_or_else(|| {
        format!(
            "invalid time {s:?}: a duration (10m), Unix seconds or RFC 3339 (2024-01-02T03:04:05Z)"
        )
    })
}

fn parse_rfc3339(s: &str) -> Option<u128> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let (time, frac) = time.split_once('.').unwrap_or((time, ""));
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if d.len() != 3 || t.len() != 3 || !frac.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 9 {
        return None;
    }
    let (y, m, dd) = (d[0], d[1], d[2]);
    if !(1..=12).contains(&m) || !(1..=31).contains(&dd) || t[0] > 23 || t[1] > 59 || t[2] > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2];
    let nanos: u128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    (secs >= 0).then(|| secs as u128 * 1_000_000_000 + nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_timed_and_rotated_at_line_boundaries() {
        let t = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            max_size: Some(10),
            max_file: Some(3),
        };
        let mut w = Writer::open(t.path(), cfg).unwrap();
        w.write(b"0123456789ab\npart", 1).unwrap();
        w.write(b"ial\nx\n", 2).unwrap();
        w.write(b"y\nz\n", 3).unwrap();
        w.write(b"last\n", 4).unwrap();
        // 13 bytes: rotated before "partial"; 9 ("partial\nx\n" is 10): rotated
        // before y; "y\nz\n" 4, then last.
        let names: Vec<String> = files(t.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            ["container.log.2", "container.log.1", "container.log"]
        );
        assert_eq!(
            std::fs::read(t.path().join("container.log.1")).unwrap(),
            b"partial\nx\n"
        );
        let lines = read_lines(t.path()).unwrap();
        let shown: Vec<(Option<u128>, String)> = lines
            .iter()
            .map(|l| (l.time_ns, String::from_utf8_lossy(&l.bytes).into_owned()))
            .collect();
        assert_eq!(
            shown,
            [
                (Some(1), "0123456789ab\n".to_string()),
                (Some(1), "partial\n".to_string()),
                (Some(2), "x\n".to_string()),
                (Some(3), "y\n".to_string()),
                (Some(3), "z\n".to_string()),
                (Some(4), "last\n".to_string()),
            ]
        );
        // One more rotation drops the oldest file: 3 in all.
        w.write(b"0123456789\n", 5).unwrap();
        w.write(b"more\n", 6).unwrap();
        assert_eq!(files(t.path()).len(), 3);
        assert_eq!(
            read_lines(t.path()).unwrap()[0].bytes,
            b"partial\n".to_vec()
        );
    }

    #[test]
    fn a_log_without_times_still_reads() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join(LOG), "a\nb").unwrap();
        let l = read_lines(t.path()).unwrap();
        assert_eq!(
            (l.len(), l[1].time_ns, l[1].bytes.clone()),
            (2, None, b"b".to_vec())
        );
    }

    #[test]
    fn times_print_and_parse_like_dockers() {
        assert_eq!(
            timestamp(1_700_000_000_123_456_789),
            "2023-11-14T22:13:20.123456789Z"
        );
        assert_eq!(
            parse_since("2023-11-14T22:13:20.5Z", 0),
            Ok(1_700_000_000_500_000_000)
        );
        assert_eq!(parse_since("1700000000", 0), Ok(1_700_000_000_000_000_000));
        assert_eq!(parse_since("10s", 60_000_000_000), Ok(50_000_000_000));
        assert!(parse_since("yesterday", 0).is_err());
        assert!(parse_since("2023-13-01T00:00:00Z", 0).is_err());
    }
}

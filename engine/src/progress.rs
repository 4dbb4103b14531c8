//! Progress of long transfers (download, upload, reading an archive,
//! unpacking), reported by the library to whatever draws it.
//!
//! The engine never draws: it calls a [`TransferProgress`] the caller hands
//! in ([`NoProgress`] when nobody is watching). Bars belong to the binaries
//! (`rbuild` draws them with indicatif); [`PlainLines`] is here because both
//! binaries need the same line format when stderr is not a terminal.
//!
//! Calls come from several threads at once (layers transfer in parallel),
//! and `advance` comes once per read, so implementations keep it cheap.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

/// What kind of transfer an id is in. One blob can be in two phases at
/// once (a layer unpacks while it downloads), so ids are per phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// From a registry.
    Download,
    /// To a registry.
    Upload,
    /// From a file (OCI layout or docker-archive).
    Read,
    /// Into the store's unpacked layers; bytes are uncompressed tar bytes.
    Unpack,
}

impl Phase {
    /// The word plain lines start with.
    pub fn verb(self) -> &'static str {
        match self {
            Phase::Download => "pull",
            Phase::Upload => "push",
            Phase::Read => "load",
            Phase::Unpack => "unpack",
        }
    }
}

/// Something that happened to a blob without moving its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Already there (in our store on pull, in the registry on push).
    Exists,
    /// Pushed by a cross-repository mount from this repository.
    Mounted { from: String },
    /// The manifest itself (id is its digest).
    Manifest,
}

/// Where the engine reports transfers. `id` names the blob (its digest,
/// or a file member's path); `total` is the byte count when it is known.
pub trait TransferProgress: Send + Sync {
    fn start(&self, phase: Phase, id: &str, total: Option<u64>);
    fn advance(&self, phase: Phase, id: &str, bytes: u64);
    /// The transfer completed (not called when it failed).
    fn finish(&self, phase: Phase, id: &str);
    fn note(&self, phase: Phase, id: &str, note: &Note) {
        let _ = (phase, id, note);
    }
}

/// Reports go nowhere.
pub struct NoProgress;

impl TransferProgress for NoProgress {
    fn start(&self, _: Phase, _: &str, _: Option<u64>) {}
    fn advance(&self, _: Phase, _: &str, _: u64) {}
    fn finish(&self, _: Phase, _: &str) {}
}

/// A reader that reports what passes through it to a [`TransferProgress`],
/// in batches (a tar reader reads 512-byte headers one by one; a report per
/// read would cost more than the read). The rest is reported at EOF and on drop.
pub struct ProgressReader<'a, R> {
    pub inner: R,
    progress: &'a dyn TransferProgress,
    phase: Phase,
    id: &'a str,
    pending: u64,
}

const BATCH: u64 = 128 << 10;

impl<'a, R> ProgressReader<'a, R> {
    pub fn new(inner: R, progress: &'a dyn TransferProgress, phase: Phase, id: &'a str) -> Self {
        ProgressReader {
            inner,
            progress,
            phase,
            id,
            pending: 0,
        }
    }

    fn flush(&mut self) {
        if self.pending > 0 {
            self.progress.advance(self.phase, self.id, self.pending);
            self.pending = 0;
        }
    }
}

impl<R> Drop for ProgressReader<'_, R> {
    fn drop(&mut self) {
        self.flush();
    }
}

impl<R: std::io::Read> std::io::Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        if self.pending >= BATCH || (n == 0 && !buf.is_empty()) {
            self.flush();
        }
        Ok(n)
    }
}

/// One line per finished transfer (and per note), for logs and pipes:
/// `pull: sha256:0123456789ab 12.3 MiB done in 0.40s (30.8 MiB/s)`.
pub struct PlainLines<W: Write + Send> {
    out: Mutex<W>,
    /// Per phase, by id (nested so that `advance` looks up by `&str`).
    running: Mutex<HashMap<Phase, HashMap<String, Running>>>,
}

struct Running {
    started: Instant,
    total: Option<u64>,
    seen: u64,
}

impl PlainLines<std::io::Stderr> {
    pub fn stderr() -> Self {
        PlainLines::new(std::io::stderr())
    }
}

impl<W: Write + Send> PlainLines<W> {
    pub fn new(out: W) -> Self {
        PlainLines {
            out: Mutex::new(out),
            running: Mutex::new(HashMap::new()),
        }
    }

    pub fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|p| p.into_inner())
    }

    fn line(&self, line: String) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

impl<W: Write + Send> TransferProgress for PlainLines<W> {
    fn start(&self, phase: Phase, id: &str, total: Option<u64>) {
        let r = Running {
            started: Instant::now(),
            total,
            seen: 0,
        };
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(phase)
            .or_default()
            .insert(id.to_string(), r);
    }

    fn advance(&self, phase: Phase, id: &str, bytes: u64) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = running.get_mut(&phase).and_then(|m| m.get_mut(id)) {
            r.seen += bytes;
        }
    }

    fn finish(&self, phase: Phase, id: &str) {
        let r = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&phase)
            .and_then(|m| m.remove(id));
        let Some(r) = r else { return };
        let size = r.total.unwrap_or(r.seen);
        self.line(format!(
            "{}: {}",
            phase.verb(),
            summary(phase, id, size, r.started.elapsed())
        ));
    }

    fn note(&self, phase: Phase, id: &str, note: &Note) {
        let what = match note {
            Note::Exists => "already exists".to_string(),
            Note::Mounted { from } => format!("mounted from {from}"),
            Note::Manifest => String::new(),
        };
        let line = if *note == Note::Manifest {
            format!("{}: manifest {id}", phase.verb())
        } else {
            format!("{}: {} {what}", phase.verb(), short_id(id))
        };
        self.line(line);
    }
}

/// What a finished transfer says, after its verb:
/// `sha256:0123456789ab 12.3 MiB done in 0.40s (30.8 MiB/s)`.
pub fn summary(phase: Phase, id: &str, bytes: u64, took: std::time::Duration) -> String {
    let secs = took.as_secs_f64();
    let rate = bytes as f64 / secs.max(1e-6);
    let done = if phase == Phase::Unpack {
        "unpacked"
    } else {
        "done"
    };
    format!(
        "{} {} {done} in {secs:.2}s ({}/s)",
        short_id(id),
        human_bytes(bytes),
        human_bytes(rate as u64)
    )
}

/// `sha256:<64 hex>` → `sha256:<12 hex>`, as Docker shows ids; paths stay.
pub fn short_id(id: &str) -> &str {
    match id.split_once(':') {
        Some((alg, hex)) if hex.len() > 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            &id[..alg.len() + 1 + 12]
        }
        _ => id,
    }
}

/// Decimal units as Docker prints sizes (`docker images`, `system df`):
/// `12.346MB`, `0B`.
pub fn human_size_decimal(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
            + UNITS[unit]
    }
}

/// Binary units, one decimal: `12.3 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_name_each_blob_with_size_and_rate() {
        let p = PlainLines::new(Vec::new());
        let id = format!("sha256:{}", "ab".repeat(32));
        p.start(Phase::Download, &id, Some(3 << 20));
        p.start(Phase::Unpack, &id, None);
        p.advance(Phase::Unpack, &id, 5 << 20);
        p.advance(Phase::Download, &id, 1);
        p.finish(Phase::Unpack, &id);
        p.finish(Phase::Download, &id);
        p.note(Phase::Upload, &id, &Note::Mounted { from: "a/b".into() });
        // A finish without a start (or twice) prints nothing.
        p.finish(Phase::Download, &id);
        let text = String::from_utf8(p.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("unpack: sha256:abababababab 5.0 MiB unpacked in "),
            "{text}"
        );
        assert!(
            lines[1].starts_with("pull: sha256:abababababab 3.0 MiB done in ")
                && lines[1].ends_with("/s)"),
            "{text}"
        );
        assert_eq!(lines[2], "push: sha256:abababababab mounted from a/b");
    }

    #[test]
    fn reader_reports_every_byte_in_batches() {
        let p = PlainLines::new(Vec::new());
        p.start(Phase::Read, "x", None);
        let data = vec![7u8; 300 << 10];
        let mut r = ProgressReader::new(&data[..], &p, Phase::Read, "x");
        let mut buf = [0u8; 512];
        let mut got = 0;
        while let Ok(n @ 1..) = std::io::Read::read(&mut r, &mut buf) {
            got += n;
        }
        drop(r);
        assert_eq!(got, data.len());
        let seen = p.running.lock().unwrap()[&Phase::Read]["x"].seen;
        assert_eq!(seen, data.len() as u64);
    }

    #[test]
    fn sizes_and_ids() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12_900_000), "12.3 MiB");
        assert_eq!(short_id("blobs/sha256/xyz"), "blobs/sha256/xyz");
        assert_eq!(short_id("sha256:0123"), "sha256:0123");
    }
}

//! Bounds on what a server may make us read, and how long it may make us
//! wait: the readers every body from the network goes through.
//!
//! A hostile or broken registry can send more than the descriptor says (a
//! 118-byte blob that goes on for 256 MiB), or drip a byte every second so
//! that a per-read timeout never fires. So:
//!
//! - [`Progress`]: a transfer must move at least `min_bytes` in every
//!   `window` of time, or it is abandoned (containerd's pull progress
//!   timeout, per transfer and with a floor on the rate, not just "any byte");
//! - [`Exact`]: a blob ends at its descriptor's size. The byte after it is
//!   refused before anything downstream sees it, and an early end is an
//!   error;
//! - [`read_limited`]: a small document (manifest, index, token answer,
//!   error text) read whole, refused past a limit rather than truncated.

use std::io::{self, Read};
use std::time::{Duration, Instant};

/// How long a transfer may take and how many run at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A transfer must move at least `min_bytes` in every `window`; a
    /// socket silent for a whole `window` is given up at once.
    pub window: Duration,
    pub min_bytes: u64,
    /// Blobs one pull downloads at the same time.
    pub parallel_blobs: usize,
}

impl Default for Limits {
    /// 64 KiB per 30 s (about 2 KiB/s): far below any working link, far
    /// above a drip. Six downloads at once, a few more than Docker's and
    /// containerd's three, since each also feeds an unpacker.
    fn default() -> Self {
        Limits {
            window: Duration::from_secs(30),
            min_bytes: 64 << 10,
            parallel_blobs: 6,
        }
    }
}

impl Limits {
    /// The whole-request deadline (headers and body) for requests whose
    /// bodies are small both ways: everything but blob downloads and uploads.
    pub fn small_request(&self) -> Duration {
        self.window * 4
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("{what}: the transfer stalled: {got} bytes in {window:?}, less than the {min} required (the server is too slow or stopped sending)")]
    Stalled {
        what: String,
        got: u64,
        min: u64,
        window: Duration,
    },
    #[error("{what}: the server sent more than the {expected} bytes the descriptor says; refused at that point")]
    TooLong { what: String, expected: u64 },
    #[error("{what}: the server ended after {got} bytes, but the descriptor says {expected}")]
    Short {
        what: String,
        got: u64,
        expected: u64,
    },
    #[error("{what}: larger than the {limit} bytes allowed")]
    TooLarge { what: String, limit: u64 },
}

impl From<TransferError> for io::Error {
    fn from(e: TransferError) -> io::Error {
        let kind = match e {
            TransferError::Stalled { .. } => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// A reader that fails once a `window` passes with fewer than `min_bytes`
/// read in it. The socket's own read timeout (set to the window) ends a
/// read that waits for nothing; this catches the drip between reads.
pub struct Progress<R> {
    inner: R,
    what: String,
    window: Duration,
    min_bytes: u64,
    since: Instant,
    in_window: u64,
}

impl<R: Read> Progress<R> {
    pub fn new(inner: R, what: impl Into<String>, limits: &Limits) -> Self {
        Progress {
            inner,
            what: what.into(),
            window: limits.window,
            min_bytes: limits.min_bytes,
            since: Instant::now(),
            in_window: 0,
        }
    }

    fn stalled(&self) -> io::Error {
        TransferError::Stalled {
            what: self.what.clone(),
            got: self.in_window,
            min: self.min_bytes,
            window: self.window,
        }
        .into()
    }
}

impl<R: Read> Read for Progress<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.inner.read(buf) {
            Ok(n) => n,
            // The socket timeout: nothing at all for a whole window.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                return Err(self.stalled())
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(0);
        }
        self.in_window += n as u64;
        let now = Instant::now();
        if now.duration_since(self.since) >= self.window {
            if self.in_window < self.min_bytes {
                return Err(self.stalled());
            }
            self.since = now;
            self.in_window = 0;
        }
        Ok(n)
    }
}

/// A reader of exactly `expected` bytes: more is an error at the first
/// byte past the end (which is never handed on), fewer is an error at EOF.
pub struct Exact<R> {
    inner: R,
    what: String,
    expected: u64,
    got: u64,
}

impl<R: Read> Exact<R> {
    pub fn new(inner: R, what: impl Into<String>, expected: u64) -> Self {
        Exact {
            inner,
            what: what.into(),
            expected,
            got: 0,
        }
    }
}

impl<R: Read> Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.got == self.expected {
            // The end, unless the server has more to say.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(TransferError::TooLong {
                    what: self.what.clone(),
                    expected: self.expected,
                }
                .into()),
            };
        }
        let room = usize::try_from(self.expected - self.got).unwrap_or(usize::MAX);
        let n = buf.len().min(room);
        let n = self.inner.read(&mut buf[..n])?;
        if n == 0 {
            return Err(TransferError::Short {
                what: self.what.clone(),
                got: self.got,
                expected: self.expected,
            }
            .into());
        }
        self.got += n as u64;
        Ok(n)
    }
}

/// Read a small body whole; more than `limit` bytes is an error (never a
/// silent truncation that would surface as a confusing digest mismatch).
pub fn read_limited(reader: impl Read, what: &str, limit: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(TransferError::TooLarge {
            what: what.to_string(),
            limit,
        }
        .into());
    }
    Ok(bytes)
}

/// Refuse a response whose `Content-Length` already says it is too long
/// (or, for a blob, not the descriptor's size), before reading any of it.
pub fn check_length(
    announced: Option<&str>,
    what: &str,
    expected: Option<u64>,
    limit: u64,
) -> Result<(), TransferError> {
    let Some(len) = announced.and_then(|v| v.trim().parse::<u64>().ok()) else {
        return Ok(());
    };
    match expected {
        Some(want) if len > want => Err(TransferError::TooLong {
            what: what.to_string(),
            expected: want,
        }),
        Some(want) if len < want => Err(TransferError::Short {
            what: what.to_string(),
            got: len,
            expected: want,
        }),
        _ if len > limit => Err(TransferError::TooLarge {
            what: what.to_string(),
            limit,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out one byte per read, sleeping `gap` before each.
    struct Drip {
        left: usize,
        gap: Duration,
    }

    impl Read for Drip {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.left == 0 || buf.is_empty() {
                return Ok(0);
            }
            std::thread::sleep(self.gap);
            self.left -= 1;
            buf[0] = b'x';
            Ok(1)
        }
    }

    #[test]
    fn exact_refuses_the_byte_past_the_end_and_an_early_end() {
        let mut out = Vec::new();
        let err = Exact::new(&[7u8; 10][..], "blob", 4)
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(
            out.len(),
            4,
            "more than the descriptor's size was handed on"
        );
        assert!(err.to_string().contains("more than the 4 bytes"), "{err}");
        let err = Exact::new(&[7u8; 3][..], "blob", 4)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("after 3 bytes"), "{err}");
        let mut ok = Vec::new();
        Exact::new(&[7u8; 4][..], "blob", 4)
            .read_to_end(&mut ok)
            .unwrap();
        assert_eq!(ok, [7u8; 4]);
    }

    #[test]
    fn progress_gives_up_on_a_drip() {
        let limits = Limits {
            window: Duration::from_millis(100),
            min_bytes: 100,
            parallel_blobs: 1,
        };
        let drip = Drip {
            left: 1000,
            gap: Duration::from_millis(10),
        };
        let start = Instant::now();
        let err = Progress::new(drip, "blob", &limits)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < Duration::from_secs(2), "{err}");
        // The same drip is fine with a lower floor.
        let slow_ok = Limits {
            min_bytes: 2,
            ..limits
        };
        let drip = Drip {
            left: 30,
            gap: Duration::from_millis(10),
        };
        let mut out = Vec::new();
        Progress::new(drip, "blob", &slow_ok)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 30);
    }

    #[test]
    fn limited_reads_refuse_rather_than_truncate() {
        assert_eq!(read_limited(&b"abc"[..], "m", 3).unwrap(), b"abc");
        let err = read_limited(&b"abcd"[..], "m", 3).unwrap_err();
        assert!(err.to_string().contains("larger than the 3 bytes"), "{err}");
        assert!(check_length(Some("119"), "b", Some(118), 1 << 20).is_err());
        assert!(check_length(Some("117"), "b", Some(118), 1 << 20).is_err());
        assert!(check_length(Some("118"), "b", Some(118), 1 << 20).is_ok());
        assert!(check_length(Some("99999999999"), "m", None, 1 << 20).is_err());
        assert!(check_length(None, "m", None, 1).is_ok());
    }
}

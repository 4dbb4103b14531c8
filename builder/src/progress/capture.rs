//! What a step printed: the last `CAPTURE_BYTES` of it for the failure
//! report, and the bytes cut into lines as they arrive (a chunk from the
//! pipe may end in the middle of a line).

use std::collections::VecDeque;

/// How much of a step's output is kept for its failure report.
pub const CAPTURE_BYTES: usize = 64 * 1024;

/// Longer lines are broken into pieces of this size.
pub const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Default)]
pub struct Capture {
    kept: VecDeque<u8>,
    dropped: u64,
    partial: Vec<u8>,
}

impl Capture {
    /// Record `bytes`; returns the lines they complete (without the '\n').
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.keep(bytes);
        let mut lines = Vec::new();
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..i]);
            lines.push(take_line(&mut self.partial));
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
        // A step printing megabytes without a newline (a progress bar, a
        // binary) must not grow one line without bound: break it.
        while self.partial.len() > MAX_LINE {
            let tail = self.partial.split_off(MAX_LINE);
            lines.push(take_line(&mut self.partial));
            self.partial = tail;
        }
        lines
    }

    /// Record `bytes` for the report only (nothing shows them as lines).
    pub fn keep(&mut self, bytes: &[u8]) {
        let skipped = bytes.len().saturating_sub(CAPTURE_BYTES);
        let bytes = &bytes[skipped..];
        let excess = (self.kept.len() + bytes.len()).saturating_sub(CAPTURE_BYTES);
        self.kept.drain(..excess);
        self.dropped += (skipped + excess) as u64;
        self.kept.extend(bytes);
    }

    /// The unterminated last line, if any (shown live, flushed at the end).
    pub fn partial(&self) -> Option<String> {
        (!self.partial.is_empty()).then(|| String::from_utf8_lossy(&self.partial).into_owned())
    }

    /// The unterminated last line, taken: the step has ended.
    pub fn finish(&mut self) -> Option<String> {
        (!self.partial.is_empty()).then(|| take_line(&mut self.partial))
    }

    /// The kept output as lines; the first names what was cut off.
    pub fn report(&self) -> Vec<String> {
        let bytes: Vec<u8> = self.kept.iter().copied().collect();
        let mut text = String::from_utf8_lossy(&bytes).into_owned();
        let mut lines = Vec::new();
        if self.dropped > 0 {
            // The first kept line is a fragment: drop it with the rest.
            let cut = text.find('\n').map(|i| i + 1).unwrap_or(text.len());
            let fragment = cut as u64;
            text.drain(..cut);
            lines.push(format!(
                "[{} earlier bytes of output not kept]",
                self.dropped + fragment
            ));
        }
        lines.extend(text.lines().map(|l| l.trim_end_matches('\r').to_string()));
        lines
    }
}

fn take_line(buf: &mut Vec<u8>) -> String {
    let line = String::from_utf8_lossy(buf)
        .trim_end_matches('\r')
        .to_string();
    buf.clear();
    line
}

/// What a terminal would show of `line` on one row: the text after its
/// last carriage return (progress bars redraw with '\r'), tabs as spaces,
/// other control characters (escape sequences that would move our
/// cursor) dropped, cut to `width` characters.
pub fn screen_text(line: &str, width: usize) -> String {
    let shown = line.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("");
    shown
        .chars()
        .filter_map(|c| match c {
            '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .take(width)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_across_chunks() {
        let mut c = Capture::default();
        assert_eq!(c.push(b"one\ntw"), vec!["one"]);
        assert_eq!(c.partial().as_deref(), Some("tw"));
        assert_eq!(c.push(b"o\r\nthree"), vec!["two"]);
        assert_eq!(c.finish().as_deref(), Some("three"));
        assert_eq!(c.finish(), None);
        assert_eq!(c.report(), vec!["one", "two", "three"]);
    }

    #[test]
    fn only_the_last_bytes_are_kept_and_the_report_says_so() {
        let mut c = Capture::default();
        for i in 0..20_000 {
            c.push(format!("line {i:05}\n").as_bytes());
        }
        let report = c.report();
        assert!(
            report[0].contains("earlier bytes of output not kept"),
            "{}",
            report[0]
        );
        assert_eq!(report.last().map(String::as_str), Some("line 19999"));
        // Whole lines only after the note.
        assert!(report[1].starts_with("line "), "{}", report[1]);
        assert_eq!(report[1].len(), "line 00000".len());
        let kept: usize = report[1..].iter().map(|l| l.len() + 1).sum();
        assert!(kept <= CAPTURE_BYTES && kept > CAPTURE_BYTES - 20, "{kept}");
    }

    #[test]
    fn a_line_without_end_is_broken_into_pieces() {
        let mut c = Capture::default();
        let lines = c.push(&vec![b'z'; 2 * MAX_LINE + 10]);
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.len() == MAX_LINE));
        assert_eq!(c.finish().map(|l| l.len()), Some(10));
    }

    #[test]
    fn a_chunk_larger_than_what_is_kept_is_counted() {
        let mut c = Capture::default();
        c.keep(b"first\n");
        let big = "x\n".repeat(CAPTURE_BYTES);
        c.keep(big.as_bytes());
        let report = c.report();
        assert_eq!(
            report[0],
            format!(
                "[{} earlier bytes of output not kept]",
                6 + CAPTURE_BYTES + 2
            )
        );
        assert_eq!(report.len(), 1 + CAPTURE_BYTES / 2 - 1);
    }

    #[test]
    fn screen_text_shows_what_a_terminal_would() {
        assert_eq!(screen_text("10%\r50%\r", 80), "50%");
        assert_eq!(screen_text("a\tb\x1b[2Jc", 80), "a b[2Jc");
        assert_eq!(screen_text("abcdef", 3), "abc");
    }
}

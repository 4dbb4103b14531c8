//! The three ways a build's steps are shown, behind one state machine
//! that writes to any `Write` (stderr in `rbuild`, a buffer in tests):
//!
//! - plain: BuildKit's `--progress plain`: `#5 [stage 2/3] RUN …`, each
//!   output line as `#5 0.123 line`, then `#5 DONE 0.4s` or `#5 CACHED`;
//! - quiet: nothing, except a failed step's kept output;
//! - tty: a live area under the finished steps, redrawn in place: each
//!   running step's header and its last `FOLD_LINES` lines of output; a
//!   finished step collapses to `=> [stage 2/3] RUN … 0.4s`.
//!
//! Times come in as arguments so tests can drive the clock.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::Write;
use std::time::{Duration, Instant};

use super::capture::{screen_text, Capture};

/// Output lines a running step shows in the tty renderer.
pub const FOLD_LINES: usize = 6;

/// Redraws caused by output are at most this frequent (a step printing
/// thousands of lines must not spend its time repainting the terminal).
const REDRAW_EVERY: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quiet,
    Tty,
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    Cached,
    Done,
    /// A metadata step (ENV, CMD, …): it only changed the config.
    Meta,
    /// The message names what failed (file, line, exit code).
    Failed(String),
}

struct Live {
    id: usize,
    header: String,
    started: Instant,
    capture: Capture,
    recent: VecDeque<String>,
    /// A process's output was attached: a failure shows it, even empty.
    piped: bool,
}

pub struct Renderer<W: Write> {
    style: Style,
    out: W,
    width: usize,
    live: Vec<Live>,
    /// Rows of the live area now on screen (the cursor is below them).
    drawn: usize,
    last_draw: Option<Instant>,
}

const DIM: &str = "\x1b[2m";
const BLUE: &str = "\x1b[34m";
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

impl<W: Write> Renderer<W> {
    pub fn new(style: Style, out: W) -> Renderer<W> {
        Renderer {
            style,
            out,
            width: 80,
            live: Vec::new(),
            drawn: 0,
            last_draw: None,
        }
    }

    /// The terminal's width in columns (tty style).
    pub fn set_width(&mut self, columns: usize) {
        self.width = columns.max(20);
    }

    pub fn writer(&self) -> &W {
        &self.out
    }

    pub fn begin(&mut self, id: usize, header: String, now: Instant) {
        if self.style == Style::Plain {
            self.emit(&format!("#{id} {header}\n"));
        }
        // tty: drawn by the next output, tick or end; a cache hit that
        // ends within milliseconds is never drawn as running.
        self.live.push(Live {
            id,
            header,
            started: now,
            capture: Capture::default(),
            recent: VecDeque::new(),
            piped: false,
        });
    }

    /// The step runs a process whose output follows.
    pub fn attach(&mut self, id: usize) {
        if let Some(step) = self.live.iter_mut().find(|s| s.id == id) {
            step.piped = true;
        }
    }

    pub fn output(&mut self, id: usize, bytes: &[u8], now: Instant) {
        let Some(step) = self.live.iter_mut().find(|s| s.id == id) else {
            return;
        };
        step.piped = true;
        if self.style == Style::Quiet {
            step.capture.keep(bytes);
            return;
        }
        let lines = step.capture.push(bytes);
        match self.style {
            Style::Plain => {
                let secs = now.duration_since(step.started).as_secs_f64();
                let mut text = String::new();
                for l in &lines {
                    let _ = writeln!(text, "#{id} {secs:.3} {l}");
                }
                self.emit(&text);
            }
            Style::Quiet => {}
            Style::Tty => {
                step.recent.extend(lines);
                while step.recent.len() > FOLD_LINES {
                    step.recent.pop_front();
                }
                let due = self
                    .last_draw
                    .is_none_or(|t| now.duration_since(t) >= REDRAW_EVERY);
                if due {
                    self.redraw("", now);
                }
            }
        }
    }

    pub fn end(&mut self, id: usize, end: End, now: Instant) {
        let Some(i) = self.live.iter().position(|s| s.id == id) else {
            return;
        };
        let mut step = self.live.remove(i);
        let took = now.duration_since(step.started).as_secs_f64();
        let last = step.capture.finish();
        match self.style {
            Style::Plain => {
                let mut text = String::new();
                if let Some(l) = last {
                    let _ = writeln!(text, "#{id} {took:.3} {l}");
                }
                match &end {
                    End::Cached => {
                        let _ = writeln!(text, "#{id} CACHED");
                    }
                    End::Done => {
                        let _ = writeln!(text, "#{id} DONE {took:.1}s");
                    }
                    End::Meta => {}
                    End::Failed(msg) => {
                        let _ = writeln!(text, "#{id} ERROR: {msg}");
                    }
                }
                self.emit(&text);
            }
            Style::Quiet => {
                if matches!(end, End::Failed(_)) && step.piped {
                    let report = failure_report(&step);
                    self.emit(&report);
                }
            }
            Style::Tty => {
                let time = format!("{took:.1}s");
                let mut text = match &end {
                    End::Cached => {
                        let left = format!("=> CACHED {}", step.header);
                        format!("{BLUE}{}{RESET}\n", self.row(&left, ""))
                    }
                    End::Done | End::Meta => {
                        let left = format!("=> {}", step.header);
                        format!("{BLUE}{}{RESET}\n", self.row(&left, &time))
                    }
                    End::Failed(_) => {
                        let left = format!("=> ERROR {}", step.header);
                        format!("{RED}{}{RESET}\n", self.row(&left, &time))
                    }
                };
                if matches!(end, End::Failed(_)) && step.piped {
                    text.push_str(&failure_report(&step));
                }
                self.redraw(&text, now);
            }
        }
    }

    /// A line of its own (a warning), kept above the live area.
    pub fn note(&mut self, text: &str, now: Instant) {
        match self.style {
            Style::Plain => self.emit(&format!("{text}\n")),
            Style::Quiet => {}
            Style::Tty => self.redraw(&format!("{text}\n"), now),
        }
    }

    /// Repaint the live area (running times move on). tty only.
    pub fn tick(&mut self, now: Instant) {
        if self.style == Style::Tty && (!self.live.is_empty() || self.drawn > 0) {
            self.redraw("", now);
        }
    }

    /// The build is over: clear whatever is still live.
    pub fn finish(&mut self, now: Instant) {
        if self.style == Style::Tty {
            self.live.clear();
            self.redraw("", now);
        }
    }

    /// One frame: back to the top of the live area, clear it, print
    /// `permanent` (finished steps, notes; it scrolls up for good), then
    /// the live area again, every row cut to the width so that none wraps
    /// (a wrapped row would throw off the count we move back up by).
    fn redraw(&mut self, permanent: &str, now: Instant) {
        let mut buf = String::new();
        if self.drawn > 0 {
            let _ = write!(buf, "\x1b[{}F", self.drawn);
        }
        buf.push_str("\x1b[J");
        buf.push_str(permanent);
        let mut rows = 0;
        for step in &self.live {
            let secs = now.duration_since(step.started).as_secs_f64();
            let _ = writeln!(
                buf,
                "{}",
                self.row(&format!("=> {}", step.header), &format!("{secs:.1}s"))
            );
            rows += 1;
            let partial = step.capture.partial();
            let shown: Vec<&str> = step
                .recent
                .iter()
                .map(String::as_str)
                .chain(partial.as_deref())
                .collect();
            for l in &shown[shown.len().saturating_sub(FOLD_LINES)..] {
                let text = screen_text(l, self.width.saturating_sub(9));
                let _ = writeln!(buf, "{DIM}=> => # {text}{RESET}");
                rows += 1;
            }
        }
        self.drawn = rows;
        self.last_draw = Some(now);
        self.emit(&buf);
    }

    /// `left` cut to fit, `right` at the right edge (one column spare:
    /// writing the last column makes some terminals wrap early).
    fn row(&self, left: &str, right: &str) -> String {
        let usable = self.width.saturating_sub(1);
        let room = usable.saturating_sub(right.chars().count() + 1);
        let mut left = screen_text(left, room);
        let pad = usable
            .saturating_sub(left.chars().count() + right.chars().count())
            .max(1);
        if right.is_empty() {
            return left;
        }
        left.extend(std::iter::repeat_n(' ', pad));
        left.push_str(right);
        left
    }

    fn emit(&mut self, text: &str) {
        let _ = self.out.write_all(text.as_bytes());
        let _ = self.out.flush();
    }
}

/// BuildKit's failure block: the step and all of its kept output.
fn failure_report(step: &Live) -> String {
    let lines = step.capture.report();
    let mut text = String::new();
    let _ = writeln!(text, "------");
    let _ = writeln!(text, " > {}:", step.header);
    if lines.is_empty() {
        let _ = writeln!(text, "(no output)");
    }
    for l in lines {
        let _ = writeln!(text, "{}", screen_text(&l, usize::MAX));
    }
    let _ = writeln!(text, "------");
    text
}

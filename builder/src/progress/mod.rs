//! Build progress as BuildKit shows it: step N/M, CACHED or the time it
//! took, and a RUN step's output streamed (plain) or folded (tty); quiet
//! shows only a failed step's output. The rendering is in `render`; this
//! is the thread-safe front the executor and the RUN output readers call.

mod capture;
pub mod render;

use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use capture::CAPTURE_BYTES;
pub use render::{End, Renderer, Style, FOLD_LINES};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ProgressMode {
    /// tty when stderr is a terminal, else plain
    #[default]
    Auto,
    /// one line per event; RUN output streamed with its step's number
    Plain,
    /// a live view: running steps with their last lines, folded when done
    Tty,
    /// nothing but a failed step's output
    Quiet,
}

impl ProgressMode {
    /// What `Auto` means here: tty on a terminal that can move its cursor.
    pub fn style(self) -> Style {
        match self {
            ProgressMode::Plain => Style::Plain,
            ProgressMode::Quiet => Style::Quiet,
            ProgressMode::Tty => Style::Tty,
            ProgressMode::Auto => {
                let dumb = std::env::var_os("TERM").is_none_or(|t| t == "dumb" || t.is_empty());
                if std::io::stderr().is_terminal() && !dumb {
                    Style::Tty
                } else {
                    Style::Plain
                }
            }
        }
    }
}

/// A step as the renderer knows it: BuildKit's `#N`, unique in the build
/// (steps of parallel stages never share one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepId(usize);

type Shared = Mutex<Renderer<Box<dyn Write + Send>>>;

pub struct Progress {
    renderer: Arc<Shared>,
    next: AtomicUsize,
    stop: Arc<AtomicBool>,
    /// tty: repaints the running steps' times while they print nothing.
    ticker: Option<JoinHandle<()>>,
}

/// How often the tty view repaints by itself.
const TICK: Duration = Duration::from_millis(100);

impl Progress {
    pub fn new(mode: ProgressMode) -> Progress {
        let style = mode.style();
        let mut r: Renderer<Box<dyn Write + Send>> =
            Renderer::new(style, Box::new(std::io::stderr()));
        if style == Style::Tty {
            r.set_width(terminal_width());
        }
        let renderer = Arc::new(Mutex::new(r));
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = (style == Style::Tty).then(|| {
            let (renderer, stop) = (renderer.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(TICK);
                    let mut r = lock(&renderer);
                    r.set_width(terminal_width());
                    r.tick(Instant::now());
                }
            })
        });
        Progress {
            renderer,
            next: AtomicUsize::new(1),
            stop,
            ticker,
        }
    }

    fn renderer(&self) -> MutexGuard<'_, Renderer<Box<dyn Write + Send>>> {
        lock(&self.renderer)
    }

    /// A step starts: `[stage n/total] first line of its instruction`.
    pub fn step(&self, stage: &str, n: usize, total: usize, text: &str) -> StepId {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let first_line = shorten(text.lines().next().unwrap_or(""), MAX_HEADER);
        // BuildKit: `[2/5]` in a build of one unnamed stage, else `[name 2/5]`.
        let header = if stage.is_empty() {
            format!("[{n}/{total}] {first_line}")
        } else {
            format!("[{stage} {n}/{total}] {first_line}")
        };
        self.renderer().begin(id, header, Instant::now());
        StepId(id)
    }

    pub fn cached(&self, step: StepId) {
        self.end(step, End::Cached);
    }

    pub fn done(&self, step: StepId) {
        self.end(step, End::Done);
    }

    /// A step that only changed the config.
    pub fn meta(&self, step: StepId) {
        self.end(step, End::Meta);
    }

    pub fn failed(&self, step: StepId, error: &dyn std::fmt::Display) {
        self.end(step, End::Failed(error.to_string()));
    }

    fn end(&self, step: StepId, end: End) {
        self.renderer().end(step.0, end, Instant::now());
    }

    pub fn output(&self, step: StepId, bytes: &[u8]) {
        self.renderer().output(step.0, bytes, Instant::now());
    }

    /// Feed everything read from `pipe` (a RUN's stdout and stderr) to
    /// `step` until every writer has closed it.
    pub fn drain(&self, step: StepId, pipe: OwnedFd) {
        self.renderer().attach(step.0);
        let mut f = std::fs::File::from(pipe);
        let mut buf = [0u8; 16 * 1024];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.output(step, &buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let msg = format!("\n[rbuild: reading the step's output failed: {e}]\n");
                    self.output(step, msg.as_bytes());
                    break;
                }
            }
        }
    }

    pub fn note(&self, s: &str) {
        self.renderer().note(s, Instant::now());
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.ticker.take() {
            t.thread().unpark();
            let _ = t.join();
        }
        self.renderer().finish(Instant::now());
    }
}

/// The most of an instruction's first line a step header shows, in
/// characters: a generated Containerfile can hold a line of megabytes
/// (a base64 blob in an ENV or LABEL), which no log should repeat.
pub const MAX_HEADER: usize = 200;

/// `line` cut to `max` characters, saying how much was left out.
fn shorten(line: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match line.char_indices().nth(max) {
        None => line.into(),
        Some((cut, _)) => {
            let rest = line.len() - cut;
            format!("{}... ({rest} more bytes)", &line[..cut]).into()
        }
    }
}

/// A panic on one stage's thread must not silence the others.
fn lock(m: &Shared) -> MutexGuard<'_, Renderer<Box<dyn Write + Send>>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Columns of the terminal on stderr; 80 when it has none.
fn terminal_width() -> usize {
    // SAFETY: winsize is plain data; zero is valid.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes a winsize into `ws`, which outlives the call.
    let rc = unsafe { libc::ioctl(std::io::stderr().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    if rc == 0 && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        80
    }
}

#[cfg(test)]
mod fold_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_instruction_lines_are_cut_in_headers() {
        assert_eq!(shorten("RUN true", 200), "RUN true");
        let exact = "x".repeat(200);
        assert_eq!(shorten(&exact, 200), exact);
        let long = format!("LABEL a={}", "é".repeat(1000));
        let cut = shorten(&long, 200);
        assert_eq!(cut.chars().count(), 200 + "... (1616 more bytes)".len());
        assert!(cut.starts_with("LABEL a=é"), "{cut}");
        assert!(cut.ends_with("é... (1616 more bytes)"), "{cut}");
    }
}

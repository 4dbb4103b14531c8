//! Build progress as BuildKit prints it in plain mode: one line per step,
//! `CACHED` or the time it took; RUN output streams in between.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum ProgressMode {
    /// plain on this version (folding needs a tty renderer we do not have yet)
    #[default]
    Auto,
    Plain,
    Quiet,
}

pub struct Progress {
    mode: ProgressMode,
    // Steps of parallel stages print whole lines only.
    out: Mutex<()>,
}

impl Progress {
    pub fn new(mode: ProgressMode) -> Progress {
        Progress {
            mode,
            out: Mutex::new(()),
        }
    }

    fn line(&self, s: &str) {
        if self.mode == ProgressMode::Quiet {
            return;
        }
        let _guard = self.out.lock().unwrap_or_else(|p| p.into_inner());
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{s}");
    }

    pub fn step(&self, stage: &str, n: usize, total: usize, text: &str) {
        let first_line = text.lines().next().unwrap_or("");
        self.line(&format!("#{n} [{stage} {n}/{total}] {first_line}"));
    }

    pub fn cached(&self, n: usize) {
        self.line(&format!("#{n} CACHED"));
    }

    pub fn done(&self, n: usize, took: Duration) {
        self.line(&format!("#{n} DONE {:.1}s", took.as_secs_f64()));
    }

    pub fn note(&self, s: &str) {
        self.line(s);
    }
}

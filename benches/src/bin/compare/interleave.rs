//! Round-robin timing: every iteration runs each contender once, in turn,
//! so drift (page-cache eviction, thermal, a neighbour's load) lands on all
//! of them alike. The first `warmup` iterations are run and thrown away.

use std::time::Duration;

use benches::stats::Samples;

pub type RunFn<'a> = Box<dyn FnMut(usize) -> Result<Duration, String> + 'a>;

pub struct Contender<'a> {
    pub name: String,
    /// Where the work differs from the others', said in the table.
    pub note: String,
    /// The exact command (or library call) timed.
    pub command: String,
    /// The baseline the ratios are computed against.
    pub is_rbox: bool,
    pub skipped: Option<String>,
    pub samples: Samples,
    run: Option<RunFn<'a>>,
}

impl<'a> Contender<'a> {
    pub fn new(name: &str, command: String, note: &str, run: RunFn<'a>) -> Contender<'a> {
        Contender {
            name: name.to_string(),
            note: note.to_string(),
            command,
            is_rbox: false,
            skipped: None,
            samples: Samples::default(),
            run: Some(run),
        }
    }

    pub fn rbox(mut self) -> Self {
        self.is_rbox = true;
        self
    }

    /// A row that says why this peer did not run.
    pub fn skipped(name: &str, reason: impl Into<String>) -> Contender<'a> {
        Contender {
            name: name.to_string(),
            note: String::new(),
            command: String::new(),
            is_rbox: false,
            skipped: Some(reason.into()),
            samples: Samples::default(),
            run: None,
        }
    }
}

pub fn interleave(contenders: &mut [Contender<'_>], warmup: usize, runs: usize, label: &str) {
    for i in 0..warmup + runs {
        for c in contenders.iter_mut() {
            if c.skipped.is_some() {
                continue;
            }
            let Some(run) = c.run.as_mut() else { continue };
            match run(i) {
                Ok(d) if i >= warmup => c.samples.push(d),
                Ok(_) => {}
                Err(e) => {
                    eprintln!("compare: {label}: {} failed on run {i}: {e}", c.name);
                    c.skipped = Some(format!("failed on run {}: {e}", i + 1));
                    c.samples = Samples::default();
                }
            }
        }
        let phase = if i < warmup { "warm-up" } else { "run" };
        eprintln!(
            "compare: {label}: {phase} {}/{} done",
            if i < warmup { i + 1 } else { i + 1 - warmup },
            if i < warmup { warmup } else { runs }
        );
    }
    for c in contenders.iter_mut() {
        c.run = None;
    }
}

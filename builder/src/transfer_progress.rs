//! How `rbuild pull/push/load` show transfers: indicatif bars (size, rate,
//! time left) when stderr is a terminal, the engine's plain lines when it
//! is not (logs, pipes, CI), nothing with `--quiet`.
//!
//! The engine reports through `engine::progress::TransferProgress`; this is
//! only the drawing, so the library never depends on indicatif.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use engine::progress::{short_id, summary, NoProgress, Note, Phase, PlainLines, TransferProgress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The display for one command: quiet, bars, or lines, from `--quiet` and
/// whether stderr is a terminal.
pub fn for_stderr(quiet: bool) -> Box<dyn TransferProgress> {
    if quiet {
        Box::new(NoProgress)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars::new())
    } else {
        Box::new(PlainLines::stderr())
    }
}

/// One bar per transfer under a shared `MultiProgress` on stderr. Bars of
/// finished transfers stay on screen with their size, time and rate, as
/// `docker pull` leaves its lines.
pub struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<Phase, HashMap<String, ProgressBar>>>,
}

const SIZED: &str = "{prefix:>6} {msg:14} [{bar:30}] {binary_bytes:>10}/{binary_total_bytes:<10} {binary_bytes_per_sec:>12} {eta}";
const UNSIZED: &str =
    "{prefix:>6} {msg:14} {spinner} {binary_bytes:>10} {binary_bytes_per_sec:>12} {elapsed}";
/// A finished bar shows the same summary as a plain line.
const FINISHED: &str = "{prefix:>6} {msg}";

impl Bars {
    pub fn new() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bar(&self, phase: Phase, id: &str) -> Option<ProgressBar> {
        let bars = self.bars.lock().unwrap_or_else(|p| p.into_inner());
        bars.get(&phase).and_then(|m| m.get(id)).cloned()
    }
}

impl Default for Bars {
    fn default() -> Self {
        Bars::new()
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("the bar templates are valid")
        .progress_chars("=> ")
}

impl TransferProgress for Bars {
    fn start(&self, phase: Phase, id: &str, total: Option<u64>) {
        let bar = match total {
            Some(t) => ProgressBar::new(t).with_style(style(SIZED)),
            None => ProgressBar::new_spinner().with_style(style(UNSIZED)),
        };
        let bar = self
            .multi
            .add(bar)
            .with_prefix(phase.verb())
            .with_message(short_id(id).to_string());
        self.bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(phase)
            .or_default()
            .insert(id.to_string(), bar);
    }

    fn advance(&self, phase: Phase, id: &str, bytes: u64) {
        if let Some(bar) = self.bar(phase, id) {
            bar.inc(bytes);
        }
    }

    fn finish(&self, phase: Phase, id: &str) {
        let bar = self
            .bars
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&phase)
            .and_then(|m| m.remove(id));
        if let Some(bar) = bar {
            let bytes = bar.length().unwrap_or(0).max(bar.position());
            bar.set_style(style(FINISHED));
            bar.finish_with_message(summary(phase, id, bytes, bar.elapsed()));
        }
    }

    fn note(&self, phase: Phase, id: &str, note: &Note) {
        let line = match note {
            Note::Exists => format!("{:>6} {} already exists", phase.verb(), short_id(id)),
            Note::Mounted { from } => {
                format!("{:>6} {} mounted from {from}", phase.verb(), short_id(id))
            }
            Note::Manifest => format!("{:>6} manifest {id}", phase.verb()),
        };
        let _ = self.multi.println(line);
    }
}

impl Drop for Bars {
    /// Bars of transfers that never finished (the command failed) would
    /// stay half drawn above the error message: take them away.
    fn drop(&mut self) {
        let bars = std::mem::take(&mut *self.bars.lock().unwrap_or_else(|p| p.into_inner()));
        for bar in bars.into_values().flat_map(HashMap::into_values) {
            bar.finish_and_clear();
        }
    }
}

//! `events [--stats] [--interval D] ID`: runc's event stream (stats every
//! interval, oom) as JSON lines; `--stats` prints one stats event.

use std::io::Write;
use std::time::Duration;

use runner::ocispec::{events, OciError};

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the container's stats once and exit.
    #[arg(long)]
    pub stats: bool,
    /// How often to report stats: a number with ms, s, m or h (runc's 5s).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    pub id: String,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?}: a duration such as 500ms, 5s, 1m");
    let split = s.find(|c: char| c.is_ascii_alphabetic()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(bad()),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), OciError> {
    if a.stats {
        let v = events::stats(&cli.root, &a.id)?;
        println!("{}", serde_json::to_string(&v).expect("json"));
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    events::stream(&cli.root, &a.id, a.interval, |v| {
        let _ = writeln!(out, "{}", serde_json::to_string(v).expect("json"));
        let _ = out.flush();
    })
}

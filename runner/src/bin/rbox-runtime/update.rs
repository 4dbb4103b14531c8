//! `update [--resources FILE|-] [--memory N] [--memory-swap N]
//! [--cpu-quota N] [--cpu-period N] [--cpu-share N] [--pids-limit N] ID`.

use std::path::PathBuf;

use runner::ocispec::update::{self, UpdateFlags};
use runner::ocispec::OciError;

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A runtime-spec LinuxResources object (JSON); `-` reads stdin.
    #[arg(short = 'r', long)]
    pub resources: Option<PathBuf>,
    /// Memory limit, bytes (k, m, g suffixes taken; it cannot be removed).
    #[arg(long, value_parser = parse_bytes, allow_hyphen_values = true)]
    pub memory: Option<i64>,
    /// Memory plus swap limit, bytes (-1: unlimited swap).
    #[arg(long, value_parser = parse_bytes, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    /// CPU CFS quota, microseconds per period (-1: no quota).
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU CFS period, microseconds.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU shares (relative weight).
    #[arg(long = "cpu-share", alias = "cpu-shares")]
    pub cpu_share: Option<u64>,
    /// Maximum number of processes (-1: unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    pub id: String,
}

/// A byte count: a number, or one with a k, m or g suffix (powers of
/// 1024, as runc's units); `-1` as is.
fn parse_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mul) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("{s:?}: a number of bytes (k, m, g suffixes)"))
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), OciError> {
    let flags = UpdateFlags {
        memory: a.memory,
        memory_swap: a.memory_swap,
        cpu_quota: a.cpu_quota,
        cpu_period: a.cpu_period,
        cpu_shares: a.cpu_share,
        pids_limit: a.pids_limit,
    };
    let res = update::resources(a.resources.as_deref(), &flags)?;
    update::update(&cli.root, &a.id, &res)
}

//! `compare`: rbox side by side with its peers (crun, runc, podman, docker,
//! umoci, tar, buildah), interleaved, with warm-ups, medians, min–max and
//! ratios; markdown and SVG into benches/results/, and optionally the
//! README's performance section.
//!
//! `cargo run -p benches --release --bin compare -- [--runs N] [--only startup|unpack|build|growth] [--docs]`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};

use benches::machine::Machine;
use benches::scratch::{Scratch, ScratchKind};

mod build;
mod docker;
mod growth;
mod interleave;
mod plot;
mod rbox;
mod report;
mod startup;
mod unpack;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Part {
    Startup,
    Unpack,
    Build,
    Growth,
}

impl Part {
    fn key(self) -> &'static str {
        match self {
            Part::Startup => "startup",
            Part::Unpack => "unpack",
            Part::Build => "build",
            Part::Growth => "growth",
        }
    }
}

const ALL: [Part; 4] = [Part::Startup, Part::Unpack, Part::Build, Part::Growth];

#[derive(Parser)]
#[command(name = "compare", about = "Time rbox against its peers, side by side")]
struct Cli {
    /// Timed runs per tool (after the warm-ups)
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Untimed runs per tool first
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Run only this part
    #[arg(long, value_enum)]
    only: Option<Part>,
    /// Where unpack/build targets are written: a journaled ext4 loop image or a tmpfs
    #[arg(long, default_value = "ext4", value_parser = ["ext4", "tmpfs"])]
    fs: String,
    /// Timed runs per point in the growth part (each point can take seconds)
    #[arg(long, default_value_t = 5)]
    growth_runs: usize,
    /// Largest synthetic image in the growth part, in MB
    #[arg(long, default_value_t = 1000)]
    growth_max_mb: u64,
    /// Also rewrite the section between <!-- perf:begin --> and <!-- perf:end -->
    /// of docs/benchmarks.md (the README keeps a short headline table by hand)
    #[arg(long, alias = "readme")]
    docs: bool,
    /// The page whose perf section --docs rewrites
    #[arg(long, alias = "readme-path", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/benchmarks.md"))]
    docs_path: PathBuf,
    /// Run no part: only rebuild the docs section from the results directory (with --docs)
    #[arg(long)]
    report_only: bool,
    /// Results directory
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/results"))]
    out: PathBuf,
    #[command(subcommand)]
    helper: Option<Helper>,
}

#[derive(Subcommand)]
enum Helper {
    /// (internal) unpack one image of a store, timed by the parent process
    #[command(hide = true)]
    UnpackOne { store: PathBuf, image: String },
}

/// What every part needs.
pub struct Ctx {
    pub runs: usize,
    pub warmup: usize,
    pub growth_runs: usize,
    pub growth_max_mb: u64,
    pub cache: PathBuf,
    pub scratch: Scratch,
    pub out: PathBuf,
    pub header: String,
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compare: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Helper::UnpackOne { store, image }) = &cli.helper {
        return rbox::unpack_one(store, image);
    }
    benches::require_root()?;
    if cli.runs < 1 {
        bail!("--runs must be at least 1");
    }
    let kind = ScratchKind::parse(&cli.fs).expect("clap checked");
    benches::scratch::check_tools(kind)?;
    let cache = benches::cache_dir();
    std::fs::create_dir_all(&cache).with_context(|| format!("create {}", cache.display()))?;
    let scratch = Scratch::mount(&cache, kind).context("mount the scratch filesystem")?;
    let machine = Machine::probe();
    let header = format!(
        "{}  \nTree: {}.  \nTargets on: {}.  \nPage cache: inputs re-read (`cat > /dev/null`) and `sync` before every timed run, so inputs are warm and no earlier writeback is pending.  \nCommand: `cargo run -p benches --release --bin compare -- {}`, {} warm-up + {} timed runs per tool, interleaved round-robin. Measured {}.",
        machine.markdown(),
        tree_commit(),
        report::portable(&scratch.describe()),
        report::portable(&std::env::args().skip(1).collect::<Vec<_>>().join(" ")),
        cli.warmup,
        cli.runs,
        utc_now(),
    );
    std::fs::create_dir_all(&cli.out).with_context(|| format!("create {}", cli.out.display()))?;
    let ctx = Ctx {
        runs: cli.runs,
        warmup: cli.warmup,
        growth_runs: cli.growth_runs,
        growth_max_mb: cli.growth_max_mb,
        cache,
        scratch,
        out: cli.out.clone(),
        header,
    };
    let parts: Vec<Part> = match (cli.report_only, cli.only) {
        (true, _) => Vec::new(),
        (false, Some(p)) => vec![p],
        (false, None) => ALL.to_vec(),
    };
    for part in parts {
        eprintln!("compare: === {} ===", part.key());
        let section = match part {
            Part::Startup => startup::run(&ctx),
            Part::Unpack => unpack::run(&ctx),
            Part::Build => build::run(&ctx),
            Part::Growth => growth::run(&ctx),
        };
        let md = section.markdown(&ctx.header);
        let path = ctx.out.join(format!("{}.md", part.key()));
        std::fs::write(&path, &md).with_context(|| format!("write {}", path.display()))?;
        println!("{md}");
        eprintln!("compare: wrote {}", path.display());
    }
    if cli.docs {
        let readme = cli.docs_path.clone();
        let mut body = String::from(
            "Reproduce: `bash benches/scripts/install-peers.sh && cargo run -p benches --release --bin compare -- --docs` (as root). Per-part details and plots: [benches/results/](../benches/results/).\n\n",
        );
        for p in ALL {
            let f = ctx.out.join(format!("{}.md", p.key()));
            if let Ok(text) = std::fs::read_to_string(&f) {
                body.push_str(&report::readme_digest(&text, p == Part::Growth));
                body.push('\n');
            }
        }
        report::rewrite_readme(&readme, &body).map_err(anyhow::Error::msg)?;
        eprintln!("compare: rewrote the perf section of {}", readme.display());
    }
    Ok(())
}

/// The commit measured: `RBOX_BENCH_COMMIT` (set when running from an
/// exported tree), else the checkout's HEAD, marked dirty if it has changes.
fn tree_commit() -> String {
    if let Ok(c) = std::env::var("RBOX_BENCH_COMMIT") {
        return format!("commit {c}");
    }
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(c) => {
            let dirty = git(&["status", "--porcelain"])
                .map(|s| !s.is_empty())
                .unwrap_or(false);
            format!(
                "commit {c}{}",
                if dirty {
                    " plus uncommitted changes"
                } else {
                    ""
                }
            )
        }
        None => "unknown commit".into(),
    }
}

fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

//! `rbuild build -t NAME[:TAG] [-f FILE] [--build-arg K=V] [--target S]
//! [--progress auto|plain|tty|quiet] CONTEXT`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use builder::exec::{build, BuildOptions};
use builder::progress::ProgressMode;
use engine::runtime::NetworkMode;
use engine::ImageRef;

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Name and optionally a tag in the NAME[:TAG] format (repeatable)
    #[arg(short, long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Containerfile (default: CONTEXT/Containerfile, then CONTEXT/Dockerfile)
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// Set build-time variables (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg", value_name = "KEY=VALUE")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Networking mode for the RUN instructions during build
    #[arg(long, default_value = "host", value_parser = ["host", "none", "default"])]
    pub network: String,
    /// Type of progress output
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Suppress the build output and print the image ID on success (as
    /// --progress quiet); a failing step's output is still shown
    #[arg(short, long)]
    pub quiet: bool,
    /// Build context directory
    pub context: PathBuf,
}

pub fn run(root: &Path, args: BuildArgs) -> anyhow::Result<()> {
    let tags = args
        .tags
        .iter()
        .map(|t| t.parse::<ImageRef>())
        .collect::<Result<Vec<_>, _>>()?;
    let mut build_args = BTreeMap::new();
    for kv in &args.build_args {
        match kv.split_once('=') {
            Some((k, v)) => build_args.insert(k.to_string(), v.to_string()),
            None => match std::env::var(kv) {
                Ok(v) => build_args.insert(kv.clone(), v),
                Err(_) => continue, // Docker drops a bare KEY that is not set
            },
        };
    }
    if !args.context.is_dir() {
        bail!(
            "build context {} is not a directory",
            args.context.display()
        );
    }
    let progress = if args.quiet {
        ProgressMode::Quiet
    } else {
        args.progress
    };
    let opts = BuildOptions {
        context: args.context.clone(),
        file: args.file.clone(),
        tags,
        build_args,
        target: args.target.clone(),
        no_cache: args.no_cache,
        network: if args.network == "none" {
            NetworkMode::None
        } else {
            NetworkMode::Host
        },
        progress,
    };
    let store = super::open_store(root)?;
    let runtime = runner::native::NativeRuntime::new();
    let started = std::time::Instant::now();
    let manifest = build(&store, &runtime, &opts)
        .map_err(anyhow::Error::from)
        .context("build failed")?;
    if progress == ProgressMode::Quiet {
        println!("{manifest}");
    } else {
        eprintln!(
            "#done built {} in {:.2}s",
            manifest.short(),
            started.elapsed().as_secs_f64()
        );
        for t in &opts.tags {
            eprintln!("#done tagged {t}");
        }
        println!("{manifest}");
    }
    Ok(())
}

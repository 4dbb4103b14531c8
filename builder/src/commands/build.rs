//! `rbuild build -t NAME[:TAG] [-f FILE] [--build-arg K=V] [--target S]
//! [--progress auto|plain|tty|quiet] [--runtime native|crun|runc|youki] CONTEXT`

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use builder::cache_transfer::CacheLocation;
use builder::exec::{build, BuildOptions, PullPolicy};
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
    /// Do not use the cache for these stages (names or indexes; repeatable
    /// or comma-separated)
    #[arg(long = "no-cache-filter", value_name = "STAGE", value_delimiter = ',')]
    pub no_cache_filter: Vec<String>,
    /// Network of the RUN instructions: default (an isolated network
    /// namespace with outbound access through rbox's bridge and NAT, and
    /// no way to the host's loopback services), none (only lo), or host
    /// (the host's network, loopback services included: the opt-in, and
    /// the only way a RUN --network=host in the Containerfile is honored).
    /// Rootless (not root), default is none: rbox's bridge needs root in
    /// the host's network namespace and there is no user-mode network yet
    #[arg(long, default_value = "default", value_parser = ["default", "host", "none"])]
    pub network: String,
    /// Runtime of the RUN instructions: native (rbox's own) or an
    /// external OCI runtime driven through its command line: crun, runc
    /// or youki (these have no bridge network: use --network none or host)
    #[arg(long, default_value = "native", value_parser = runner::runtimes::NAMES)]
    pub runtime: String,
    /// Type of progress output
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Suppress the build output and print the image ID on success (as
    /// --progress quiet); a failing step's output is still shown
    #[arg(short, long)]
    pub quiet: bool,
    /// Always pull a newer version of every base image (default: only a
    /// base that is not in the store); --pull=never never pulls
    #[arg(long, num_args = 0..=1, default_missing_value = "always", value_parser = ["always", "missing", "never"])]
    pub pull: Option<String>,
    /// Allow plain http to a registry that is not on loopback, for base pulls
    #[arg(long)]
    pub insecure_registry: bool,
    /// Write the image ID to the file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Set metadata for the image (KEY=VALUE, repeatable)
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// A secret RUN --mount=type=secret,id=ID may read, in that step only
    /// (never in a layer, the cache key or the history):
    /// id=ID,src=FILE or id=ID,env=VAR (repeatable)
    #[arg(long = "secret", value_name = "id=ID,src=FILE|env=VAR")]
    pub secrets: Vec<String>,
    /// Load cached steps first: type=local,src=DIR or
    /// type=registry,ref=REF (what --cache-to wrote on this or another
    /// machine; repeatable)
    #[arg(
        long = "cache-from",
        value_name = "type=local,src=DIR|type=registry,ref=REF"
    )]
    pub cache_from: Vec<String>,
    /// After the build, write the steps it used or made:
    /// type=local,dest=DIR (an OCI layout, added to) or
    /// type=registry,ref=REF (an image index there, replaced)
    #[arg(
        long = "cache-to",
        value_name = "type=local,dest=DIR|type=registry,ref=REF"
    )]
    pub cache_to: Option<String>,
    /// Write the built stage's files out: type=local,dest=DIR (or DIR),
    /// type=tar,dest=FILE (or - for a tar on standard output). The image
    /// is stored (and tagged with -t) as well
    #[arg(short, long, value_name = "SPEC")]
    pub output: Option<String>,
    /// Check the Containerfile (parse, stages, expansions, lint rules)
    /// without building; exit 1 on an error or a warning
    #[arg(long)]
    pub check: bool,
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
    let mut labels = BTreeMap::new();
    for kv in &args.labels {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        if k.is_empty() {
            bail!("invalid --label {kv:?}: the key is empty (use KEY=VALUE)");
        }
        labels.insert(k.to_string(), v.to_string());
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
        no_cache_filter: args.no_cache_filter.clone(),
        network: match args.network.as_str() {
            "none" => NetworkMode::None,
            "host" => NetworkMode::Host,
            // Rootless: no bridge can be made (see runner::rootless); the
            // native runtime gives a step of the default network pasta's
            // instead, where pasta can, and only lo elsewhere.
            _ if runner::rootless::active() && runner::rootless::pasta::usable().is_err() => {
                NetworkMode::None
            }
            _ => NetworkMode::Bridge,
        },
        progress,
        pull: match args.pull.as_deref() {
            Some("always") => PullPolicy::Always,
            Some("never") => PullPolicy::Never,
            _ => PullPolicy::Missing,
        },
        registry: engine::oci::registry::PullOptions {
            platform: None,
            insecure: args.insecure_registry,
            auth_file: std::env::var_os("RBOX_AUTH_FILE").map(Into::into),
            limits: Default::default(),
        },
        labels,
        secrets: builder::exec::secrets::Secrets::from_specs(&args.secrets)
            .map_err(anyhow::Error::msg)?,
        cache_from: args
            .cache_from
            .iter()
            .map(|s| CacheLocation::parse("--cache-from", "src", s))
            .collect::<Result<_, String>>()
            .map_err(anyhow::Error::msg)?,
        cache_to: match args.cache_to.as_deref() {
            Some(s) => {
                Some(CacheLocation::parse("--cache-to", "dest", s).map_err(anyhow::Error::msg)?)
            }
            None => None,
        },
    };
    if args.check {
        return check(&opts);
    }
    let output = args
        .output
        .as_deref()
        .map(super::output::Output::parse)
        .transpose()?;
    // Chosen once; the RUN steps ask it what it can do, never its name.
    let runtime = runner::runtime_named(&args.runtime)?;
    if opts.network == NetworkMode::Bridge && !runtime.features().bridge_network {
        bail!(
            "--network default (rbox's bridge) is not available with the {} runtime: use --network none or host",
            runtime.name()
        );
    }
    let store = super::open_store(root)?;
    let started = std::time::Instant::now();
    let manifest = build(&store, &*runtime, &opts).map_err(|e| {
        // A failing RUN of a rootless build may have wanted a network.
        let offline = matches!(e, builder::exec::BuildError::RunFailed { .. })
            && runner::rootless::active()
            && args.network == "default";
        let why = runner::rootless::pasta::usable().err().filter(|_| offline);
        anyhow::Error::from(e).context(match why {
            Some(why) => format!(
                "build failed (rootless: RUN steps have only lo by default where pasta cannot network them: {why}; --network host gives them the host's)"
            ),
            None => "build failed".to_string(),
        })
    })?;
    if let Some(path) = &args.iidfile {
        // Written with the safe-output rules of save/export (no symlink
        // followed, nothing half-written).
        write_iidfile(path, &manifest.to_string())?;
    }
    if let Some(out) = &output {
        let image = store.find_image(&manifest.to_string())?;
        out.write(&store, &image)?;
    }
    // A tar on standard output leaves no room for the image id there.
    let print_id = !output.as_ref().is_some_and(|o| o.is_stdout());
    if progress == ProgressMode::Quiet {
        if print_id {
            println!("{manifest}");
        }
    } else {
        eprintln!(
            "#done built {} in {:.2}s",
            manifest.short(),
            started.elapsed().as_secs_f64()
        );
        for t in &opts.tags {
            eprintln!("#done tagged {t}");
        }
        if let Some(out) = &output {
            eprintln!("#done output {}", out.describe());
        }
        if print_id {
            println!("{manifest}");
        }
    }
    Ok(())
}

/// `--iidfile`: the image id, written beside the target under a fresh
/// name (O_EXCL, never through a symlink) and renamed over it.
fn write_iidfile(path: &Path, id: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = engine::outfile::OutputFile::create_mode(path, 0o644)
        .with_context(|| format!("--iidfile {}", path.display()))?;
    out.file()
        .write_all(id.as_bytes())
        .and_then(|()| out.commit())
        .with_context(|| format!("--iidfile: write {}", path.display()))
}

/// `--check`: the Containerfile's errors and lint warnings, no build.
fn check(opts: &BuildOptions) -> anyhow::Result<()> {
    let file = match &opts.file {
        Some(f) => f.clone(),
        None => builder::parse::find_containerfile(&opts.context).with_context(|| {
            format!(
                "no Containerfile or Dockerfile in {} (use -f FILE)",
                opts.context.display()
            )
        })?,
    };
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| file.display().to_string());
    let cf = builder::parse::Containerfile::from_bytes(&name, &bytes, &opts.build_args)?;
    let warnings = builder::check::check(&cf, opts.target.as_deref())?;
    if warnings.is_empty() {
        println!("Check complete, no warnings found.");
        return Ok(());
    }
    for w in &warnings {
        println!("{w}");
    }
    bail!("check complete, {} warning(s) found", warnings.len())
}

//! The executor: runs a parsed Containerfile's stages against the store.
//!
//! Each stage walks its steps with the variables in scope. Metadata steps
//! (ENV, CMD, …) change only the config. Layer steps (RUN, COPY, ADD, and
//! WORKDIR when it must create the directory) first look up their cache
//! key — blake3 of the previous key, the expanded instruction, the build
//! args in scope and, for COPY/ADD, the content of the sources — and on a
//! miss run: RUN in a container through the `Runtime` seam, COPY/ADD into a
//! fresh directory with no container. The result is snapshotted into a
//! layer, stored as an image and recorded in the cache, so a later build
//! (or a failure later in this one) keeps it.

mod config;
mod copy_step;
mod download;
mod leftovers;
mod run_step;
pub mod secrets;

use leftovers::step_container_id;
pub mod view;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use engine::image::{History, ImageConfig};
use engine::layer::LayerBlob;
use engine::runtime::{NetworkMode, Runtime};
use engine::{Descriptor, Digest, ImageRef, Store};

use crate::cache::{self, CacheKey};
use crate::parse::{Base, Containerfile, ContextFilter, Instruction, ParseError, Step};
use crate::progress::{End, Progress, ProgressMode};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A step failed: `at` is `FILE:LINE`.
    #[error("{at}: {instruction}: {message}")]
    Step {
        at: String,
        instruction: String,
        message: String,
    },
    #[error("{at}: RUN failed with exit code {code}: {command}")]
    RunFailed {
        at: String,
        command: String,
        code: i32,
    },
    #[error("{0}")]
    Other(String),
}

impl BuildError {
    fn step(step: &Step, message: impl std::fmt::Display) -> BuildError {
        BuildError::Step {
            at: format!("{}:{}", step.file, step.line),
            instruction: step.instruction.keyword().to_string(),
            message: message.to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub context: PathBuf,
    /// The Containerfile; `None` looks for Containerfile, then Dockerfile, in the context.
    pub file: Option<PathBuf>,
    pub tags: Vec<ImageRef>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    /// `--no-cache-filter`: stages (names, or indexes from 0) built
    /// without the step cache, as BuildKit's flag.
    pub no_cache_filter: Vec<String>,
    /// RUN's network when a step does not say (BuildKit's default: an
    /// isolated namespace, here on rbox's bridge). `Host` is also the
    /// opt-in without which `RUN --network=host` is refused.
    pub network: NetworkMode,
    pub progress: ProgressMode,
    /// When to pull a `FROM` image from its registry.
    pub pull: PullPolicy,
    /// Registry settings for those pulls.
    pub registry: engine::oci::registry::PullOptions,
    /// `--label`: added to the final image's labels (over the Containerfile's).
    pub labels: BTreeMap<String, String>,
    /// `--secret`: what `RUN --mount=type=secret` steps may read.
    pub secrets: secrets::Secrets,
    /// `--cache-from`: step caches to load first.
    pub cache_from: Vec<crate::cache_transfer::CacheLocation>,
    /// `--cache-to`: where the steps this build used or made are written
    /// after it succeeds.
    pub cache_to: Option<crate::cache_transfer::CacheLocation>,
}

/// When a base image is pulled, as `docker build` does it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// Only an image the store does not have (Docker's default).
    #[default]
    Missing,
    /// Every base, once per build (`--pull`).
    Always,
    /// Never: a missing base is an error.
    Never,
}

/// What a stage has built so far.
#[derive(Debug, Clone)]
pub(crate) struct ImageState {
    pub config: ImageConfig,
    pub layers: Vec<Descriptor>,
    /// The cache chain: the last step's key, or the base's manifest digest.
    pub chain: String,
}

impl ImageState {
    fn scratch() -> ImageState {
        ImageState {
            config: ImageConfig::scratch(),
            layers: Vec::new(),
            chain: "scratch".to_string(),
        }
    }

    fn from_image(image: &engine::Image) -> ImageState {
        ImageState {
            config: image.config.clone(),
            layers: image.manifest.layers.clone(),
            chain: image.manifest_digest.to_string(),
        }
    }

    pub fn stack(&self, store: &Store) -> view::LayerStack {
        view::LayerStack::of(store, &self.config.rootfs.diff_ids)
    }

    fn push_layer(&mut self, layer: Option<LayerBlob>, created_by: String) {
        engine::snapshot::append_layer(
            &mut self.config,
            &mut self.layers,
            layer,
            created_by,
            "rbuild".into(),
        );
    }
}

pub struct Executor<'a> {
    store: &'a Store,
    runtime: &'a dyn Runtime,
    opts: &'a BuildOptions,
    cf: Containerfile,
    filter: ContextFilter,
    progress: Progress,
    results: Mutex<HashMap<usize, ImageState>>,
    /// Bases pulled in this build, so `--pull` pulls each reference once.
    pulled: Mutex<HashMap<String, Digest>>,
    /// Every (cache key, step image) this build used or made, for
    /// `--cache-to`.
    steps: Mutex<Vec<(Digest, Digest)>>,
}

/// Build the image and tag it; returns its manifest digest.
pub fn build(
    store: &Store,
    runtime: &dyn Runtime,
    opts: &BuildOptions,
) -> Result<Digest, BuildError> {
    let file = match &opts.file {
        Some(f) => f.clone(),
        None => crate::parse::find_containerfile(&opts.context).ok_or_else(|| {
            BuildError::Other(format!(
                "no Containerfile or Dockerfile in {} (use -f FILE)",
                opts.context.display()
            ))
        })?,
    };
    let text = std::fs::read(&file)
        .map_err(|e| BuildError::Other(format!("cannot read {}: {e}", file.display())))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| file.display().to_string());
    let text = String::from_utf8(text)
        .map_err(|_| BuildError::Other(format!("{}: not UTF-8 text", file.display())))?;
    let cf = Containerfile::parse_with_args(&name, &text, &opts.build_args)?;
    if let Some(f) = opts.no_cache_filter.iter().find(|f| {
        cf.stage_index(f).is_none() && f.parse::<usize>().map_or(true, |i| i >= cf.stages.len())
    }) {
        return Err(BuildError::Other(format!(
            "--no-cache-filter {f}: {name} has no such stage"
        )));
    }
    let filter =
        ContextFilter::load(&opts.context).map_err(|e| BuildError::Other(e.to_string()))?;
    let exec = Executor {
        store,
        runtime,
        opts,
        cf,
        filter,
        progress: Progress::new(opts.progress),
        results: Mutex::new(HashMap::new()),
        pulled: Mutex::new(HashMap::new()),
        steps: Mutex::new(Vec::new()),
    };
    // Groups of RUN steps of killed builds (kill -9 leaves them behind).
    leftovers::reap_dead_step_groups();
    for unused in exec.cf.unused_build_args() {
        exec.progress.note(&format!(
            "warning: build arg {unused} was given but no ARG declares it"
        ));
    }
    for src in &opts.cache_from {
        let n = crate::cache_transfer::import_from(store, src, &opts.registry)
            .map_err(BuildError::Other)?;
        exec.progress
            .note(&format!("imported {n} cached steps from {src}"));
    }
    let built = exec.run()?;
    if let Some(dest) = &opts.cache_to {
        let steps = std::mem::take(&mut *exec.steps.lock().expect("steps lock"));
        let n = crate::cache_transfer::export_to(store, &steps, dest, &opts.registry)
            .map_err(BuildError::Other)?;
        exec.progress
            .note(&format!("exported {n} cached steps to {dest}"));
    }
    Ok(built)
}

impl Executor<'_> {
    /// A step this build used (cached) or made, for `--cache-to`.
    fn note_step(&self, key: &Digest, manifest: &Digest) {
        if self.opts.cache_to.is_some() {
            let mut steps = self.steps.lock().expect("steps lock");
            steps.push((key.clone(), manifest.clone()));
        }
    }

    fn run(&self) -> Result<Digest, BuildError> {
        let needed = self.cf.stages_needed(self.opts.target.as_deref())?;
        let target = *needed.last().expect("at least the target stage");
        // Stages whose dependencies are all built run side by side.
        let mut done: Vec<usize> = Vec::new();
        while done.len() < needed.len() {
            let ready: Vec<usize> = needed
                .iter()
                .copied()
                .filter(|i| !done.contains(i))
                .filter(|i| {
                    self.cf.stages[*i]
                        .deps
                        .iter()
                        .all(|d| done.contains(d) || !needed.contains(d))
                })
                .collect();
            if ready.is_empty() {
                return Err(BuildError::Other(
                    "stages depend on each other in a cycle".into(),
                ));
            }
            let outcomes: Vec<Result<(usize, ImageState), BuildError>> = std::thread::scope(|s| {
                let handles: Vec<_> = ready
                    .iter()
                    .map(|&i| s.spawn(move || self.build_stage(i).map(|st| (i, st))))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(BuildError::Other("a build stage panicked".into()))
                        })
                    })
                    .collect()
            });
            for outcome in outcomes {
                let (i, state) = outcome?;
                self.results.lock().expect("results lock").insert(i, state);
                done.push(i);
            }
        }
        let mut state = self.results.lock().expect("results lock")[&target].clone();
        for (k, v) in &self.opts.labels {
            state.config.config.labels.insert(k.clone(), v.clone());
        }
        let manifest = self
            .store
            .put_image(&state.config, state.layers.clone())
            .map_err(other)?;
        for tag in &self.opts.tags {
            self.store.tag(tag, &manifest).map_err(other)?;
        }
        Ok(manifest)
    }

    fn stage_state(&self, i: usize) -> Option<ImageState> {
        self.results.lock().expect("results lock").get(&i).cloned()
    }

    /// The base of a stage or the source of a `--from`, unpacked and ready.
    fn resolve_base(&self, base: &Base, step: Option<&Step>) -> Result<ImageState, BuildError> {
        match base {
            Base::Scratch => Ok(ImageState::scratch()),
            Base::Stage(i) => self.stage_state(*i).ok_or_else(|| {
                BuildError::Other(format!("stage {i} is used before it was built (a --from naming a variable only the image sets?)"))
            }),
            Base::Image(r) => {
                let image = self.base_image(r).map_err(|e| match step {
                    Some(s) => BuildError::step(s, e),
                    None => BuildError::Other(format!("FROM {r}: {e}")),
                })?;
                engine::layer::unpack_image(self.store, &image).map_err(other)?;
                Ok(ImageState::from_image(&image))
            }
        }
    }

    /// A base image from the store, pulled from its registry first when
    /// the pull policy says so. One pull per reference per build, even
    /// when stages side by side name the same base.
    fn base_image(&self, r: &str) -> Result<engine::Image, String> {
        let mut pulled = self.pulled.lock().expect("pulled lock");
        if let Some(d) = pulled.get(r) {
            return self.store.image_by_digest(d).map_err(|e| e.to_string());
        }
        if self.opts.pull != PullPolicy::Always {
            match self.store.find_image(r) {
                Ok(image) => return Ok(image),
                Err(engine::StoreError::ImageNotFound { .. })
                    if self.opts.pull != PullPolicy::Never => {}
                Err(e) => {
                    return Err(format!(
                        "{e} (try: rbuild pull {r}, or build without --pull=never)"
                    ))
                }
            }
        }
        self.progress.note(&format!("pulling {r}"));
        let transfer: Box<dyn engine::progress::TransferProgress> =
            if self.opts.progress == ProgressMode::Quiet {
                Box::new(engine::progress::NoProgress)
            } else {
                Box::new(engine::progress::PlainLines::stderr())
            };
        let digest = engine::oci::registry::pull(self.store, r, &self.opts.registry, transfer.as_ref())
            .map_err(|e| format!("{r} is not in the store and pulling it failed: {e} (try: rbuild import, or rbuild pull)"))?;
        pulled.insert(r.to_string(), digest.clone());
        self.store
            .image_by_digest(&digest)
            .map_err(|e| e.to_string())
    }

    fn build_stage(&self, index: usize) -> Result<ImageState, BuildError> {
        let stage = &self.cf.stages[index];
        let mut state = self.resolve_base(&stage.base, None)?;
        let mut ex = self.cf.stage_expander();
        ex.set_env_pairs(state.config.config.env.iter().map(String::as_str));
        // ONBUILD triggers of an image base run first, and are consumed.
        let mut steps: Vec<Step> = Vec::new();
        if matches!(stage.base, Base::Image(_)) {
            for (i, t) in std::mem::take(&mut state.config.config.on_build)
                .iter()
                .enumerate()
            {
                steps.push(crate::parse::parse_trigger(
                    &format!("ONBUILD trigger {}", i + 1),
                    t,
                    self.cf.escape,
                )?);
            }
        }
        steps.extend(stage.steps.iter().cloned());
        // BuildKit's labels: the `AS` name, else `stage-N`, and none at all
        // in a build of one unnamed stage (`[2/5]`).
        let name = match &stage.name {
            Some(n) => n.clone(),
            None if self.cf.stages.len() == 1 => String::new(),
            None => format!("stage-{}", stage.index),
        };
        let total = steps.len();
        let uncached = self.opts.no_cache
            || self.opts.no_cache_filter.iter().any(|f| {
                stage.name.as_deref() == Some(f.to_ascii_lowercase().as_str())
                    || f.parse() == Ok(stage.index)
            });
        let mut cmd_set_here = false;
        for (n, step) in steps.iter().enumerate() {
            let inst = step.expand(&ex)?;
            let text = inst.to_string();
            let id = self.progress.step(&name, n + 1, total, &text);
            // One step's work; its outcome is what the progress shows.
            let attempt = || -> Result<End, BuildError> {
                let mut key = CacheKey::new(&state.chain);
                key.field(text.as_bytes());
                let layer_step = match &inst {
                    Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) => true,
                    Instruction::Workdir(w) => !state
                        .stack(self.store)
                        .is_dir(&config::workdir_rel(&state.config, w)),
                    _ => false,
                };
                if !layer_step {
                    config::apply(&mut state.config, &inst, &mut cmd_set_here)
                        .map_err(|m| BuildError::step(step, m))?;
                    state.config.history.push(History {
                        created: state.config.created.clone(),
                        created_by: Some(text),
                        comment: Some("rbuild".into()),
                        empty_layer: true,
                    });
                    state.chain = key.finish().to_string();
                    ex.apply(&inst);
                    return Ok(End::Meta);
                }
                // Build args are RUN's environment, so they are part of its key.
                if let Instruction::Run(_) = inst {
                    for (k, v) in ex.run_args() {
                        key.field(format!("{k}={v}").as_bytes());
                    }
                }
                let prepared = match &inst {
                    Instruction::Copy(c) | Instruction::Add(c) => {
                        let plan = copy_step::plan(
                            self,
                            step,
                            index,
                            c,
                            matches!(inst, Instruction::Add(_)),
                            &state,
                        )?;
                        key.field(plan.inputs.as_bytes());
                        Some(plan)
                    }
                    _ => None,
                };
                let key = key.finish();
                if !uncached {
                    if let Some(m) = cache::lookup(self.store, &key) {
                        self.note_step(&key, &m);
                        let image = self.store.image_by_digest(&m).map_err(other)?;
                        engine::layer::unpack_image(self.store, &image).map_err(other)?;
                        state = ImageState::from_image(&image);
                        state.chain = key.to_string();
                        ex.apply(&inst);
                        return Ok(End::Cached);
                    }
                }
                let layer = match (&inst, prepared) {
                    (Instruction::Run(run), _) => {
                        run_step::run(self, step, id, index, run, &state, &ex)?
                    }
                    (_, Some(plan)) => copy_step::execute(self, step, plan, &state)?,
                    (Instruction::Workdir(w), _) => {
                        let rel = config::workdir_rel(&state.config, w);
                        copy_step::make_dir_layer(self, step, &rel, &state)?
                    }
                    _ => unreachable!("layer steps are RUN, COPY, ADD and WORKDIR"),
                };
                if let Instruction::Workdir(_) = inst {
                    config::apply(&mut state.config, &inst, &mut cmd_set_here)
                        .map_err(|m| BuildError::step(step, m))?;
                }
                state.push_layer(layer, text);
                let manifest = self
                    .store
                    .put_image(&state.config, state.layers.clone())
                    .map_err(other)?;
                cache::record(self.store, &key, &manifest).map_err(other)?;
                self.note_step(&key, &manifest);
                state.chain = key.to_string();
                ex.apply(&inst);
                Ok(End::Done)
            };
            match attempt() {
                Ok(End::Meta) => self.progress.meta(id),
                Ok(End::Cached) => self.progress.cached(id),
                Ok(_) => self.progress.done(id),
                Err(e) => {
                    self.progress.failed(id, &e);
                    return Err(e);
                }
            }
        }
        Ok(state)
    }
}

fn other(e: impl std::fmt::Display) -> BuildError {
    BuildError::Other(e.to_string())
}

//! The Containerfile (Dockerfile syntax) parser and the build plan it
//! produces: stages, their steps as typed instructions, the graph between
//! stages, and the variable expansion the executor drives step by step.
//!
//! ```text
//! text ─ lexer ─> logical lines ─ convert ─> instructions ─ stages ─> Containerfile
//!                                                 │ Step::expand(&Expander)
//!                                                 ▼ effective instruction (cache key text)
//! ```
//!
//! How an executor drives it:
//!
//! ```
//! use std::collections::BTreeMap;
//! use builder::parse::{Containerfile, Instruction};
//!
//! let text = "ARG V=1\nFROM busybox AS b\nARG V\nENV APP=/opt/app-$V\nWORKDIR $APP\nRUN make\n";
//! let build_args = BTreeMap::from([("V".to_string(), "2".to_string())]);
//! let cf = Containerfile::parse_with_args("Containerfile", text, &build_args)?;
//! for wave in cf.build_waves(None)? {
//!     for index in wave {            // the stages of one wave can build in parallel
//!         let stage = &cf.stages[index];
//!         let mut ex = cf.stage_expander();
//!         ex.set_env_pairs(["PATH=/bin"]); // the base image's ENV
//!         for step in &stage.steps {
//!             let effective = step.expand(&ex)?;   // errors name file and line
//!             let _cache_text = effective.to_string(); // + ex.run_args() for RUN
//!             if let Instruction::Workdir(dir) = &effective {
//!                 assert_eq!(dir, "/opt/app-2");
//!             }
//!             ex.apply(&effective);              // ARG/ENV take effect
//!         }
//!     }
//! }
//! # Ok::<(), builder::parse::ParseError>(())
//! ```

mod convert;
mod error;
mod expand;
mod flags;
mod glob;
mod heredoc;
mod ignore;
mod instruction;
mod lexer;
mod resolve;
mod stage;
mod words;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use error::{ErrorKind, ParseError};
pub use expand::{ExpandError, Expander};
pub use flags::{parse_duration, parse_mode, signal_number, PortSpec};
pub use ignore::{ContextFilter, IgnoreError, IGNORE_FILES};
pub use instruction::{
    ArgDecl, Command, Copy, Health, Healthcheck, Heredoc, Instruction, Mount, MountKind, Network,
    Run, RunScript, Sharing, Source,
};
pub use stage::{Base, Stage, Step};

use convert::{convert, Parsed};

/// A parsed Containerfile: the plan the executor builds from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Containerfile {
    pub file: String,
    /// `\` or, with `# escape=\``, a backtick.
    pub escape: char,
    /// The ARG instructions before the first FROM.
    pub global_args: Vec<Step>,
    pub stages: Vec<Stage>,
    names: BTreeMap<String, usize>,
    build_args: Arc<BTreeMap<String, String>>,
    global_values: Arc<BTreeMap<String, Option<String>>>,
}

/// The ARGs BuildKit defines in the global scope without being asked, so
/// `FROM --platform=$BUILDPLATFORM` works. Only linux is targeted.
fn platform_args() -> BTreeMap<String, Option<String>> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    let platform = format!("linux/{arch}");
    let mut m = BTreeMap::new();
    for (k, v) in [
        ("BUILDPLATFORM", platform.as_str()),
        ("BUILDOS", "linux"),
        ("BUILDARCH", arch),
        ("BUILDVARIANT", ""),
        ("TARGETPLATFORM", platform.as_str()),
        ("TARGETOS", "linux"),
        ("TARGETARCH", arch),
        ("TARGETVARIANT", ""),
    ] {
        m.insert(k.to_string(), Some(v.to_string()));
    }
    m
}

impl Containerfile {
    /// Parses with no `--build-arg`s.
    pub fn parse(file: &str, text: &str) -> Result<Containerfile, ParseError> {
        Containerfile::parse_with_args(file, text, &BTreeMap::new())
    }

    /// Parses `text` (named `file` in errors). Build args take part in
    /// expanding FROM lines and in finding which stage a `--from` means.
    pub fn parse_with_args(
        file: &str,
        text: &str,
        build_args: &BTreeMap<String, String>,
    ) -> Result<Containerfile, ParseError> {
        let lexed = lexer::lex(file, text)?;
        let escape = lexed.escape;
        let err = |line, kind| ParseError::new(file, line, kind);
        if lexed.lines.is_empty() {
            return Err(err(0, ErrorKind::Empty));
        }
        let file_arc: Arc<str> = Arc::from(file);
        let build_args = Arc::new(build_args.clone());
        let mut global_values = platform_args();
        for (k, v) in build_args.iter() {
            if global_values.contains_key(k) {
                global_values.insert(k.clone(), Some(v.clone()));
            }
        }
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        for ll in &lexed.lines {
            let parsed = convert(ll, escape).map_err(|k| err(ll.line, k))?;
            match parsed {
                Parsed::From(from) => {
                    // FROM sees only the global ARGs.
                    let mut ex = Expander::new(escape);
                    for (k, v) in &global_values {
                        ex.set_arg(k, v.as_deref());
                    }
                    let expand = |s: &str| {
                        ex.expand_word(s).map_err(|e| {
                            err(
                                ll.line,
                                ErrorKind::Expansion {
                                    instruction: "FROM".into(),
                                    message: e.to_string(),
                                },
                            )
                        })
                    };
                    let image = expand(&from.image)?;
                    if image.is_empty() {
                        return Err(err(
                            ll.line,
                            ErrorKind::BadArguments {
                                instruction: "FROM".into(),
                                message: format!(
                                    "{:?} expanded to an empty image name (is the ARG declared before FROM and set?)",
                                    from.image
                                ),
                            },
                        ));
                    }
                    let platform = from.platform.as_deref().map(expand).transpose()?;
                    let index = stages.len();
                    let lower = image.to_ascii_lowercase();
                    let base = if let Some(&i) = names.get(&lower) {
                        Base::Stage(i)
                    } else if lower == "scratch" {
                        Base::Scratch
                    } else if stage::looks_like_image(&image) {
                        Base::Image(image)
                    } else {
                        return Err(err(
                            ll.line,
                            ErrorKind::BadArguments {
                                instruction: "FROM".into(),
                                message: format!(
                                    "{image:?} is neither an earlier stage nor a valid image reference"
                                ),
                            },
                        ));
                    };
                    let name = match from.name {
                        None => None,
                        Some(n) => {
                            let n = n.to_ascii_lowercase();
                            if !stage::valid_stage_name(&n) {
                                return Err(err(ll.line, ErrorKind::BadStageName(n)));
                            }
                            if let Some(&prev) = names.get(&n) {
                                let first_line = stages.get(prev).map(|s| s.line).unwrap_or(0);
                                return Err(err(
                                    ll.line,
                                    ErrorKind::DuplicateStage {
                                        name: n,
                                        first_line,
                                    },
                                ));
                            }
                            names.insert(n.clone(), index);
                            Some(n)
                        }
                    };
                    stages.push(Stage {
                        index,
                        name,
                        line: ll.line,
                        platform,
                        base,
                        steps: Vec::new(),
                        deps: Vec::new(),
                    });
                }
                Parsed::Step(inst) => {
                    let step = Step {
                        file: file_arc.clone(),
                        line: ll.line,
                        instruction: inst,
                    };
                    match stages.last_mut() {
                        Some(stage) => stage.steps.push(step),
                        None => {
                            let Instruction::Arg(decls) = &step.instruction else {
                                return Err(err(
                                    ll.line,
                                    ErrorKind::BeforeFrom(step.instruction.keyword().into()),
                                ));
                            };
                            let mut ex = Expander::new(escape);
                            for (k, v) in &global_values {
                                ex.set_arg(k, v.as_deref());
                            }
                            for d in decls {
                                let default = d
                                    .default
                                    .as_deref()
                                    .map(|s| ex.expand_word(s))
                                    .transpose()
                                    .map_err(|e| {
                                        step.error(ErrorKind::Expansion {
                                            instruction: "ARG".into(),
                                            message: e.to_string(),
                                        })
                                    })?;
                                let value = build_args.get(&d.name).cloned().or(default);
                                ex.set_arg(&d.name, value.as_deref());
                                global_values.insert(d.name.clone(), value);
                            }
                            global_args.push(step);
                        }
                    }
                }
            }
        }
        if stages.is_empty() {
            return Err(err(0, ErrorKind::NoFrom));
        }
        let global_values = Arc::new(global_values);
        stage::compute_deps(&mut stages, &names, escape, &build_args, &global_values)?;
        let cf = Containerfile {
            file: file.to_string(),
            escape,
            global_args,
            stages,
            names,
            build_args,
            global_values,
        };
        // Reject cycles now rather than when a target happens to reach one.
        let all: Vec<usize> = (0..cf.stages.len()).collect();
        stage::dependency_order(&cf.file, &cf.stages, &all)?;
        Ok(cf)
    }

    /// Parses raw file contents; invalid UTF-8 is an error naming the
    /// first line that holds it.
    pub fn from_bytes(
        file: &str,
        bytes: &[u8],
        build_args: &BTreeMap<String, String>,
    ) -> Result<Containerfile, ParseError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => Containerfile::parse_with_args(file, text, build_args),
            Err(e) => {
                let upto = bytes.get(..e.valid_up_to()).unwrap_or(&[]);
                let line = 1 + upto.iter().filter(|&&b| b == b'\n').count();
                Err(ParseError::new(file, line, ErrorKind::NotUtf8))
            }
        }
    }

    /// Build args that no ARG declares: Docker warns that they were not
    /// consumed.
    pub fn unused_build_args(&self) -> Vec<String> {
        let declared = |name: &str| {
            self.global_args
                .iter()
                .chain(self.stages.iter().flat_map(|s| s.steps.iter()))
                .any(|step| match &step.instruction {
                    Instruction::Arg(decls) => decls.iter().any(|d| d.name == name),
                    _ => false,
                })
        };
        self.build_args
            .keys()
            .filter(|k| !declared(k) && !platform_args().contains_key(*k))
            .cloned()
            .collect()
    }

    /// The stage called `name` (case-insensitive).
    pub fn stage_index(&self, name: &str) -> Option<usize> {
        self.names.get(&name.to_ascii_lowercase()).copied()
    }

    /// The stages building `target` (the last stage when `None`) needs,
    /// itself included, each after everything it depends on. Stages with
    /// no path between them can be built in parallel: see `Stage::deps`.
    pub fn stages_needed(&self, target: Option<&str>) -> Result<Vec<usize>, ParseError> {
        let root = match target {
            None => self.stages.len().saturating_sub(1),
            Some(t) => self.stage_index(t).ok_or_else(|| {
                let stages: Vec<String> = self.stages.iter().map(Stage::display_name).collect();
                ParseError::new(
                    &self.file,
                    0,
                    ErrorKind::UnknownTarget {
                        target: t.to_string(),
                        stages: stages.join(", "),
                    },
                )
            })?,
        };
        stage::dependency_order(&self.file, &self.stages, &[root])
    }

    /// [`Self::stages_needed`] grouped into waves: every stage of a wave
    /// depends only on stages of earlier waves, so a wave's stages can be
    /// built in parallel once the waves before it are done.
    pub fn build_waves(&self, target: Option<&str>) -> Result<Vec<Vec<usize>>, ParseError> {
        let order = self.stages_needed(target)?;
        let mut wave_of: BTreeMap<usize, usize> = BTreeMap::new();
        let mut waves: Vec<Vec<usize>> = Vec::new();
        // `order` has dependencies first, so each stage's deps have waves.
        for i in order {
            let deps = self.stages.get(i).map(|s| s.deps.as_slice()).unwrap_or(&[]);
            let w = deps
                .iter()
                .filter_map(|d| wave_of.get(d))
                .map(|w| w + 1)
                .max()
                .unwrap_or(0);
            wave_of.insert(i, w);
            if waves.len() <= w {
                waves.resize_with(w + 1, Vec::new);
            }
            if let Some(wave) = waves.get_mut(w) {
                wave.push(i);
            }
        }
        Ok(waves)
    }

    /// The expander a stage starts with: the build args and global ARG
    /// values, nothing in scope yet. Seed it with the base image's ENV
    /// (`set_env_pairs`), then for each step: `step.expand(&ex)?`, run it,
    /// `ex.apply(&expanded)`.
    pub fn stage_expander(&self) -> Expander {
        Expander::with_args(
            self.escape,
            self.build_args.clone(),
            self.global_values.clone(),
        )
    }

    /// Global ARG values after build-arg overrides (and the automatic
    /// platform ARGs).
    pub fn global_arg_values(&self) -> &BTreeMap<String, Option<String>> {
        &self.global_values
    }

    /// Resolves an expanded `--from` value seen in stage `current`.
    pub fn resolve_from(
        &self,
        step: &Step,
        current: usize,
        value: &str,
    ) -> Result<Base, ParseError> {
        stage::resolve_ref(&self.names, self.stages.len(), current, value).map_err(|message| {
            let kind = if message.is_empty() {
                ErrorKind::UnknownStage {
                    instruction: step.instruction.keyword().into(),
                    flag: "--from".into(),
                    reference: value.into(),
                }
            } else {
                ErrorKind::BadStageRef {
                    instruction: step.instruction.keyword().into(),
                    flag: "--from".into(),
                    reference: value.into(),
                    message,
                }
            };
            step.error(kind)
        })
    }
}

/// Parses one instruction outside a file: an ONBUILD trigger recorded in a
/// base image's config (`RUN make`), which the executor runs right after
/// that image's FROM. `origin` names it in errors.
pub fn parse_trigger(origin: &str, text: &str, escape: char) -> Result<Step, ParseError> {
    let err = |kind| ParseError::new(origin, 1, kind);
    // The trigger is lexed on its own, so a `# escape=` inside it would be
    // read as a directive: triggers never hold one, but say so if one does.
    let lexed = lexer::lex(origin, text)?;
    let [line] = lexed.lines.as_slice() else {
        return Err(err(ErrorKind::BadArguments {
            instruction: "ONBUILD".into(),
            message: format!(
                "a trigger is exactly one instruction, found {}",
                lexed.lines.len()
            ),
        }));
    };
    match convert(line, escape).map_err(err)? {
        Parsed::Step(instruction) => Ok(Step {
            file: Arc::from(origin),
            line: 1,
            instruction,
        }),
        Parsed::From(_) => Err(err(ErrorKind::BadArguments {
            instruction: "ONBUILD".into(),
            message: "FROM is not allowed as an ONBUILD trigger".into(),
        })),
    }
}

/// The names looked for in a build context when no `-f` is given, in order.
pub const DEFAULT_FILES: &[&str] = &["Containerfile", "Dockerfile"];

/// The first of [`DEFAULT_FILES`] present in `context_dir`.
pub fn find_containerfile(context_dir: &std::path::Path) -> Option<std::path::PathBuf> {
    DEFAULT_FILES
        .iter()
        .map(|name| context_dir.join(name))
        .find(|p| p.is_file())
}

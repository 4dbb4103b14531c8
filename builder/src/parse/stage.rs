//! Build stages and the graph between them: which stage a FROM, a
//! `COPY --from` or a `RUN --mount from=` refers to, and which stages a
//! `--target` needs, in an order where every stage comes after what it uses.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::error::{ErrorKind, ParseError};
use super::expand::Expander;
use super::instruction::Instruction;
use super::resolve::expand_instruction;

/// What a stage starts from, or what a `--from` points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// `FROM scratch`: an empty root file system.
    Scratch,
    /// An image reference, as written after expansion (`busybox:1.36`).
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub file: Arc<str>,
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// As written: fields still hold `$VAR` and quotes.
    pub instruction: Instruction,
}

impl Step {
    /// The effective instruction with the variables in scope: what the
    /// executor runs, and (through `Display`) the text of its cache key.
    pub fn expand(&self, ex: &Expander) -> Result<Instruction, ParseError> {
        expand_instruction(&self.instruction, ex).map_err(|kind| self.error(kind))
    }

    /// An error about this step, for the executor's own checks.
    pub fn error(&self, kind: ErrorKind) -> ParseError {
        ParseError::new(&self.file, self.line, kind)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub index: usize,
    /// `AS name`, lower-cased as Docker does.
    pub name: Option<String>,
    /// Line of the FROM.
    pub line: usize,
    /// `--platform`, expanded.
    pub platform: Option<String>,
    pub base: Base,
    pub steps: Vec<Step>,
    /// Stages this one needs (its base, COPY --from, RUN --mount from=),
    /// sorted, without duplicates.
    pub deps: Vec<usize>,
}

impl Stage {
    /// `name` if it has one, else its index: how progress output names it.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.index.to_string())
    }
}

/// `[a-z][a-z0-9-_.]*`, as BuildKit requires of stage names.
pub(crate) fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// Could `s` name an image? (`name[:tag][@digest]`)
pub(crate) fn looks_like_image(s: &str) -> bool {
    let (name, digest) = match s.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest {
        let Some((algo, hex)) = d.split_once(':') else {
            return false;
        };
        if algo.is_empty() || hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
    }
    name.parse::<engine::ImageRef>().is_ok()
}

/// Resolves a `--from` value seen in stage `current`: an index or name of
/// another stage, `scratch`, or an image. Names may refer to stages defined
/// later (BuildKit builds the graph), but never to the stage itself.
pub(crate) fn resolve_ref(
    names: &BTreeMap<String, usize>,
    count: usize,
    current: usize,
    value: &str,
) -> Result<Base, String> {
    if let Ok(i) = value.parse::<usize>() {
        if i >= current {
            return Err(format!(
                "stage index {i} is not an earlier stage (this is stage {current})"
            ));
        }
        return Ok(Base::Stage(i));
    }
    let lower = value.to_ascii_lowercase();
    if let Some(&i) = names.get(&lower) {
        if i == current {
            return Err("a stage cannot refer to itself".to_string());
        }
        if i < count {
            return Ok(Base::Stage(i));
        }
    }
    if lower == "scratch" {
        return Ok(Base::Scratch);
    }
    if looks_like_image(value) {
        return Ok(Base::Image(value.to_string()));
    }
    Err(String::new())
}

/// Fills in each stage's `deps` by walking its steps with the variables
/// known before anything runs (build args, ARG defaults, ENV). A variable
/// that only the base image defines is unknown here; such a `--from` is
/// resolved by the executor with `Containerfile::resolve_from`.
pub(crate) fn compute_deps(
    stages: &mut [Stage],
    names: &BTreeMap<String, usize>,
    escape: char,
    build_args: &Arc<BTreeMap<String, String>>,
    global: &Arc<BTreeMap<String, Option<String>>>,
) -> Result<(), ParseError> {
    let count = stages.len();
    for stage in stages.iter_mut() {
        let mut deps = Vec::new();
        if let Base::Stage(i) = stage.base {
            deps.push(i);
        }
        let mut ex = Expander::with_args(escape, build_args.clone(), global.clone());
        for step in &stage.steps {
            let expanded = expand_instruction(&step.instruction, &ex);
            // Syntax errors cannot be fixed by any value; other failures
            // may depend on the base image's ENV, so the executor reports
            // them when it expands the step with that ENV in scope.
            if let Err(kind @ ErrorKind::Syntax { .. }) = &expanded {
                return Err(step.error(kind.clone()));
            }
            let inst = expanded.as_ref().unwrap_or(&step.instruction);
            let mut refs: Vec<(&str, &str)> = Vec::new();
            match inst {
                Instruction::Copy(c) => {
                    if let Some(f) = &c.from {
                        refs.push(("--from", f));
                    }
                }
                Instruction::Run(r) => {
                    for m in &r.mounts {
                        if let Some(f) = &m.from {
                            refs.push(("--mount from", f));
                        }
                    }
                }
                _ => {}
            }
            for (flag, value) in refs {
                if value.contains('$') {
                    continue; // still unexpanded: the executor resolves it
                }
                match resolve_ref(names, count, stage.index, value) {
                    Ok(Base::Stage(i)) => deps.push(i),
                    Ok(_) => {}
                    Err(message) => {
                        let kind = if message.is_empty() {
                            ErrorKind::UnknownStage {
                                instruction: inst.keyword().to_string(),
                                flag: flag.to_string(),
                                reference: value.to_string(),
                            }
                        } else {
                            ErrorKind::BadStageRef {
                                instruction: inst.keyword().to_string(),
                                flag: flag.to_string(),
                                reference: value.to_string(),
                                message,
                            }
                        };
                        return Err(step.error(kind));
                    }
                }
            }
            ex.apply(inst);
        }
        deps.sort_unstable();
        deps.dedup();
        stage.deps = deps;
    }
    Ok(())
}

/// Post-order walk from each of `roots`: dependencies first, each stage
/// once. A cycle is an error naming the stages on it.
pub(crate) fn dependency_order(
    file: &str,
    stages: &[Stage],
    roots: &[usize],
) -> Result<Vec<usize>, ParseError> {
    let mut marks = vec![Mark::New; stages.len()];
    let mut order = Vec::new();
    for &root in roots {
        if marks.get(root) != Some(&Mark::New) {
            continue;
        }
        marks[root] = Mark::Active;
        walk(file, stages, root, &mut marks, &mut order)?;
    }
    Ok(order)
}

#[derive(Clone, Copy, PartialEq)]
enum Mark {
    New,
    Active,
    Done,
}

fn walk(
    file: &str,
    stages: &[Stage],
    root: usize,
    marks: &mut [Mark],
    order: &mut Vec<usize>,
) -> Result<(), ParseError> {
    // Explicit stack (stage, next dep position) so deep chains cannot
    // overflow the thread's stack.
    let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
    while let Some(&mut (node, ref mut pos)) = stack.last_mut() {
        let deps = stages.get(node).map(|s| s.deps.as_slice()).unwrap_or(&[]);
        if let Some(&dep) = deps.get(*pos) {
            *pos += 1;
            match marks.get(dep).copied() {
                Some(Mark::New) => {
                    marks[dep] = Mark::Active;
                    stack.push((dep, 0));
                }
                Some(Mark::Active) => {
                    let start = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                    let mut cycle: Vec<String> = stack
                        .get(start..)
                        .unwrap_or(&[])
                        .iter()
                        .filter_map(|(n, _)| stages.get(*n).map(Stage::display_name))
                        .collect();
                    cycle.push(stages.get(dep).map(Stage::display_name).unwrap_or_default());
                    let line = stages.get(dep).map(|s| s.line).unwrap_or(0);
                    return Err(ParseError::new(
                        file,
                        line,
                        ErrorKind::Cycle(cycle.join(" -> ")),
                    ));
                }
                _ => {}
            }
        } else {
            marks[node] = Mark::Done;
            order.push(node);
            stack.pop();
        }
    }
    Ok(())
}

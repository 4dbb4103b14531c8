//! Expansion of an instruction's fields with the variables in scope, and
//! the effect of ARG and ENV on that scope. Which fields expand follows
//! Docker: ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR,
//! plus the flags BuildKit expands (COPY --from/--chown/--chmod/--exclude,
//! RUN --mount fields). RUN, CMD, ENTRYPOINT, SHELL, HEALTHCHECK, ONBUILD
//! and MAINTAINER are kept as written.

use super::error::ErrorKind;
use super::expand::{ExpandError, Expander};
use super::flags::{parse_mode, signal_number, PortSpec};
use super::instruction::*;

fn fail(kw: &str, e: ExpandError) -> ErrorKind {
    let instruction = kw.to_string();
    let message = e.to_string();
    match e {
        // Depends on values: only known when the step runs.
        ExpandError::Required { .. } => ErrorKind::Expansion {
            instruction,
            message,
        },
        // Wrong whatever the values: reported at parse time.
        _ => ErrorKind::Syntax {
            instruction,
            message,
        },
    }
}

fn invalid(kw: &str, message: String) -> ErrorKind {
    ErrorKind::BadArguments {
        instruction: kw.to_string(),
        message,
    }
}

/// Returns the instruction with its expandable fields expanded and their
/// quotes removed, and checks the values that could not be checked before.
pub(crate) fn expand_instruction(
    inst: &Instruction,
    ex: &Expander,
) -> Result<Instruction, ErrorKind> {
    let kw = inst.keyword();
    let w = |s: &str| ex.expand_word(s).map_err(|e| fail(kw, e));
    let opt = |s: &Option<String>| s.as_deref().map(w).transpose();
    Ok(match inst {
        Instruction::Run(r) => {
            let mut r = r.clone();
            for m in &mut r.mounts {
                // A secret may have no target (its default, or env= only).
                let given = !m.target.is_empty();
                m.target = w(&m.target)?;
                m.source = opt(&m.source)?;
                m.from = opt(&m.from)?;
                m.id = opt(&m.id)?;
                m.env = opt(&m.env)?;
                if m.target.is_empty() && (given || m.kind != MountKind::Secret) {
                    return Err(invalid(kw, "a --mount target expanded to nothing".into()));
                }
            }
            Instruction::Run(r)
        }
        Instruction::Copy(c) | Instruction::Add(c) => {
            let mut sources = Vec::with_capacity(c.sources.len());
            for s in &c.sources {
                sources.push(match s {
                    Source::Path(p) => Source::Path(w(p)?),
                    Source::Url(u) => Source::Url(w(u)?),
                    Source::Heredoc(h) if h.expand => {
                        let mut h = h.clone();
                        h.content = ex.expand_heredoc(&h.content).map_err(|e| fail(kw, e))?;
                        Source::Heredoc(h)
                    }
                    Source::Heredoc(h) => Source::Heredoc(h.clone()),
                });
            }
            let mut excludes = Vec::with_capacity(c.excludes.len());
            for e in &c.excludes {
                excludes.push(w(e)?);
            }
            let out = Copy {
                sources,
                dest: w(&c.dest)?,
                from: opt(&c.from)?,
                chown: opt(&c.chown)?,
                chmod: opt(&c.chmod)?,
                excludes,
                checksum: opt(&c.checksum)?,
                ..c.clone()
            };
            if let Some(m) = &out.chmod {
                parse_mode(m).map_err(|e| invalid(kw, format!("--chmod: {e}")))?;
            }
            if out.dest.is_empty() {
                return Err(invalid(kw, "the destination expanded to nothing".into()));
            }
            if out.sources.len() > 1 && !out.dest.ends_with('/') {
                return Err(invalid(
                    kw,
                    format!(
                        "with several sources the destination must be a directory ending in '/' (got {:?})",
                        out.dest
                    ),
                ));
            }
            if matches!(inst, Instruction::Add(_)) {
                Instruction::Add(out)
            } else {
                Instruction::Copy(out)
            }
        }
        // All pairs of one ENV/LABEL see the scope from before it, as in Docker.
        Instruction::Env(kv) => Instruction::Env(pairs(kw, kv, ex)?),
        Instruction::Label(kv) => Instruction::Label(pairs(kw, kv, ex)?),
        Instruction::Arg(decls) => {
            let mut out = Vec::with_capacity(decls.len());
            for d in decls {
                out.push(ArgDecl {
                    name: d.name.clone(),
                    default: opt(&d.default)?,
                });
            }
            Instruction::Arg(out)
        }
        Instruction::Workdir(s) => {
            let v = w(s)?;
            if v.is_empty() {
                return Err(invalid(kw, format!("{s:?} expanded to an empty path")));
            }
            Instruction::Workdir(v)
        }
        Instruction::User(s) => {
            let v = w(s)?;
            if v.is_empty() {
                return Err(invalid(kw, format!("{s:?} expanded to an empty user")));
            }
            Instruction::User(v)
        }
        Instruction::StopSignal(s) => {
            let v = w(s)?;
            if signal_number(&v).is_none() {
                return Err(invalid(kw, format!("{v:?} is not a signal name or number")));
            }
            Instruction::StopSignal(v)
        }
        Instruction::Expose(ports) => {
            let mut out = Vec::new();
            for p in ports {
                // A variable may hold several ports: `EXPOSE $PORTS`.
                for one in w(p)?.split_whitespace() {
                    PortSpec::parse(one).map_err(|m| invalid(kw, m))?;
                    out.push(one.to_string());
                }
            }
            Instruction::Expose(out)
        }
        Instruction::Volume(vols) => {
            let mut out = Vec::with_capacity(vols.len());
            for v in vols {
                let e = w(v)?;
                if e.trim().is_empty() {
                    return Err(invalid(kw, format!("{v:?} expanded to an empty path")));
                }
                out.push(e);
            }
            Instruction::Volume(out)
        }
        other => other.clone(),
    })
}

fn pairs(
    kw: &str,
    kv: &[(String, String)],
    ex: &Expander,
) -> Result<Vec<(String, String)>, ErrorKind> {
    let mut out = Vec::with_capacity(kv.len());
    for (k, v) in kv {
        let key = ex.expand_word(k).map_err(|e| fail(kw, e))?;
        if key.is_empty() {
            return Err(invalid(kw, format!("{k:?} expanded to an empty name")));
        }
        out.push((key, ex.expand_word(v).map_err(|e| fail(kw, e))?));
    }
    Ok(out)
}

impl Expander {
    /// Brings an expanded ARG or ENV into scope for the steps after it;
    /// other instructions change nothing here.
    pub fn apply(&mut self, expanded: &Instruction) {
        match expanded {
            Instruction::Env(kv) => {
                for (k, v) in kv {
                    self.set_env(k, v);
                }
            }
            Instruction::Arg(decls) => {
                for d in decls {
                    let value = self.resolve_arg(&d.name, d.default.as_deref());
                    self.set_arg(&d.name, value.as_deref());
                }
            }
            _ => {}
        }
    }
}

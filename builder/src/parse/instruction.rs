//! The typed instructions of a build stage. Fields hold the words as
//! written (quotes and `$VAR` included) until [`super::Step::expand`] gives
//! the effective instruction; its `Display` is the normalised text a cache
//! key and a history entry are made from.

use std::fmt;
use std::time::Duration;

pub use super::heredoc::Heredoc;

/// The command of RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `["prog", "arg"]`: run as is.
    Exec(Vec<String>),
    /// Anything else: run through the stage's SHELL (`/bin/sh -c`).
    Shell(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Default,
    Host,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sharing {
    #[default]
    Shared,
    Private,
    Locked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Bind,
    Cache,
    Tmpfs,
    /// A build secret (`rbuild build --secret`), readable in this step
    /// only: see `exec/secrets.rs`.
    Secret,
}

/// One `RUN --mount=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub kind: MountKind,
    /// Where it appears in the step's container.
    pub target: String,
    /// Path inside `from` (or the build context) for bind and cache mounts.
    pub source: Option<String>,
    /// Stage name or index, or image, to bind/seed from.
    pub from: Option<String>,
    /// Cache id; BuildKit's default is the target path.
    pub id: Option<String>,
    pub sharing: Sharing,
    /// Bind mounts are read-only unless `rw`; cache mounts are writable.
    pub readonly: bool,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// tmpfs size in bytes.
    pub size: Option<u64>,
    /// Secrets: the build fails when the secret was not given.
    pub required: bool,
    /// Secrets: also (or only, without target=) set this variable.
    pub env: Option<String>,
}

impl Mount {
    /// A secret's id: `id=`, or else the target's last component, as
    /// BuildKit does.
    pub fn secret_id(&self) -> &str {
        match &self.id {
            Some(id) => id,
            None => self.target.rsplit('/').next().unwrap_or(&self.target),
        }
    }

    /// Where a secret appears: `target=`, or `/run/secrets/ID`; `None`
    /// for a secret given only as `env=`.
    pub fn secret_target(&self) -> Option<String> {
        if !self.target.is_empty() {
            Some(self.target.clone())
        } else if self.env.is_some() {
            None
        } else {
            Some(format!("/run/secrets/{}", self.secret_id()))
        }
    }

    /// The cache id: `id=` or else the target, as BuildKit does.
    pub fn cache_id(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.target)
    }
}

/// What a RUN step executes, once heredocs are accounted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunScript {
    Exec(Vec<String>),
    /// A script for the stage's SHELL (`sh -c SCRIPT`).
    Shell(String),
    /// A lone heredoc starting with `#!`: write it to a file, make it
    /// executable and run that file, as BuildKit does.
    File(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub mounts: Vec<Mount>,
    pub network: Option<Network>,
    /// `--security=insecure|sandbox`, recorded as given.
    pub security: Option<String>,
    pub command: Command,
    pub heredocs: Vec<Heredoc>,
}

impl Run {
    pub fn script(&self) -> RunScript {
        let line = match &self.command {
            Command::Exec(argv) => return RunScript::Exec(argv.clone()),
            Command::Shell(line) => line,
        };
        let [only] = self.heredocs.as_slice() else {
            if self.heredocs.is_empty() {
                return RunScript::Shell(line.clone());
            }
            // Several heredocs, or a heredoc feeding a command: hand the
            // shell the whole thing and let it read the heredocs itself.
            let mut full = line.clone();
            for h in &self.heredocs {
                full.push('\n');
                full.push_str(&h.content);
                full.push_str(&h.name);
            }
            return RunScript::Shell(full);
        };
        let alone = super::heredoc::parse_marker(line.trim(), '\0').is_some()
            && !line.trim().contains(char::is_whitespace);
        if !alone {
            return RunScript::Shell(format!("{line}\n{}{}", only.content, only.name));
        }
        if only.content.starts_with("#!") {
            RunScript::File(only.content.clone())
        } else {
            RunScript::Shell(only.content.clone())
        }
    }
}

/// A COPY or ADD source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A path or glob in the context (or in `--from`).
    Path(String),
    /// ADD only: `http://` or `https://`.
    Url(String),
    /// `COPY <<NAME /dest`: a file called NAME with the heredoc's content.
    Heredoc(Heredoc),
}

/// COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Copy {
    pub sources: Vec<Source>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub excludes: Vec<String>,
    pub link: bool,
    pub parents: bool,
    /// ADD --checksum=sha256:... for URL sources.
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
    pub command: Command,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// `HEALTHCHECK NONE`: disable any check inherited from the base.
    None,
    Check(Healthcheck),
}

/// One instruction of a stage (FROM is the stage itself, see `Stage`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    Run(Run),
    Copy(Copy),
    Add(Copy),
    Env(Vec<(String, String)>),
    Arg(Vec<ArgDecl>),
    Label(Vec<(String, String)>),
    Workdir(String),
    User(String),
    Cmd(Command),
    Entrypoint(Command),
    /// `80`, `80/tcp`, `53/udp`, `8000-8010/tcp`; see [`super::PortSpec`].
    Expose(Vec<String>),
    Volume(Vec<String>),
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Health),
    /// The trigger instruction, recorded as text (`RUN make`).
    Onbuild(String),
    /// Deprecated: the executor records it as the image author.
    Maintainer(String),
}

impl Instruction {
    /// The keyword, upper case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::Run(_) => "RUN",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
            Instruction::Env(_) => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Label(_) => "LABEL",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::User(_) => "USER",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Volume(_) => "VOLUME",
            Instruction::Shell(_) => "SHELL",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Maintainer(_) => "MAINTAINER",
        }
    }

    /// True for instructions that only change the image config (no layer).
    pub fn is_metadata_only(&self) -> bool {
        !matches!(
            self,
            Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_)
        )
    }
}

/// Quotes a word when it would not read back as one word.
pub(crate) fn q(s: &str) -> String {
    if s.is_empty() || s.contains(|c: char| c.is_whitespace() || "\"'\\$".contains(c)) {
        format!("{s:?}")
    } else {
        s.to_string()
    }
}

fn json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Exec(v) => f.write_str(&json(v)),
            Command::Shell(s) => f.write_str(s),
        }
    }
}

impl fmt::Display for Mount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            MountKind::Bind => "bind",
            MountKind::Cache => "cache",
            MountKind::Tmpfs => "tmpfs",
            MountKind::Secret => "secret",
        };
        write!(f, "--mount=type={kind}")?;
        if !self.target.is_empty() {
            write!(f, ",target={}", q(&self.target))?;
        }
        let opt = |f: &mut fmt::Formatter<'_>, k: &str, v: &Option<String>| match v {
            Some(v) => write!(f, ",{k}={}", q(v)),
            None => Ok(()),
        };
        opt(f, "source", &self.source)?;
        opt(f, "from", &self.from)?;
        opt(f, "id", &self.id)?;
        if self.kind == MountKind::Cache {
            let s = match self.sharing {
                Sharing::Shared => "shared",
                Sharing::Private => "private",
                Sharing::Locked => "locked",
            };
            write!(f, ",sharing={s}")?;
        }
        if !matches!(self.kind, MountKind::Tmpfs | MountKind::Secret) {
            f.write_str(if self.readonly { ",ro" } else { ",rw" })?;
        }
        if self.required {
            f.write_str(",required")?;
        }
        opt(f, "env", &self.env)?;
        if let Some(m) = self.mode {
            write!(f, ",mode={m:o}")?;
        }
        if let Some(u) = self.uid {
            write!(f, ",uid={u}")?;
        }
        if let Some(g) = self.gid {
            write!(f, ",gid={g}")?;
        }
        if let Some(s) = self.size {
            write!(f, ",size={s}")?;
        }
        Ok(())
    }
}

fn heredoc_bodies(f: &mut fmt::Formatter<'_>, hs: &[Heredoc]) -> fmt::Result {
    for h in hs {
        write!(f, "\n{}{}", h.content, h.name)?;
    }
    Ok(())
}

fn pairs(f: &mut fmt::Formatter<'_>, kw: &str, kv: &[(String, String)]) -> fmt::Result {
    f.write_str(kw)?;
    for (k, v) in kv {
        write!(f, " {}={}", q(k), q(v))?;
    }
    Ok(())
}

fn duration(f: &mut fmt::Formatter<'_>, flag: &str, d: Option<Duration>) -> fmt::Result {
    match d {
        Some(d) => write!(f, " --{flag}={}ms", d.as_millis()),
        None => Ok(()),
    }
}

impl fmt::Display for Instruction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Instruction::Run(r) => {
                f.write_str("RUN")?;
                for m in &r.mounts {
                    write!(f, " {m}")?;
                }
                match r.network {
                    Some(Network::Host) => f.write_str(" --network=host")?,
                    Some(Network::None) => f.write_str(" --network=none")?,
                    Some(Network::Default) => f.write_str(" --network=default")?,
                    None => {}
                }
                if let Some(s) = &r.security {
                    write!(f, " --security={}", q(s))?;
                }
                write!(f, " {}", r.command)?;
                heredoc_bodies(f, &r.heredocs)
            }
            Instruction::Copy(c) | Instruction::Add(c) => {
                f.write_str(self.keyword())?;
                let opt = |f: &mut fmt::Formatter<'_>, k: &str, v: &Option<String>| match v {
                    Some(v) => write!(f, " --{k}={}", q(v)),
                    None => Ok(()),
                };
                opt(f, "from", &c.from)?;
                opt(f, "chown", &c.chown)?;
                opt(f, "chmod", &c.chmod)?;
                opt(f, "checksum", &c.checksum)?;
                for e in &c.excludes {
                    write!(f, " --exclude={}", q(e))?;
                }
                if c.link {
                    f.write_str(" --link")?;
                }
                if c.parents {
                    f.write_str(" --parents")?;
                }
                if c.keep_git_dir {
                    f.write_str(" --keep-git-dir")?;
                }
                let mut docs = Vec::new();
                for s in &c.sources {
                    match s {
                        Source::Path(p) | Source::Url(p) => write!(f, " {}", q(p))?,
                        Source::Heredoc(h) => {
                            let dash = if h.strip_tabs { "-" } else { "" };
                            let quote = if h.expand { "" } else { "\"" };
                            write!(f, " <<{dash}{quote}{}{quote}", h.name)?;
                            docs.push(h.clone());
                        }
                    }
                }
                write!(f, " {}", q(&c.dest))?;
                heredoc_bodies(f, &docs)
            }
            Instruction::Env(kv) => pairs(f, "ENV", kv),
            Instruction::Label(kv) => pairs(f, "LABEL", kv),
            Instruction::Arg(decls) => {
                f.write_str("ARG")?;
                for d in decls {
                    match &d.default {
                        Some(v) => write!(f, " {}={}", d.name, q(v))?,
                        None => write!(f, " {}", d.name)?,
                    }
                }
                Ok(())
            }
            Instruction::Workdir(s) => write!(f, "WORKDIR {}", q(s)),
            Instruction::User(s) => write!(f, "USER {}", q(s)),
            Instruction::Cmd(c) => write!(f, "CMD {c}"),
            Instruction::Entrypoint(c) => write!(f, "ENTRYPOINT {c}"),
            Instruction::Expose(p) => write!(f, "EXPOSE {}", p.join(" ")),
            Instruction::Volume(v) => write!(f, "VOLUME {}", json(v)),
            Instruction::Shell(v) => write!(f, "SHELL {}", json(v)),
            Instruction::StopSignal(s) => write!(f, "STOPSIGNAL {}", q(s)),
            Instruction::Healthcheck(Health::None) => f.write_str("HEALTHCHECK NONE"),
            Instruction::Healthcheck(Health::Check(h)) => {
                f.write_str("HEALTHCHECK")?;
                duration(f, "interval", h.interval)?;
                duration(f, "timeout", h.timeout)?;
                duration(f, "start-period", h.start_period)?;
                duration(f, "start-interval", h.start_interval)?;
                if let Some(r) = h.retries {
                    write!(f, " --retries={r}")?;
                }
                write!(f, " CMD {}", h.command)
            }
            Instruction::Onbuild(s) => write!(f, "ONBUILD {s}"),
            Instruction::Maintainer(s) => write!(f, "MAINTAINER {s}"),
        }
    }
}

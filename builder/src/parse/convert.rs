//! From a logical line to a typed instruction. Values stay as written;
//! whatever can be checked without knowing the variables in scope is
//! checked here, so mistakes are reported before any step runs.

use super::error::{suggest, ErrorKind};
use super::flags::{parse_flags, parse_mode, parse_mount, signal_number, FlagKind, PortSpec};
use super::heredoc::parse_marker;
use super::instruction::*;
use super::lexer::LogicalLine;
use super::words::{parse_json_array, split_words, take_flags};

pub(crate) const KEYWORDS: &[&str] = &[
    "FROM",
    "RUN",
    "CMD",
    "LABEL",
    "MAINTAINER",
    "EXPOSE",
    "ENV",
    "ADD",
    "COPY",
    "ENTRYPOINT",
    "VOLUME",
    "USER",
    "WORKDIR",
    "ARG",
    "ONBUILD",
    "STOPSIGNAL",
    "HEALTHCHECK",
    "SHELL",
];

/// FROM, before expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FromLine {
    pub platform: Option<String>,
    pub image: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    From(FromLine),
    Step(Instruction),
}

/// A value is checked now only if no variable can change it later.
fn literal(s: &str) -> bool {
    !s.contains('$')
}

fn bad(kw: &str, message: impl Into<String>) -> ErrorKind {
    ErrorKind::BadArguments {
        instruction: kw.to_string(),
        message: message.into(),
    }
}

fn bad_flag(kw: &str, flag: &str, message: impl Into<String>) -> ErrorKind {
    ErrorKind::BadFlag {
        instruction: kw.to_string(),
        flag: flag.to_string(),
        message: message.into(),
    }
}

fn command(rest: &str) -> Command {
    match parse_json_array(rest) {
        Some(argv) => Command::Exec(argv),
        None => Command::Shell(rest.to_string()),
    }
}

pub(crate) fn convert(ll: &LogicalLine, escape: char) -> Result<Parsed, ErrorKind> {
    let kw = ll.keyword.to_ascii_uppercase();
    let Some(&kw) = KEYWORDS.iter().find(|k| **k == kw) else {
        return Err(ErrorKind::UnknownInstruction {
            word: ll.keyword.clone(),
            suggestion: suggest(&kw, KEYWORDS).map(ToString::to_string),
        });
    };
    let (raw_flags, rest) = if kw == "ONBUILD" {
        (Vec::new(), ll.rest.clone())
    } else {
        take_flags(&ll.rest, escape)
    };
    let rest = rest.as_str();
    if rest.is_empty() && ll.heredocs.is_empty() {
        return Err(ErrorKind::MissingArguments(kw.to_string()));
    }
    use FlagKind::*;
    let flags = |spec: &[(&'static str, FlagKind)]| parse_flags(kw, &raw_flags, spec);
    let none = || flags(&[]);
    let inst = match kw {
        "FROM" => {
            let f = flags(&[("platform", Value)])?;
            let words = split_words(rest, escape);
            let (image, name) = match words.as_slice() {
                [image] => (image.clone(), None),
                [image, as_, name] if as_.eq_ignore_ascii_case("as") => {
                    (image.clone(), Some(name.clone()))
                }
                _ => return Err(bad(kw, "expected FROM [--platform=P] IMAGE [AS NAME]")),
            };
            return Ok(Parsed::From(FromLine {
                platform: f.value("platform"),
                image,
                name,
            }));
        }
        "RUN" => {
            let f = flags(&[("mount", Repeat), ("network", Value), ("security", Value)])?;
            let mut mounts = Vec::new();
            for spec in f.all("mount") {
                mounts.push(parse_mount(&spec).map_err(|m| bad_flag(kw, "mount", m))?);
            }
            let network = match f.value("network").as_deref() {
                None => None,
                Some("default") => Some(Network::Default),
                Some("host") => Some(Network::Host),
                Some("none") => Some(Network::None),
                Some(other) => {
                    return Err(bad_flag(
                        kw,
                        "network",
                        format!("{other:?}: use host, none or default"),
                    ))
                }
            };
            let security = f.value("security");
            if let Some(s) = &security {
                if s != "insecure" && s != "sandbox" {
                    return Err(bad_flag(
                        kw,
                        "security",
                        format!("{s:?}: use insecure or sandbox"),
                    ));
                }
            }
            Instruction::Run(Run {
                mounts,
                network,
                security,
                command: command(rest),
                heredocs: ll.heredocs.clone(),
            })
        }
        "CMD" => {
            none()?;
            Instruction::Cmd(command(rest))
        }
        "ENTRYPOINT" => {
            none()?;
            Instruction::Entrypoint(command(rest))
        }
        "SHELL" => {
            none()?;
            match parse_json_array(rest) {
                Some(v) if !v.is_empty() => Instruction::Shell(v),
                _ => {
                    return Err(ErrorKind::NeedJson {
                        instruction: kw.to_string(),
                        what: "the shell".to_string(),
                        example: r#"SHELL ["/bin/sh", "-c"]"#.to_string(),
                    })
                }
            }
        }
        "COPY" | "ADD" => return copy(kw, ll, &raw_flags, rest, escape).map(Parsed::Step),
        "ENV" => {
            none()?;
            Instruction::Env(name_values(kw, rest, escape)?)
        }
        "LABEL" => {
            none()?;
            Instruction::Label(name_values(kw, rest, escape)?)
        }
        "ARG" => {
            none()?;
            let mut decls = Vec::new();
            for w in split_words(rest, escape) {
                let (name, default) = match w.split_once('=') {
                    Some((n, d)) => (n.to_string(), Some(d.to_string())),
                    None => (w.clone(), None),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
                    return Err(bad(kw, format!("{name:?} is not a valid argument name")));
                }
                decls.push(ArgDecl { name, default });
            }
            Instruction::Arg(decls)
        }
        "WORKDIR" => {
            none()?;
            Instruction::Workdir(rest.to_string())
        }
        "USER" => {
            none()?;
            Instruction::User(rest.to_string())
        }
        "MAINTAINER" => {
            none()?;
            Instruction::Maintainer(rest.to_string())
        }
        "STOPSIGNAL" => {
            none()?;
            if literal(rest) && signal_number(rest).is_none() {
                return Err(bad(kw, format!("{rest:?} is not a signal name or number")));
            }
            Instruction::StopSignal(rest.to_string())
        }
        "EXPOSE" => {
            none()?;
            let ports = split_words(rest, escape);
            for p in ports.iter().filter(|p| literal(p)) {
                PortSpec::parse(p).map_err(|m| bad(kw, m))?;
            }
            Instruction::Expose(ports)
        }
        "VOLUME" => {
            none()?;
            // Whitespace-split, as COPY (see `copy`).
            let vols = match parse_json_array(rest) {
                Some(v) => v,
                None => rest.split_whitespace().map(String::from).collect(),
            };
            if vols.is_empty() || vols.iter().any(|v| v.trim().is_empty()) {
                return Err(bad(kw, "a volume path cannot be empty"));
            }
            Instruction::Volume(vols)
        }
        "HEALTHCHECK" => healthcheck(kw, &raw_flags, rest, escape)?,
        "ONBUILD" => {
            let (trigger, trigger_rest) = match rest.find(char::is_whitespace) {
                Some(at) => (
                    rest.get(..at).unwrap_or(rest),
                    rest.get(at..).unwrap_or("").trim(),
                ),
                None => (rest, ""),
            };
            let upper = trigger.to_ascii_uppercase();
            if matches!(upper.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(bad(
                    kw,
                    format!("{upper} is not allowed as an ONBUILD trigger"),
                ));
            }
            // Check the trigger now rather than when a child image builds.
            let inner = LogicalLine {
                line: ll.line,
                keyword: trigger.to_string(),
                rest: trigger_rest.to_string(),
                heredocs: ll.heredocs.clone(),
            };
            convert(&inner, escape)?;
            // Heredoc bodies travel with the trigger text, so that
            // `parse_trigger` reads it back whole.
            let mut text = format!("{upper} {trigger_rest}");
            for h in &ll.heredocs {
                text.push('\n');
                text.push_str(&h.content);
                text.push_str(&h.name);
            }
            Instruction::Onbuild(text)
        }
        _ => return Err(bad(kw, "not supported")),
    };
    Ok(Parsed::Step(inst))
}

/// ENV and LABEL: `K=V K2="v 2"`, or the legacy `K V with spaces`.
fn name_values(kw: &str, rest: &str, escape: char) -> Result<Vec<(String, String)>, ErrorKind> {
    let words = split_words(rest, escape);
    let Some(first) = words.first() else {
        return Err(ErrorKind::MissingArguments(kw.to_string()));
    };
    if !first.contains('=') {
        let value = rest
            .get(first.len()..)
            .map(str::trim_start)
            .unwrap_or_default();
        if value.is_empty() {
            return Err(bad(
                kw,
                format!("{first} has no value: use {kw} {first}=VALUE"),
            ));
        }
        return Ok(vec![(first.clone(), value.to_string())]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(bad(kw, format!("{w:?} has no '=': use NAME=VALUE")));
        };
        if k.is_empty() {
            return Err(bad(kw, format!("{w:?}: the name cannot be empty")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

fn copy(
    kw: &str,
    ll: &LogicalLine,
    raw_flags: &[String],
    rest: &str,
    escape: char,
) -> Result<Instruction, ErrorKind> {
    use FlagKind::*;
    let is_add = kw == "ADD";
    let spec: &[(&'static str, FlagKind)] = if is_add {
        &[
            ("chown", Value),
            ("chmod", Value),
            ("link", Bool),
            ("exclude", Repeat),
            ("checksum", Value),
            ("keep-git-dir", Bool),
        ]
    } else {
        &[
            ("from", Value),
            ("chown", Value),
            ("chmod", Value),
            ("link", Bool),
            ("exclude", Repeat),
            ("parents", Bool),
        ]
    };
    let f = parse_flags(kw, raw_flags, spec)?;
    if let Some(m) = f.value("chmod").filter(|m| literal(m)) {
        parse_mode(&m).map_err(|e| bad_flag(kw, "chmod", e))?;
    }
    // As BuildKit: the shell form splits on whitespace only; quotes are
    // the expander's business, word by word (so `COPY "a b" /x` is two
    // unterminated quotes, and `ADD \conf\\" /.znc` two words).
    let words: Vec<String> = match parse_json_array(rest) {
        Some(v) => v,
        None => rest.split_whitespace().map(String::from).collect(),
    };
    let mut heredocs = ll.heredocs.iter();
    let mut sources = Vec::new();
    let Some((dest, srcs)) = words.split_last() else {
        return Err(bad(kw, "expected SOURCE... DEST"));
    };
    for w in srcs {
        let src = match parse_marker(w, escape) {
            Some(m) => match heredocs.next() {
                Some(h) if h.name == m.name => Source::Heredoc(h.clone()),
                _ => return Err(bad(kw, format!("heredoc {w} has no body"))),
            },
            None if w.starts_with("http://") || w.starts_with("https://") => {
                if !is_add {
                    return Err(bad(kw, format!("cannot fetch URLs ({w}): use ADD")));
                }
                Source::Url(w.clone())
            }
            None => Source::Path(w.clone()),
        };
        sources.push(src);
    }
    if sources.is_empty() {
        return Err(bad(kw, "expected at least one source and a destination"));
    }
    if parse_marker(dest, escape).is_some() {
        return Err(bad(
            kw,
            format!("the destination cannot be a heredoc ({dest})"),
        ));
    }
    if sources.len() > 1 && literal(dest) && !dest.ends_with('/') {
        return Err(bad(
            kw,
            format!("with several sources the destination must be a directory ending in '/' (got {dest:?})"),
        ));
    }
    let checksum = f.value("checksum");
    if checksum.is_some() && !sources.iter().all(|s| matches!(s, Source::Url(_))) {
        return Err(bad_flag(kw, "checksum", "applies only to URL sources"));
    }
    let c = Copy {
        sources,
        dest: dest.clone(),
        from: f.value("from"),
        chown: f.value("chown"),
        chmod: f.value("chmod"),
        excludes: f.all("exclude"),
        link: f.bool("link"),
        parents: f.bool("parents"),
        checksum,
        keep_git_dir: f.bool("keep-git-dir"),
    };
    Ok(if is_add {
        Instruction::Add(c)
    } else {
        Instruction::Copy(c)
    })
}

fn healthcheck(
    kw: &str,
    raw_flags: &[String],
    rest: &str,
    escape: char,
) -> Result<Instruction, ErrorKind> {
    use super::flags::parse_duration;
    use FlagKind::*;
    let f = parse_flags(
        kw,
        raw_flags,
        &[
            ("interval", Value),
            ("timeout", Value),
            ("start-period", Value),
            ("start-interval", Value),
            ("retries", Value),
        ],
    )?;
    let (first, cmd) = match rest.find(char::is_whitespace) {
        Some(at) => (
            rest.get(..at).unwrap_or(rest),
            rest.get(at..).unwrap_or("").trim(),
        ),
        None => (rest, ""),
    };
    let _ = escape;
    if first.eq_ignore_ascii_case("NONE") {
        if !cmd.is_empty() || !raw_flags.is_empty() {
            return Err(bad(kw, "NONE takes no other arguments or flags"));
        }
        return Ok(Instruction::Healthcheck(Health::None));
    }
    if !first.eq_ignore_ascii_case("CMD") {
        return Err(bad(kw, format!("expected NONE or CMD, got {first:?}")));
    }
    if cmd.is_empty() {
        return Err(bad(kw, "CMD needs a command"));
    }
    let dur = |name: &str| -> Result<_, ErrorKind> {
        match f.value(name) {
            None => Ok(None),
            Some(v) => {
                let d = parse_duration(&v).map_err(|e| bad_flag(kw, name, e))?;
                if d < std::time::Duration::from_millis(1) && !d.is_zero() {
                    return Err(bad_flag(kw, name, "must be at least 1ms"));
                }
                Ok(Some(d))
            }
        }
    };
    let retries = match f.value("retries") {
        None => None,
        Some(v) => Some(
            v.parse::<u32>()
                .map_err(|_| bad_flag(kw, "retries", format!("{v:?} is not a whole number")))?,
        ),
    };
    Ok(Instruction::Healthcheck(Health::Check(Healthcheck {
        interval: dur("interval")?,
        timeout: dur("timeout")?,
        start_period: dur("start-period")?,
        start_interval: dur("start-interval")?,
        retries,
        command: command(cmd),
    })))
}

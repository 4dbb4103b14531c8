//! Instruction flags (`--from=`, `--mount=`, `--interval=` …) and the small
//! value grammars they and some arguments use: mounts, durations, ports,
//! signals, modes.

use std::collections::BTreeMap;
use std::time::Duration;

use super::error::{suggest, ErrorKind};
use super::instruction::{Mount, MountKind, Sharing};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--name=value`, at most once.
    Value,
    /// `--name`, `--name=true|false`.
    Bool,
    /// `--name=value`, any number of times.
    Repeat,
}

#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: BTreeMap<&'static str, Vec<String>>,
}

impl Flags {
    pub fn value(&self, name: &str) -> Option<String> {
        self.values.get(name).and_then(|v| v.last()).cloned()
    }

    pub fn all(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    pub fn bool(&self, name: &str) -> bool {
        self.value(name).is_some_and(|v| v == "true")
    }
}

/// Parses raw flag words (without the leading `--`) against the flags an
/// instruction accepts.
pub(crate) fn parse_flags(
    instruction: &str,
    raw: &[String],
    spec: &[(&'static str, FlagKind)],
) -> Result<Flags, ErrorKind> {
    let mut flags = Flags::default();
    for word in raw {
        let (name, value) = match word.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (word.as_str(), None),
        };
        let bad = |message: String| ErrorKind::BadFlag {
            instruction: instruction.to_string(),
            flag: name.to_string(),
            message,
        };
        let Some(&(key, kind)) = spec.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = spec.iter().map(|(n, _)| *n).collect();
            return Err(ErrorKind::UnknownFlag {
                instruction: instruction.to_string(),
                flag: name.to_string(),
                suggestion: suggest(name, &names).map(|s| format!("--{s}")),
            });
        };
        let value = match (kind, value) {
            (FlagKind::Bool, None) => "true".to_string(),
            (FlagKind::Bool, Some(v)) => match v.to_ascii_lowercase().as_str() {
                "true" | "false" => v.to_ascii_lowercase(),
                _ => return Err(bad(format!("expected true or false, got {v:?}"))),
            },
            (_, None) | (_, Some("")) => {
                return Err(bad(format!("needs a value: --{name}=VALUE")));
            }
            (_, Some(v)) => v.to_string(),
        };
        let slot = flags.values.entry(key).or_default();
        if kind != FlagKind::Repeat && !slot.is_empty() {
            return Err(bad("given more than once".to_string()));
        }
        slot.push(value);
    }
    Ok(flags)
}

/// Splits `a=1,"b=2,3",c` as CSV: commas inside double quotes do not split,
/// and the quotes are removed (`""` inside quotes is a literal quote).
fn csv_fields(s: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

fn parse_bool(v: Option<&str>) -> Result<bool, String> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(format!("expected true or false, got {other:?}")),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: Option<&str>) -> Result<T, String> {
    let v = v.ok_or_else(|| format!("{key} needs a value"))?;
    v.parse()
        .map_err(|_| format!("{key}={v:?} is not a valid number"))
}

/// `--mount=type=cache,target=/root/.cache,id=x,sharing=locked` and the
/// bind and tmpfs kinds. Field values stay as written (they may hold
/// `$VAR`, expanded later); numbers must be literal.
pub(crate) fn parse_mount(spec: &str) -> Result<Mount, String> {
    let mut kind = MountKind::Bind;
    let mut m = Mount {
        kind,
        target: String::new(),
        source: None,
        from: None,
        id: None,
        sharing: Sharing::Shared,
        readonly: true,
        mode: None,
        uid: None,
        gid: None,
        size: None,
        required: false,
        env: None,
    };
    let mut readonly: Option<bool> = None;
    let mut sharing = None;
    let fields = csv_fields(spec);
    // The type decides defaults, so read it first wherever it is.
    for f in &fields {
        if let Some(t) = f.trim().strip_prefix("type=") {
            kind = match t.to_ascii_lowercase().as_str() {
                "bind" => MountKind::Bind,
                "cache" => MountKind::Cache,
                "tmpfs" => MountKind::Tmpfs,
                "secret" => MountKind::Secret,
                "ssh" => return Err(format!("type={t} mounts are not supported by rbuild")),
                other => {
                    return Err(format!(
                        "unknown mount type {other:?}: use bind, cache, tmpfs or secret"
                    ))
                }
            };
        }
    }
    m.kind = kind;
    for f in &fields {
        let f = f.trim();
        if f.is_empty() {
            continue;
        }
        let (key, value) = match f.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (f.to_ascii_lowercase(), None),
        };
        let need = || {
            value
                .map(str::to_string)
                .ok_or(format!("{key} needs a value"))
        };
        match key.as_str() {
            "type" => {}
            "target" | "dst" | "destination" => m.target = need()?,
            "source" | "src" => m.source = Some(need()?),
            "from" => m.from = Some(need()?),
            "id" => m.id = Some(need()?),
            "ro" | "readonly" => readonly = Some(parse_bool(value)?),
            "rw" | "readwrite" => readonly = Some(!parse_bool(value)?),
            "sharing" => {
                sharing = Some(match need()?.to_ascii_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    other => {
                        return Err(format!("sharing={other:?}: use shared, private or locked"))
                    }
                })
            }
            "mode" => {
                let v = need()?;
                m.mode = Some(parse_mode(&v).map_err(|e| format!("mode: {e}"))?);
            }
            "uid" => m.uid = Some(parse_num("uid", value)?),
            "gid" => m.gid = Some(parse_num("gid", value)?),
            "size" => m.size = Some(parse_size(&need()?)?),
            "required" => m.required = parse_bool(value)?,
            "env" => m.env = Some(need()?),
            other => return Err(format!("unknown mount option {other:?}")),
        }
    }
    if kind == MountKind::Secret {
        if m.id.is_none() && m.target.is_empty() {
            return Err("a secret mount needs id= or target=".to_string());
        }
        if m.from.is_some() || m.source.is_some() || m.size.is_some() || readonly == Some(false) {
            return Err(
                "type=secret takes id, target, env, required, mode, uid and gid".to_string(),
            );
        }
    } else if m.target.is_empty() {
        return Err("a mount needs target=PATH".to_string());
    } else if m.required || m.env.is_some() {
        return Err("required= and env= apply only to type=secret".to_string());
    }
    if sharing.is_some() && kind != MountKind::Cache {
        return Err("sharing= applies only to type=cache".to_string());
    }
    if kind == MountKind::Tmpfs && (m.from.is_some() || m.source.is_some()) {
        return Err("type=tmpfs takes no from= or source=".to_string());
    }
    if kind != MountKind::Tmpfs && m.size.is_some() {
        return Err("size= applies only to type=tmpfs".to_string());
    }
    m.sharing = sharing.unwrap_or_default();
    m.readonly = readonly.unwrap_or(kind == MountKind::Bind);
    Ok(m)
}

fn parse_size(v: &str) -> Result<u64, String> {
    let lower = v.to_ascii_lowercase();
    let (digits, mult) = match lower.trim_end_matches('b').chars().last() {
        Some('k') => (
            lower.trim_end_matches('b').trim_end_matches('k'),
            1u64 << 10,
        ),
        Some('m') => (lower.trim_end_matches('b').trim_end_matches('m'), 1 << 20),
        Some('g') => (lower.trim_end_matches('b').trim_end_matches('g'), 1 << 30),
        _ => (lower.trim_end_matches('b'), 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("size={v:?} is not a size (e.g. 64m)"))
}

/// Octal permission bits: `755`, `0644`, at most `7777`.
pub fn parse_mode(v: &str) -> Result<u32, String> {
    match u32::from_str_radix(v, 8) {
        Ok(m) if m <= 0o7777 && !v.is_empty() && !v.starts_with('+') => Ok(m),
        _ => Err(format!("{v:?} is not an octal mode like 0755")),
    }
}

/// A Go-style duration as Docker's HEALTHCHECK takes it: `30s`, `1m30s`,
/// `500ms`, `1.5h`.
pub fn parse_duration(v: &str) -> Result<Duration, String> {
    let bad = || format!("{v:?} is not a duration like 30s, 1m30s or 500ms");
    if v == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = v;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest
            .get(..num_len)
            .ok_or_else(bad)?
            .parse()
            .map_err(|_| bad())?;
        rest = rest.get(num_len..).ok_or_else(bad)?;
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest.get(..unit_len).ok_or_else(bad)?;
        rest = rest.get(unit_len..).ok_or_else(bad)?;
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += num * scale;
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// One EXPOSE entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub start: u16,
    /// Equal to `start` unless a range `8000-8010` was given.
    pub end: u16,
    /// `tcp` (the default), `udp` or `sctp`.
    pub protocol: String,
}

impl PortSpec {
    pub fn parse(v: &str) -> Result<PortSpec, String> {
        let (ports, proto) = match v.split_once('/') {
            Some((p, proto)) => (p, proto.to_ascii_lowercase()),
            None => (v, "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!("{v:?}: protocol must be tcp, udp or sctp"));
        }
        let port = |s: &str| match s.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(format!("{v:?}: {s:?} is not a port number 1-65535")),
        };
        let (start, end) = match ports.split_once('-') {
            Some((a, b)) => (port(a)?, port(b)?),
            None => (port(ports)?, port(ports)?),
        };
        if end < start {
            return Err(format!("{v:?}: the range ends before it starts"));
        }
        Ok(PortSpec {
            start,
            end,
            protocol: proto,
        })
    }

    /// The image config keys: `80/tcp`, one per port of a range.
    pub fn config_keys(&self) -> Vec<String> {
        (self.start..=self.end)
            .map(|p| format!("{p}/{}", self.protocol))
            .collect()
    }
}

const SIGNALS: &[(&str, i32)] = &[
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// The Linux signal number for `SIGTERM`, `TERM`, `15` or `SIGRTMIN+3`.
pub fn signal_number(v: &str) -> Option<i32> {
    if let Ok(n) = v.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let upper = v.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(off) = name.strip_prefix("RTMIN") {
        let n = if off.is_empty() {
            0
        } else {
            off.strip_prefix('+')?.parse().ok()?
        };
        return (n <= 30).then_some(34 + n);
    }
    if let Some(off) = name.strip_prefix("RTMAX") {
        let n = if off.is_empty() {
            0
        } else {
            off.strip_prefix('-')?.parse().ok()?
        };
        return (n <= 30).then_some(64 - n);
    }
    SIGNALS.iter().find(|(s, _)| *s == name).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts() {
        let m = parse_mount("type=cache,target=/root/.cache,id=pip,sharing=locked").unwrap();
        assert_eq!(m.kind, MountKind::Cache);
        assert_eq!(m.cache_id(), "pip");
        assert_eq!(m.sharing, Sharing::Locked);
        assert!(!m.readonly);
        let m = parse_mount("type=bind,from=build,source=/out,target=/in,rw").unwrap();
        assert_eq!(m.from.as_deref(), Some("build"));
        assert!(!m.readonly);
        let m = parse_mount("target=/x").unwrap();
        assert_eq!(m.kind, MountKind::Bind);
        assert!(m.readonly);
        let m = parse_mount("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(m.size, Some(64 << 20));
        let m = parse_mount("type=cache,\"target=/a,b\",mode=0700,uid=1000").unwrap();
        assert_eq!(m.target, "/a,b");
        assert_eq!(m.mode, Some(0o700));
        assert_eq!(m.uid, Some(1000));
        let m = parse_mount("type=secret,id=tok").unwrap();
        assert_eq!(m.kind, MountKind::Secret);
        assert_eq!(
            (m.secret_id(), m.secret_target().as_deref()),
            ("tok", Some("/run/secrets/tok"))
        );
        assert_eq!(
            m.mode, None,
            "0400 is applied when mounted, not written back"
        );
        let m = parse_mount("type=secret,target=/etc/key,required,uid=5").unwrap();
        assert_eq!((m.secret_id(), m.required, m.uid), ("key", true, Some(5)));
        let m = parse_mount("type=secret,id=tok,env=TOKEN").unwrap();
        assert_eq!((m.secret_target(), m.env.as_deref()), (None, Some("TOKEN")));
        assert_eq!(m.to_string(), "--mount=type=secret,id=tok,env=TOKEN");
        for bad in [
            "type=cache",
            "type=nfs,target=/x",
            "type=secret",
            "type=secret,id=x,from=a",
            "type=secret,id=x,rw",
            "target=/x,required",
            "type=ssh,target=/x",
            "type=cache,target=/x,sharing=weird",
            "type=bind,target=/x,sharing=locked",
            "type=tmpfs,target=/x,from=a",
            "target=/x,bogus=1",
            "target=/x,uid=abc",
            "target=/x,mode=999",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        for bad in ["", "30", "s", "1x", "1..5s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(PortSpec::parse("80").unwrap().config_keys(), vec!["80/tcp"]);
        assert_eq!(PortSpec::parse("53/udp").unwrap().protocol, "udp");
        assert_eq!(
            PortSpec::parse("8000-8002/tcp")
                .unwrap()
                .config_keys()
                .len(),
            3
        );
        for bad in ["0", "http", "80/xyz", "90-80", "70000", ""] {
            assert!(PortSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signals() {
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_number("kill"), Some(9));
        assert_eq!(signal_number("10"), Some(10));
        assert_eq!(signal_number("SIGRTMIN+3"), Some(37));
        assert_eq!(signal_number("SIGNOPE"), None);
        assert_eq!(signal_number("99"), None);
    }

    #[test]
    fn flag_errors() {
        let spec = [("chown", FlagKind::Value), ("link", FlagKind::Bool)];
        let e = parse_flags("COPY", &["chwon=1".into()], &spec).unwrap_err();
        assert_eq!(
            e.to_string(),
            "COPY: unknown flag --chwon (did you mean --chown?)"
        );
        assert!(parse_flags("COPY", &["chown".into()], &spec).is_err());
        assert!(parse_flags("COPY", &["link=maybe".into()], &spec).is_err());
        assert!(parse_flags("COPY", &["chown=a".into(), "chown=b".into()], &spec).is_err());
        assert!(parse_flags("COPY", &["link".into()], &spec)
            .unwrap()
            .bool("link"));
    }
}

//! What `-v`, `--mount` and `--tmpfs` ask for, parsed with Docker's rules
//! and nothing performed: [`Request`]s that `rrun run` turns into mounts.
//! Every refusal is a reason naming the key or part that was wrong.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// A host path. `create`: make it when missing (`-v`); `--mount`
    /// refuses a missing source, as Docker does.
    Bind {
        source: PathBuf,
        target: String,
        readonly: bool,
        create: bool,
    },
    /// A named volume, or an anonymous one (`name: None`).
    Volume {
        name: Option<String>,
        target: String,
        readonly: bool,
        /// `volume-nocopy`: never populate from the image.
        nocopy: bool,
    },
    Tmpfs {
        target: String,
        /// fsconfig options (size=, mode=, …) and mount flags.
        options: Vec<String>,
    },
}

impl Request {
    pub fn target(&self) -> &str {
        match self {
            Request::Bind { target, .. }
            | Request::Volume { target, .. }
            | Request::Tmpfs { target, .. } => target,
        }
    }
}

fn check_target(t: &str) -> Result<String, String> {
    if !t.starts_with('/') || t.split('/').any(|c| c == "..") {
        return Err(format!(
            "the target {t:?} must be an absolute path without '..'"
        ));
    }
    let norm = format!("/{}", t.trim_matches('/'));
    if norm == "/" {
        return Err("the target cannot be '/'".into());
    }
    Ok(norm)
}

/// `-v SRC:DST[:OPTS]`, `-v NAME:DST[:OPTS]` or `-v DST` (anonymous).
pub fn parse_volume(v: &str) -> Result<Request, String> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => (None, *d, ""),
        [s, d] => (Some(*s), *d, ""),
        [s, d, m] => (Some(*s), *d, *m),
        _ => return Err("expected [SRC:]DST[:OPTIONS]".into()),
    };
    let target = check_target(dst)?;
    let mut readonly = false;
    let mut nocopy = false;
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => readonly = true,
            "rw" => readonly = false,
            "nocopy" => nocopy = true,
            "z" | "Z" | "rprivate" | "private" => {}
            _ => return Err(format!("unknown option {m:?}: use ro, rw or nocopy")),
        }
    }
    match src {
        None => Ok(Request::Volume {
            name: None,
            target,
            readonly,
            nocopy,
        }),
        Some(s) if s.starts_with('/') => {
            if s.split('/').any(|c| c == "..") {
                return Err(format!("the source {s:?} must not contain '..'"));
            }
            if nocopy {
                return Err("nocopy applies to volumes, not to a host path".into());
            }
            Ok(Request::Bind {
                source: s.into(),
                target,
                readonly,
                create: true,
            })
        }
        Some(name) => {
            super::check_name(name).map_err(|e| {
                format!("{e} (a source that is not an absolute path is a volume name)")
            })?;
            Ok(Request::Volume {
                name: Some(name.to_string()),
                target,
                readonly,
                nocopy,
            })
        }
    }
}

fn flag(key: &str, v: Option<&str>) -> Result<bool, String> {
    match v {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(o) => Err(format!("{key}: {o:?} is not a boolean (true or false)")),
    }
}

/// A size as Docker's `tmpfs-size` takes it: bytes, or with a k, m, g or
/// t suffix (powers of 1024, an optional trailing b).
pub fn parse_bytes(s: &str) -> Option<u64> {
    let l = s.trim().to_ascii_lowercase();
    let l = l.strip_suffix('b').unwrap_or(&l);
    let (num, shift) = match l.char_indices().last()? {
        (i, 'k') => (&l[..i], 10),
        (i, 'm') => (&l[..i], 20),
        (i, 'g') => (&l[..i], 30),
        (i, 't') => (&l[..i], 40),
        _ => (l, 0),
    };
    let n: u64 = num.parse().ok()?;
    n.checked_mul(1u64 << shift)
}

/// `--mount type=bind|volume|tmpfs,...` (Docker's keys; `type` defaults to
/// volume).
pub fn parse_mount(m: &str) -> Result<Request, String> {
    let mut kind = "volume".to_string();
    let mut source: Option<String> = None;
    let mut target: Option<String> = None;
    let mut readonly = false;
    let mut nocopy: Option<bool> = None;
    let mut propagation: Option<String> = None;
    let mut size: Option<u64> = None;
    let mut mode: Option<u32> = None;
    for field in m.split(',') {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v)),
            None => (field.trim(), None),
        };
        let value = |k: &str| {
            v.filter(|v| !v.is_empty())
                .ok_or(format!("{k} needs a value"))
        };
        match k.to_ascii_lowercase().as_str() {
            "type" => kind = value(k)?.to_string(),
            "source" | "src" => source = Some(value(k)?.to_string()),
            "target" | "destination" | "dst" => target = Some(value(k)?.to_string()),
            "readonly" | "ro" => readonly = flag(k, v)?,
            "volume-nocopy" => nocopy = Some(flag(k, v)?),
            "bind-propagation" => propagation = Some(value(k)?.to_string()),
            "tmpfs-size" => {
                let s = value(k)?;
                size = Some(parse_bytes(s).ok_or(format!("tmpfs-size: {s:?} is not a size"))?);
            }
            "tmpfs-mode" => {
                let s = value(k)?;
                let m = u32::from_str_radix(s, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or(format!("tmpfs-mode: {s:?} is not an octal mode"))?;
                mode = Some(m);
            }
            "" => return Err("an empty field".into()),
            other => {
                return Err(format!(
                    "unknown key {other:?}: use type, source, target, readonly, bind-propagation, volume-nocopy, tmpfs-size or tmpfs-mode"
                ))
            }
        }
    }
    let target = check_target(target.as_deref().ok_or("target is required")?)?;
    let only = |key: &str, for_kind: &str| -> Result<(), String> {
        Err(format!(
            "{key} is only for type={for_kind}, not type={kind}"
        ))
    };
    if kind != "bind" && propagation.is_some() {
        only("bind-propagation", "bind")?;
    }
    if kind != "volume" && nocopy.is_some() {
        only("volume-nocopy", "volume")?;
    }
    if kind != "tmpfs" && (size.is_some() || mode.is_some()) {
        only(
            if size.is_some() {
                "tmpfs-size"
            } else {
                "tmpfs-mode"
            },
            "tmpfs",
        )?;
    }
    match kind.as_str() {
        "bind" => {
            let s = source.ok_or("source is required for type=bind")?;
            if !s.starts_with('/') || s.split('/').any(|c| c == "..") {
                return Err(format!(
                    "the bind source {s:?} must be an absolute path without '..'"
                ));
            }
            match propagation.as_deref() {
                None | Some("rprivate") | Some("private") => {}
                Some(p) => {
                    return Err(format!(
                        "bind-propagation {p:?} is not supported: only rprivate (the default) and private"
                    ))
                }
            }
            Ok(Request::Bind {
                source: s.into(),
                target,
                readonly,
                create: false,
            })
        }
        "volume" => {
            if let Some(n) = &source {
                super::check_name(n).map_err(|e| e.to_string())?;
            }
            Ok(Request::Volume {
                name: source,
                target,
                readonly,
                nocopy: nocopy.unwrap_or(false),
            })
        }
        "tmpfs" => {
            if source.is_some() {
                return Err("source is not allowed for type=tmpfs".into());
            }
            let mut options = Vec::new();
            if let Some(s) = size {
                options.push(format!("size={s}"));
            }
            if let Some(m) = mode {
                options.push(format!("mode={m:o}"));
            }
            if readonly {
                options.push("ro".into());
            }
            Ok(Request::Tmpfs { target, options })
        }
        other => Err(format!(
            "type {other:?} is not supported: use bind, volume or tmpfs"
        )),
    }
}

/// `--tmpfs DST[:OPTIONS]` (tmpfs options as mount(8) takes them).
pub fn parse_tmpfs(t: &str) -> Result<Request, String> {
    let (dst, opts) = t.split_once(':').unwrap_or((t, ""));
    let target = check_target(dst)?;
    let options = opts
        .split(',')
        .filter(|o| !o.is_empty())
        .map(String::from)
        .collect();
    Ok(Request::Tmpfs { target, options })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_forms() {
        assert_eq!(
            parse_volume("/h:/c:ro").unwrap(),
            Request::Bind {
                source: "/h".into(),
                target: "/c".into(),
                readonly: true,
                create: true
            }
        );
        assert_eq!(
            parse_volume("data:/c").unwrap(),
            Request::Volume {
                name: Some("data".into()),
                target: "/c".into(),
                readonly: false,
                nocopy: false
            }
        );
        assert!(matches!(
            parse_volume("/c").unwrap(),
            Request::Volume { name: None, .. }
        ));
        for bad in [
            "../x:/c", "a/b:/c", ":/c", "v:c", "v:/c:xx", "/c/../d", "a:b:c:d", "v:/",
        ] {
            assert!(parse_volume(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn mount_forms_and_refusals() {
        assert_eq!(
            parse_mount("type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770").unwrap(),
            Request::Tmpfs {
                target: "/t".into(),
                options: vec![format!("size={}", 64 << 20), "mode=1770".into()]
            }
        );
        assert_eq!(
            parse_mount("type=volume,src=v,dst=/d,readonly,volume-nocopy").unwrap(),
            Request::Volume {
                name: Some("v".into()),
                target: "/d".into(),
                readonly: true,
                nocopy: true
            }
        );
        assert!(matches!(
            parse_mount("type=bind,source=/s,target=/d,ro=true").unwrap(),
            Request::Bind {
                create: false,
                readonly: true,
                ..
            }
        ));
        for (bad, says) in [
            ("type=bind,source=/s,target=/d,colour=red", "\"colour\""),
            ("type=tmpfs,target=/t,tmpfs-size=lots", "tmpfs-size"),
            ("type=tmpfs,target=/t,tmpfs-mode=999", "tmpfs-mode"),
            ("type=bind,target=/d", "source is required"),
            ("type=nfs,target=/d", "\"nfs\""),
            ("type=volume,source=../x,target=/d", "invalid volume name"),
            ("type=volume,target=/d,tmpfs-size=1", "tmpfs-size"),
            (
                "type=bind,source=/s,target=/d,bind-propagation=shared",
                "shared",
            ),
            ("type=bind,source=/s", "target is required"),
            ("type=tmpfs,source=x,target=/t", "source is not allowed"),
            ("type=volume,target=/d,readonly=maybe", "boolean"),
        ] {
            let e = parse_mount(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("2k"), Some(2048));
        assert_eq!(parse_bytes("1GB"), Some(1 << 30));
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(parse_bytes("99999999999t"), None);
    }
}

//! `rrun commit -c INSTRUCTION`: Dockerfile instructions applied to the
//! committed image's config, as Docker's commit takes them: CMD,
//! ENTRYPOINT (exec form as a JSON array, or shell form run by the image's
//! SHELL, default `/bin/sh -c`), ENV, LABEL, WORKDIR, EXPOSE, USER,
//! VOLUME, STOPSIGNAL. Decisions only; the snapshot itself is
//! `engine::snapshot`, the one a build's RUN step makes.

use engine::image::ImageConfig;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid change {change:?}: {reason}")]
pub struct ChangeError {
    pub change: String,
    pub reason: String,
}

/// Apply the `-c` changes in order. As in a Containerfile, ENTRYPOINT
/// clears the image's CMD unless a CMD is among the changes.
pub fn apply_changes(config: &mut ImageConfig, changes: &[String]) -> Result<(), ChangeError> {
    let mut cmd_set = false;
    for c in changes {
        apply(config, c, &mut cmd_set).map_err(|reason| ChangeError {
            change: c.clone(),
            reason,
        })?;
    }
    Ok(())
}

fn apply(config: &mut ImageConfig, change: &str, cmd_set: &mut bool) -> Result<(), String> {
    let change = change.trim();
    let (word, rest) = change
        .split_once(|c: char| c.is_ascii_whitespace())
        .map(|(w, r)| (w, r.trim()))
        .unwrap_or((change, ""));
    let rc = &mut config.config;
    let need = |what: &str| -> Result<(), String> {
        if rest.is_empty() {
            Err(format!("{} needs {what}", word.to_ascii_uppercase()))
        } else {
            Ok(())
        }
    };
    match word.to_ascii_uppercase().as_str() {
        "CMD" => {
            need("a command")?;
            rc.cmd = Some(command(&rc.shell, rest)?);
            *cmd_set = true;
        }
        "ENTRYPOINT" => {
            need("a command")?;
            rc.entrypoint = Some(command(&rc.shell, rest)?);
            if !*cmd_set {
                rc.cmd = None;
            }
        }
        "ENV" => {
            need("NAME=VALUE")?;
            for (k, v) in pairs(rest)? {
                rc.set_env(&k, &v);
            }
        }
        "LABEL" => {
            need("KEY=VALUE")?;
            for (k, v) in pairs(rest)? {
                rc.labels.insert(k, v);
            }
        }
        "WORKDIR" => {
            need("a path")?;
            let w = unquote(rest);
            let abs = if w.starts_with('/') {
                w
            } else {
                let base = rc.working_dir.clone().unwrap_or_else(|| "/".into());
                format!("{}/{w}", base.trim_end_matches('/'))
            };
            rc.working_dir = Some(abs);
        }
        "EXPOSE" => {
            need("a port")?;
            for p in rest.split_ascii_whitespace() {
                rc.exposed_ports.insert(port_key(p)?, Default::default());
            }
        }
        "USER" => {
            need("a user")?;
            rc.user = Some(unquote(rest));
        }
        "VOLUME" => {
            need("a path")?;
            let paths: Vec<String> = if rest.starts_with('[') {
                serde_json::from_str(rest).map_err(|e| format!("not a JSON array of paths: {e}"))?
            } else {
                rest.split_ascii_whitespace().map(unquote).collect()
            };
            for p in paths {
                rc.volumes.insert(p, Default::default());
            }
        }
        "STOPSIGNAL" => {
            need("a signal")?;
            rc.stop_signal = Some(rest.to_string());
        }
        _ => {
            return Err(format!(
                "{word:?} is not supported by commit (CMD, ENTRYPOINT, ENV, LABEL, WORKDIR, EXPOSE, USER, VOLUME, STOPSIGNAL)"
            ))
        }
    }
    Ok(())
}

/// Exec form (a JSON array of strings) or shell form.
fn command(shell: &[String], rest: &str) -> Result<Vec<String>, String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return Ok(v);
        }
    }
    let mut argv = if shell.is_empty() {
        vec!["/bin/sh".to_string(), "-c".to_string()]
    } else {
        shell.to_vec()
    };
    argv.push(rest.to_string());
    Ok(argv)
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return s[1..s.len() - 1].to_string();
        }
    }
    s.to_string()
}

/// `K=V K2="V 2"`, or the old form `K V` (one pair, the rest is the value).
fn pairs(rest: &str) -> Result<Vec<(String, String)>, String> {
    let first = rest.split_ascii_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = rest
            .split_once(|c: char| c.is_ascii_whitespace())
            .ok_or_else(|| format!("{rest:?} has no value (NAME=VALUE or NAME VALUE)"))?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    while chars.peek().is_some() {
        while chars.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            chars.next();
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        for c in chars.by_ref() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => word.push(c),
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c.is_ascii_whitespace() => break,
                None => word.push(c),
            }
        }
        if quote.is_some() {
            return Err("unterminated quote".into());
        }
        if word.is_empty() {
            continue;
        }
        let (k, v) = word
            .split_once('=')
            .ok_or_else(|| format!("{word:?} is not NAME=VALUE"))?;
        if k.is_empty() {
            return Err(format!("{word:?} has an empty name"));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// `80`, `80/udp` → the config's key (`80/tcp`, `80/udp`).
fn port_key(p: &str) -> Result<String, String> {
    let (port, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("{p:?}: the protocol is tcp, udp or sctp"));
    }
    match port.parse::<u16>() {
        Ok(n) if n > 0 => Ok(format!("{n}/{proto}")),
        _ => Err(format!("{p:?} is not a port number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> Result<ImageConfig, ChangeError> {
        let mut c = ImageConfig::scratch();
        c.config.cmd = Some(vec!["sh".into()]);
        let v: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut c, &v).map(|()| c)
    }

    #[test]
    fn changes_set_the_config_as_a_containerfile_would() {
        let c = applied(&[
            r#"CMD ["cat", "/f"]"#,
            "ENV A=1 B=\"two words\"",
            "env C 3 4",
            "LABEL org.x=y",
            "WORKDIR /srv",
            "WORKDIR app",
            "EXPOSE 80 53/udp",
            "USER nobody",
            "VOLUME /data",
        ])
        .unwrap();
        let rc = &c.config;
        assert_eq!(
            rc.cmd.as_deref(),
            Some(&["cat".to_string(), "/f".into()][..])
        );
        assert_eq!(rc.env, ["A=1", "B=two words", "C=3 4"]);
        assert_eq!(rc.labels["org.x"], "y");
        assert_eq!(rc.working_dir.as_deref(), Some("/srv/app"));
        assert!(rc.exposed_ports.contains_key("80/tcp") && rc.exposed_ports.contains_key("53/udp"));
        assert_eq!(rc.user.as_deref(), Some("nobody"));
        assert!(rc.volumes.contains_key("/data"));
        let c = applied(&["CMD echo hi"]).unwrap();
        assert_eq!(
            c.config.cmd.unwrap(),
            ["/bin/sh", "-c", "echo hi"].map(String::from)
        );
        // ENTRYPOINT clears the image's CMD, not one set alongside.
        assert_eq!(applied(&["ENTRYPOINT [\"top\"]"]).unwrap().config.cmd, None);
        let c = applied(&["CMD [\"-b\"]", "ENTRYPOINT top"]).unwrap();
        assert_eq!(c.config.cmd.unwrap(), ["-b"]);
        assert_eq!(c.config.entrypoint.unwrap(), ["/bin/sh", "-c", "top"]);
    }

    #[test]
    fn bad_changes_are_refused_by_name() {
        let e = applied(&["RUN rm -rf /"]).unwrap_err();
        assert!(e.to_string().contains("\"RUN\" is not supported"), "{e}");
        assert!(applied(&["EXPOSE 99999"]).is_err());
        assert!(applied(&["EXPOSE 80/icmp"]).is_err());
        assert!(applied(&["CMD"]).is_err());
        assert!(applied(&["ENV ONLYNAME"]).is_err());
        assert!(applied(&["LABEL a=\"open"]).is_err());
    }
}

//! `rrun ps [-a] [-q] [--filter K=V]… [--format T]`, as `docker ps`.
//! Filters: `status=created|running|exited`, `name=` (substring),
//! `id=` (prefix), `label=KEY[=VALUE]` (the image's labels and the
//! container's own `--label`s), `ancestor=IMAGE`. Several filters of one key are OR'ed,
//! different keys AND'ed, as Docker does.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, Result};
use runner::lifecycle;
use runner::state::{self, State, Status};
use serde_json::json;

use super::format::Template;
use super::inspect::status_word;
use crate::cli::PsArgs;
use crate::run::Coded;

pub fn ago(secs: u64) -> String {
    let d = state::now().saturating_sub(secs);
    match d {
        0..=59 => format!("{d} seconds ago"),
        60..=3599 => format!("{} minutes ago", d / 60),
        3600..=86_399 => format!("{} hours ago", d / 3600),
        _ => format!("{} days ago", d / 86_400),
    }
}

fn status_text(dir: &Path, s: &State) -> String {
    match (s.status, s.is_running()) {
        (_, true) if runner::lifecycle::paused(s) => "Up (Paused)".to_string(),
        // Docker's: (health: starting), (healthy), (unhealthy).
        (_, true) => match runner::health::load(dir).filter(|_| s.options.healthcheck.is_some()) {
            Some(h) if h.status == "starting" => "Up (health: starting)".to_string(),
            Some(h) => format!("Up ({})", h.status),
            None => "Up".to_string(),
        },
        (Status::Created, false) => "Created".to_string(),
        _ => format!(
            "Exited ({}) {}",
            s.exit_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into()),
            s.finished.map(ago).unwrap_or_default()
        ),
    }
}

/// Docker's PORTS text: `0.0.0.0:8080->80/tcp, ...` while running.
fn ports_text(s: &State) -> String {
    if !s.is_running() {
        return String::new();
    }
    s.host
        .ports
        .iter()
        .map(|p| format!("{}:{}->{}", p.host_ip_shown(), p.host_port, p.private()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parsed `--filter` values, by key.
#[derive(Debug, Default)]
pub struct Filters(Vec<(String, String)>);

impl Filters {
    pub fn parse(given: &[String]) -> Result<Filters, String> {
        let mut v = Vec::new();
        for f in given {
            let (k, val) = f
                .split_once('=')
                .ok_or_else(|| format!("bad format of filter (expected name=value): {f:?}"))?;
            match k {
                "status" => {
                    if !matches!(
                        val,
                        "created"
                            | "running"
                            | "exited"
                            | "paused"
                            | "restarting"
                            | "removing"
                            | "dead"
                    ) {
                        return Err(format!("invalid filter 'status={val}'"));
                    }
                }
                "name" | "id" | "label" | "ancestor" => {}
                other => {
                    return Err(format!(
                        "invalid filter {other:?} (known: status, name, id, label, ancestor)"
                    ))
                }
            }
            v.push((k.to_string(), val.to_string()));
        }
        Ok(Filters(v))
    }

    pub fn wants_all(&self) -> bool {
        self.0.iter().any(|(k, v)| k == "status" && v != "running")
    }

    /// `labels`: the container's labels (its image's), looked up only
    /// when a label filter needs them.
    pub fn matches(&self, s: &State, labels: &dyn Fn() -> Vec<(String, String)>) -> bool {
        let keys = ["status", "name", "id", "label", "ancestor"];
        keys.iter().all(|key| {
            let mut vals = self
                .0
                .iter()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .peekable();
            if vals.peek().is_none() {
                return true;
            }
            let vals: Vec<&str> = vals.collect();
            match *key {
                "status" => vals.contains(&status_word(s)),
                "name" => vals.iter().any(|v| s.name.contains(v)),
                "id" => vals.iter().any(|v| s.id.starts_with(v)),
                "ancestor" => vals.iter().any(|v| s.image == *v || s.image_digest == *v),
                _ => {
                    let have = labels();
                    vals.iter().all(|v| match v.split_once('=') {
                        Some((k, want)) => have.iter().any(|(hk, hv)| hk == k && hv == want),
                        None => have.iter().any(|(hk, _)| hk == v),
                    })
                }
            }
        })
    }
}

pub fn ps(root: &Path, a: &PsArgs) -> Result<i32> {
    let dir = root.join("containers");
    let _ = lifecycle::reap_leftovers(&dir);
    let filters = Filters::parse(&a.filter).map_err(|e| Coded(125, anyhow!(e)))?;
    let template = match &a.format {
        Some(f) => Some(Template::parse(f).map_err(|e| Coded(125, e.into()))?),
        None => None,
    };
    let store = std::cell::OnceCell::new();
    let mut out = std::io::stdout().lock();
    match (&template, a.quiet) {
        (Some(t), false) if t.table => writeln!(out, "{}", t.header())?,
        (None, false) => writeln!(
            out,
            "{:<12}   {:<20} {:<22} {:<16} {:<22} {:<20} NAMES",
            "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS"
        )?,
        _ => {}
    }
    for (cdir, s) in state::list(&dir) {
        if !(a.all || filters.wants_all() || s.is_running()) {
            continue;
        }
        // The image's labels, then the container's own (--label wins).
        let labels = || -> Vec<(String, String)> {
            let st = store.get_or_init(|| engine::Store::open(root).ok());
            let mut all: std::collections::BTreeMap<String, String> = st
                .as_ref()
                .and_then(|st| st.find_image(&s.image_digest).ok())
                .map(|i| i.config.config.labels.into_iter().collect())
                .unwrap_or_default();
            all.extend(s.options.labels.clone());
            all.into_iter().collect()
        };
        if !filters.matches(&s, &labels) {
            continue;
        }
        if a.quiet {
            writeln!(out, "{}", s.short_id())?;
            continue;
        }
        let mut cmd = format!("\"{}\"", s.command.join(" "));
        if let Some(t) = &template {
            let row = json!({
                "ID": s.short_id(),
                "Image": s.image,
                "Command": cmd,
                "CreatedAt": engine::image::rfc3339(s.created as i64),
                "RunningFor": ago(s.created),
                "Status": status_text(&cdir, &s),
                "State": status_word(&s),
                "Names": s.name,
                "Ports": ports_text(&s),
                "Labels": labels().into_iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
            });
            writeln!(out, "{}", t.render(&row).map_err(|e| Coded(125, e.into()))?)?;
            continue;
        }
        if cmd.chars().count() > 20 {
            cmd = cmd.chars().take(19).collect::<String>() + "…\"";
        }
        writeln!(
            out,
            "{:<12}   {:<20} {:<22} {:<16} {:<22} {:<20} {}",
            s.short_id(),
            s.image,
            cmd,
            ago(s.created),
            status_text(&cdir, &s),
            ports_text(&s),
            s.name
        )?;
    }
    Ok(0)
}

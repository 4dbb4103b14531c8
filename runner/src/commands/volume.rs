//! `rrun volume create|ls|inspect|rm|prune`, as `docker volume`: the
//! store's volumes (`runner::volume`), `local` driver only.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use runner::volume::{self, Meta};
use serde_json::{json, Value};

use crate::run::{require_root, Coded};

#[derive(Subcommand, Debug)]
pub enum VolumeCommand {
    /// Create a volume (a random name when NAME is omitted)
    Create(VolumeCreateArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(VolumeLsArgs),
    /// Display detailed information on one or more volumes (JSON)
    Inspect(VolumeNamesArgs),
    /// Remove one or more volumes (refused while a container uses them)
    #[command(alias = "remove")]
    Rm(VolumeRmArgs),
    /// Remove unused anonymous volumes (with --all, unused named ones too)
    Prune(VolumePruneArgs),
}

#[derive(Args, Debug)]
pub struct VolumeCreateArgs {
    /// Set metadata for a volume (KEY=VALUE)
    #[arg(long = "label", value_name = "list")]
    pub labels: Vec<String>,
    /// Volume driver name (only local)
    #[arg(short = 'd', long, default_value = "local")]
    pub driver: String,
    #[arg(value_name = "VOLUME")]
    pub name: Option<String>,
}

#[derive(Args, Debug)]
pub struct VolumeLsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Provide filter values (dangling=true|false, name=SUBSTRING, label=KEY[=VALUE])
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub filters: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolumeNamesArgs {
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolumeRmArgs {
    /// Do not fail on a volume that does not exist
    #[arg(short = 'f', long)]
    pub force: bool,
    #[arg(required = true, value_name = "VOLUME")]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct VolumePruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

pub fn volume(root: &Path, c: VolumeCommand) -> Result<i32> {
    match c {
        VolumeCommand::Create(a) => create(root, &a),
        VolumeCommand::Ls(a) => ls(root, &a),
        VolumeCommand::Inspect(a) => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in &a.names {
                match volume::load(root, n) {
                    Ok(m) => out.push(inspect_json(root, &m)),
                    Err(e) => {
                        eprintln!("rrun: {e}");
                        code = 1;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
            Ok(code)
        }
        VolumeCommand::Rm(a) => {
            require_root("rrun volume rm")?;
            let lock = volume::lock(root).map_err(|e| Coded(125, e.into()))?;
            let mut code = 0;
            for n in &a.names {
                match lock.remove(n, a.force) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("rrun: {e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        VolumeCommand::Prune(a) => prune(root, &a),
    }
}

fn create(root: &Path, a: &VolumeCreateArgs) -> Result<i32> {
    require_root("rrun volume create")?;
    if a.driver != volume::DRIVER {
        bail!(Coded(
            125,
            anyhow!("volume driver {:?} is not supported: only local", a.driver)
        ));
    }
    let mut labels = BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        if k.is_empty() {
            bail!(Coded(
                125,
                anyhow!("invalid label {l:?}: expected KEY=VALUE")
            ));
        }
        labels.insert(k.to_string(), v.to_string());
    }
    let name = a.name.clone().unwrap_or_else(volume::random_name);
    volume::check_name(&name).map_err(|e| Coded(125, e.into()))?;
    // The store's layout and its private root first.
    drop(engine::Store::open(root).map_err(|e| Coded(125, e.into()))?);
    let lock = volume::lock(root).map_err(|e| Coded(125, e.into()))?;
    lock.ensure(&name, &labels, false)
        .map_err(|e| Coded(125, e.into()))?;
    println!("{name}");
    Ok(0)
}

/// A `--filter` of `volume ls`, checked before anything is listed.
enum Filter {
    Dangling(bool),
    Name(String),
    Label(String, Option<String>),
}

fn parse_filter(f: &str) -> Result<Filter> {
    let bad = |why: &str| Coded(125, anyhow!("invalid filter {f:?}: {why}"));
    let (k, v) = f.split_once('=').ok_or_else(|| bad("expected KEY=VALUE"))?;
    Ok(match k {
        "dangling" => match v {
            "true" | "1" => Filter::Dangling(true),
            "false" | "0" => Filter::Dangling(false),
            _ => return Err(bad("dangling takes true or false").into()),
        },
        "name" => Filter::Name(v.to_string()),
        "label" => match v.split_once('=') {
            Some((k, v)) => Filter::Label(k.to_string(), Some(v.to_string())),
            None => Filter::Label(v.to_string(), None),
        },
        _ => return Err(bad("supported: dangling, name, label").into()),
    })
}

fn ls(root: &Path, a: &VolumeLsArgs) -> Result<i32> {
    let filters = a
        .filters
        .iter()
        .map(|f| parse_filter(f))
        .collect::<Result<Vec<_>>>()?;
    if !a.quiet {
        println!("{:<10}VOLUME NAME", "DRIVER");
    }
    for m in volume::list(root) {
        let keep = filters.iter().all(|f| match f {
            Filter::Dangling(d) => volume::users(root, &m.name).is_empty() == *d,
            Filter::Name(n) => m.name.contains(n.as_str()),
            Filter::Label(k, v) => match (m.labels.get(k), v) {
                (Some(have), Some(want)) => have == want,
                (Some(_), None) => true,
                (None, _) => false,
            },
        });
        if !keep {
            continue;
        }
        if a.quiet {
            println!("{}", m.name);
        } else {
            println!("{:<10}{}", m.driver, m.name);
        }
    }
    Ok(0)
}

fn prune(root: &Path, a: &VolumePruneArgs) -> Result<i32> {
    require_root("rrun volume prune")?;
    if !a.force {
        if !std::io::stdin().is_terminal() {
            bail!(Coded(
                1,
                anyhow!("refusing to remove volumes without a terminal to confirm on: use -f")
            ));
        }
        let which = if a.all {
            "all local volumes"
        } else {
            "anonymous local volumes"
        };
        eprint!("WARNING! This will remove {which} not used by at least one container.\nAre you sure you want to continue? [y/N] ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            return Ok(0);
        }
    }
    let lock = volume::lock(root).map_err(|e| Coded(125, e.into()))?;
    let mut first = true;
    for m in volume::list(root) {
        if !(a.all || m.anonymous) {
            continue;
        }
        // Refused (and kept) while a container uses it.
        if lock.remove(&m.name, false).is_ok() {
            if first {
                println!("Deleted Volumes:");
                first = false;
            }
            println!("{}", m.name);
        }
    }
    Ok(0)
}

/// Docker's shape of `volume inspect`.
fn inspect_json(root: &Path, m: &Meta) -> Value {
    json!({
        "CreatedAt": crate::commands::inspect::time(Some(m.created)),
        "Driver": m.driver,
        "Labels": m.labels,
        "Mountpoint": volume::data_path(root, &m.name),
        "Name": m.name,
        "Options": m.options,
        "Scope": "local",
    })
}

//! `rrun network create|ls|inspect|rm|prune`, as `docker network`: the
//! user-defined networks of the store (`runner::network::user`). The
//! predefined ones (bridge, host, none) are listed but not definitions.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use runner::network::user::{self, Definition};
use runner::state::{self, State};
use serde_json::{json, Map, Value};

use crate::cli::NetworkCommand;
use crate::run::{require_root, Coded};

pub fn network(root: &Path, c: NetworkCommand) -> Result<i32> {
    match c {
        NetworkCommand::Create(a) => {
            require_root("rrun network create")?;
            if a.driver != "bridge" {
                bail!(Coded(
                    125,
                    anyhow!("driver {:?} is not supported: only bridge", a.driver)
                ));
            }
            // The store's layout and its private root first.
            drop(engine::Store::open(root).map_err(|e| Coded(125, e.into()))?);
            let d = user::create(root, &a.name, a.subnet.as_deref(), a.gateway.as_deref())
                .map_err(|e| Coded(125, e.into()))?;
            println!("{}", d.id);
            Ok(0)
        }
        NetworkCommand::Ls(a) => {
            if !a.quiet {
                println!("{:<14}{:<20}{:<10}SCOPE", "NETWORK ID", "NAME", "DRIVER");
            }
            for name in user::PREDEFINED {
                let id = engine::Digest::blake3_of(name.as_bytes()).hex()[..12].to_string();
                print_row(a.quiet, &id, name, name);
            }
            for d in user::list(root) {
                print_row(a.quiet, &d.id[..12], &d.name, "bridge");
            }
            Ok(0)
        }
        NetworkCommand::Inspect(a) => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in &a.names {
                match user::load(root, n) {
                    Ok(d) => out.push(inspect_json(root, &d)),
                    Err(e) => {
                        eprintln!("rrun: {e}");
                        code = 1;
                    }
                }
            }
            println!("{}", serde_json::to_string_pretty(&Value::Array(out))?);
            Ok(code)
        }
        NetworkCommand::Rm(a) => {
            require_root("rrun network rm")?;
            let mut code = 0;
            for n in &a.names {
                match remove(root, n) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("rrun: {e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        NetworkCommand::Resolver(a) => {
            let subnet = a
                .subnet
                .parse()
                .map_err(|e: String| Coded(125, anyhow!("--subnet: {e}")))?;
            let gateway = a.gateway.parse().map_err(|_| {
                Coded(
                    125,
                    anyhow!("--gateway {:?}: not an IPv4 address", a.gateway),
                )
            })?;
            runner::network::resolver::start(runner::network::resolver::Config {
                name: a.name,
                bridge: a.bridge,
                subnet,
                gateway,
            })
            .map_err(|e| Coded(1, anyhow!("DNS resolver: {e}")))?;
            Ok(0)
        }
        NetworkCommand::Prune(a) => {
            require_root("rrun network prune")?;
            if !a.force {
                if !std::io::stdin().is_terminal() {
                    bail!(Coded(
                        1,
                        anyhow!(
                            "refusing to remove networks without a terminal to confirm on: use -f"
                        )
                    ));
                }
                eprint!("WARNING! This will remove all networks not used by at least one running container.\nAre you sure you want to continue? [y/N] ");
                let _ = std::io::stderr().flush();
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                if !matches!(line.trim(), "y" | "Y" | "yes") {
                    return Ok(0);
                }
            }
            let mut first = true;
            for d in user::list(root) {
                if running_on(root, &d).is_empty() && user::remove(root, &d).is_ok() {
                    if first {
                        println!("Deleted Networks:");
                        first = false;
                    }
                    println!("{}", d.name);
                }
            }
            Ok(0)
        }
    }
}

fn print_row(quiet: bool, id: &str, name: &str, driver: &str) {
    if quiet {
        println!("{id}");
    } else {
        println!("{id:<14}{name:<20}{driver:<10}local");
    }
}

/// The running containers whose state names the network.
fn running_on(root: &Path, d: &Definition) -> Vec<State> {
    state::list(&root.join("containers"))
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s.host.network_mode == d.name && s.is_running())
        .collect()
}

fn remove(root: &Path, key: &str) -> Result<()> {
    let d = user::load(root, key)?;
    let on = running_on(root, &d);
    if !on.is_empty() {
        let names: Vec<&str> = on.iter().map(|s| s.name.as_str()).collect();
        bail!(
            "network {} has active endpoints: containers {} are running on it (stop them first)",
            d.name,
            names.join(", ")
        );
    }
    user::remove(root, &d)?;
    Ok(())
}

/// Docker's shape of `network inspect`.
fn inspect_json(root: &Path, d: &Definition) -> Value {
    let net = d.network(root);
    let states = state::list(&root.join("containers"));
    let mut containers = Map::new();
    for m in runner::network::hosts::members(&net) {
        let name = states
            .iter()
            .find(|(_, s)| s.id == m.container)
            .map(|(_, s)| s.name.clone())
            .unwrap_or_default();
        containers.insert(
            m.container.clone(),
            json!({
                "Name": name,
                "IPv4Address": format!("{}/{}", m.address, net.subnet.prefix),
                "Aliases": m.names.iter().skip(1).collect::<Vec<_>>(),
            }),
        );
    }
    json!({
        "Name": d.name,
        "Id": d.id,
        "Created": crate::commands::inspect::time(Some(d.created)),
        "Scope": "local",
        "Driver": "bridge",
        "EnableIPv6": false,
        "IPAM": {
            "Driver": "default",
            "Options": {},
            "Config": [{"Subnet": d.subnet, "Gateway": d.gateway}],
        },
        "Internal": false,
        "Attachable": false,
        "Containers": containers,
        "Options": {"com.docker.network.bridge.name": net.bridge},
        "Labels": {},
    })
}

//! `rrun network create|ls|inspect|rm|prune`, as `docker network`: the
//! user-defined networks of the store (`runner::network::user`). The
//! predefined ones (bridge, host, none) are listed but not definitions.
//! `connect` and `disconnect` put a container on one more network and
//! take it off (`runner::network::connect`): a running one at once, and
//! every one at each start (kept in its state as a `Join`).

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Result};
use runner::network::user::{self, Definition};
use runner::state::{self, State};
use serde_json::{json, Map, Value};

use crate::cli::{NetworkCommand, NetworkConnectArgs, NetworkDisconnectArgs};
use crate::run::{require_root, Coded};
use runner::network::{Names, Network};

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
        NetworkCommand::Connect(a) => connect(root, &a),
        NetworkCommand::Disconnect(a) => disconnect(root, &a),
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
        .filter(|s| {
            (s.host.network_mode == d.name || s.host.connected.iter().any(|c| c.network == d.name))
                && s.is_running()
        })
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

/// The network `key` names for connect/disconnect: `bridge` (the
/// default) or a user-defined one; host and none are no networks to join.
fn joinable(root: &Path, key: &str) -> Result<Network> {
    match key {
        "bridge" => Ok(Network::default_bridge()),
        "host" | "none" => bail!(Coded(
            125,
            anyhow!("network {key} cannot be connected to or disconnected from: it is a --network mode, not a bridge")
        )),
        _ => Ok(user::load(root, key)
            .map_err(|e| Coded(125, e.into()))?
            .network(root)),
    }
}

fn connect(root: &Path, a: &NetworkConnectArgs) -> Result<i32> {
    require_root("rrun network connect")?;
    let containers = root.join("containers");
    let (dir, st) = state::find(&containers, &a.container).map_err(|e| Coded(125, e.into()))?;
    let mode = st.host.network_mode.as_str();
    if matches!(mode, "host" | "none") || mode.starts_with("container:") {
        let shown = if mode.starts_with("container:") {
            "container:..."
        } else {
            mode
        };
        bail!(Coded(
            125,
            anyhow!(
                "container {} runs with --network {shown}: it has no network of its own to connect to {}",
                st.name,
                a.network
            )
        ));
    }
    let net = joinable(root, &a.network)?;
    // A connection of an earlier run (before a restart) is gone.
    let on = |c: &&runner::network::connect::Connection| {
        c.network == net.name && runner::network::connect::is_live(c, &st.id)
    };
    let running = st.pid.filter(|_| st.is_running()).map(|p| p.pid);
    let joined = running.is_none() && st.host.joins.iter().any(|j| j.network == net.name);
    if mode == net.name || joined || st.host.connected.iter().any(|c| on(&c)) {
        bail!(Coded(
            125,
            anyhow!("container {} is already on network {}", st.name, net.name)
        ));
    }
    let user_net = net.bridge != runner::network::DEFAULT_BRIDGE;
    for alias in &a.alias {
        if !user_net {
            bail!(Coded(125, anyhow!("--alias {alias}: network-scoped aliases are supported only on user-defined networks")));
        }
        if let Some(why) = crate::run::name_problem(alias) {
            bail!(Coded(125, anyhow!("--alias {alias:?}: {why}")));
        }
    }
    let ip = match &a.ip {
        None => None,
        Some(_) if !user_net => bail!(Coded(
            125,
            anyhow!("--ip: a chosen address is supported only on user-defined networks")
        )),
        Some(s) => Some(
            s.parse::<std::net::Ipv4Addr>()
                .map_err(|_| Coded(125, anyhow!("--ip {s:?} is not an IPv4 address")))?,
        ),
    };
    // Kept for every start (Docker's endpoint of the container).
    let join = runner::network::connect::Join {
        network: net.name.clone(),
        aliases: a.alias.clone(),
        ip,
    };
    let keep = |s: &mut State| {
        s.host.joins.retain(|j| j.network != join.network);
        s.host.joins.push(join.clone());
    };
    let Some(pid) = running else {
        // Created or exited: on the network when it starts (the address
        // is checked now, leased then).
        if let Some(a) = ip.filter(|a| !net.subnet.contains(*a) || *a == net.gateway) {
            bail!(Coded(
                125,
                anyhow!("--ip {a} is not one for a container in {}", net.subnet)
            ));
        }
        State::update(&dir, &st, keep).map_err(|e| Coded(125, e.into()))?;
        return Ok(0);
    };
    let names = Names {
        hostname: st.host.hostname.clone(),
        names: std::iter::once(st.name.clone())
            .chain(a.alias.iter().cloned())
            .collect(),
        dns: st.host.dns.iter().filter_map(|d| d.parse().ok()).collect(),
    };
    let conn = runner::network::connect::connect(&net, &st.id, pid, &names, ip).map_err(|e| {
        Coded(
            125,
            anyhow!("connect container {} to network {}: {e}", st.name, net.name),
        )
    })?;
    let recorded = State::update(&dir, &st, |s| {
        s.host.connected.retain(|c| c.network != conn.network);
        s.host.connected.push(conn.clone());
        keep(s);
    });
    if let Err(e) = recorded {
        runner::network::connect::disconnect(&conn, &st.id);
        bail!(Coded(
            125,
            anyhow!("record the connection of container {}: {e}", st.name)
        ));
    }
    // On the default network with no user-defined one yet: this one's
    // names from now on (its hosts file and resolver).
    let other_user_net = st.host.connected.iter().any(|c| {
        c.network != net.name
            && c.bridge != runner::network::DEFAULT_BRIDGE
            && runner::network::connect::is_live(c, &st.id)
    });
    if user_net && mode == runner::network::DEFAULT_NAME && !other_user_net {
        let _ = follow(&st, &net, pid, None);
    }
    Ok(0)
}

/// Give the running default-network container `st` (first process
/// `pid`) the names of user network `net` (see `network::follow`); a
/// failure leaves it with the files it has, said on stderr. Whether it
/// follows `net` now.
fn follow(st: &State, net: &Network, pid: i32, leaving: Option<&Network>) -> bool {
    let gateway = Network::default_bridge().gateway;
    let extra = runner::native::container::extra_hosts_lines(
        &runner::native::container::split_extra_hosts(&st.host.extra_hosts),
        gateway,
    );
    match runner::network::follow::follow(net, &st.id, pid, &dns_config(st), &extra, leaving) {
        Ok(()) => true,
        Err(e) => {
            eprintln!(
                "rrun: warning: container {} is on network {} but keeps its /etc/hosts and /etc/resolv.conf: {e}",
                st.name, net.name
            );
            false
        }
    }
}

/// The container's `--dns`, `--dns-search` and `--dns-option`.
fn dns_config(st: &State) -> runner::network::resolv::DnsConfig {
    runner::network::resolv::DnsConfig {
        servers: st.host.dns.iter().filter_map(|s| s.parse().ok()).collect(),
        search: st.host.dns_search.clone(),
        options: st.host.dns_options.clone(),
    }
}

fn disconnect(root: &Path, a: &NetworkDisconnectArgs) -> Result<i32> {
    require_root("rrun network disconnect")?;
    let containers = root.join("containers");
    let (dir, st) = state::find(&containers, &a.container).map_err(|e| Coded(125, e.into()))?;
    let net = joinable(root, &a.network)?;
    let running = st.pid.is_some_and(|_| st.is_running());
    if !running && st.host.joins.iter().any(|j| j.network == net.name) {
        // Not started yet (or exited): it will not join at its start.
        State::update(&dir, &st, |s| {
            s.host.joins.retain(|j| j.network != net.name);
            s.host.connected.retain(|c| c.network != net.name);
        })
        .map_err(|e| Coded(125, e.into()))?;
        return Ok(0);
    }
    let Some(conn) = st
        .host
        .connected
        .iter()
        .find(|c| c.network == net.name)
        .cloned()
    else {
        if st.host.network_mode == net.name {
            bail!(Coded(
                125,
                anyhow!(
                    "container {} runs with --network {}: only networks joined with rrun network connect can be disconnected",
                    st.name,
                    net.name
                )
            ));
        }
        bail!(Coded(
            125,
            anyhow!(
                "container {} is not connected to network {}",
                st.name,
                net.name
            )
        ));
    };
    if let Err(e) = runner::network::connect::remove_interface(&conn) {
        if !a.force {
            bail!(Coded(
                125,
                anyhow!(
                    "disconnect container {} from network {}: {e} (-f to disconnect anyway)",
                    st.name,
                    net.name
                )
            ));
        }
        eprintln!("rrun: warning: {e}");
    }
    // It had its names from the network it leaves: the next user network
    // it is still on gives them now, as Docker's resolver goes on
    // answering for that one (see `network::follow`).
    let next = st.host.connected.iter().find(|c| {
        c.network != net.name
            && c.bridge != runner::network::DEFAULT_BRIDGE
            && runner::network::connect::is_live(c, &st.id)
    });
    let mut followed_next = false;
    if let (true, Some(next), Some(p)) = (
        runner::network::follow::follows(&conn.net(), &st.id),
        next,
        st.pid,
    ) {
        followed_next = follow(&st, &next.net(), p.pid, Some(&conn.net()));
    }
    if !followed_next {
        runner::network::follow::unfollow(&conn.net(), &st.id, &dns_config(&st));
    }
    runner::network::connect::release(&conn, &st.id);
    State::update(&dir, &st, |s| {
        s.host.connected.retain(|c| c.network != net.name);
        s.host.joins.retain(|j| j.network != net.name);
    })
    .map_err(|e| Coded(125, e.into()))?;
    Ok(0)
}

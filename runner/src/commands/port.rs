//! `rrun port CONTAINER [PRIVATE_PORT[/PROTO]]`, as `docker port`: the
//! published ports of a running container, `80/tcp -> 0.0.0.0:8080`, or
//! only the host addresses of one private port.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use runner::network::ports::PortMapping;
use runner::state::{self, State};

use crate::cli::PortArgs;
use crate::run::Coded;

/// The lines `rrun port` prints for `s`, all or those of `private`.
pub fn lines(s: &State, private: Option<&str>) -> Result<Vec<String>, String> {
    // Docker: a stopped container has no ports.
    let ports: &[PortMapping] = if s.is_running() { &s.host.ports } else { &[] };
    let Some(want) = private else {
        return Ok(ports.iter().map(|p| p.to_string()).collect());
    };
    let (num, proto) = want.split_once('/').unwrap_or((want, "tcp"));
    let num: u16 = num
        .parse()
        .map_err(|_| format!("invalid port {want:?}: expected PRIVATE_PORT[/PROTO]"))?;
    if !matches!(proto, "tcp" | "udp") {
        return Err(format!("invalid protocol {proto:?}: use tcp or udp"));
    }
    let hits: Vec<String> = ports
        .iter()
        .filter(|p| p.container_port == num && p.proto.as_str() == proto)
        .map(|p| format!("{}:{}", p.host_ip_shown(), p.host_port))
        .collect();
    if hits.is_empty() {
        return Err(format!(
            "no public port '{num}/{proto}' published for {}",
            s.name
        ));
    }
    Ok(hits)
}

pub fn port(root: &Path, a: &PortArgs) -> Result<i32> {
    let (_, s) =
        state::find(&root.join("containers"), &a.container).map_err(|e| Coded(1, e.into()))?;
    match lines(&s, a.private.as_deref()) {
        Ok(v) => {
            for l in v {
                println!("{l}");
            }
            Ok(0)
        }
        Err(e) => bail!(Coded(1, anyhow!(e))),
    }
}

//! A network's netfilter rules: one nftables table per network, named
//! after it, holding everything rbox adds to the host's firewall, so that
//! deleting the table takes all of it away. Programmed once when the
//! network is set up (not per container) by piping a ruleset to `nft`.
//!
//! - prerouting: packets from the bridge to or from 127.0.0.0/8 are
//!   dropped before anything else sees them. The bridge has
//!   `route_localnet` on (see below and `bridge`), so the kernel would no
//!   longer drop them as martians: this rule is what keeps a container
//!   away from the host's loopback services.
//! - forward: containers may go out; only replies come back in.
//! - postrouting: what leaves through another interface is masqueraded.
//! - DNS to the network's own address (its embedded resolver, see
//!   `resolver`) is never translated, even with port 53 published.
//! - published ports (`rrun run -p`, see `ports`): two maps from host
//!   address (`ports_ip`; `ports` for every address), protocol and port
//!   to a container's address and port, with one element per published
//!   port, added and deleted per container. Looked up (DNAT) for packets
//!   to a local address arriving from anywhere (prerouting, which also
//!   covers containers reaching a published port: hairpin, masqueraded
//!   so that replies come back the same way) and for the host's own
//!   connections (output), 127.0.0.0/8 included: with `route_localnet`
//!   on the bridge (on that interface only) the kernel routes a packet
//!   from 127.0.0.1 out through it, and postrouting masquerades such
//!   packets to the gateway address, so that the container sees and
//!   answers the bridge (Docker's `userland-proxy: false` way, chosen
//!   over a userspace relay on measured throughput, README "Ports").
//!   Prerouting never translates 127.0.0.0/8: a neighbour that sends
//!   packets for 127.0.0.1 to the host must not reach a port published
//!   on 127.0.0.1 only (the kernel drops them as martians on every
//!   interface but the bridge, where the first rule does).

use std::io::{self, Write};
use std::process::{Command, Stdio};

use std::net::Ipv4Addr;

use super::ipam::Subnet;
use super::ports::PortMapping;

#[derive(Debug, thiserror::Error)]
pub enum NatError {
    #[error("run nft: {0} (bridge networking programs NAT with nftables: install the nftables package, or use --network host or none)")]
    Spawn(io::Error),
    #[error("nft refused the rules of table {table}: {stderr}")]
    Refused { table: String, stderr: String },
}

/// The table of the network whose bridge is `bridge`.
pub fn table_name(bridge: &str) -> String {
    format!("rbox-{bridge}")
}

/// The ruleset for a bridge and its subnet; applying it replaces the
/// table as a whole (idempotent: a half set-up network is finished).
pub fn ruleset(bridge: &str, subnet: Subnet) -> String {
    let t = table_name(bridge);
    format!(
        r#"table ip {t}
delete table ip {t}
table ip {t} {{
	map ports {{
		type inet_proto . inet_service : ipv4_addr . inet_service
	}}
	map ports_ip {{
		type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service
	}}
	chain prerouting {{
		type filter hook prerouting priority raw; policy accept;
		iifname "{bridge}" ip daddr 127.0.0.0/8 drop
		iifname "{bridge}" ip saddr 127.0.0.0/8 drop
	}}
	chain publish {{
		type nat hook prerouting priority dstnat; policy accept;
		iifname "{bridge}" ip daddr {subnet} meta l4proto {{ tcp, udp }} th dport 53 return
		ip daddr != 127.0.0.0/8 fib daddr type local meta l4proto {{ tcp, udp }} dnat ip to ip daddr . meta l4proto . th dport map @ports_ip
		ip daddr != 127.0.0.0/8 fib daddr type local meta l4proto {{ tcp, udp }} dnat ip to meta l4proto . th dport map @ports
	}}
	chain publish_local {{
		type nat hook output priority -100; policy accept;
		fib daddr type local meta l4proto {{ tcp, udp }} dnat ip to ip daddr . meta l4proto . th dport map @ports_ip
		fib daddr type local meta l4proto {{ tcp, udp }} dnat ip to meta l4proto . th dport map @ports
	}}
	chain forward {{
		type filter hook forward priority filter; policy accept;
		iifname "{bridge}" accept
		oifname "{bridge}" ct state established,related accept
		oifname "{bridge}" ct status dnat accept
		oifname "{bridge}" drop
	}}
	chain postrouting {{
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr {subnet} oifname != "{bridge}" masquerade
		ip saddr {subnet} oifname "{bridge}" ct status dnat masquerade
		ip saddr 127.0.0.0/8 oifname "{bridge}" masquerade
	}}
}}
"#
    )
}

fn nft(input: &str, table: &str) -> Result<(), NatError> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NatError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().map_err(NatError::Spawn)?;
    if !out.status.success() {
        return Err(NatError::Refused {
            table: table.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// Create (or replace) the network's table.
pub fn apply(bridge: &str, subnet: Subnet) -> Result<(), NatError> {
    nft(&ruleset(bridge, subnet), &table_name(bridge))
}

/// Whether the network's table is there.
pub fn exists(bridge: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", &table_name(bridge)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Delete the network's table, if it is there.
pub fn remove(bridge: &str) -> Result<(), NatError> {
    let t = table_name(bridge);
    nft(&format!("table ip {t}\ndelete table ip {t}\n"), &t)
}

/// The map and key of a published port.
fn element_key(p: &PortMapping) -> (&'static str, String) {
    match p.host_ip {
        Some(ip) => ("ports_ip", format!("{ip} . {} . {}", p.proto, p.host_port)),
        None => ("ports", format!("{} . {}", p.proto, p.host_port)),
    }
}

/// Add the elements of `ports`, published at the container's `address`.
/// An element left by a container that is gone (whose record went
/// without it) is replaced.
pub fn publish(bridge: &str, address: Ipv4Addr, ports: &[PortMapping]) -> Result<(), NatError> {
    let t = table_name(bridge);
    let mut add = String::new();
    for p in ports {
        let (map, key) = element_key(p);
        add += &format!(
            "add element ip {t} {map} {{ {key} : {address} . {} }}\n",
            p.container_port
        );
    }
    if add.is_empty() || nft(&add, &t).is_ok() {
        return Ok(());
    }
    unpublish(bridge, ports);
    nft(&add, &t)
}

/// Delete the elements of `ports`, as far as they are there.
pub fn unpublish(bridge: &str, ports: &[PortMapping]) {
    let t = table_name(bridge);
    let delete = |p: &PortMapping| {
        let (map, key) = element_key(p);
        format!("delete element ip {t} {map} {{ {key} }}\n")
    };
    let all: String = ports.iter().map(delete).collect();
    // One transaction: if one element is missing, none is deleted.
    if !all.is_empty() && nft(&all, &t).is_err() {
        for p in ports {
            let _ = nft(&delete(p), &t);
        }
    }
}

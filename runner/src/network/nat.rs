//! A network's netfilter rules: one nftables table per network, named
//! after it, holding everything rbox adds to the host's firewall, so that
//! deleting the table takes all of it away. Programmed once when the
//! network is set up (not per container) by piping a ruleset to `nft`.
//!
//! - prerouting: packets from the bridge to 127.0.0.0/8 are dropped. The
//!   kernel already drops them while `route_localnet` is 0 (rbox never
//!   sets it); the rule keeps a container away from the host's loopback
//!   services even if someone else turns it on.
//! - forward: containers may go out; only replies come back in.
//! - postrouting: what leaves through another interface is masqueraded.

use std::io::{self, Write};
use std::process::{Command, Stdio};

use super::ipam::Subnet;

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
	chain prerouting {{
		type filter hook prerouting priority raw; policy accept;
		iifname "{bridge}" ip daddr 127.0.0.0/8 drop
	}}
	chain forward {{
		type filter hook forward priority filter; policy accept;
		iifname "{bridge}" accept
		oifname "{bridge}" ct state established,related accept
		oifname "{bridge}" drop
	}}
	chain postrouting {{
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr {subnet} oifname != "{bridge}" masquerade
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

/// Delete the network's table, if it is there.
pub fn remove(bridge: &str) -> Result<(), NatError> {
    let t = table_name(bridge);
    nft(&format!("table ip {t}\ndelete table ip {t}\n"), &t)
}

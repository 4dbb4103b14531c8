//! The bridge of a network in the host's network namespace: created on
//! first use with the gateway address, IPv4 forwarding on,
//! `route_localnet` on for the bridge alone (the host's own connections
//! to a port published on 127.0.0.1 leave through it, see `nat`; the
//! setting is the bridge's and goes with it) and the network's nftables
//! table; brought up last, so that a bridge that is up
//! is a network that is ready (a run killed half-way is finished by the
//! next one, which finds the bridge down).

use std::io;

use super::netlink::Netlink;
use super::{nat, Network, NetworkError};

/// The bridge's interface index, setting the network up if needed. The
/// caller holds the network's lock.
pub fn ensure(nl: &mut Netlink, net: &Network) -> Result<u32, NetworkError> {
    let ctx = |what: &'static str| {
        let bridge = net.bridge.clone();
        move |source: io::Error| NetworkError::Netlink {
            what,
            name: bridge,
            source,
        }
    };
    if let Some(l) = nl.link(&net.bridge).map_err(ctx("look up bridge"))? {
        if l.up {
            return Ok(l.index);
        }
    }
    if nl
        .link(&net.bridge)
        .map_err(ctx("look up bridge"))?
        .is_none()
    {
        match nl.add_bridge(&net.bridge, super::mac_for(net.gateway)) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            r => r.map_err(ctx("create bridge"))?,
        }
    }
    let index = nl
        .link(&net.bridge)
        .map_err(ctx("look up bridge"))?
        .ok_or_else(|| NetworkError::Netlink {
            what: "look up bridge",
            name: net.bridge.clone(),
            source: io::Error::from_raw_os_error(libc::ENODEV),
        })?;
    match nl.add_address(index.index, net.gateway, net.subnet.prefix) {
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
        r => r.map_err(ctx("add the gateway address to bridge"))?,
    }
    // Per network namespace: on a host the host's, in a test its own.
    std::fs::write("/proc/sys/net/ipv4/ip_forward", b"1").map_err(|source| {
        NetworkError::Sysctl {
            what: "net.ipv4.ip_forward".into(),
            source,
        }
    })?;
    // The table first: its prerouting rule drops what the bridge brings
    // to or from 127.0.0.0/8 once the kernel no longer does.
    nat::apply(&net.bridge, net.subnet)?;
    let localnet = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge);
    std::fs::write(&localnet, b"1").map_err(|source| NetworkError::Sysctl {
        what: format!("net.ipv4.conf.{}.route_localnet", net.bridge),
        source,
    })?;
    nl.set_up(index.index).map_err(ctx("bring up bridge"))?;
    Ok(index.index)
}

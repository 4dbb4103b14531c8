//! More networks for a running container (`rrun network connect` and
//! `disconnect`, as Docker's): one more veth pair per network, its end in
//! the container's network namespace as `eth1`, `eth2`, ..., with an
//! address from that network's IPAM and no route but the subnet's (the
//! default route stays the first network's), and on a user-defined
//! network the container's names in its members' /etc/hosts and resolver.
//!
//! Nothing here outlives the container by design: the lease's holder is
//! the container's first process, as for `eth0` (a dead holder's lease is
//! free, and so is its member record, see `ipam` and `hosts`), and the
//! kernel deletes the veth pair with the namespace. The connections are
//! recorded in the container's state (`Connection`) so that its exit, the
//! reaper and inspect know them; `release` tidies the network's files.
//!
//! A connect is also kept as a `Join` in the container's state, as
//! Docker keeps its endpoints: a created or exited container is put on
//! the network when it starts (before its command runs), and every
//! container again at each restart, until `disconnect`.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::ipam::{Holder, IpamError, Subnet};
use super::netlink::Netlink;
use super::user::{self, UserNetError};
use super::{
    bridge, hosts, mac_for, resolver, Names, Network, NetworkError, DEFAULT_BRIDGE, DEFAULT_NAME,
};

/// A network to put the container on at every start (`rrun network
/// connect`): its name as the store knows it, the aliases and the
/// address (`--ip`) asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Join {
    pub network: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
}

/// The network `name` names in the store at `root`: `bridge` (the
/// default) or a user-defined one.
pub fn network_named(root: &Path, name: &str) -> Result<Network, UserNetError> {
    if name == DEFAULT_NAME {
        return Ok(Network::default_bridge());
    }
    Ok(user::load(root, name)?.network(root))
}

/// A network a container was connected to after it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub network: String,
    pub bridge: String,
    pub subnet: String,
    pub gateway: Ipv4Addr,
    /// `eth1`, ...: the container's end.
    pub interface: String,
    /// The host's end, on the network's bridge.
    #[serde(default)]
    pub host_interface: String,
    pub address: Ipv4Addr,
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl Connection {
    pub fn net(&self) -> Network {
        let subnet: Subnet = self.subnet.parse().unwrap_or(Subnet {
            network: self.gateway,
            prefix: 32,
        });
        Network {
            name: self.network.clone(),
            bridge: self.bridge.clone(),
            subnet,
            gateway: self.gateway,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("container {container} is already on network {network}")]
    Already { container: String, network: String },
    #[error(transparent)]
    Network(#[from] NetworkError),
}

impl From<IpamError> for ConnectError {
    fn from(e: IpamError) -> Self {
        ConnectError::Network(e.into())
    }
}

/// The first `ethN` the namespace does not have.
fn free_interface(inner: &mut Netlink) -> io::Result<String> {
    for i in 1..1000 {
        let name = format!("eth{i}");
        if inner.link(&name)?.is_none() {
            return Ok(name);
        }
    }
    Err(io::Error::from_raw_os_error(libc::ENFILE))
}

/// The host side's name: unique per container process and network.
fn host_veth_name(container: &str, net: &Network, pid: i32) -> String {
    let d = engine::Digest::blake3_of(format!("{container}/{}/{pid}", net.bridge).as_bytes());
    format!("rbx{}", &d.hex()[..12])
}

/// Put the running container `container` (first process `pid`) on `net`
/// too; `ip`: the address it asks for (`--ip`). Refused if it holds an
/// address of `net` already (its `--network`, or an earlier connect).
pub fn connect(
    net: &Network,
    container: &str,
    pid: i32,
    names: &Names,
    ip: Option<Ipv4Addr>,
) -> Result<Connection, ConnectError> {
    let ns_path = format!("/proc/{pid}/ns/net");
    let netns = File::open(&ns_path).map_err(|_| NetworkError::Gone(pid))?;
    let holder = Holder::of(container, pid).ok_or(NetworkError::Gone(pid))?;
    let ctx = |what: &'static str, name: &str| {
        let name = name.to_string();
        move |source: io::Error| NetworkError::Netlink { what, name, source }
    };
    let mut nl = Netlink::open().map_err(ctx("open netlink socket for", &net.name))?;
    let mut inner = Netlink::open_in(netns.as_fd()).map_err(ctx(
        "open netlink socket in the network namespace of",
        &ns_path,
    ))?;
    let ipam = net.ipam();
    let mut lock = ipam.lock()?;
    // Under the lock: two connects of the same pair cannot both pass.
    if ipam
        .in_use()
        .iter()
        .any(|(_, h)| h.container == container && h.alive())
    {
        return Err(ConnectError::Already {
            container: container.to_string(),
            network: net.name.clone(),
        });
    }
    let bridge = bridge::ensure(&mut nl, net)?;
    ipam.reap(&mut lock);
    let address = match ip {
        Some(a) => ipam.lease_addr(&mut lock, &holder, a)?,
        None => ipam.lease(&mut lock, &holder)?,
    };
    let host = host_veth_name(container, net, pid);
    let made = (|| -> Result<String, NetworkError> {
        let ifname = free_interface(&mut inner).map_err(ctx("look up", "eth1"))?;
        nl.add_veth(&host, bridge, &ifname, mac_for(address), netns.as_fd())
            .map_err(ctx("create veth pair", &host))?;
        let link = inner
            .link(&ifname)
            .map_err(ctx("look up", &ifname))?
            .ok_or_else(|| ctx("look up", &ifname)(io::Error::from_raw_os_error(libc::ENODEV)))?;
        let set = inner
            .set_up(link.index)
            .map_err(ctx("bring up", &ifname))
            .and_then(|_| {
                inner
                    .add_address(link.index, address, net.subnet.prefix)
                    .map_err(ctx("add address to", &ifname))
            });
        if let Err(e) = set {
            let _ = inner.delete_link(link.index);
            return Err(e);
        }
        Ok(ifname)
    })();
    let ifname = match made {
        Ok(i) => i,
        Err(e) => {
            ipam.release(address, container);
            return Err(e.into());
        }
    };
    let conn = Connection {
        network: net.name.clone(),
        bridge: net.bridge.clone(),
        subnet: net.subnet.to_string(),
        gateway: net.gateway,
        interface: ifname,
        host_interface: host,
        address,
        aliases: names.names.iter().skip(1).cloned().collect(),
    };
    if net.bridge != DEFAULT_BRIDGE {
        let m = hosts::Member {
            container: container.to_string(),
            address,
            hostname: names.hostname.clone(),
            names: names.names.clone(),
        };
        let named =
            resolver::set_upstream(net, container, &names.dns).and_then(|_| hosts::join(net, &m));
        if let Err(source) = named {
            drop(lock);
            disconnect(&conn, container);
            return Err(NetworkError::Record {
                what: "list the container in the hosts files of network",
                path: net.state_dir(),
                source,
            }
            .into());
        }
        // Its members ask the resolver for the container by name.
        if let Err(e) = resolver::ensure(net) {
            eprintln!(
                "rrun: warning: {e}; containers on network {} resolve it through /etc/hosts only",
                net.name
            );
        }
    }
    drop(lock);
    Ok(conn)
}

/// Delete the container's interface on `conn`'s network: the host's end
/// of the pair, by the name rrun gave it, so that a container that
/// renamed its own end cannot stay on the network (the kernel deletes
/// the peer with it). Nothing to do if the pair is gone already.
pub fn remove_interface(conn: &Connection) -> Result<(), NetworkError> {
    let ctx = |what: &'static str, name: &str| {
        let name = name.to_string();
        move |source: io::Error| NetworkError::Netlink { what, name, source }
    };
    let name = &conn.host_interface;
    let mut nl = Netlink::open().map_err(ctx("open netlink socket for", &conn.network))?;
    if let Some(link) = nl.link(name).map_err(ctx("look up", name))? {
        nl.delete_link(link.index).map_err(ctx("delete", name))?;
    }
    Ok(())
}

/// Take the container off `conn`'s network: its interface and then its
/// names and address.
pub fn disconnect(conn: &Connection, container: &str) {
    let _ = remove_interface(conn);
    release(conn, container);
}

/// Give back what the container had on `conn`'s network (it is gone, or
/// its interface is): its names, its DNS servers record and its lease.
pub fn release(conn: &Connection, container: &str) {
    let net = conn.net();
    if net.bridge != DEFAULT_BRIDGE {
        hosts::leave(&net, container);
        resolver::clear_upstream(&net, container);
        let _ = std::fs::remove_file(super::follow::resolv_path(&net, container));
    }
    net.ipam().release(conn.address, container);
}

/// Whether the container's lease on `conn`'s network is live (it is on
/// the network now).
pub fn is_live(conn: &Connection, container: &str) -> bool {
    conn.net()
        .ipam()
        .in_use()
        .iter()
        .any(|(a, h)| *a == conn.address && h.container == container)
}

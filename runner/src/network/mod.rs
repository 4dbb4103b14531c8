//! Bridge networking: a container's own network namespace with an `eth0`
//! on a Linux bridge of the host, an address from the network's IPAM, a
//! default route through the bridge and outbound NAT, and no way to the
//! host's loopback.
//!
//! The API is two calls: `attach` a started container's network
//! namespace to a network (→ an `Attachment` holding its address lease)
//! and drop the attachment when the container is gone. Per container,
//! everything is in-process netlink: one request creates the veth pair
//! with the container's end already inside its namespace, two more give
//! it its address and route. Nothing per container needs removing: the
//! kernel deletes the veth pair with the namespace, and a lease whose
//! container process is gone is free (see `ipam`). Per network, the
//! bridge and its nftables table are made once (see `bridge`, `nat`).
//! Published ports (`-p`) are the exception: per container, elements of
//! the network's nftables maps, deleted when the attachment is dropped
//! and reaped like leases when its container is gone (see `ports`), and
//! a socket bound to each host port so that no host service takes it
//! (TCP; see `hostport`), closed with the attachment.
//!
//! Network state (leases) lives in `STATE_DIR`, on the host's /run: a
//! bridge is an object of the host's network namespace shared by every
//! rbox store, and like it the leases go away at reboot.
//!
//! Besides the default network (`bridge` on `rbox0`), user-defined
//! networks (`user`) each have a bridge and table of their own, and on
//! them containers find each other by name through /etc/hosts (`hosts`)
//! and through the network's embedded DNS resolver (`resolver`, answering
//! with `dns`). A running container joins more networks, and leaves
//! them, with `connect`.

pub mod bridge;
pub mod connect;
pub mod dns;
pub mod follow;
pub mod hostport;
pub mod hosts;
pub mod ipam;
pub mod nat;
pub mod netlink;
pub mod ports;
pub mod resolv;
pub mod resolver;
pub mod user;

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::PathBuf;

use ipam::{Holder, Ipam, IpamError, Subnet};
use netlink::Netlink;

/// Where networks keep their leases.
pub const STATE_DIR: &str = "/run/rbox/networks";

/// The default network: Docker's `bridge`, on rbox's own bridge device.
pub const DEFAULT_NAME: &str = "bridge";
pub const DEFAULT_BRIDGE: &str = "rbox0";
pub const DEFAULT_SUBNET: &str = "10.87.0.0/16";

/// The container's end of the veth pair.
pub const CONTAINER_IF: &str = "eth0";

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Nat(#[from] nat::NatError),
    #[error("{what} {name}: {source}")]
    Netlink {
        what: &'static str,
        name: String,
        #[source]
        source: io::Error,
    },
    #[error("set {what}: {source}")]
    Sysctl {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("the container's process {0} is gone before its network was set up")]
    Gone(i32),
    #[error("cannot publish host port {port}: it is already published by container {by}")]
    PortTaken { port: String, by: String },
    #[error("cannot publish {port}: bind it on the host: {source}")]
    HostPort {
        port: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} {path}: {source}")]
    Record {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    /// The bridge device in the host's network namespace.
    pub bridge: String,
    pub subnet: Subnet,
    /// The bridge's address, the containers' default route.
    pub gateway: Ipv4Addr,
}

impl Network {
    /// The default network (`bridge`).
    pub fn default_bridge() -> Network {
        Network {
            name: DEFAULT_NAME.into(),
            bridge: DEFAULT_BRIDGE.into(),
            subnet: DEFAULT_SUBNET.parse().expect("valid default subnet"),
            gateway: DEFAULT_SUBNET
                .parse::<Subnet>()
                .expect("valid default subnet")
                .gateway(),
        }
    }

    /// Where its leases live: `bridge` for the default network, the
    /// bridge device's name for user-defined ones (unique per store).
    pub fn state_dir(&self) -> PathBuf {
        let leaf = if self.bridge == DEFAULT_BRIDGE {
            &self.name
        } else {
            &self.bridge
        };
        PathBuf::from(STATE_DIR).join(leaf)
    }

    pub fn ipam(&self) -> Ipam {
        Ipam::new(self.state_dir(), self.subnet).skipping(self.gateway)
    }
}

/// A container on a network; dropping it gives the address back.
#[derive(Debug)]
pub struct Attachment {
    pub address: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub prefix: u8,
    ipam: Ipam,
    container: String,
    published: Option<ports::Published>,
    host_ports: Option<hostport::HostPorts>,
    /// A user-defined network: the container is listed in its members'
    /// /etc/hosts until dropped.
    named: Option<Network>,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // The ports first: no traffic for the address once it is free.
        drop(self.host_ports.take());
        drop(self.published.take());
        if let Some(net) = self.named.take() {
            resolver::clear_upstream(&net, &self.container);
            hosts::leave(&net, &self.container);
        }
        self.ipam.release(self.address, &self.container);
    }
}

/// The host side's name: unique per container process, at most 15 bytes.
fn host_veth_name(container: &str, pid: i32) -> String {
    let d = engine::Digest::blake3_of(format!("{container}/{pid}").as_bytes());
    format!("rbx{}", &d.hex()[..12])
}

/// A locally administered MAC derived from the address (as Docker does),
/// so that a reused address keeps its MAC in the neighbours' caches.
pub(crate) fn mac_for(a: Ipv4Addr) -> [u8; 6] {
    let o = a.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// How a container is known on a user-defined network.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub hostname: String,
    /// Its name, then its `--network-alias`es.
    pub names: Vec<String>,
    /// Its `--dns` servers: where the network's resolver forwards its
    /// queries (none: the host's servers).
    pub dns: Vec<std::net::IpAddr>,
}

/// Put the network namespace of `pid` (a container's first process, not
/// yet running its command) on `net`, with `ports` published (their host
/// ports chosen). On a user-defined network, `names` are added to every
/// member's /etc/hosts (see `hosts`).
pub fn attach(
    net: &Network,
    container: &str,
    pid: i32,
    ports: &[ports::PortMapping],
    names: Option<&Names>,
) -> Result<Attachment, NetworkError> {
    let ns_path = format!("/proc/{pid}/ns/net");
    let netns = File::open(&ns_path).map_err(|_| NetworkError::Gone(pid))?;
    let holder = Holder::of(container, pid).ok_or(NetworkError::Gone(pid))?;
    let mut nl = Netlink::open().map_err(|source| NetworkError::Netlink {
        what: "open netlink socket for",
        name: net.name.clone(),
        source,
    })?;
    let ipam = net.ipam();
    let mut lock = ipam.lock()?;
    let bridge = bridge::ensure(&mut nl, net)?;
    ipam.reap(&mut lock);
    ports::reap(&ipam, &net.bridge, &mut lock);
    let address = ipam.lease(&mut lock, &holder)?;
    let mut att = Attachment {
        address,
        gateway: net.gateway,
        prefix: net.subnet.prefix,
        ipam: ipam.clone(),
        container: container.to_string(),
        published: None,
        host_ports: None,
        named: None,
    };
    if let (Some(n), false) = (names, net.bridge == DEFAULT_BRIDGE) {
        let m = hosts::Member {
            container: container.to_string(),
            address,
            hostname: n.hostname.clone(),
            names: n.names.clone(),
        };
        resolver::set_upstream(net, container, &n.dns).map_err(|source| NetworkError::Record {
            what: "record the DNS servers of the container on network",
            path: net.state_dir(),
            source,
        })?;
        hosts::join(net, &m).map_err(|source| NetworkError::Record {
            what: "list the container in the hosts files of network",
            path: net.state_dir(),
            source,
        })?;
        att.named = Some(net.clone());
    }
    if !ports.is_empty() {
        att.published = Some(ports::publish(
            &ipam,
            &net.bridge,
            &mut lock,
            &holder,
            address,
            ports,
        )?);
    }
    drop(lock);
    if !ports.is_empty() {
        // After the records (which name the container that has a port)
        // and outside the lock (dropping `att` takes it): a host
        // service on a port keeps it, and the elements go again.
        let held =
            hostport::HostPorts::hold(ports).map_err(|(p, source)| NetworkError::HostPort {
                port: format!("{}:{}/{}", p.host_ip_shown(), p.host_port, p.proto),
                source,
            })?;
        att.host_ports = Some(held);
    }
    let host = host_veth_name(container, pid);
    let ctx = |what: &'static str, name: &str| {
        let name = name.to_string();
        move |source: io::Error| NetworkError::Netlink { what, name, source }
    };
    nl.add_veth(&host, bridge, CONTAINER_IF, mac_for(address), netns.as_fd())
        .map_err(ctx("create veth pair", &host))?;
    let mut inner = Netlink::open_in(netns.as_fd()).map_err(ctx(
        "open netlink socket in the network namespace of",
        &ns_path,
    ))?;
    let eth0 = inner
        .link(CONTAINER_IF)
        .map_err(ctx("look up", CONTAINER_IF))?
        .ok_or_else(|| ctx("look up", CONTAINER_IF)(io::Error::from_raw_os_error(libc::ENODEV)))?;
    inner
        .configure(eth0.index, address, net.subnet.prefix, att.gateway)
        .map_err(ctx(
            "bring up, give an address and a default route to",
            CONTAINER_IF,
        ))?;
    Ok(att)
}

//! A small synchronous rtnetlink client: the handful of link, address and
//! route requests a bridge network needs, made in-process (no `ip`
//! processes, no async runtime) on a NETLINK_ROUTE socket of the network
//! namespace it was opened in.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// A NETLINK_ROUTE socket bound to one network namespace.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// A link as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub up: bool,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink {
            sock,
            seq: 0,
            buf: Vec::with_capacity(16 << 10),
        })
    }

    /// A socket in the network namespace `netns` (an open nsfs file). A
    /// socket stays in the namespace it was created in, so a short-lived
    /// thread enters the namespace, opens it and ends: the caller's own
    /// threads never change namespace.
    pub fn open_in(netns: BorrowedFd<'_>) -> io::Result<Netlink> {
        let fd = netns.as_raw_fd();
        std::thread::scope(|s| {
            s.spawn(move || {
                // SAFETY: setns on this thread only, with a descriptor the
                // caller keeps open for the call; the thread ends right after.
                if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } != 0 {
                    return Err(io::Error::last_os_error());
                }
                Netlink::open()
            })
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("netlink thread panicked")))
        })
    }

    /// Send one request and wait for its ACK; returns the messages the
    /// kernel answered with before it (for GET requests).
    fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        self.batch(vec![(msg, flags)])
    }

    /// Send several requests in one datagram (the kernel handles them in
    /// order) and wait for the ACK of each: one system call each way
    /// instead of one per request. Stops at the first error; returns the
    /// messages the kernel answered with before the ACKs.
    fn batch(
        &mut self,
        msgs: Vec<(RouteNetlinkMessage, u16)>,
    ) -> io::Result<Vec<RouteNetlinkMessage>> {
        let first = self.seq.wrapping_add(1);
        let mut out = Vec::new();
        for (msg, flags) in msgs {
            self.seq = self.seq.wrapping_add(1);
            let mut hdr = NetlinkHeader::default();
            hdr.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
            hdr.sequence_number = self.seq;
            let mut m = NetlinkMessage::new(hdr, NetlinkPayload::from(msg));
            m.finalize();
            let at = out.len();
            out.resize(at + m.buffer_len(), 0);
            m.serialize(&mut out[at..]);
        }
        let last = self.seq;
        self.sock.send(&out, 0)?;
        let mut replies = Vec::new();
        let mut waiting = first;
        loop {
            self.buf.clear();
            let n = self.sock.recv(&mut self.buf, 0)?;
            if n > self.buf.len() {
                return Err(io::Error::other("netlink reply truncated"));
            }
            let mut off = 0;
            while off < self.buf.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[off..])
                    .map_err(|e| io::Error::other(format!("bad netlink reply: {e}")))?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(io::Error::other("netlink reply of length 0"));
                }
                off += (len + 3) & !3;
                if reply.header.sequence_number != waiting {
                    continue;
                }
                let done = match reply.payload {
                    NetlinkPayload::Error(e) => match e.code {
                        None => true,
                        Some(_) => return Err(e.to_io()),
                    },
                    NetlinkPayload::Done(_) => true,
                    NetlinkPayload::InnerMessage(m) => {
                        replies.push(m);
                        false
                    }
                    _ => false,
                };
                if done {
                    if waiting == last {
                        return Ok(replies);
                    }
                    waiting = waiting.wrapping_add(1);
                }
            }
        }
    }

    /// The link called `name`, if there is one. Two ioctls on this socket
    /// (which the kernel answers for the socket's network namespace)
    /// rather than an RTM_GETLINK, whose reply carries the link's every
    /// attribute and statistic to parse.
    pub fn link(&mut self, name: &str) -> io::Result<Option<Link>> {
        // SAFETY: an all-zero ifreq is a valid value.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        let bytes = name.as_bytes();
        if bytes.is_empty() || bytes.len() >= req.ifr_name.len() || bytes.contains(&0) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
            *d = *s as libc::c_char;
        }
        let fd = self.sock.as_raw_fd();
        // SAFETY: SIOCGIFINDEX and SIOCGIFFLAGS read ifr_name and write
        // the union of the ifreq we own.
        if unsafe { libc::ioctl(fd, libc::SIOCGIFINDEX, &mut req) } != 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENODEV) => Ok(None),
                _ => Err(e),
            };
        }
        // SAFETY: SIOCGIFINDEX filled ifru_ifindex.
        let index = unsafe { req.ifr_ifru.ifru_ifindex } as u32;
        // SAFETY: as above.
        if unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut req) } != 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENODEV) => Ok(None),
                _ => Err(e),
            };
        }
        // SAFETY: SIOCGIFFLAGS filled ifru_flags.
        let flags = unsafe { req.ifr_ifru.ifru_flags };
        Ok(Some(Link {
            index,
            up: flags & libc::IFF_UP as libc::c_short != 0,
        }))
    }

    /// `ip link add NAME address MAC type bridge` (down). With its MAC set,
    /// a bridge keeps it; otherwise it takes its lowest port's, which
    /// changes as containers come and go and leaves them with a stale
    /// neighbour entry for their gateway.
    pub fn add_bridge(&mut self, name: &str, mac: [u8; 6]) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.attributes.push(LinkAttribute::IfName(name.to_string()));
        m.attributes.push(LinkAttribute::Address(mac.to_vec()));
        m.attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    /// `ip link del dev INDEX`.
    pub fn delete_link(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(m), 0).map(drop)
    }

    /// `ip link set dev INDEX up`.
    pub fn set_up(&mut self, index: u32) -> io::Result<()> {
        let mut m = LinkMessage::default();
        m.header.index = index;
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        self.request(RouteNetlinkMessage::SetLink(m), 0).map(drop)
    }

    /// One request for a whole veth pair: `host` up and enslaved to the
    /// bridge `master` here, its peer `peer` with address `mac` in the
    /// network namespace `netns`, down (the kernel cannot open a veth
    /// before its pair is complete: ENOTCONN).
    pub fn add_veth(
        &mut self,
        host: &str,
        master: u32,
        peer: &str,
        mac: [u8; 6],
        netns: BorrowedFd<'_>,
    ) -> io::Result<()> {
        let mut p = LinkMessage::default();
        p.attributes.push(LinkAttribute::IfName(peer.to_string()));
        p.attributes.push(LinkAttribute::Address(mac.to_vec()));
        p.attributes.push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
        m.attributes.push(LinkAttribute::IfName(host.to_string()));
        m.attributes.push(LinkAttribute::Controller(master));
        m.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))),
        ]));
        self.request(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
            .map(drop)
    }

    /// `ip addr add ADDR/PREFIX dev INDEX` (replacing an equal one).
    pub fn add_address(&mut self, index: u32, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        self.request(address_message(index, addr, prefix), NLM_F_CREATE)
            .map(drop)
    }

    /// A container's end of its veth pair, in one round trip: `ip link
    /// set dev INDEX up`, `ip addr add ADDR/PREFIX dev INDEX` and `ip route
    /// add default via GATEWAY dev INDEX`, in that order.
    pub fn configure(
        &mut self,
        index: u32,
        addr: Ipv4Addr,
        prefix: u8,
        gateway: Ipv4Addr,
    ) -> io::Result<()> {
        let mut up = LinkMessage::default();
        up.header.index = index;
        up.header.flags = LinkFlags::Up;
        up.header.change_mask = LinkFlags::Up;
        self.batch(vec![
            (RouteNetlinkMessage::SetLink(up), 0),
            (address_message(index, addr, prefix), NLM_F_CREATE),
            (default_route(gateway, index), NLM_F_CREATE | NLM_F_EXCL),
        ])
        .map(drop)
    }
}

fn address_message(index: u32, addr: Ipv4Addr, prefix: u8) -> RouteNetlinkMessage {
    let mut m = AddressMessage::default();
    m.header.family = AddressFamily::Inet;
    m.header.prefix_len = prefix;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(addr.into()));
    m.attributes.push(AddressAttribute::Address(addr.into()));
    let bcast = u32::from(addr) | (u32::MAX.checked_shr(prefix as u32).unwrap_or(0));
    m.attributes
        .push(AddressAttribute::Broadcast(Ipv4Addr::from(bcast)));
    RouteNetlinkMessage::NewAddress(m)
}

fn default_route(gateway: Ipv4Addr, index: u32) -> RouteNetlinkMessage {
    let mut m = RouteMessage::default();
    m.header = RouteHeader {
        address_family: AddressFamily::Inet,
        destination_prefix_length: 0,
        source_prefix_length: 0,
        tos: 0,
        table: RouteHeader::RT_TABLE_MAIN,
        protocol: RouteProtocol::Boot,
        scope: RouteScope::Universe,
        kind: RouteType::Unicast,
        flags: RouteFlags::empty(),
    };
    m.attributes
        .push(RouteAttribute::Gateway(RouteAddress::Inet(gateway)));
    m.attributes.push(RouteAttribute::Oif(index));
    RouteNetlinkMessage::NewRoute(m)
}

//! The host side of a published TCP port: a socket bound to the host
//! address and port, never listening. Packets to the port never reach it
//! (DNAT, see `nat`, sends them to the container first, 127.0.0.1
//! included); it is there so that the port stays the container's: a host
//! service already on the port makes `-p` fail, as with Docker, and none
//! can take it while the container has it. Bound without SO_REUSEADDR,
//! which would let another SO_REUSEADDR socket bind the same port.
//!
//! UDP ports are not held: a user network's embedded resolver has port 53
//! of the gateway address (see `resolver`), which a socket on 0.0.0.0:53
//! would clash with. A host UDP service on a published port gets no more
//! datagrams while the container has the port (DNAT takes them first).
//!
//! The sockets belong to the process that waits for the container (the
//! foreground rrun or the detached supervisor) and are closed with the
//! attachment.

use std::io;
use std::net::SocketAddrV4;
use std::os::fd::OwnedFd;

use nix::sys::socket::{bind, socket, AddressFamily, SockFlag, SockType, SockaddrIn};

use super::ports::{PortMapping, Proto};

/// The bound sockets of one container's published ports.
#[derive(Debug)]
pub struct HostPorts {
    _sockets: Vec<OwnedFd>,
}

impl HostPorts {
    /// Bind the host side of each TCP port of `ports`. Fails with the
    /// port whose address is taken.
    pub fn hold(ports: &[PortMapping]) -> Result<HostPorts, (PortMapping, io::Error)> {
        let mut sockets = Vec::with_capacity(ports.len());
        for p in ports.iter().filter(|p| p.proto == Proto::Tcp) {
            let fd = socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC,
                None,
            )
            .map_err(|e| (*p, io::Error::from(e)))?;
            let addr = SockaddrIn::from(SocketAddrV4::new(p.host_ip_shown(), p.host_port));
            bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr)
                .map_err(|e| (*p, io::Error::from(e)))?;
            sockets.push(fd);
        }
        Ok(HostPorts { _sockets: sockets })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener, UdpSocket};

    fn m(port: u16, proto: Proto) -> PortMapping {
        PortMapping {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: port,
            container_port: 80,
            proto,
            host_range: None,
        }
    }

    #[test]
    fn a_held_port_is_nobody_elses_and_a_taken_one_is_refused() {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let tp = t.local_addr().unwrap().port();
        drop(t);
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let up = u.local_addr().unwrap().port();
        drop(u);
        let held = HostPorts::hold(&[m(tp, Proto::Tcp), m(up, Proto::Udp)]).unwrap();
        // std's TcpListener sets SO_REUSEADDR: still refused.
        assert!(TcpListener::bind(("127.0.0.1", tp)).is_err());
        assert!(TcpListener::bind(("0.0.0.0", tp)).is_err());
        // UDP is not held.
        drop(UdpSocket::bind(("127.0.0.1", up)).unwrap());
        drop(held);
        drop(TcpListener::bind(("127.0.0.1", tp)).unwrap());
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let bp = busy.local_addr().unwrap().port();
        let (p, e) = HostPorts::hold(&[m(bp, Proto::Tcp)]).unwrap_err();
        assert_eq!(p.host_port, bp);
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse, "{e}");
    }
}

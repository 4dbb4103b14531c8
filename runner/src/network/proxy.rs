//! The userspace side of a published TCP port, like Docker's
//! docker-proxy: a listener on the host address and port that relays each
//! connection to the container. DNAT (see `nat`) carries every packet it
//! can; what it cannot is the host's own connections to 127.0.0.0/8,
//! which the kernel will not route to the bridge unless `route_localnet`
//! is set (rbox never sets it: it would open the host's loopback to the
//! bridge). Those land on this listener. Holding the listener also
//! reserves the port: a host service already on it makes `-p` fail, as
//! with Docker.
//!
//! It runs as threads of the process that waits for the container (the
//! foreground rrun or the detached supervisor) and ends with the
//! attachment. UDP is not relayed: a UDP port published on every address
//! is reached through the host's other addresses.

use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::ports::{PortMapping, Proto};

/// The listeners of one container's published TCP ports.
#[derive(Debug)]
pub struct Proxy {
    stop: Arc<AtomicBool>,
    listeners: Vec<(Arc<TcpListener>, Option<JoinHandle<()>>)>,
}

impl Proxy {
    /// Listen on the host side of each TCP port of `ports`, relaying to
    /// `address`. Fails with the port whose address is taken.
    pub fn start(
        address: Ipv4Addr,
        ports: &[PortMapping],
    ) -> Result<Proxy, (PortMapping, io::Error)> {
        let mut proxy = Proxy {
            stop: Arc::new(AtomicBool::new(false)),
            listeners: Vec::new(),
        };
        for p in ports.iter().filter(|p| p.proto == Proto::Tcp) {
            let l = TcpListener::bind((p.host_ip_shown(), p.host_port))
                .map(Arc::new)
                .map_err(|e| (*p, e))?;
            let target = SocketAddr::from((address, p.container_port));
            let (listener, stop) = (l.clone(), proxy.stop.clone());
            let accept = std::thread::Builder::new()
                .name("rbox-proxy".into())
                .spawn(move || accept_loop(&listener, target, &stop))
                .map_err(|e| (*p, e))?;
            proxy.listeners.push((l, Some(accept)));
        }
        Ok(proxy)
    }
}

fn accept_loop(listener: &TcpListener, target: SocketAddr, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(client) = conn {
            let _ = std::thread::Builder::new()
                .name("rbox-relay".into())
                .spawn(move || relay(client, target));
        }
    }
}

/// Copy both ways until both sides are done; a half-close is passed on.
fn relay(client: TcpStream, target: SocketAddr) {
    let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
        return;
    };
    let (Ok(mut c_in), Ok(mut s_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = io::copy(&mut c_in, &mut s_out);
        let _ = s_out.shutdown(Shutdown::Write);
    });
    let (mut s_in, mut c_out) = (server, client);
    let _ = io::copy(&mut s_in, &mut c_out);
    let _ = c_out.shutdown(Shutdown::Write);
    let _ = up.join();
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for (l, accept) in &mut self.listeners {
            // Wakes the accept() blocked on it (EINVAL) and refuses new
            // connections; the relays of open ones finish on their own.
            // SAFETY: shutdown on a descriptor the Arc keeps open.
            unsafe { libc::shutdown(l.as_raw_fd(), libc::SHUT_RDWR) };
            if let Some(h) = accept.take() {
                let _ = h.join();
            }
        }
    }
}

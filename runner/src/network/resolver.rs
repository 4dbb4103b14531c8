//! The embedded DNS resolver of a user-defined network (Docker's
//! 127.0.0.11, Podman's aardvark-dns): one process per network, in the
//! host's network namespace, listening on the network's gateway address,
//! UDP and TCP port 53. Containers on the network get it as their only
//! nameserver; it answers for the network's containers (`dns`) and
//! forwards everything else upstream.
//!
//! Lifecycle, all of it in the network's state directory:
//! - `ensure` (by every rrun that puts a container on the network, under
//!   the network's lock) finds it running when `resolver.lock` is
//!   flock'ed, and then touches that file (the resolver stays while it is
//!   recent); otherwise it runs `rrun network resolver ...`
//!   (`/proc/self/exe`), which binds its sockets, takes the lock, forks
//!   and exits: when `ensure` returns, the resolver answers. Its stdio is
//!   /dev/null, its session its own; it inherits no lock (every file rrun
//!   opens is close-on-exec, and it is an exec).
//! - It reads the network's live members (`hosts::members`: the member
//!   records whose leases are held by running containers) on each query,
//!   so containers that start and stop later are followed with no signal.
//! - It exits when the state directory is gone or replaced (`network rm`,
//!   which also signals it, `stop`), when the network's bridge is gone
//!   (deleted behind rbox's back, e.g. `ip link del`: polled by name
//!   every half second) and nobody `ensure`d it for `BRIDGE_GRACE` (an
//!   rrun that did, under the network's lock, makes the bridge next; a
//!   container that comes later makes both again), or when the network
//!   has had no
//!   container for `IDLE` and nobody `ensure`d it meanwhile (checked
//!   again under the network's lock, so an rrun that just found it
//!   running cannot lose it).
//!
//! Upstream servers: the querying container's `--dns` servers
//! (`upstream/<container id>`), else the host's /etc/resolv.conf's,
//! loopback ones included (this process is on the host's side), else
//! Docker's public fallback. Hostile input: only messages from the
//! network's subnet are looked at; only queries that parse are answered
//! or forwarded (so the reply cannot be bigger than what a container
//! could get by asking the upstream server itself); at most
//! `MAX_PENDING` forwarded UDP queries and `MAX_TCP` TCP connections at
//! once, each with a deadline.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::dns::{self, Record, Verdict};
use super::ipam::Subnet;
use super::{hosts, Network};

pub const PORT: u16 = 53;
/// How long a network without containers keeps its resolver.
pub const IDLE: Duration = Duration::from_secs(60);
const MAX_PENDING: usize = 256;
const MAX_TCP: usize = 16;
/// Per upstream server, before the next one is asked.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
const TCP_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest UDP message taken from a container; longer is not DNS.
const MAX_QUERY: usize = 4096;
/// How long after the last `ensure` a resolver waits for its bridge.
const BRIDGE_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("start the DNS resolver of network {net}: {why}")]
    Start { net: String, why: String },
}

fn lock_path(net: &Network) -> PathBuf {
    net.state_dir().join("resolver.lock")
}

fn upstream_path(net: &Network, container: &str) -> PathBuf {
    net.state_dir().join("upstream").join(container)
}

/// Record the container's `--dns` servers for its queries (none: the
/// host's). The caller holds the network's lock.
pub fn set_upstream(net: &Network, container: &str, servers: &[IpAddr]) -> io::Result<()> {
    let p = upstream_path(net, container);
    if servers.is_empty() {
        return match fs::remove_file(&p) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    std::os::unix::fs::DirBuilderExt::mode(fs::DirBuilder::new().recursive(true), 0o700)
        .create(p.parent().expect("upstream dir"))?;
    let text: String = servers.iter().map(|s| format!("{s}\n")).collect();
    fs::write(p, text)
}

/// Forget the container's servers (it left the network).
pub fn clear_upstream(net: &Network, container: &str) {
    let _ = fs::remove_file(upstream_path(net, container));
}

fn open_lock(net: &Network) -> Result<File, ResolverError> {
    let p = lock_path(net);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&p)
        .map_err(|source| ResolverError::Io {
            what: "open",
            path: p,
            source,
        })
}

fn try_flock(f: &File) -> bool {
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Make sure the network's resolver runs (see the module's doc). Call
/// with the network's lock held, from rrun (the resolver is rrun's
/// `network resolver` command).
pub fn ensure(net: &Network) -> Result<(), ResolverError> {
    let _no_inherit = crate::sys::hold_no_inherit();
    let f = open_lock(net)?;
    if !try_flock(&f) {
        // Running: tell it it is wanted (mtime), and that is all.
        // SAFETY: futimens on our descriptor; null means "now".
        unsafe { libc::futimens(f.as_raw_fd(), std::ptr::null()) };
        return Ok(());
    }
    drop(f);
    let out = Command::new("/proc/self/exe")
        .args([
            "network",
            "resolver",
            "--name",
            &net.name,
            "--bridge",
            &net.bridge,
            "--subnet",
            &net.subnet.to_string(),
            "--gateway",
            &net.gateway.to_string(),
        ])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| ResolverError::Start {
            net: net.name.clone(),
            why: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(ResolverError::Start {
            net: net.name.clone(),
            why: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// The pid of the network's running resolver, if one runs.
pub fn running(net: &Network) -> Option<i32> {
    let f = open_lock(net).ok()?;
    if try_flock(&f) {
        return None;
    }
    fs::read_to_string(lock_path(net)).ok()?.trim().parse().ok()
}

/// Stop the network's resolver (the network is being removed).
pub fn stop(net: &Network) {
    let Some(pid) = running(net) else {
        return;
    };
    // Only a resolver of this network: its command line names the bridge.
    let cmd = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
    let ours =
        args.windows(2).any(|w| w[0] == b"resolver") && args.contains(&net.bridge.as_bytes());
    if ours {
        // SAFETY: kill takes no memory.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
}

/// A socket bound to `addr` even before the address is on the bridge
/// (IP_FREEBIND): the resolver can start before the bridge exists.
fn bound_socket(kind: libc::c_int, addr: SocketAddrV4) -> io::Result<OwnedFd> {
    // SAFETY: socket takes no memory; the descriptor is owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, kind | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor of ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    for opt in [
        (libc::SOL_IP, libc::IP_FREEBIND),
        (libc::SOL_SOCKET, libc::SO_REUSEADDR),
    ] {
        // SAFETY: an int option, passed with its size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                opt.0,
                opt.1,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: addr.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*addr.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: a sockaddr_in with its size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// Bind, retrying a while if the port is busy (a resolver of a removed
/// network of the same subnet that has not exited yet).
fn bind_both(gateway: Ipv4Addr) -> io::Result<(UdpSocket, TcpListener)> {
    let addr = SocketAddrV4::new(gateway, PORT);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let r = bound_socket(libc::SOCK_DGRAM, addr).and_then(|u| {
            let t = bound_socket(libc::SOCK_STREAM, addr)?;
            // SAFETY: listen on our bound socket.
            if unsafe { libc::listen(t.as_raw_fd(), 64) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok((UdpSocket::from(u), TcpListener::from(t)))
        });
        match r {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            r => return r,
        }
    }
}

/// The resolver's configuration, from its command line.
pub struct Config {
    pub name: String,
    pub bridge: String,
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
}

/// `rrun network resolver`: bind, lock, fork; the parent returns (exit
/// 0: the resolver answers), the child serves until it is not needed.
/// Errors before the fork are the caller's to report.
pub fn start(cfg: Config) -> Result<(), String> {
    let net = Network {
        name: cfg.name,
        bridge: cfg.bridge,
        subnet: cfg.subnet,
        gateway: cfg.gateway,
    };
    if !net.subnet.contains(net.gateway) {
        return Err(format!("{} is not in {}", net.gateway, net.subnet));
    }
    let dir = net.state_dir();
    let dir_ino = fs::metadata(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .ino();
    let lock = open_lock(&net).map_err(|e| e.to_string())?;
    if !try_flock(&lock) {
        return Ok(()); // another one runs
    }
    let (udp, tcp) =
        bind_both(net.gateway).map_err(|e| format!("listen on {}:{PORT}: {e}", net.gateway))?;
    // SAFETY: single-threaded here (nothing was started); the child goes
    // on with the same state, the parent only exits.
    match unsafe { libc::fork() } {
        -1 => return Err(format!("fork: {}", io::Error::last_os_error())),
        0 => {}
        _ => {
            // SAFETY: exit without running anything of the child's state.
            unsafe { libc::_exit(0) }
        }
    }
    // SAFETY: setsid takes nothing; a failure leaves us in rrun's session.
    unsafe { libc::setsid() };
    if let Ok(null) = OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    let _ = std::env::set_current_dir("/");
    let mut lock = lock;
    let _ = lock.set_len(0);
    let _ = writeln!(lock, "{}", std::process::id());
    // SAFETY: futimens on our descriptor: "wanted now".
    unsafe { libc::futimens(lock.as_raw_fd(), std::ptr::null()) };
    let mut r = Resolver {
        net,
        dir_ino,
        lock,
        udp,
        tcp,
        pending: Vec::new(),
        tcp_active: Arc::new(AtomicUsize::new(0)),
        last_member: Instant::now(),
    };
    r.serve();
    std::process::exit(0)
}

struct Pending {
    sock: UdpSocket,
    client: SocketAddr,
    query: Vec<u8>,
    servers: Vec<SocketAddr>,
    next: usize,
    deadline: Instant,
}

struct Resolver {
    net: Network,
    dir_ino: u64,
    lock: File,
    udp: UdpSocket,
    tcp: TcpListener,
    pending: Vec<Pending>,
    tcp_active: Arc<AtomicUsize>,
    last_member: Instant,
}

/// How long ago `f` (`resolver.lock`) was touched by an `ensure`.
fn touched(f: &File) -> Duration {
    f.metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

/// Whether a network interface named `name` exists in this network
/// namespace (the resolver's, which is its bridge's).
fn link_exists(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: a NUL-terminated name; if_nametoindex only reads it.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}

/// The network's live members as DNS records, and who has which address.
/// A member at `client` connected to more networks (`rrun network
/// connect`) gets those networks' members too, as Docker's resolver
/// answers a container for every network it is on.
fn records(net: &Network, client: IpAddr) -> (Vec<Record>, Vec<hosts::Member>) {
    let members = hosts::members(net);
    let elsewhere = members
        .iter()
        .find(|m| IpAddr::V4(m.address) == client)
        .map(|me| hosts::members_elsewhere(net, &me.container))
        .unwrap_or_default();
    let records = members
        .iter()
        .chain(&elsewhere)
        .map(|m| {
            let mut names = m.names.clone();
            names.push(m.hostname.clone());
            Record {
                address: m.address,
                names,
            }
        })
        .collect();
    (records, members)
}

/// Where to forward a query of the container at `client`.
fn upstreams(net: &Network, members: &[hosts::Member], client: IpAddr) -> Vec<SocketAddr> {
    let own = members
        .iter()
        .find(|m| IpAddr::V4(m.address) == client)
        .and_then(|m| fs::read_to_string(upstream_path(net, &m.container)).ok())
        .map(|t| {
            t.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<IpAddr>>()
        })
        .filter(|v| !v.is_empty());
    let servers = own.unwrap_or_else(|| {
        let host =
            super::resolv::servers_of(&fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
        if host.is_empty() {
            super::resolv::FALLBACK
                .iter()
                .filter_map(|s| s.parse().ok())
                .collect()
        } else {
            host
        }
    });
    servers
        .into_iter()
        // Never ourselves: that would be a loop.
        .filter(|s| *s != IpAddr::V4(net.gateway))
        .map(|s| SocketAddr::new(s, PORT))
        .collect()
}

fn udp_to(server: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(local)?;
    s.connect(server)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

impl Resolver {
    fn is_member_address(&self, a: &SocketAddr) -> bool {
        matches!(a, SocketAddr::V4(v) if self.net.subnet.contains(*v.ip()) && *v.ip() != self.net.gateway && v.port() != 0)
    }

    fn serve(&mut self) {
        let _ = self.udp.set_nonblocking(true);
        let _ = self.tcp.set_nonblocking(true);
        let mut buf = vec![0u8; 65536];
        let mut last_check = Instant::now();
        loop {
            let mut fds = vec![
                libc::pollfd {
                    fd: self.udp.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.tcp.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            fds.extend(self.pending.iter().map(|p| libc::pollfd {
                fd: p.sock.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }));
            // SAFETY: an array of pollfd of its length.
            unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 250) };
            // The pending queries polled (more may be added below).
            let ready: Vec<usize> = (0..fds.len() - 2)
                .filter(|i| fds[i + 2].revents != 0)
                .collect();
            // A bug must not take the network's names away: a panic
            // (none is known) loses one batch, not the resolver.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.upstream_replies(&ready, &mut buf);
                if fds[0].revents != 0 {
                    self.client_datagrams(&mut buf);
                }
                if fds[1].revents != 0 {
                    self.accept();
                }
                self.expire();
            }));
            if last_check.elapsed() >= Duration::from_millis(500) {
                last_check = Instant::now();
                if !self.wanted() {
                    return;
                }
            }
        }
    }

    /// At most a batch per wakeup, so that replies get their turn.
    fn client_datagrams(&mut self, buf: &mut [u8]) {
        for _ in 0..64 {
            let (n, from) = match self.udp.recv_from(&mut buf[..MAX_QUERY + 1]) {
                Ok(x) => x,
                Err(_) => return,
            };
            if !self.is_member_address(&from) || n > MAX_QUERY {
                continue;
            }
            let query = &buf[..n];
            let (recs, members) = records(&self.net, from.ip());
            match dns::answer(query, self.net.subnet, &recs) {
                Verdict::Reply(r) => {
                    let _ = self.udp.send_to(&r, from);
                }
                Verdict::Drop => {}
                Verdict::Forward => {
                    let servers = upstreams(&self.net, &members, from.ip());
                    if self.pending.len() >= MAX_PENDING || servers.is_empty() {
                        if let Some(f) = dns::servfail(query) {
                            let _ = self.udp.send_to(&f, from);
                        }
                        continue;
                    }
                    let mut p = Pending {
                        sock: match udp_to(servers[0]) {
                            Ok(s) => s,
                            Err(_) => continue,
                        },
                        client: from,
                        query: query.to_vec(),
                        servers,
                        next: 1,
                        deadline: Instant::now() + UPSTREAM_TIMEOUT,
                    };
                    if p.sock.send(&p.query).is_err() {
                        p.deadline = Instant::now();
                    }
                    self.pending.push(p);
                }
            }
        }
    }

    fn upstream_replies(&mut self, ready: &[usize], buf: &mut [u8]) {
        let mut done = Vec::new();
        for &i in ready {
            let p = &self.pending[i];
            while let Ok(n) = p.sock.recv(buf) {
                // The reply to this query (the socket is connected: only
                // the server's datagrams arrive), relayed as it is.
                if n >= 12 && dns::id_of(&buf[..n]) == dns::id_of(&p.query) {
                    let _ = self.udp.send_to(&buf[..n], p.client);
                    done.push(i);
                    break;
                }
            }
        }
        done.sort_unstable();
        for i in done.into_iter().rev() {
            self.pending.swap_remove(i);
        }
    }

    fn expire(&mut self) {
        let now = Instant::now();
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].deadline > now {
                i += 1;
                continue;
            }
            let p = &mut self.pending[i];
            let retried = p.servers.get(p.next).copied().and_then(|s| {
                p.next += 1;
                let sock = udp_to(s).ok()?;
                sock.send(&p.query).ok()?;
                Some(sock)
            });
            match retried {
                Some(sock) => {
                    p.sock = sock;
                    p.deadline = now + UPSTREAM_TIMEOUT;
                    i += 1;
                }
                None if p.next < p.servers.len() => {}
                None => {
                    let p = self.pending.swap_remove(i);
                    if let Some(f) = dns::servfail(&p.query) {
                        let _ = self.udp.send_to(&f, p.client);
                    }
                }
            }
        }
    }

    fn accept(&mut self) {
        while let Ok((conn, from)) = self.tcp.accept() {
            if !self.is_member_address(&from) || self.tcp_active.load(Ordering::SeqCst) >= MAX_TCP {
                continue;
            }
            self.tcp_active.fetch_add(1, Ordering::SeqCst);
            let active = self.tcp_active.clone();
            let net = self.net.clone();
            let spawned = std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || {
                    // Given back even if the session panics.
                    struct Slot(Arc<AtomicUsize>);
                    impl Drop for Slot {
                        fn drop(&mut self) {
                            self.0.fetch_sub(1, Ordering::SeqCst);
                        }
                    }
                    let _slot = Slot(active);
                    let _ = tcp_session(&net, conn, from);
                });
            if spawned.is_err() {
                self.tcp_active.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Whether to go on: the state directory is still the one we serve,
    /// and the network has containers or was wanted lately.
    fn wanted(&mut self) -> bool {
        let dir = self.net.state_dir();
        if fs::metadata(&dir).map(|m| m.ino()).ok() != Some(self.dir_ino) {
            return false;
        }
        if !link_exists(&self.net.bridge) && touched(&self.lock) >= BRIDGE_GRACE {
            // Decided under the network's lock, as for idleness.
            let l = self.net.ipam().lock();
            if l.is_err() || (!link_exists(&self.net.bridge) && touched(&self.lock) >= BRIDGE_GRACE)
            {
                self.exit_now()
            }
        }
        if !hosts::members(&self.net).is_empty() {
            self.last_member = Instant::now();
            return true;
        }
        if self.last_member.elapsed() < IDLE || touched(&self.lock) < IDLE {
            return true;
        }
        // Idle: decide under the network's lock, which `ensure` holds.
        let Ok(_l) = self.net.ipam().lock() else {
            return true;
        };
        if !hosts::members(&self.net).is_empty() || touched(&self.lock) < IDLE {
            return true;
        }
        self.exit_now()
    }

    /// Exit, taking `resolver.lock` away first (with the network's lock
    /// held by the caller until the process is gone, so no `ensure` finds
    /// the file locked by a resolver that is going).
    fn exit_now(&self) -> ! {
        let _ = fs::remove_file(lock_path(&self.net));
        std::process::exit(0)
    }
}

fn read_msg(conn: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 2];
    match conn.read_exact(&mut len) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        r => r?,
    }
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    conn.read_exact(&mut msg)?;
    Ok(Some(msg))
}

fn write_msg(conn: &mut TcpStream, msg: &[u8]) -> io::Result<()> {
    let len = u16::try_from(msg.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    conn.write_all(&out)
}

/// One TCP connection: queries until the client closes or idles.
fn tcp_session(net: &Network, mut conn: TcpStream, from: SocketAddr) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(TCP_TIMEOUT))?;
    conn.set_write_timeout(Some(TCP_TIMEOUT))?;
    while let Some(query) = read_msg(&mut conn)? {
        let (recs, members) = records(net, from.ip());
        match dns::answer(&query, net.subnet, &recs) {
            Verdict::Reply(r) => write_msg(&mut conn, &r)?,
            Verdict::Drop => return Ok(()),
            Verdict::Forward => {
                let got = upstreams(net, &members, from.ip())
                    .into_iter()
                    .find_map(|s| {
                        let mut up = TcpStream::connect_timeout(&s, UPSTREAM_TIMEOUT).ok()?;
                        up.set_read_timeout(Some(UPSTREAM_TIMEOUT)).ok()?;
                        up.set_write_timeout(Some(UPSTREAM_TIMEOUT)).ok()?;
                        write_msg(&mut up, &query).ok()?;
                        read_msg(&mut up)
                            .ok()
                            .flatten()
                            .filter(|r| dns::id_of(r) == dns::id_of(&query))
                    });
                match got.or_else(|| dns::servfail(&query)) {
                    Some(r) => write_msg(&mut conn, &r)?,
                    None => return Ok(()),
                }
            }
        }
    }
    Ok(())
}

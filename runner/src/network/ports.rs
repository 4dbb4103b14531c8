//! Published ports (`rrun run -p`): the `-p` parser, the choice of a free
//! host port, and the per-container records that say which host ports of
//! a network are taken and by whom.
//!
//! A published port is one element in a map of the network's nftables
//! table (see `nat`), keyed by host address, protocol and port, with the
//! container's address and port as value. The elements of a container are
//! added when it joins the network and deleted when it leaves. Like a
//! lease, each container's elements have a record file naming their
//! holder (`published/<container id>` in the network's state directory):
//! a record whose container process is gone (a killed rrun's) is reaped,
//! elements and all, by the next container that joins the network.

use std::fmt;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ipam::{Holder, Ipam};
use super::{nat, NetworkError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `-p`: host address and port to container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// `None`: every address of the host (Docker's 0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    /// 0 until a free one is chosen (`-p 80`, `-p 8000-8010:80`).
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
    /// `-p 8000-8010:80`: the host ports the free one is chosen from
    /// (as Docker: one port of the range for the one container port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_range: Option<(u16, u16)>,
}

impl PortMapping {
    /// The host address as Docker shows it (0.0.0.0 for every address).
    pub fn host_ip_shown(&self) -> Ipv4Addr {
        self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)
    }

    /// `80/tcp`: the key of `rrun port` and of inspect's Ports.
    pub fn private(&self) -> String {
        format!("{}/{}", self.container_port, self.proto)
    }

    /// Whether both would take the same host port.
    pub fn clashes(&self, other: &PortMapping) -> bool {
        self.proto == other.proto
            && self.host_port == other.host_port
            && (self.host_ip.is_none() || other.host_ip.is_none() || self.host_ip == other.host_ip)
    }
}

/// Bind `port` (0: the kernel's choice) for `proto` on `ip`; the socket
/// and the port bound.
fn hold(ip: Ipv4Addr, port: u16, proto: Proto) -> io::Result<(Box<dyn std::any::Any>, u16)> {
    let addr = SocketAddr::from((ip, port));
    Ok(match proto {
        Proto::Tcp => {
            let l = TcpListener::bind(addr)?;
            let port = l.local_addr()?.port();
            (Box::new(l), port)
        }
        Proto::Udp => {
            let u = UdpSocket::bind(addr)?;
            let port = u.local_addr()?.port();
            (Box::new(u), port)
        }
    })
}

/// Give every `-p CONTAINERPORT` (and `-P` port) a free host port: the
/// kernel's choice for a socket bound to port 0, from the ephemeral range
/// of /proc/sys/net/ipv4/ip_local_port_range (as Docker does); and every
/// `-p START-END:CONTAINERPORT` the first port of its range free to bind.
/// The sockets are held until all are chosen, so that no two get the same
/// port, then released.
pub fn choose_host_ports(ports: &mut [PortMapping]) -> io::Result<()> {
    let mut held: Vec<Box<dyn std::any::Any>> = Vec::new();
    let mut taken: Vec<PortMapping> = ports.iter().filter(|p| p.host_port != 0).copied().collect();
    for p in ports.iter_mut().filter(|p| p.host_port == 0) {
        let ip = p.host_ip_shown();
        let chosen = match p.host_range {
            None => hold(ip, 0, p.proto)?,
            Some((start, end)) => (start..=end)
                .filter(|&port| {
                    let mut q = *p;
                    q.host_port = port;
                    !taken.iter().any(|t| t.clashes(&q))
                })
                .find_map(|port| hold(ip, port, p.proto).ok())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!("no host port of {start}-{end}/{} is free", p.proto),
                    )
                })?,
        };
        held.push(chosen.0);
        p.host_port = chosen.1;
        taken.push(*p);
    }
    Ok(())
}

/// `80/tcp -> 0.0.0.0:8080`, as `docker port` prints it.
impl fmt::Display for PortMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {}:{}",
            self.private(),
            self.host_ip_shown(),
            self.host_port
        )
    }
}

/// The most ports one `-p` range may publish: each is a map element and,
/// for TCP, a listening socket of rrun.
pub const MAX_RANGE: u32 = 1024;

/// `START-END` or `PORT` (START = END).
fn port_range(s: &str, what: &str) -> Result<(u16, u16), String> {
    let Some((a, b)) = s.split_once('-') else {
        let p = port_number(s, what)?;
        return Ok((p, p));
    };
    let (start, end) = (port_number(a, what)?, port_number(b, what)?);
    if end < start {
        return Err(format!("{what} range {s}: the end is below the start"));
    }
    if u32::from(end - start) + 1 > MAX_RANGE {
        return Err(format!(
            "{what} range {s} has {} ports: at most {MAX_RANGE} per -p",
            u32::from(end - start) + 1
        ));
    }
    Ok((start, end))
}

fn port_number(s: &str, what: &str) -> Result<u16, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} {s:?} is not a number"));
    }
    match s.parse::<u32>() {
        Ok(p @ 1..=65535) => Ok(p as u16),
        _ => Err(format!("{what} {s} is out of range (1-65535)")),
    }
}

/// Parse `[HOSTIP:][HOSTPORT[-END]:]CONTAINERPORT[-END][/tcp|/udp]`
/// (Docker's `-p`, IPv4 only) into one mapping per container port. Ranges
/// of host and container ports pair up one to one and must be the same
/// size; a host range for a single container port is where its host port
/// is chosen from. A missing host port is 0: choose one with
/// `choose_host_ports`.
pub fn parse(spec: &str) -> Result<Vec<PortMapping>, String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        None => (spec, Proto::Tcp),
        Some((r, "tcp")) => (r, Proto::Tcp),
        Some((r, "udp")) => (r, Proto::Udp),
        Some((_, p)) => return Err(format!("protocol {p:?} is not supported: use tcp or udp")),
    };
    if rest.starts_with('[') || rest.matches(':').count() > 2 {
        return Err("IPv6 host addresses are not supported: bridge networks are IPv4 only".into());
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match parts.as_slice() {
        [c] => ("", "", *c),
        [h, c] => ("", *h, *c),
        [i, h, c] => (*i, *h, *c),
        _ => unreachable!("at most two ':'"),
    };
    let (c_start, c_end) = port_range(container, "container port")?;
    let host_range = if host.is_empty() {
        None
    } else if host == "0" {
        return Err(
            "host port 0: leave the host port out (-p [HOSTIP::]PORT) for a free one".into(),
        );
    } else {
        Some(port_range(host, "host port")?)
    };
    let host_ip = if ip.is_empty() {
        None
    } else {
        match ip.parse::<Ipv4Addr>() {
            Ok(a) if a.is_unspecified() => None,
            Ok(a) if a.is_multicast() || a.is_broadcast() => {
                return Err(format!("host address {ip} is not a unicast address"))
            }
            Ok(a) => Some(a),
            Err(_) => return Err(format!("host address {ip:?} is not an IPv4 address")),
        }
    };
    let c_len = c_end - c_start;
    let mapping = |host_port, container_port, host_range| PortMapping {
        host_ip,
        host_port,
        container_port,
        proto,
        host_range,
    };
    Ok(match host_range {
        None => (c_start..=c_end).map(|c| mapping(0, c, None)).collect(),
        Some((h, h_end)) if h_end - h == c_len => (c_start..=c_end)
            .map(|c| mapping(h + (c - c_start), c, None))
            .collect(),
        Some((h, h_end)) if c_len == 0 => vec![mapping(0, c_start, Some((h, h_end)))],
        Some((h, h_end)) => {
            return Err(format!(
                "host port range {h}-{h_end} ({} ports) and container port range {c_start}-{c_end} ({} ports) differ in size",
                h_end - h + 1,
                c_len + 1
            ))
        }
    })
}

/// Parse an exposed port, `PORT[-END][/tcp|/udp]` (`--expose`, and the
/// keys of an image's ExposedPorts), into its ports.
pub fn parse_exposed(spec: &str) -> Result<Vec<(u16, Proto)>, String> {
    let (ports, proto) = match spec.rsplit_once('/') {
        None => (spec, Proto::Tcp),
        Some((r, "tcp")) => (r, Proto::Tcp),
        Some((r, "udp")) => (r, Proto::Udp),
        Some((_, p)) => return Err(format!("protocol {p:?} is not supported: use tcp or udp")),
    };
    let (start, end) = port_range(ports, "port")?;
    Ok((start..=end).map(|p| (p, proto)).collect())
}

/// `-P`: a mapping to a free host port (on every address) for each of
/// `exposed` not published by `ports` already (as Docker, a `-p` of the
/// same port wins).
pub fn publish_all(ports: &mut Vec<PortMapping>, exposed: &[(u16, Proto)]) {
    for &(container_port, proto) in exposed {
        if ports
            .iter()
            .any(|p| p.container_port == container_port && p.proto == proto)
        {
            continue;
        }
        ports.push(PortMapping {
            host_ip: None,
            host_port: 0,
            container_port,
            proto,
            host_range: None,
        });
    }
}

/// Parse every `-p` and check that no two take the same host port.
pub fn parse_all(specs: &[String]) -> Result<Vec<PortMapping>, (String, String)> {
    let mut out: Vec<PortMapping> = Vec::new();
    for s in specs {
        for m in parse(s).map_err(|why| (s.clone(), why))? {
            if m.host_port != 0 && out.iter().any(|o| o.clashes(&m)) {
                return Err((
                    s.clone(),
                    format!("host port {}/{} is given twice", m.host_port, m.proto),
                ));
            }
            out.push(m);
        }
    }
    Ok(out)
}

/// A container's published ports on a network; dropping it unpublishes
/// them (the caller holds no lock: `drop` takes the network's).
#[derive(Debug)]
pub struct Published {
    ipam: Ipam,
    bridge: String,
    path: PathBuf,
    ports: Vec<PortMapping>,
}

fn records_dir(ipam: &Ipam) -> PathBuf {
    ipam.dir().join("published")
}

/// A record: the holder's line, then one line per port:
/// `PROTO HOSTIP HOSTPORT CONTAINERPORT`.
fn record(holder: &Holder, ports: &[PortMapping]) -> String {
    let mut s = holder.line();
    for p in ports {
        s += &format!(
            "{} {} {} {}\n",
            p.proto,
            p.host_ip_shown(),
            p.host_port,
            p.container_port
        );
    }
    s
}

fn parse_record(s: &str) -> Option<(Holder, Vec<PortMapping>)> {
    let mut lines = s.lines();
    let holder = Holder::parse(lines.next()?)?;
    let ports = lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let [proto, ip, host, container] = f.as_slice() else {
                return None;
            };
            let ip: Ipv4Addr = ip.parse().ok()?;
            Some(PortMapping {
                host_ip: (!ip.is_unspecified()).then_some(ip),
                host_port: host.parse().ok()?,
                container_port: container.parse().ok()?,
                proto: match *proto {
                    "udp" => Proto::Udp,
                    _ => Proto::Tcp,
                },
                host_range: None,
            })
        })
        .collect();
    Some((holder, ports))
}

/// The records of live holders; dead holders' records are reaped, their
/// map elements deleted. The caller holds the network's lock.
fn live_records(ipam: &Ipam, bridge: &str) -> Vec<(Holder, Vec<PortMapping>)> {
    let Ok(rd) = fs::read_dir(records_dir(ipam)) else {
        return Vec::new();
    };
    let mut live = Vec::new();
    for e in rd.flatten() {
        let Some((holder, ports)) = fs::read_to_string(e.path())
            .ok()
            .and_then(|s| parse_record(&s))
        else {
            let _ = fs::remove_file(e.path());
            continue;
        };
        if holder.alive() {
            live.push((holder, ports));
        } else {
            nat::unpublish(bridge, &ports);
            let _ = fs::remove_file(e.path());
        }
    }
    live
}

/// Remove the published ports of containers that are gone (a killed
/// rrun's), under the network's lock the caller holds.
pub fn reap(ipam: &Ipam, bridge: &str, _lock: &mut super::ipam::Locked) {
    live_records(ipam, bridge);
}

/// Publish `ports` of `holder`'s container, at `address`, under the
/// network's lock the caller holds. Refused if another running container
/// has one of the host ports.
pub fn publish(
    ipam: &Ipam,
    bridge: &str,
    _lock: &mut super::ipam::Locked,
    holder: &Holder,
    address: Ipv4Addr,
    ports: &[PortMapping],
) -> Result<Published, NetworkError> {
    for (other, theirs) in live_records(ipam, bridge) {
        if other.container == holder.container {
            continue;
        }
        if let Some(p) = ports.iter().find(|p| theirs.iter().any(|t| t.clashes(p))) {
            return Err(NetworkError::PortTaken {
                port: format!("{}:{}/{}", p.host_ip_shown(), p.host_port, p.proto),
                by: other.container,
            });
        }
    }
    let dir = records_dir(ipam);
    let io_ctx = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| NetworkError::Record { what, path, source }
    };
    fs::create_dir_all(&dir).map_err(io_ctx("create", &dir))?;
    let path = dir.join(&holder.container);
    // The record first: elements without one could never be reaped.
    fs::write(&path, record(holder, ports)).map_err(io_ctx("write", &path))?;
    if let Err(e) = nat::publish(bridge, address, ports) {
        let _ = fs::remove_file(&path);
        return Err(e.into());
    }
    Ok(Published {
        ipam: ipam.clone(),
        bridge: bridge.to_string(),
        path,
        ports: ports.to_vec(),
    })
}

impl Drop for Published {
    fn drop(&mut self) {
        // Under the lock, so as not to delete the elements of a container
        // that took the same host port after this one's process ended.
        let lock = self.ipam.lock();
        nat::unpublish(&self.bridge, &self.ports);
        let _ = fs::remove_file(&self.path);
        drop(lock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ip: Option<[u8; 4]>, host: u16, container: u16, proto: Proto) -> PortMapping {
        PortMapping {
            host_ip: ip.map(Ipv4Addr::from),
            host_port: host,
            container_port: container,
            proto,
            host_range: None,
        }
    }

    fn one(spec: &str) -> PortMapping {
        let v = parse(spec).unwrap();
        assert_eq!(v.len(), 1, "{spec}: {v:?}");
        v[0]
    }

    #[test]
    fn docker_forms_parse() {
        assert_eq!(one("80"), m(None, 0, 80, Proto::Tcp));
        assert_eq!(one("8080:80"), m(None, 8080, 80, Proto::Tcp));
        assert_eq!(
            one("127.0.0.1:8080:80"),
            m(Some([127, 0, 0, 1]), 8080, 80, Proto::Tcp)
        );
        assert_eq!(
            one("127.0.0.1::80/udp"),
            m(Some([127, 0, 0, 1]), 0, 80, Proto::Udp)
        );
        assert_eq!(one("0.0.0.0:53:53/udp"), m(None, 53, 53, Proto::Udp));
        assert_eq!(one("65535:1/tcp"), m(None, 65535, 1, Proto::Tcp));
    }

    #[test]
    fn bad_specs_are_refused_naming_the_bad_part() {
        for (spec, says) in [
            ("0", "container port 0 is out of range"),
            ("8080:0", "container port 0"),
            ("65536", "65536 is out of range"),
            ("0:80", "host port 0"),
            ("70000:80", "host port 70000"),
            ("x:80", "host port \"x\" is not a number"),
            ("", "container port \"\" is not a number"),
            ("80/sctp", "protocol \"sctp\""),
            ("80/", "protocol \"\""),
            (
                "8080-8081:80-82",
                "host port range 8080-8081 (2 ports) and container port range 80-82 (3 ports)",
            ),
            ("8080:80-81", "host port range 8080-8080 (1 ports)"),
            (
                "8081-8080:80",
                "host port range 8081-8080: the end is below the start",
            ),
            ("1-2000:1-2000", "has 2000 ports: at most 1024"),
            ("80-x", "container port \"x\" is not a number"),
            ("0-5:80", "host port 0 is out of range"),
            ("1.2.3:8080:80", "host address \"1.2.3\""),
            ("localhost:8080:80", "host address \"localhost\""),
            ("224.0.0.1:8080:80", "not a unicast"),
            ("[::1]:8080:80", "IPv6"),
            ("::1:8080:80", "IPv6"),
            ("-1", "container port \"\" is not a number"),
            ("+80", "not a number"),
        ] {
            let e = parse(spec).expect_err(spec);
            assert!(e.contains(says), "{spec:?}: {e:?} does not say {says:?}");
        }
    }

    #[test]
    fn ranges_pair_up_or_give_a_range_to_choose_from() {
        let v = parse("8000-8002:80-82").unwrap();
        assert_eq!(
            v,
            vec![
                m(None, 8000, 80, Proto::Tcp),
                m(None, 8001, 81, Proto::Tcp),
                m(None, 8002, 82, Proto::Tcp)
            ]
        );
        let v = parse("127.0.0.1:9000-9001:9000-9001/udp").unwrap();
        assert_eq!(
            v,
            vec![
                m(Some([127, 0, 0, 1]), 9000, 9000, Proto::Udp),
                m(Some([127, 0, 0, 1]), 9001, 9001, Proto::Udp)
            ]
        );
        assert_eq!(
            parse("80-81").unwrap(),
            vec![m(None, 0, 80, Proto::Tcp), m(None, 0, 81, Proto::Tcp)]
        );
        let mut r = m(None, 0, 80, Proto::Tcp);
        r.host_range = Some((8000, 8010));
        assert_eq!(parse("8000-8010:80").unwrap(), vec![r]);
        // Expanded ranges clash like single ports.
        let specs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (v, why) = parse_all(&specs(&["8000-8002:80-82", "8002:90"])).unwrap_err();
        assert_eq!(v, "8002:90");
        assert!(why.contains("8002/tcp is given twice"), "{why}");
    }

    #[test]
    fn a_host_range_gives_its_first_free_port() {
        // Take a port, then ask for a range starting at it.
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = busy.local_addr().unwrap().port();
        if b == u16::MAX {
            return;
        }
        let mut ranged = m(Some([127, 0, 0, 1]), 0, 80, Proto::Tcp);
        ranged.host_range = Some((b, b.saturating_add(5)));
        let mut v = vec![ranged, ranged];
        choose_host_ports(&mut v).unwrap();
        assert!(v[0].host_port > b && v[0].host_port <= b + 5, "{v:?}");
        assert!(v[1].host_port > b && v[1].host_port <= b + 5, "{v:?}");
        assert_ne!(v[0].host_port, v[1].host_port);
        let mut full = m(Some([127, 0, 0, 1]), 0, 80, Proto::Tcp);
        full.host_range = Some((b, b));
        let e = choose_host_ports(&mut [full]).unwrap_err();
        assert!(
            e.to_string()
                .contains(&format!("no host port of {b}-{b}/tcp is free")),
            "{e}"
        );
    }

    #[test]
    fn publish_all_adds_each_exposed_port_not_published() {
        assert_eq!(
            parse_exposed("7000-7001/udp").unwrap(),
            vec![(7000, Proto::Udp), (7001, Proto::Udp)]
        );
        assert_eq!(parse_exposed("80").unwrap(), vec![(80, Proto::Tcp)]);
        let e = parse_exposed("80/sctp").unwrap_err();
        assert!(e.contains("\"sctp\""), "{e}");
        assert!(parse_exposed("x")
            .unwrap_err()
            .contains("\"x\" is not a number"));
        let mut v = parse("8080:80").unwrap();
        publish_all(
            &mut v,
            &[(80, Proto::Tcp), (80, Proto::Udp), (443, Proto::Tcp)],
        );
        assert_eq!(
            v,
            vec![
                m(None, 8080, 80, Proto::Tcp),
                m(None, 0, 80, Proto::Udp),
                m(None, 0, 443, Proto::Tcp)
            ]
        );
    }

    #[test]
    fn the_same_host_port_twice_is_refused() {
        let specs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(parse_all(&specs(&["8080:80", "8080:80/udp", "80", "80"])).is_ok());
        assert!(parse_all(&specs(&["127.0.0.1:8080:80", "127.0.0.2:8080:81"])).is_ok());
        let (v, why) = parse_all(&specs(&["8080:80", "127.0.0.1:8080:81"])).unwrap_err();
        assert_eq!(v, "127.0.0.1:8080:81");
        assert!(why.contains("8080/tcp is given twice"), "{why}");
    }

    #[test]
    fn shown_like_docker_and_records_round_trip() {
        let p = m(None, 8080, 80, Proto::Tcp);
        assert_eq!(p.to_string(), "80/tcp -> 0.0.0.0:8080");
        let q = m(Some([127, 0, 0, 1]), 5353, 53, Proto::Udp);
        assert_eq!(q.to_string(), "53/udp -> 127.0.0.1:5353");
        let me = Holder::of("c1", std::process::id() as i32).unwrap();
        let (h, ports) = parse_record(&record(&me, &[p, q])).unwrap();
        assert_eq!(h, me);
        assert_eq!(ports, vec![p, q]);
    }

    #[test]
    fn free_host_ports_are_chosen_and_distinct() {
        let mut v = vec![
            m(Some([127, 0, 0, 1]), 0, 80, Proto::Tcp),
            m(Some([127, 0, 0, 1]), 0, 81, Proto::Tcp),
            m(Some([127, 0, 0, 1]), 0, 53, Proto::Udp),
            m(None, 8080, 82, Proto::Tcp),
        ];
        choose_host_ports(&mut v).unwrap();
        assert!(v.iter().all(|p| p.host_port != 0), "{v:?}");
        assert_ne!(v[0].host_port, v[1].host_port);
        assert_eq!(v[3].host_port, 8080);
        // Released: the port can be bound again.
        TcpListener::bind(("127.0.0.1", v[0].host_port)).unwrap();
    }
}

//! User-mode networking for rootless containers: pasta (Debian's
//! `passt`), attached to the container's network namespace.
//!
//! A user cannot make a veth or a NAT rule in the host's network
//! namespace, so the container's traffic goes through pasta, a process of
//! the user's that sits in both namespaces: in the container's it owns a
//! tap device (`--config-net` gives it the address and default route of
//! the host's outbound interface), and it turns the frames into ordinary
//! sockets of the host's namespace (outbound access as any program of the
//! user has). `-p` ports are sockets pasta listens on in the host's
//! namespace, spliced into the container's loopback for local clients
//! and passed through the tap (the client's own address kept) for
//! remote ones.
//!
//! rrun starts it once the container's first process waits in its new
//! network namespace, as the user (rrun's user namespace: uid 0 there is
//! the user; pasta stays in it, and the host sees the user's uid). The
//! namespace is handed over as a descriptor rrun opened
//! (`--netns /proc/self/fd/N`): pasta drops capabilities before it opens
//! its target, and the kernel then refuses it the container's
//! /proc/PID/ns files. Every automatic forwarding is off (`-t`/`-u none`
//! but for the `-p` ports, `-T`/`-U none`: nothing of the host's loopback
//! is reachable from the container), and the gateway is not mapped to
//! the host (`--no-map-gw`), as rbox's bridge keeps the host's loopback
//! out of reach. pasta holds the namespace open, so it never notices the
//! container is gone: [`Pasta`] is killed when dropped, and dies with
//! its parent (PR_SET_PDEATHSIG) if rrun itself is killed.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::net::Ipv4Addr;

use crate::network::ports::{PortMapping, Proto};

/// The name `--network` takes.
pub const NETWORK: &str = "pasta";

#[derive(Debug, thiserror::Error)]
pub enum PastaError {
    #[error("--network pasta needs pasta (install Debian's passt package), not found in PATH, /usr/bin or /bin")]
    Missing,
    #[error("--network pasta: the host has no default route (pasta copies the address and route of the host's outbound interface); use --network none")]
    NoRoute,
    #[error("--network pasta: open the container's network namespace: {0}")]
    Netns(io::Error),
    #[error("--network pasta: start {path}: {source}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("--network pasta: pasta failed ({status}): {message}")]
    Failed { status: String, message: String },
    #[error("--network pasta: the container's network was not configured within {0:?}")]
    Timeout(Duration),
}

/// Where pasta is.
pub fn find() -> Option<PathBuf> {
    super::enter::find_helper("pasta")
}

/// Whether `route` (/proc/net/route) or `route6` (/proc/net/ipv6_route)
/// has a default route on an interface other than `lo`.
pub fn has_default_route(route: &str, route6: &str) -> bool {
    let v4 = route.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 2 && f[0] != "lo" && f[1] == "00000000"
    });
    let v6 = route6.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() == 10 && f[0] == "00000000000000000000000000000000" && f[1] == "00" && f[9] != "lo"
    });
    v4 || v6
}

/// Whether pasta can give a container a network here: it is installed
/// and the host (this process's network namespace) has a default route.
pub fn usable() -> Result<PathBuf, PastaError> {
    let path = find().ok_or(PastaError::Missing)?;
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    if !has_default_route(&read("/proc/net/route"), &read("/proc/net/ipv6_route")) {
        return Err(PastaError::NoRoute);
    }
    Ok(path)
}

/// The nameserver of a rootless container whose host resolves through
/// its own loopback (systemd-resolved's 127.0.0.53, a dnsmasq on
/// 127.0.0.1), which the container cannot reach: pasta forwards what is
/// sent there to the host's first resolver (`--dns-forward`, Podman's
/// address), from the host's namespace.
pub const DNS_FORWARD: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// Whether the first nameserver of `resolv_conf` (the one pasta forwards
/// to) is a loopback address.
pub fn first_resolver_is_loopback(resolv_conf: &str) -> bool {
    let first = resolv_conf.lines().find_map(|l| {
        let mut w = l.split_whitespace();
        (w.next() == Some("nameserver")).then(|| w.next()).flatten()
    });
    first
        .and_then(|s| s.split('%').next()?.parse::<std::net::IpAddr>().ok())
        .is_some_and(|a| a.is_loopback())
}

/// resolv.conf for a container networked by pasta: with a loopback
/// resolver first on the host, the host's file with `DNS_FORWARD` as its
/// only nameserver; else as for a bridge (the host's non-loopback ones).
pub fn resolv_conf() -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    if !first_resolver_is_loopback(&host) {
        return crate::network::resolv::for_bridge();
    }
    let mut out: String = host
        .lines()
        .filter(|l| l.split_whitespace().next() != Some("nameserver"))
        .map(|l| format!("{l}\n"))
        .collect();
    out.push_str(&format!("nameserver {DNS_FORWARD}\n"));
    out
}

/// pasta's arguments for `ports`, the namespace being descriptor `fd`.
pub fn args(ports: &[PortMapping], fd: i32) -> Vec<String> {
    let mut a: Vec<String> = [
        "--foreground",
        "--quiet",
        "--config-net",
        "--no-map-gw",
        "--dns-forward",
        "169.254.1.1",
        "-T",
        "none",
        "-U",
        "none",
    ]
    .map(String::from)
    .to_vec();
    for proto in [Proto::Tcp, Proto::Udp] {
        let flag = if proto == Proto::Tcp { "-t" } else { "-u" };
        let mine: Vec<&PortMapping> = ports.iter().filter(|p| p.proto == proto).collect();
        if mine.is_empty() {
            a.extend([flag.to_string(), "none".to_string()]);
        }
        for p in mine {
            let addr = p.host_ip.map(|ip| format!("{ip}/")).unwrap_or_default();
            a.push(flag.to_string());
            a.push(format!("{addr}{}:{}", p.host_port, p.container_port));
        }
    }
    a.push("--netns".into());
    a.push(format!("/proc/self/fd/{fd}"));
    a
}

/// A running pasta, stopped when dropped.
#[derive(Debug)]
pub struct Pasta {
    child: Child,
    /// Its stderr (non-blocking for pasta: a full pipe loses messages
    /// rather than stopping it), read if it fails.
    stderr: OwnedFd,
}

/// How long pasta may take to configure the namespace.
const READY: Duration = Duration::from_secs(10);

/// Start pasta for the network namespace of `pid` (the container's first
/// process, waiting there), forwarding `ports`; return once the
/// namespace has its default route.
pub fn start(pid: i32, ports: &[PortMapping]) -> Result<Pasta, PastaError> {
    let path = usable()?;
    let netns = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(PastaError::Netns)?;
    let (err_r, err_w) = crate::sys::pipe().map_err(|source| PastaError::Spawn {
        path: path.clone(),
        source,
    })?;
    // O_NONBLOCK on the write end's file description: pasta's.
    let _ = nix::fcntl::fcntl(
        err_w.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let fd = netns.as_raw_fd();
    let mut cmd = Command::new(&path);
    cmd.args(args(ports, fd))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(err_w));
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // rrun blocks the signals it forwards: pasta gets none blocked
            // (SIGTERM stops it, SIGCHLD reaps its helpers).
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            // The namespace descriptor crosses exec; all else is CLOEXEC.
            if libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut()) < 0
                || libc::fcntl(fd, libc::F_SETFD, 0) < 0
                || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) < 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|source| PastaError::Spawn {
        path: path.clone(),
        source,
    })?;
    drop(cmd);
    drop(netns);
    let mut pasta = Pasta {
        child,
        stderr: err_r,
    };
    pasta.wait_ready(pid)?;
    Ok(pasta)
}

impl Pasta {
    /// Until the namespace of `pid` has a default route (pasta's last
    /// step of `--config-net`, after its ports are bound), or pasta dies.
    fn wait_ready(&mut self, pid: i32) -> Result<(), PastaError> {
        let begun = Instant::now();
        let mut pause = Duration::from_micros(500);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let _ = nix::fcntl::fcntl(
                    self.stderr.as_raw_fd(),
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
                let mut text = String::new();
                let _ = std::fs::File::from(self.stderr.try_clone().map_err(PastaError::Netns)?)
                    .read_to_string(&mut text);
                return Err(PastaError::Failed {
                    status: status.to_string(),
                    message: clean_message(&text),
                });
            }
            let read = |f: &str| std::fs::read_to_string(format!("/proc/{pid}/net/{f}"));
            if has_default_route(
                &read("route").unwrap_or_default(),
                &read("ipv6_route").unwrap_or_default(),
            ) {
                return Ok(());
            }
            if begun.elapsed() > READY {
                return Err(PastaError::Timeout(READY));
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

impl Drop for Pasta {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// The sysctl below whose value binding a port needs root, per network
/// namespace (pasta binds `-p` ports in the host's, as the user).
pub const UNPRIVILEGED_PORT_START: &str = "net.ipv4.ip_unprivileged_port_start";

/// Why pasta could not bind the host ports of `ports` as the user, given
/// the sysctl's value `start` (`-p` with a range: its first port):
/// refused before anything is made, as Podman does.
pub fn low_port_refusal(ports: &[PortMapping], start: u32) -> Option<String> {
    let low = ports
        .iter()
        .map(|p| p.host_range.map(|r| r.0).unwrap_or(p.host_port))
        .filter(|&p| p != 0 && u32::from(p) < start)
        .min()?;
    Some(format!(
        "rootless rbox cannot publish the host port {low}: ports below {UNPRIVILEGED_PORT_START} ({start} here) need root; \
         use a port of {start} or more, or have root lower it (sysctl -w {UNPRIVILEGED_PORT_START}={low})"
    ))
}

/// The sysctl's value in our network namespace (the kernel's default,
/// 1024, if it cannot be read).
pub fn unprivileged_port_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

/// pasta's stderr without its complaints about a missing syslog.
fn clean_message(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains("bytes to syslog"))
        .collect();
    if lines.is_empty() {
        "no message".into()
    } else {
        lines.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_below_the_sysctl_are_refused_naming_it() {
        let p = |s: &[&str]| {
            crate::network::ports::parse_all(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>())
                .unwrap()
        };
        assert_eq!(low_port_refusal(&p(&["8080:80", "80"]), 1024), None);
        let m = low_port_refusal(&p(&["8080:80", "443:443", "80:80"]), 1024).unwrap();
        assert!(
            m.contains("host port 80:")
                && m.contains("net.ipv4.ip_unprivileged_port_start (1024 here)")
                && m.contains("=80)"),
            "{m}"
        );
        assert_eq!(low_port_refusal(&p(&["80:80"]), 80), None);
        assert!(low_port_refusal(&p(&["1000-2000:80"]), 1024).is_some());
    }

    fn port(ip: Option<Ipv4Addr>, host: u16, cont: u16, proto: Proto) -> PortMapping {
        PortMapping {
            host_ip: ip,
            host_port: host,
            container_port: cont,
            proto,
            host_range: None,
        }
    }

    #[test]
    fn only_the_published_ports_are_forwarded_and_nothing_back() {
        let a = args(&[], 7).join(" ");
        assert!(
            a.contains("-T none -U none -t none -u none --netns /proc/self/fd/7"),
            "{a}"
        );
        assert!(
            a.contains("--no-map-gw") && a.contains("--foreground"),
            "{a}"
        );
        let p = [
            port(Some(Ipv4Addr::LOCALHOST), 8080, 80, Proto::Tcp),
            port(None, 5353, 53, Proto::Udp),
            port(None, 8443, 443, Proto::Tcp),
        ];
        let a = args(&p, 3).join(" ");
        assert!(
            a.contains("-t 127.0.0.1/8080:80 -t 8443:443 -u 5353:53 --netns"),
            "{a}"
        );
        assert!(!a.contains("-t none") && !a.contains("-u none"), "{a}");
    }

    #[test]
    fn dns_is_forwarded_where_the_first_resolver_is_on_loopback() {
        assert_eq!(DNS_FORWARD.to_string(), "169.254.1.1");
        assert!(args(&[], 3).join(" ").contains("--dns-forward 169.254.1.1"));
        assert!(first_resolver_is_loopback("# x\nnameserver 127.0.0.53\n"));
        assert!(first_resolver_is_loopback(
            "nameserver ::1\nnameserver 192.0.2.53\n"
        ));
        assert!(!first_resolver_is_loopback(
            "nameserver 192.0.2.53\nnameserver 127.0.0.1\n"
        ));
        assert!(!first_resolver_is_loopback("search example\n"));
    }

    #[test]
    fn a_default_route_is_one_off_loopback() {
        let head =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n";
        let v4 = format!("{head}eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n");
        assert!(has_default_route(&v4, ""));
        let only_net =
            format!("{head}eth0\t0002A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
        assert!(!has_default_route(&only_net, ""));
        assert!(!has_default_route(head, ""));
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003 eth0\n";
        assert!(has_default_route("", v6));
        let lo6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200 lo\n";
        assert!(!has_default_route("", lo6));
    }

    #[test]
    fn syslog_noise_is_left_out_of_the_message() {
        let t = "Failed to send 46 bytes to syslog\nNo external routable interface for IPv4\n";
        assert_eq!(clean_message(t), "No external routable interface for IPv4");
        assert_eq!(clean_message(""), "no message");
    }
}

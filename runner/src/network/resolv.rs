//! The resolv.conf of a container on a bridge. The host's own, except
//! that a resolver on the host's loopback (systemd-resolved's 127.0.0.53,
//! a local dnsmasq) is out of the container's reach: such lines are
//! replaced by the upstream servers systemd-resolved lists, and by
//! public resolvers when there are none, as Docker does.

/// systemd-resolved's list of the real upstream servers.
const UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";
/// Docker's fallback when the host has nothing but loopback resolvers.
const FALLBACK: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// resolv.conf text for a bridged container, from the host's.
pub fn for_bridge() -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let upstream = std::fs::read_to_string(UPSTREAM).unwrap_or_default();
    rewrite(&host, &upstream)
}

fn is_loopback(server: &str) -> bool {
    let s = server.split('%').next().unwrap_or(server);
    s.parse::<std::net::IpAddr>()
        .map(|a| a.is_loopback())
        .unwrap_or(false)
}

fn nameservers(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver")).then(|| w.next()).flatten()
        })
        .collect()
}

/// `host` without loopback nameservers; if that leaves none, the
/// non-loopback ones of `upstream`, else the public fallback.
pub fn rewrite(host: &str, upstream: &str) -> String {
    let mut out = String::new();
    let mut kept = 0;
    for line in host.lines() {
        let mut w = line.split_whitespace();
        if w.next() == Some("nameserver") {
            if w.next().map(is_loopback).unwrap_or(true) {
                continue;
            }
            kept += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if kept == 0 {
        let mut servers: Vec<&str> = nameservers(upstream)
            .into_iter()
            .filter(|s| !is_loopback(s))
            .collect();
        if servers.is_empty() {
            servers = FALLBACK.to_vec();
        }
        for s in servers {
            out.push_str(&format!("nameserver {s}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn loopback_resolvers_are_replaced() {
        let host = "# managed\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch example.org\n";
        let upstream = "nameserver 192.0.2.53\nnameserver ::1\nnameserver 2001:db8::53\n";
        assert_eq!(
            rewrite(host, upstream),
            "# managed\noptions edns0 trust-ad\nsearch example.org\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n"
        );
        assert_eq!(rewrite(host, ""), "# managed\noptions edns0 trust-ad\nsearch example.org\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n");
        // A host with real servers keeps them (and only them).
        assert_eq!(
            rewrite("nameserver 198.51.100.1\nnameserver 127.0.0.1\n", upstream),
            "nameserver 198.51.100.1\n"
        );
    }
}

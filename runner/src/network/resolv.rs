//! The resolv.conf of a container on a bridge. The host's own, except
//! that a resolver on the host's loopback (systemd-resolved's 127.0.0.53,
//! a local dnsmasq) is out of the container's reach: such lines are
//! replaced by the upstream servers systemd-resolved lists, and by
//! public resolvers when there are none, as Docker does.

/// systemd-resolved's list of the real upstream servers.
const UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";
/// Docker's fallback when the host has nothing but loopback resolvers.
pub const FALLBACK: [&str; 2] = ["8.8.8.8", "8.8.4.4"];

/// resolv.conf text for a bridged container, from the host's.
pub fn for_bridge() -> String {
    let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let upstream = std::fs::read_to_string(UPSTREAM).unwrap_or_default();
    rewrite(&host, &upstream)
}

/// `--dns`, `--dns-search` and `--dns-option` of a container (checked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsConfig {
    pub servers: Vec<std::net::IpAddr>,
    /// `.` alone: no search domains at all.
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// A `--dns` value: an IP address.
pub fn parse_server(s: &str) -> Result<std::net::IpAddr, String> {
    s.parse()
        .map_err(|_| "not an IP address (e.g. 192.0.2.53 or 2001:db8::53)".to_string())
}

/// A `--dns-search` value: a domain name, or `.` for none.
pub fn check_search(s: &str) -> Result<(), String> {
    let d = s.strip_suffix('.').unwrap_or(s);
    if s == "." {
        return Ok(());
    }
    let ok = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        });
    if ok {
        Ok(())
    } else {
        Err("not a domain name (letters, digits, '-' and '_' in dot-separated labels)".into())
    }
}

/// A `--dns-option` value: one word of resolv.conf's `options` line.
pub fn check_option(s: &str) -> Result<(), String> {
    let ok = !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err("an option is one word without spaces, e.g. ndots:2, timeout:1, edns0".into())
    }
}

/// `base` (a resolv.conf: the host's, or rewritten for a bridge) with the
/// container's options applied as Docker applies them: each option given
/// replaces all the lines of its kind. `resolver` (a user-defined
/// network's embedded resolver) is then the only nameserver: it forwards
/// to `--dns` servers itself.
pub fn apply(base: &str, cfg: &DnsConfig, resolver: Option<std::net::Ipv4Addr>) -> String {
    let replace_ns = resolver.is_some() || !cfg.servers.is_empty();
    let mut out = String::new();
    for line in base.lines() {
        let kind = line.split_whitespace().next().unwrap_or("");
        let drop = match kind {
            "nameserver" => replace_ns,
            "search" | "domain" => !cfg.search.is_empty(),
            "options" => !cfg.options.is_empty(),
            _ => false,
        };
        if !drop {
            out.push_str(line);
            out.push('\n');
        }
    }
    match resolver {
        Some(r) => out.push_str(&format!("nameserver {r}\n")),
        None => {
            for s in &cfg.servers {
                out.push_str(&format!("nameserver {s}\n"));
            }
        }
    }
    let search: Vec<&str> = cfg
        .search
        .iter()
        .map(String::as_str)
        .filter(|s| *s != ".")
        .collect();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !cfg.options.is_empty() {
        out.push_str(&format!("options {}\n", cfg.options.join(" ")));
    }
    out
}

/// The nameservers of a resolv.conf text, loopback ones included (the
/// embedded resolver runs in the host's network namespace).
pub fn servers_of(text: &str) -> Vec<std::net::IpAddr> {
    nameservers(text)
        .into_iter()
        .filter_map(|s| s.split('%').next()?.parse().ok())
        .collect()
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
    use super::*;

    #[test]
    fn bad_values_are_refused() {
        assert!(parse_server("192.0.2.1").is_ok() && parse_server("::1").is_ok());
        for bad in [
            "",
            "1.2.3",
            "example.com",
            "1.2.3.4 5.6.7.8",
            "1.2.3.4\nnameserver 6.6.6.6",
        ] {
            assert!(parse_server(bad).is_err(), "{bad:?}");
        }
        for good in [".", "example.com", "example.com.", "a_b.test"] {
            assert!(check_search(good).is_ok(), "{good:?}");
        }
        for bad in ["", "a b", "a\nb", "-x.test", "a..b", "x/y"] {
            assert!(check_search(bad).is_err(), "{bad:?}");
        }
        assert!(check_option("ndots:2").is_ok());
        for bad in ["", "a b", "x\nnameserver 1.1.1.1"] {
            assert!(check_option(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn options_replace_the_lines_of_their_kind() {
        let base = "# c\nnameserver 192.0.2.53\nsearch a.example\noptions edns0\n";
        let none = DnsConfig::default();
        assert_eq!(apply(base, &none, None), base);
        let cfg = DnsConfig {
            servers: vec![
                "198.51.100.7".parse().unwrap(),
                "2001:db8::1".parse().unwrap(),
            ],
            search: vec!["x.test".into(), "y.test".into()],
            options: vec!["ndots:2".into(), "timeout:1".into()],
        };
        assert_eq!(
            apply(base, &cfg, None),
            "# c\nnameserver 198.51.100.7\nnameserver 2001:db8::1\nsearch x.test y.test\noptions ndots:2 timeout:1\n"
        );
        // On a user-defined network the resolver is the only server.
        assert_eq!(
            apply(base, &cfg, Some("10.88.0.1".parse().unwrap())),
            "# c\nnameserver 10.88.0.1\nsearch x.test y.test\noptions ndots:2 timeout:1\n"
        );
        let dot = DnsConfig {
            search: vec![".".into()],
            ..Default::default()
        };
        assert_eq!(
            apply(base, &dot, None),
            "# c\nnameserver 192.0.2.53\noptions edns0\n"
        );
        assert_eq!(
            servers_of("nameserver 127.0.0.53\nnameserver fe80::1%eth0\nnameserver x\n"),
            vec![
                "127.0.0.53".parse::<std::net::IpAddr>().unwrap(),
                "fe80::1".parse().unwrap()
            ]
        );
    }

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

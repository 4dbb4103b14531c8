//! Names on a user-defined network, as Docker resolves them: each
//! container reaches the others by name (and `--network-alias`) through
//! its /etc/hosts, which lists every container on the network and is kept
//! current as they come and go. The default network has no names (as
//! Docker's `bridge`).
//!
//! In the network's state directory, `members/<container id>` holds one
//! line, `ADDRESS HOSTNAME NAME [ALIAS...]`, and `hosts/<container id>` is
//! the file bind-mounted onto that container's /etc/hosts. Every change
//! rewrites every member's file in place (truncate and write, never a
//! rename: the container's mount holds the inode). A member whose lease
//! is gone (a killed rrun's) is dropped by the next change, like the
//! lease itself.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::ipam::Holder;
use super::Network;

/// An `--add-host` value, `NAME:IP` (or Docker's newer `NAME=IP`; IPv6
/// possibly in brackets; IP may be `host-gateway`), as (name, address).
pub fn parse_extra_host(s: &str) -> Result<(String, String), String> {
    let (name, addr) = match (s.find(':'), s.find('=')) {
        (Some(c), Some(e)) if e < c => s.split_at(e),
        (Some(c), _) => s.split_at(c),
        (None, Some(e)) => s.split_at(e),
        (None, None) => return Err("expected NAME:IP".into()),
    };
    let addr = &addr[1..];
    let name_ok = !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if !name_ok {
        return Err(format!(
            "invalid host name {name:?}: use letters, digits, '-', '.' and '_'"
        ));
    }
    let bare = addr.trim_start_matches('[').trim_end_matches(']');
    if addr != "host-gateway" && bare.parse::<std::net::IpAddr>().is_err() {
        return Err(format!(
            "invalid IP address {addr:?} (an IPv4 or IPv6 address, or host-gateway)"
        ));
    }
    Ok((name.to_string(), addr.to_string()))
}

/// What a container's /etc/hosts starts with.
pub fn base(hostname: &str) -> String {
    format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    )
}

fn members_dir(net: &Network) -> PathBuf {
    net.state_dir().join("members")
}

/// The file that becomes the container's /etc/hosts.
pub fn hosts_path(net: &Network, container: &str) -> PathBuf {
    net.state_dir().join("hosts").join(container)
}

fn mkdir(p: &Path) -> io::Result<()> {
    fs::DirBuilder::new().recursive(true).mode(0o700).create(p)
}

/// The container's `--add-host` lines, kept for every rewrite.
fn extra_path(net: &Network, container: &str) -> PathBuf {
    net.state_dir().join("extra").join(container)
}

fn extra_of(net: &Network, container: &str) -> String {
    fs::read_to_string(extra_path(net, container)).unwrap_or_default()
}

/// Create the container's hosts file before its child mounts it, with
/// `extra` (its `--add-host` lines) after the standard ones.
pub fn prepare(net: &Network, container: &str, hostname: &str, extra: &str) -> io::Result<PathBuf> {
    let p = hosts_path(net, container);
    mkdir(p.parent().expect("hosts dir"))?;
    let e = extra_path(net, container);
    if extra.is_empty() {
        let _ = fs::remove_file(&e);
    } else {
        mkdir(e.parent().expect("extra dir"))?;
        write_in_place(&e, extra)?;
    }
    write_in_place(&p, &(base(hostname) + extra))?;
    Ok(p)
}

fn write_in_place(p: &Path, text: &str) -> io::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)?;
    f.write_all(text.as_bytes())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub container: String,
    pub address: Ipv4Addr,
    pub hostname: String,
    /// The container's name first, then its aliases.
    pub names: Vec<String>,
}

impl Member {
    fn line(&self) -> String {
        format!(
            "{} {} {}\n",
            self.address,
            self.hostname,
            self.names.join(" ")
        )
    }

    fn parse(container: &str, s: &str) -> Option<Member> {
        let mut w = s.split_whitespace();
        Some(Member {
            container: container.into(),
            address: w.next()?.parse().ok()?,
            hostname: w.next()?.into(),
            names: w.map(String::from).collect(),
        })
    }
}

/// The hosts file of `me` among `all`, with `me`'s `--add-host` lines.
pub fn render(me: &Member, all: &[Member], extra: &str) -> String {
    let mut s = base(&me.hostname);
    s.push_str(extra);
    s.push_str(&format!("{}\t{}\n", me.address, me.hostname));
    for m in all {
        s.push_str(&format!("{}\t{}\n", m.address, m.names.join(" ")));
    }
    s
}

/// The members whose lease is still theirs and alive; with `prune` (under
/// the network's lock) the others' records and files are removed.
fn live_members(net: &Network, prune: bool) -> Vec<Member> {
    live_members_in(&net.state_dir(), prune)
}

/// `live_members` of the network whose state directory is `state`.
fn live_members_in(state: &Path, prune: bool) -> Vec<Member> {
    let dir = state.join("members");
    let Ok(rd) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for e in rd.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        let m = fs::read_to_string(e.path())
            .ok()
            .and_then(|s| Member::parse(&id, &s));
        let alive = m.as_ref().is_some_and(|m| {
            fs::read_to_string(state.join(m.address.to_string()))
                .ok()
                .and_then(|s| Holder::parse(&s))
                .is_some_and(|h| h.container == id && h.alive())
        });
        match m {
            Some(m) if alive => v.push(m),
            _ if !prune => {}
            _ => {
                let _ = fs::remove_file(e.path());
                let _ = fs::remove_file(state.join("hosts").join(&id));
                let _ = fs::remove_file(state.join("extra").join(&id));
            }
        }
    }
    v.sort_by_key(|m| m.address);
    v
}

/// The members of the other networks `container` is a live member of
/// (those of `rrun network connect`): what the resolver of `net` answers
/// it besides `net`'s own (read only). Never another container's.
pub fn members_elsewhere(net: &Network, container: &str) -> Vec<Member> {
    let own = net.state_dir();
    let Ok(rd) = fs::read_dir(super::STATE_DIR) else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for e in rd.flatten() {
        let state = e.path();
        if state == own || !state.join("members").join(container).is_file() {
            continue;
        }
        let all = live_members_in(&state, false);
        if all.iter().any(|m| m.container == container) {
            v.extend(all.into_iter().filter(|m| m.container != container));
        }
    }
    v
}

/// Rewrite every member's hosts file. The caller holds the lock.
fn refresh(net: &Network) {
    let all = live_members(net, true);
    for m in &all {
        let text = render(m, &all, &extra_of(net, &m.container));
        let _ = write_in_place(&hosts_path(net, &m.container), &text);
    }
}

/// Add `m` and tell everyone. The caller holds the network's lock.
pub fn join(net: &Network, m: &Member) -> io::Result<()> {
    let dir = members_dir(net);
    mkdir(&dir)?;
    // Its file is written by `refresh`: the directory may not be there
    // yet when the first member is one `rrun network connect` brings.
    mkdir(hosts_path(net, &m.container).parent().expect("hosts dir"))?;
    fs::write(dir.join(&m.container), m.line())?;
    refresh(net);
    Ok(())
}

/// A member's `--add-host` lines (`extra`) from now on, rewritten into
/// its file at once (a container connected while running, see `follow`).
pub fn set_extra(net: &Network, container: &str, extra: &str) -> io::Result<()> {
    let _lock = net.ipam().lock();
    let e = extra_path(net, container);
    if extra.is_empty() {
        let _ = fs::remove_file(&e);
    } else {
        mkdir(e.parent().expect("extra dir"))?;
        write_in_place(&e, extra)?;
    }
    refresh(net);
    Ok(())
}

/// Remove `container` and tell the others.
pub fn leave(net: &Network, container: &str) {
    let _lock = net.ipam().lock();
    // A container still running (disconnected, see `follow`) keeps the
    // file mounted: it goes back to its own lines.
    let me = members_dir(net).join(container);
    if let Some(m) = fs::read_to_string(&me)
        .ok()
        .and_then(|s| Member::parse(container, &s))
    {
        let own = base(&m.hostname) + &extra_of(net, container);
        let _ = write_in_place(&hosts_path(net, container), &own);
    }
    let _ = fs::remove_file(me);
    let _ = fs::remove_file(hosts_path(net, container));
    let _ = fs::remove_file(extra_path(net, container));
    refresh(net);
}

/// `container` is known by `names` from now on (`rrun rename`); nothing
/// if it is not on the network.
pub fn rename(net: &Network, container: &str, names: &[String]) {
    let _lock = net.ipam().lock();
    let path = members_dir(net).join(container);
    let Some(mut m) = fs::read_to_string(&path)
        .ok()
        .and_then(|s| Member::parse(container, &s))
    else {
        return;
    };
    m.names = names.to_vec();
    if fs::write(&path, m.line()).is_ok() {
        refresh(net);
    }
}

/// The containers on the network now (read only: for inspect).
pub fn members(net: &Network) -> Vec<Member> {
    live_members(net, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_hosts_parse_like_dockers() {
        let ok = |s: &str, n: &str, a: &str| {
            assert_eq!(
                parse_extra_host(s),
                Ok((n.to_string(), a.to_string())),
                "{s}"
            )
        };
        ok("db:192.0.2.5", "db", "192.0.2.5");
        ok("db=192.0.2.5", "db", "192.0.2.5");
        ok("v6:2001:db8::1", "v6", "2001:db8::1");
        ok("v6=[2001:db8::1]", "v6", "[2001:db8::1]");
        ok(
            "host.docker.internal:host-gateway",
            "host.docker.internal",
            "host-gateway",
        );
        for bad in [
            "db",
            "db:",
            ":1.2.3.4",
            "a b:1.2.3.4",
            "x\ny:1.2.3.4",
            "db:1.2.3",
            "db:1.2.3.4 evil",
        ] {
            assert!(parse_extra_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hosts_lists_every_member_by_name_and_alias() {
        let m = |c: &str, a: [u8; 4], names: &[&str]| Member {
            container: c.into(),
            address: a.into(),
            hostname: format!("{c}-host"),
            names: names.iter().map(|s| s.to_string()).collect(),
        };
        let all = [
            m("a", [10, 88, 0, 2], &["db", "database"]),
            m("b", [10, 88, 0, 3], &["web"]),
        ];
        assert_eq!(Member::parse("a", &all[0].line()), Some(all[0].clone()));
        assert_eq!(
            render(&all[1], &all, "192.0.2.9\tx\n"),
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\tb-host\n\
             192.0.2.9\tx\n10.88.0.3\tb-host\n10.88.0.2\tdb database\n10.88.0.3\tweb\n"
        );
    }
}

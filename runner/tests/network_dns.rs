//! Name resolution on rrun's networks, for real, as root: the embedded
//! DNS resolver of user-defined networks (answers for the network's
//! containers, forwarding for the rest) and `--dns`, `--dns-search`,
//! `--dns-option`, `--add-host`. Each test re-runs itself in a network
//! and mount namespace of its own (fixtures::netns); the upstream DNS
//! servers are the test's, in its "outside" namespace, and the host's
//! /etc/resolv.conf is a file bind-mounted in the test's own mount
//! namespace only.

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use fixtures::netns::{self, Outside, OUTSIDE_ADDR};
use simple_dns::rdata::RData;
use simple_dns::{Name, Packet, PacketFlag, Question, ResourceRecord, CLASS, QTYPE, RCODE, TYPE};

/// A second address of the outside namespace: the `--dns` server.
const OTHER_DNS: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

/// A DNS server on `addr`:53 in the outside namespace: `example.test` is
/// `answer`, anything else NXDOMAIN. Counts the queries it gets.
fn upstream(outside: &Outside, addr: Ipv4Addr, answer: Ipv4Addr) -> Arc<AtomicUsize> {
    let sock = outside.within(move || UdpSocket::bind((addr, 53)).unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf) {
            c.fetch_add(1, Ordering::SeqCst);
            let Ok(q) = Packet::parse(&buf[..n]) else {
                continue;
            };
            let mut r = Packet::new_reply(q.id());
            r.set_flags(PacketFlag::RECURSION_AVAILABLE);
            let mut known = false;
            for question in &q.questions {
                r.questions.push(question.clone());
                if question.qname.to_string().trim_end_matches('.') == "example.test" {
                    known = true;
                    if question.qtype == QTYPE::TYPE(TYPE::A) {
                        r.answers.push(ResourceRecord::new(
                            question.qname.clone(),
                            CLASS::IN,
                            30,
                            RData::A(simple_dns::rdata::A {
                                address: answer.into(),
                            }),
                        ));
                    }
                }
            }
            if !known {
                *r.rcode_mut() = RCODE::NameError;
            }
            let bytes = r.build_bytes_vec().unwrap();
            let _ = sock.send_to(&bytes, from);
        }
    });
    count
}

/// The host's resolv.conf, in the test's mount namespace only.
fn host_resolv_conf(text: &str) {
    let dir = std::env::temp_dir().join("dns-host-etc");
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("resolv.conf");
    std::fs::write(&f, text).unwrap();
    // Mounted over, never written: the machine's file stays as it is.
    let target = std::fs::canonicalize("/etc/resolv.conf")
        .expect("this test mounts its own file over /etc/resolv.conf, which must exist");
    let o = std::process::Command::new("mount")
        .args(["--bind"])
        .arg(&f)
        .arg(&target)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
}

fn ok(o: &std::process::Output) -> String {
    assert_eq!(code(o), 0, "{}{}", stdout(o), stderr(o));
    stdout(o)
}

fn inspect(what: &[&str]) -> serde_json::Value {
    let o = rrun(what);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}{}", stdout(&o), stderr(&o)))
}

/// A network's bridge and gateway.
fn network(name: &str) -> (String, Ipv4Addr) {
    let v = inspect(&["network", "inspect", name]);
    (
        v[0]["Options"]["com.docker.network.bridge.name"]
            .as_str()
            .unwrap()
            .to_string(),
        v[0]["IPAM"]["Config"][0]["Gateway"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    )
}

fn address_of(container: &str, net: &str) -> String {
    let v = inspect(&["inspect", container]);
    v[0]["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn pid_of(container: &str) -> i32 {
    inspect(&["inspect", container])[0]["State"]["Pid"]
        .as_i64()
        .unwrap() as i32
}

fn run_d(args: &[&str]) {
    let mut a = vec!["run", "-d"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["busybox", "sleep", "600"]);
    ok(&rrun(&a));
}

fn nslookup(container: &str, name: &str) -> String {
    let o = rrun(&["exec", container, "nslookup", name]);
    format!("{}{}", stdout(&o), stderr(&o))
}

/// busybox nslookup's answer lines: `Address: A` after the `Name:` line.
fn resolves_to(out: &str, addr: &str) -> bool {
    let after = out.split("Name:").nth(1).unwrap_or("");
    after
        .lines()
        .any(|l| l.trim() == format!("Address: {addr}"))
}

/// `f`'s result, run on a helper thread inside the network namespace of
/// process `pid` (a container's): sockets made there are the container's.
fn in_netns_of<T: Send + 'static>(pid: i32, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    std::thread::spawn(move || {
        // SAFETY: setns on this helper thread only; `ns` is open.
        let r = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap()
}

fn query(name: &str, qtype: TYPE, id: u16) -> Vec<u8> {
    let mut p = Packet::new_query(id);
    p.set_flags(PacketFlag::RECURSION_DESIRED);
    p.questions.push(Question::new(
        Name::new_unchecked(name),
        qtype.into(),
        CLASS::IN.into(),
        false,
    ));
    p.build_bytes_vec().unwrap()
}

/// Send each of `msgs` over UDP to `server`:53 and collect the replies
/// (None: no reply within a second).
fn udp_exchange(server: Ipv4Addr, msgs: Vec<Vec<u8>>) -> Vec<Option<Vec<u8>>> {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    msgs.iter()
        .map(|m| {
            s.send_to(m, (server, 53)).unwrap();
            let mut buf = [0u8; 4096];
            s.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
        })
        .collect()
}

fn parsed_reply(replies: &[Option<Vec<u8>>], i: usize) -> Packet<'_> {
    let b = replies[i]
        .as_ref()
        .unwrap_or_else(|| panic!("no reply {i}"));
    Packet::parse(b).unwrap()
}

fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z")
}

fn resolver_pid(bridge: &str) -> Option<i32> {
    std::fs::read_to_string(format!("/run/rbox/networks/{bridge}/resolver.lock"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[test]
fn user_networks_have_an_embedded_resolver_for_their_containers_only() {
    if !netns::own_netns("user_networks_have_an_embedded_resolver_for_their_containers_only") {
        return;
    }
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
    let outside = Outside::new();
    outside.sh(&format!("ip addr add {OTHER_DNS}/24 dev eth0"));
    let host_upstream = upstream(&outside, OUTSIDE_ADDR, Ipv4Addr::new(192, 0, 2, 77));
    let dns_upstream = upstream(&outside, OTHER_DNS, Ipv4Addr::new(192, 0, 2, 78));
    host_resolv_conf(&format!("nameserver {OUTSIDE_ADDR}\n"));
    ok(&rrun(&["network", "create", "dnsnet"]));
    ok(&rrun(&["network", "create", "elsewhere"]));
    let (bridge, gateway) = network("dnsnet");

    run_d(&[
        "--name",
        "a",
        "--network",
        "dnsnet",
        "--network-alias",
        "alpha",
    ]);
    run_d(&["--name", "b", "--network", "dnsnet", "--hostname", "bhost"]);
    let (a, b) = (address_of("a", "dnsnet"), address_of("b", "dnsnet"));
    let resolv = ok(&rrun(&["exec", "a", "cat", "/etc/resolv.conf"]));
    assert_eq!(
        resolv
            .lines()
            .filter(|l| l.starts_with("nameserver"))
            .collect::<Vec<_>>(),
        [format!("nameserver {gateway}")],
        "{resolv}"
    );
    let rpid = resolver_pid(&bridge).expect("no resolver pid");
    assert!(alive(rpid), "the resolver {rpid} does not run");

    // By name, alias and hostname, both ways.
    let out = nslookup("a", "b");
    assert!(resolves_to(&out, &b), "a looks up b: {out}");
    let out = nslookup("b", "alpha");
    assert!(resolves_to(&out, &a), "b looks up alpha: {out}");
    let out = nslookup("a", "bhost");
    assert!(resolves_to(&out, &b), "a looks up bhost: {out}");

    // Started later: known to a while a runs; forgotten once stopped.
    run_d(&["--name", "late", "--network", "dnsnet"]);
    let late = address_of("late", "dnsnet");
    let out = nslookup("a", "late");
    assert!(resolves_to(&out, &late), "a looks up late: {out}");
    ok(&rrun(&["rm", "-f", "late"]));
    let out = nslookup("a", "late");
    assert!(
        !resolves_to(&out, &late) && out.contains("NXDOMAIN"),
        "late resolved after it stopped: {out}"
    );

    // A container of another network: not known here, nor a to it.
    run_d(&["--name", "far", "--network", "elsewhere"]);
    let far = address_of("far", "elsewhere");
    let out = nslookup("a", "far");
    assert!(!resolves_to(&out, &far), "far resolved from dnsnet: {out}");
    let out = nslookup("far", "a");
    assert!(!resolves_to(&out, &a), "a resolved from elsewhere: {out}");

    // Other names go upstream: the host's servers, or the --dns ones.
    let before = host_upstream.load(Ordering::SeqCst);
    let out = nslookup("a", "example.test");
    assert!(resolves_to(&out, "192.0.2.77"), "forwarded: {out}");
    assert!(host_upstream.load(Ordering::SeqCst) > before);
    run_d(&[
        "--name",
        "own",
        "--network",
        "dnsnet",
        "--dns",
        &OTHER_DNS.to_string(),
    ]);
    let resolv = ok(&rrun(&["exec", "own", "cat", "/etc/resolv.conf"]));
    assert!(
        resolv.contains(&format!("nameserver {gateway}"))
            && !resolv.contains(&OTHER_DNS.to_string()),
        "{resolv}"
    );
    let out = nslookup("own", "example.test");
    assert!(resolves_to(&out, "192.0.2.78"), "--dns upstream: {out}");
    assert!(dns_upstream.load(Ordering::SeqCst) > 0);
    let out = nslookup("own", "a");
    assert!(resolves_to(&out, &a), "own looks up a: {out}");

    // From a container's own socket: AAAA is empty, PTR names it, TCP
    // works, and hostile datagrams crash nothing.
    let pid = pid_of("b");
    let a_addr: Ipv4Addr = a.parse().unwrap();
    let o = a_addr.octets();
    let ptr = format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0]);
    let mut looped = query("x", TYPE::A, 9)[..12].to_vec();
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    let mut response = query("a", TYPE::A, 10);
    response[2] |= 0x80;
    let replies = in_netns_of(pid, move || {
        let garbage: Vec<Vec<u8>> = (0..200u32)
            .map(|i| (0..(i % 97 + 1)).map(|j| (i * 31 + j * 7) as u8).collect())
            .collect();
        let s = UdpSocket::bind("0.0.0.0:0").unwrap();
        for g in &garbage {
            s.send_to(g, (gateway, 53)).unwrap();
        }
        let mut r = udp_exchange(
            gateway,
            vec![
                query("alpha", TYPE::AAAA, 1),
                query(&ptr, TYPE::PTR, 2),
                looped,
                response,
                vec![0xff; 4000],
                query("alpha", TYPE::A, 3),
            ],
        );
        // TCP: the same question, length-prefixed.
        let mut c =
            TcpStream::connect_timeout(&SocketAddr::from((gateway, 53)), Duration::from_secs(2))
                .unwrap();
        c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        use std::io::{Read, Write};
        let q = query("alpha", TYPE::A, 4);
        let mut m = (q.len() as u16).to_be_bytes().to_vec();
        m.extend_from_slice(&q);
        c.write_all(&m).unwrap();
        let mut len = [0u8; 2];
        c.read_exact(&mut len).unwrap();
        let mut reply = vec![0u8; u16::from_be_bytes(len) as usize];
        c.read_exact(&mut reply).unwrap();
        r.push(Some(reply));
        r
    });
    let parsed = |i: usize| parsed_reply(&replies, i);
    let aaaa = parsed(0);
    assert_eq!((aaaa.rcode(), aaaa.answers.len()), (RCODE::NoError, 0));
    match &parsed(1).answers[0].rdata {
        RData::PTR(p) => assert_eq!(p.0.to_string(), "a"),
        other => panic!("PTR: {other:?}"),
    }
    assert_eq!(parsed(2).rcode(), RCODE::FormatError, "pointer loop");
    assert!(replies[3].is_none(), "a response was answered");
    for i in [5, 6] {
        let p = parsed(i);
        match &p.answers[0].rdata {
            RData::A(x) => assert_eq!(Ipv4Addr::from(x.address), a_addr),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(resolver_pid(&bridge), Some(rpid));
    assert!(alive(rpid), "the resolver died of hostile input");
    let out = nslookup("b", "a");
    assert!(resolves_to(&out, &a), "after the garbage: {out}");

    // Not from the subnet (the host itself): no answer at all.
    let r = udp_exchange(gateway, vec![query("a", TYPE::A, 5)]);
    assert!(r[0].is_none(), "answered a query from outside the subnet");

    // The network removed: its resolver goes.
    for c in ["a", "b", "own", "far"] {
        ok(&rrun(&["rm", "-f", c]));
    }
    ok(&rrun(&["network", "rm", "dnsnet", "elsewhere"]));
    assert!(
        eventually(|| !alive(rpid)),
        "the resolver outlived its network"
    );
}

#[test]
fn dns_and_host_options_land_in_the_container_files() {
    if !netns::own_netns("dns_and_host_options_land_in_the_container_files") {
        return;
    }
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
    let opts = [
        "--dns",
        "192.0.2.53",
        "--dns",
        "2001:db8::53",
        "--dns-search",
        "a.test",
        "--dns-search",
        "b.test",
        "--dns-option",
        "ndots:3",
        "--add-host",
        "db:192.0.2.5",
        "--add-host",
        "gw:host-gateway",
        "--hostname",
        "myhost",
    ];
    let script = "cat /etc/resolv.conf /etc/hosts";
    let out = ok(&sh(&opts, script));
    for line in [
        "nameserver 192.0.2.53",
        "nameserver 2001:db8::53",
        "search a.test b.test",
        "options ndots:3",
        "192.0.2.5\tdb",
        "10.87.0.1\tgw",
        "127.0.1.1\tmyhost",
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    }
    assert_eq!(
        out.lines().filter(|l| l.starts_with("nameserver")).count(),
        2,
        "{out}"
    );
    // On a user-defined network: the gateway is its own; the resolver
    // is the nameserver, search and options as given.
    ok(&rrun(&[
        "network",
        "create",
        "--subnet",
        "10.99.7.0/24",
        "optnet",
    ]));
    let mut o2 = vec!["--network", "optnet"];
    o2.extend_from_slice(&opts);
    let out = ok(&sh(&o2, script));
    for line in [
        "nameserver 10.99.7.1",
        "search a.test b.test",
        "options ndots:3",
        "10.99.7.1\tgw",
        "192.0.2.5\tdb",
        "127.0.1.1\tmyhost",
    ] {
        assert!(out.lines().any(|l| l == line), "no {line:?} in:\n{out}");
    }
    assert!(!out.contains("192.0.2.53"), "{out}");
    // Kept, and shown as Docker shows them.
    let mut o3 = vec!["run", "-d", "--name", "kept"];
    o3.extend_from_slice(&opts);
    o3.extend_from_slice(&["busybox", "sleep", "600"]);
    ok(&rrun(&o3));
    let v = inspect(&["inspect", "kept"]);
    let h = &v[0]["HostConfig"];
    assert_eq!(h["Dns"], serde_json::json!(["192.0.2.53", "2001:db8::53"]));
    assert_eq!(h["DnsSearch"], serde_json::json!(["a.test", "b.test"]));
    assert_eq!(h["DnsOptions"], serde_json::json!(["ndots:3"]));
    assert_eq!(
        h["ExtraHosts"],
        serde_json::json!(["db:192.0.2.5", "gw:host-gateway"])
    );
    let out = ok(&rrun(&["exec", "kept", "cat", "/etc/hosts"]));
    assert!(out.contains("192.0.2.5\tdb"), "{out}");
    ok(&rrun(&["rm", "-f", "kept"]));

    // Bad values: refused before anything runs, naming the option.
    for (args, flag) in [
        (&["--dns", "1.2.3"][..], "--dns"),
        (&["--dns", "192.0.2.1\nnameserver 6.6.6.6"], "--dns"),
        (&["--dns-search", "a b"], "--dns-search"),
        (&["--dns-search", "x\nnameserver 6.6.6.6"], "--dns-search"),
        (&["--dns-option", "nd ots"], "--dns-option"),
        (&["--add-host", "bad name:192.0.2.1"], "--add-host"),
        (&["--add-host", "x\n6.6.6.6 evil:192.0.2.1"], "--add-host"),
        (&["--add-host", "db:nope"], "--add-host"),
        (&["--add-host", "db"], "--add-host"),
        (
            &["--network", "none", "--add-host", "gw:host-gateway"],
            "--add-host",
        ),
        (
            &["--network", "container:nosuch", "--dns", "192.0.2.1"],
            "--dns",
        ),
    ] {
        let o = sh(args, "true");
        assert_eq!(code(&o), 125, "{args:?} accepted: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("\"{flag}\"")),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    ok(&rrun(&["network", "rm", "optnet"]));
}

/// The network's bridge deleted behind rbox's back (`ip link del`, in the
/// test's own namespace) while a container is on it: the resolver
/// notices, exits within seconds and takes its resolver.lock with it. A
/// container that comes later makes the bridge and a resolver again.
#[test]
fn a_resolver_exits_when_its_bridge_is_deleted() {
    if !netns::own_netns("a_resolver_exits_when_its_bridge_is_deleted") {
        return;
    }
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
    ok(&rrun(&["network", "create", "gonenet"]));
    let (bridge, _) = network("gonenet");
    run_d(&["--name", "lone", "--network", "gonenet"]);
    let lock = std::path::PathBuf::from(format!("/run/rbox/networks/{bridge}/resolver.lock"));
    let rpid = resolver_pid(&bridge).expect("no resolver pid");
    assert!(alive(rpid), "the resolver {rpid} does not run");
    // With its bridge there it stays, past the grace after its last use.
    std::thread::sleep(Duration::from_secs(4));
    assert!(alive(rpid), "the resolver left while its bridge was there");

    let o = std::process::Command::new("ip")
        .args(["link", "del", &bridge])
        .output()
        .unwrap();
    assert!(o.status.success(), "ip link del {bridge}: {o:?}");
    let deleted = Instant::now();
    while alive(rpid) && deleted.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !alive(rpid),
        "the resolver {rpid} outlived its bridge by 10 s"
    );
    eprintln!(
        "the resolver exited {:?} after its bridge was deleted",
        deleted.elapsed()
    );
    assert!(!lock.exists(), "the resolver left {}", lock.display());

    // Back with the next container: a new bridge, a new resolver that
    // answers for both.
    run_d(&["--name", "again", "--network", "gonenet"]);
    let again = resolver_pid(&bridge).expect("no new resolver");
    assert!(again != rpid && alive(again), "no new resolver: {again}");
    let out = nslookup("again", "lone");
    assert!(resolves_to(&out, &address_of("lone", "gonenet")), "{out}");
}

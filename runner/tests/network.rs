//! `rrun run --network bridge` (the default) for real, as root. Each test
//! re-runs itself in a network namespace of its own (fixtures::netns),
//! which stands for the host: rbox's bridge, NAT rules and leases are
//! made there, never in the machine's own network namespace.

mod common;

use common::*;
use fixtures::netns::{self, Outside, HOST_ADDR_OUTSIDE, OUTSIDE_ADDR};

const SECRET: &str = "host-loopback-secret";

#[test]
fn bridge_goes_out_through_nat_but_never_reaches_host_loopback() {
    if !netns::own_netns("bridge_goes_out_through_nat_but_never_reaches_host_loopback") {
        return;
    }
    let outside = Outside::new();
    outside.serve(8080);
    let port = netns::serve_on_loopback(SECRET);
    let script = format!(
        "ip -4 -o addr show eth0; ip route; \
         nc -w 3 {OUTSIDE_ADDR} 8080 </dev/null; \
         nc -w 2 127.0.0.1 {port} </dev/null; echo loopback=$?"
    );
    // The default network is the bridge.
    let o = sh(&[], &script);
    let out = stdout(&o);
    assert_eq!(code(&o), 0, "{out}\n{}", stderr(&o));
    assert!(
        out.contains("inet 10.87."),
        "no bridge address on eth0: {out}"
    );
    assert!(
        out.contains("default via 10.87.0.1 dev eth0"),
        "no default route: {out}"
    );
    // Outbound works, and the outside sees the host's address (NAT).
    assert!(
        out.contains(&format!("hello from outside, you are {HOST_ADDR_OUTSIDE}")),
        "no masqueraded connection to the outside namespace: {out}"
    );
    assert!(
        !out.contains(SECRET),
        "a bridged container read the host's loopback service: {out}"
    );
    assert!(out.contains("loopback=1"), "{out}");

    // An attacker with CAP_NET_ADMIN in its namespace routes 127.0.0.1 to
    // the bridge: the host drops it (martian, and rbox's prerouting rule).
    let o = sh(
        &["--privileged"],
        &format!(
            "ip route del local 127.0.0.0/8 dev lo table local; \
             ip route del local 127.0.0.1 dev lo table local; \
             echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet; \
             echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet; \
             ip route add 127.0.0.1/32 via 10.87.0.1 dev eth0 onlink; \
             nc -w 2 127.0.0.1 {port} </dev/null; echo loopback=$?"
        ),
    );
    assert!(
        !stdout(&o).contains(SECRET),
        "the host's loopback service answered: {}",
        stdout(&o)
    );

    // The same service is what --network host reaches: the test can tell.
    let o = sh(
        &["--network", "host"],
        &format!("nc -w 2 127.0.0.1 {port} </dev/null"),
    );
    assert!(
        stdout(&o).contains(SECRET),
        "the test's loopback service is not there: {}",
        stderr(&o)
    );
}

#[test]
fn none_stays_without_a_route_out() {
    if !netns::own_netns("none_stays_without_a_route_out") {
        return;
    }
    let outside = Outside::new();
    outside.serve(8080);
    let o = sh(
        &["--network", "none"],
        &format!("ls /sys/class/net; nc -w 2 {OUTSIDE_ADDR} 8080 </dev/null; echo out=$?"),
    );
    let out = stdout(&o);
    assert_eq!(out.lines().next(), Some("lo"), "{out}");
    assert!(!out.contains("hello"), "{out}");
    assert!(out.contains("out=1"), "{out}");
}

/// Leases in /run/rbox/networks/bridge (the test's own tmpfs).
fn leases() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/run/rbox/networks/bridge")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != "lock")
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// rbox's host-side veths in this network namespace (from /proc: /sys is
/// the launcher's).
fn host_veths() -> usize {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
    dev.lines()
        .filter(|l| l.trim_start().starts_with("rbx"))
        .count()
}

#[test]
fn containers_get_their_own_addresses_and_give_them_back() {
    if !netns::own_netns("containers_get_their_own_addresses_and_give_them_back") {
        return;
    }
    // Two at once: distinct addresses, and they reach each other.
    let mut server = rrun_cmd(&[
        "run",
        "--rm",
        "busybox",
        "nc",
        "-l",
        "-p",
        "7000",
        "-e",
        "echo",
        "peer-here",
    ])
    .spawn()
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while leases().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no lease for the first container"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let first = leases();
    assert_eq!(host_veths(), 1, "no host-side veth for the first container");
    let o = sh(
        &[],
        &format!(
            "ip -4 -o addr show eth0; sleep 0.2; nc -w 3 {} 7000 </dev/null",
            first[0]
        ),
    );
    let out = stdout(&o);
    assert!(
        out.contains("peer-here"),
        "containers on the bridge do not reach each other: {out} {}",
        stderr(&o)
    );
    assert!(
        !out.contains(&format!("inet {}/", first[0])),
        "the same address twice: {out}"
    );
    assert!(server.wait().unwrap().success());
    // Both gone: no lease left, and no veth left on the host side.
    assert_eq!(leases(), Vec::<String>::new());
    // The kernel deletes the pairs with the namespaces, asynchronously.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while host_veths() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(host_veths(), 0, "host-side veths outlived their containers");

    // A killed rrun: its container dies with it, and the next rrun takes
    // the lease back.
    let mut victim = rrun_cmd(&["run", "--rm", "busybox", "sleep", "600"])
        .spawn()
        .unwrap();
    while leases().is_empty() {
        assert!(
            std::time::Instant::now() < deadline + std::time::Duration::from_secs(10),
            "no lease"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let stale = leases();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    victim.wait().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(leases(), stale, "the lease went before anyone reaped it?");
    let o = sh(&[], "true");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let left = leases();
    let detail: Vec<String> = left
        .iter()
        .map(|l| {
            std::fs::read_to_string(format!("/run/rbox/networks/bridge/{l}")).unwrap_or_default()
        })
        .collect();
    assert_eq!(
        left,
        Vec::<String>::new(),
        "the killed rrun's lease was not reaped: {detail:?}"
    );
}

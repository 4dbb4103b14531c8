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
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
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
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
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
                .filter(|n| n.parse::<std::net::Ipv4Addr>().is_ok())
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
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
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
    // The lease is taken before the veth pair is made: wait for both (a
    // TCG guest is slow enough to see the gap).
    while host_veths() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
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

/// The elements of the network's published-port maps (nft's listing).
fn published_elements() -> String {
    let mut all = String::new();
    for map in ["ports", "ports_ip"] {
        let o = std::process::Command::new("nft")
            .args(["list", "map", "ip", "rbox-rbox0", map])
            .output()
            .expect("run nft");
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        all += &text
            .lines()
            .filter(|l| l.contains(':') && !l.contains("type "))
            .collect::<Vec<_>>()
            .join("\n");
    }
    all
}

/// A counter of /proc/net/snmp in the network namespace of a container.
fn snmp(container: &str, table: &str, field: &str) -> u64 {
    let o = rrun(&["exec", container, "cat", "/proc/net/snmp"]);
    let out = stdout(&o);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .filter(|l| l.starts_with(table))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out} {}", stderr(&o));
    let i = rows[0].iter().position(|f| *f == field).unwrap();
    rows[1][i].parse().unwrap()
}

fn wait_for(what: &str, mut f: impl FnMut() -> Option<String>) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn published_ports_reach_the_container_until_it_is_gone() {
    if !netns::own_netns("published_ports_reach_the_container_until_it_is_gone") {
        return;
    }
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
    let outside = Outside::new();
    // -ll: a persistent server (one process per connection).
    let server = "nc -ll -p 80 -e echo hi-from-80 & nc -ll -p 81 -e echo hi-from-81 & wait";
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1::81",
        "-p",
        "9090:90/udp",
        "busybox",
        "sh",
        "-c",
        server,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));

    // From the outside namespace to the host's address facing it.
    let got = wait_for("the published port from outside", || {
        outside
            .fetch(HOST_ADDR_OUTSIDE, 8080)
            .ok()
            .filter(|s| s.contains("hi-from-80"))
    });
    assert_eq!(got.trim(), "hi-from-80");
    // From the host itself, to one of its addresses.
    let got = netns::fetch(HOST_ADDR_OUTSIDE, 8080).expect("the published port from the host");
    assert_eq!(got.trim(), "hi-from-80");
    // And at 127.0.0.1 (DNAT in output, route_localnet on the bridge).
    let got = netns::fetch(std::net::Ipv4Addr::LOCALHOST, 8080).expect("127.0.0.1:8080");
    assert_eq!(got.trim(), "hi-from-80");
    // From another container, through the host's address (hairpin).
    let o = sh(&[], &format!("nc -w 3 {HOST_ADDR_OUTSIDE} 8080 </dev/null"));
    assert_eq!(stdout(&o).trim(), "hi-from-80", "{}", stderr(&o));

    // UDP, from the outside: busybox has no UDP server, but the
    // container's network namespace counts datagrams to closed ports.
    let udp_no_ports = || snmp("web", "Udp:", "NoPorts");
    let before = udp_no_ports();
    outside.within(|| {
        let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.send_to(b"ping", (HOST_ADDR_OUTSIDE, 9090)).unwrap();
    });
    wait_for("the datagram to reach the container", || {
        (udp_no_ports() > before).then_some(String::new())
    });

    // rrun port, as docker port.
    let o = rrun(&["port", "web"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], "80/tcp -> 0.0.0.0:8080");
    let chosen: u16 = lines[1]
        .strip_prefix("81/tcp -> 127.0.0.1:")
        .unwrap_or_else(|| panic!("{lines:?}"))
        .parse()
        .unwrap();
    assert_ne!(chosen, 0);
    assert_eq!(lines[2], "90/udp -> 0.0.0.0:9090");
    assert_eq!(stdout(&rrun(&["port", "web", "80/tcp"])), "0.0.0.0:8080\n");
    assert_eq!(stdout(&rrun(&["port", "web", "90/udp"])), "0.0.0.0:9090\n");
    let o = rrun(&["port", "web", "82"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("no public port '82/tcp'"),
        "{}",
        stderr(&o)
    );
    let ps = stdout(&rrun(&["ps", "--format", "{{.Ports}}"]));
    assert!(ps.contains("0.0.0.0:8080->80/tcp"), "{ps}");
    let inspect = stdout(&rrun(&[
        "inspect",
        "-f",
        "{{.NetworkSettings.Ports}} {{.HostConfig.PortBindings}}",
        "web",
    ]));
    assert!(inspect.contains("8080"), "{inspect}");

    let got = netns::fetch(std::net::Ipv4Addr::LOCALHOST, chosen).expect("127.0.0.1:chosen");
    assert_eq!(got.trim(), "hi-from-81");
    // Bound to 127.0.0.1: not on the host's other addresses.
    assert!(
        outside.fetch(HOST_ADDR_OUTSIDE, chosen).is_err(),
        "a port published on 127.0.0.1 answered on another address"
    );
    // Nor for a neighbour that routes 127.0.0.1 to the host (the
    // outside namespace is the test's: its loopback may go).
    outside.sh("ip route del local 127.0.0.0/8 dev lo table local; \
         ip route del local 127.0.0.1 dev lo table local; \
         echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet; \
         echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet; \
         ip route add 127.0.0.1/32 via 192.0.2.254 dev eth0");
    let segments = snmp("web", "Tcp:", "InSegs");
    let sneaked = outside.fetch(std::net::Ipv4Addr::LOCALHOST, chosen);
    assert_eq!(
        snmp("web", "Tcp:", "InSegs"),
        segments,
        "a neighbour's packets for 127.0.0.1 reached the container ({sneaked:?})"
    );
    let elements = published_elements();
    assert!(elements.contains("tcp . 8080 : 10.87."), "{elements}");
    assert!(elements.contains("udp . 9090 : 10.87."), "{elements}");
    assert!(
        elements.contains(&format!("127.0.0.1 . tcp . {chosen}")),
        "{elements}"
    );

    // A host port is one container's.
    let o = sh(&["-p", "8080:80"], "true");
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("already published by container"),
        "{}",
        stderr(&o)
    );

    // A port a host service listens on is not taken over.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let o = sh(&["-p", &format!("{busy_port}:80")], "true");
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains(&format!("0.0.0.0:{busy_port}/tcp")),
        "{}",
        stderr(&o)
    );
    drop(busy);
    assert_eq!(
        published_elements().matches(" : ").count(),
        3,
        "{}",
        published_elements()
    );

    // Removed with the container.
    let o = rrun(&["rm", "-f", "web"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    wait_for("the elements to go", || {
        published_elements().is_empty().then_some(String::new())
    });
    let e = outside.fetch(HOST_ADDR_OUTSIDE, 8080).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    let e = netns::fetch(std::net::Ipv4Addr::LOCALHOST, 8080).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");

    // A killed rrun's ports are reaped by the next container that joins.
    let mut victim = rrun_cmd(&["run", "--rm", "-p", "8081:80", "busybox", "sleep", "600"])
        .spawn()
        .unwrap();
    wait_for("the victim's element", || {
        published_elements()
            .contains("8081")
            .then_some(String::new())
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(victim.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    victim.wait().unwrap();
    let o = sh(&[], "true");
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        published_elements(),
        "",
        "a killed rrun's port was not reaped"
    );
}

#[test]
fn bad_publish_specs_are_refused() {
    for (args, says) in [
        (&["-p", "0"][..], "\"0\""),
        (&["-p", "70000:80"], "70000"),
        (&["-p", "1.2.3:80:80"], "1.2.3"),
        (&["-p", "80/sctp"], "sctp"),
        (&["-p", "8000-8001:80-82"], "differ in size"),
        (&["-p", "80", "--network", "none"], "needs --network bridge"),
        (&["-p", "80", "--network", "host"], "needs --network bridge"),
    ] {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["busybox", "true"]);
        let o = rrun(&a);
        assert_eq!(code(&o), 125, "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(says) && stderr(&o).contains("-p, --publish"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_restarted_container_keeps_its_published_port() {
    if !netns::own_netns("a_restarted_container_keeps_its_published_port") {
        return;
    }
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
    let outside = Outside::new();
    // Serves one connection, then exits 1: --restart always starts it
    // again, on a new attachment (and, in turn, a new address).
    let o = rrun(&[
        "run",
        "-d",
        "--restart",
        "always",
        "--name",
        "again",
        "-p",
        "8090:80",
        "busybox",
        "sh",
        "-c",
        "nc -l -p 80 -e echo served; exit 1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for round in 0..3 {
        let got = wait_for(&format!("round {round}"), || {
            outside
                .fetch(HOST_ADDR_OUTSIDE, 8090)
                .ok()
                .filter(|s| s.contains("served"))
        });
        assert_eq!(got.trim(), "served");
    }
    let restarts = stdout(&rrun(&["inspect", "-f", "{{.RestartCount}}", "again"]));
    assert!(
        restarts.trim().parse::<u32>().unwrap() >= 2,
        "restarts: {restarts}"
    );
    // Between runs the port is unpublished; while one runs, one element.
    wait_for("one element while it runs", || {
        let n = published_elements().matches(" : ").count();
        assert!(n <= 1, "{}", published_elements());
        (n == 1 && stdout(&rrun(&["port", "again", "80"])) == "0.0.0.0:8090\n")
            .then_some(String::new())
    });
    let o = rrun(&["rm", "-f", "again"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    wait_for("the element to go", || {
        published_elements().is_empty().then_some(String::new())
    });
}

/// A container's first process is cloned without exec and waits, sharing
/// its parent's open files, until the parent has put it on the network.
/// One cloned while another thread held the network's lock file kept
/// that flock alive after the thread let go, so the parent's attach
/// waited on the child and the child on the attach: builds with parallel
/// RUN steps hung (seen in CI). The clone now waits until no lock file is
/// open (`sys::NO_INHERIT`).
#[test]
fn a_container_cloned_while_the_network_is_locked_still_starts() {
    use engine::runtime::{ContainerSpec, NetworkMode, RootfsSpec, Runtime};
    use std::time::{Duration, Instant};
    if !netns::own_netns("a_container_cloned_while_the_network_is_locked_still_starts") {
        return;
    }
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
    let store = engine::Store::open(store_root()).unwrap();
    let lowers = fixtures::image_lowerdirs(&store, "busybox").unwrap();
    let dir = tempfile::tempdir_in(store_root()).unwrap();
    let (held_tx, held) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let ipam = runner::network::Network::default_bridge().ipam();
        let lock = ipam.lock().unwrap();
        held_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(lock);
    });
    held.recv().unwrap();
    let mut spec = ContainerSpec::new(
        &format!("inherit-{}", std::process::id()),
        RootfsSpec::under(dir.path(), lowers),
        vec!["true".into()],
    );
    spec.env = vec![format!("PATH={}", runner::DEFAULT_PATH)];
    spec.network = NetworkMode::Bridge;
    let (done_tx, done) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(runner::native::NativeRuntime::new().run(&spec));
    });
    holder.join().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Ok(r) = done.try_recv() {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "the container never started: its first process holds the network's lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.unwrap(), engine::runtime::ExitStatus::Exited(0));
}

/// Retry `f` for up to 10 s until it returns true.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

#[test]
fn container_network_mode_shares_the_other_containers_loopback() {
    if !netns::own_netns("container_network_mode_shares_the_other_containers_loopback") {
        return;
    }
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "svc",
        "busybox",
        "nc",
        "-ll",
        "-p",
        "6000",
        "-e",
        "echo",
        "from-svc-loopback",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut last = String::new();
    let joined = eventually(|| {
        let o = sh(
            &["--network", "container:svc"],
            "ip -4 -o addr show eth0; nc -w 2 127.0.0.1 6000 </dev/null",
        );
        last = format!("{}{}", stdout(&o), stderr(&o));
        last.contains("from-svc-loopback")
    });
    if !joined {
        let ps = rrun(&["ps", "-a"]);
        let logs = rrun(&["logs", "svc"]);
        panic!(
            "no way to svc's 127.0.0.1: {last}\n{}\n{}{}",
            stdout(&ps),
            stdout(&logs),
            stderr(&logs)
        );
    }
    assert!(last.contains("inet 10.87."), "not svc's eth0: {last}");
    // Docker's refusals: -p, and a target that does not run.
    let o = sh(&["--network", "container:svc", "-p", "80"], "true");
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("conflicting options"), "{}", stderr(&o));
    let o = sh(
        &["--network", "container:svc", "--hostname", "other"],
        "true",
    );
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("hostname"), "{}", stderr(&o));
    let o = rrun(&["rm", "-f", "svc"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["run", "--name", "stopped", "busybox", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = sh(&["--network", "container:stopped"], "true");
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("not running"), "{}", stderr(&o));
    let o = sh(&["--network", "container:nosuch"], "true");
    assert_eq!(code(&o), 125, "{}", stderr(&o));
}

#[test]
fn user_networks_resolve_names_and_are_isolated() {
    if !netns::own_netns("user_networks_resolve_names_and_are_isolated") {
        return;
    }
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
    let o = rrun(&["network", "create", "mynet"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["network", "create", "--subnet", "192.168.77.0/24", "other"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["network", "create", "--subnet", "10.88.0.0/16", "clash"]);
    assert_ne!(code(&o), 0, "an overlapping subnet was accepted");
    let o = sh(&["--network", "nosuch"], "true");
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("nosuch not found"), "{}", stderr(&o));
    let o = rrun(&["network", "ls"]);
    assert!(
        stdout(&o).contains("mynet") && stdout(&o).contains("other"),
        "{}",
        stdout(&o)
    );

    // A container started before db resolves db once db is there.
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "early",
        "--network",
        "mynet",
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "mynet",
        "--network-alias",
        "database",
        "busybox",
        "sh",
        "-c",
        "while true; do nc -l -p 5000 -e echo hi; done",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut last = String::new();
    let reached = eventually(|| {
        let o = rrun(&[
            "run",
            "--rm",
            "--network",
            "mynet",
            "busybox",
            "nc",
            "-w",
            "2",
            "db",
            "5000",
        ]);
        last = format!("{}{}", stdout(&o), stderr(&o));
        last.contains("hi")
    });
    assert!(reached, "db not reached by name: {last}");
    let o = rrun(&[
        "run",
        "--rm",
        "--network",
        "mynet",
        "busybox",
        "nc",
        "-w",
        "2",
        "database",
        "5000",
    ]);
    assert!(
        stdout(&o).contains("hi"),
        "alias: {} {}",
        stdout(&o),
        stderr(&o)
    );
    let o = rrun(&[
        "exec",
        "early",
        "sh",
        "-c",
        "cat /etc/hosts; nc -w 2 db 5000 </dev/null",
    ]);
    assert!(
        stdout(&o).contains("hi"),
        "early does not reach db: {} {}",
        stdout(&o),
        stderr(&o)
    );
    // Joining db's namespace shares its names too.
    let o = rrun(&[
        "run",
        "--rm",
        "--network",
        "container:db",
        "busybox",
        "sh",
        "-c",
        "grep -w early /etc/hosts; nc -w 2 127.0.0.1 5000 </dev/null",
    ]);
    let out = stdout(&o);
    assert!(
        out.contains("early") && out.contains("hi"),
        "container:db: {out} {}",
        stderr(&o)
    );
    let o = rrun(&["inspect", "db"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ip = v[0]["NetworkSettings"]["Networks"]["mynet"]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(ip.starts_with("10.88.0."), "{}", stdout(&o));
    let o = rrun(&["network", "inspect", "mynet"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["Name"], "mynet");
    assert_eq!(v[0]["Driver"], "bridge");
    assert_eq!(v[0]["IPAM"]["Config"][0]["Subnet"], "10.88.0.0/24");
    let db_addr = v[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .find(|c| c["Name"] == "db")
        .map(|c| {
            c["IPv4Address"]
                .as_str()
                .unwrap()
                .split('/')
                .next()
                .unwrap()
                .to_string()
        })
        .expect("db in Containers");
    assert_eq!(db_addr, ip);

    // Another network: no name, and no way by address either.
    let o = rrun(&["run", "--rm", "--network", "other", "busybox", "sh", "-c",
        &format!("grep -qw db /etc/hosts && echo resolved; nc -w 2 {db_addr} 5000 </dev/null; echo nc=$?")]);
    let out = stdout(&o);
    assert!(
        !out.contains("resolved"),
        "db resolved from another network: {out}"
    );
    assert!(
        !out.contains("hi"),
        "db reached from another network: {out}"
    );
    assert!(out.contains("nc=1"), "{out} {}", stderr(&o));
    // Nor from the default bridge, which has no names.
    let o = sh(
        &[],
        &format!("nc -w 2 {db_addr} 5000 </dev/null; echo nc=$?"),
    );
    assert!(
        !stdout(&o).contains("hi"),
        "db reached from the default bridge: {}",
        stdout(&o)
    );

    // -p works on a user-defined network too.
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "pub",
        "--network",
        "other",
        "-p",
        "127.0.0.1:8099:80",
        "busybox",
        "nc",
        "-ll",
        "-p",
        "80",
        "-e",
        "echo",
        "published",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let published = eventually(|| {
        use std::io::Read;
        let mut got = String::new();
        std::net::TcpStream::connect("127.0.0.1:8099")
            .and_then(|mut c| {
                c.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
                c.read_to_string(&mut got)
            })
            .is_ok()
            && got.contains("published")
    });
    assert!(published, "-p on a user-defined network does not answer");
    let o = rrun(&["rm", "-f", "pub"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // prune takes the unused ones only.
    let o = rrun(&["network", "create", "spare"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["network", "prune", "-f"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let pruned = stdout(&o);
    assert!(
        pruned.contains("spare") && pruned.contains("other"),
        "{pruned}"
    );
    assert!(!pruned.contains("mynet"), "{pruned}");
    let o = rrun(&["network", "create", "--subnet", "192.168.77.0/24", "other"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // In use: rm refused; once the containers are gone, removed.
    let o = rrun(&["network", "rm", "mynet"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("active endpoints"), "{}", stderr(&o));
    // A hostname cannot smuggle lines into the others' /etc/hosts.
    let o = rrun(&[
        "run",
        "--rm",
        "--network",
        "mynet",
        "--hostname",
        "x\n10.88.0.99 db",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    // Renamed: the others know it by its new name only.
    let o = rrun(&["rename", "db", "store"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["exec", "early", "cat", "/etc/hosts"]);
    let hosts = stdout(&o);
    assert!(
        hosts.contains("store database") && !hosts.contains("\tdb"),
        "{hosts}"
    );
    // db gone: early's hosts forgets it.
    let o = rrun(&["rm", "-f", "store"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let forgot = eventually(|| {
        let o = rrun(&["exec", "early", "cat", "/etc/hosts"]);
        !stdout(&o).contains("store")
    });
    assert!(forgot, "db stayed in early's /etc/hosts");
    let o = rrun(&["rm", "-f", "early"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["network", "rm", "mynet", "other"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["network", "ls", "-q"]);
    assert_eq!(stdout(&o).lines().count(), 3, "{}", stdout(&o));
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
    assert!(
        !dev.contains("rbox-"),
        "a bridge outlived its network: {dev}"
    );
}

/// Whether a socket of this network namespace listens on TCP `port`.
fn listening_on(port: u16) -> bool {
    let tcp = std::fs::read_to_string("/proc/self/net/tcp").unwrap();
    tcp.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(3) == Some(&"0A") && f[1].ends_with(&format!(":{port:04X}"))
    })
}

/// The interfaces of this network namespace with route_localnet on.
fn route_localnet_on() -> Vec<String> {
    let mut on: Vec<String> = std::fs::read_dir("/proc/sys/net/ipv4/conf")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join("route_localnet")).is_ok_and(|v| v.trim() == "1")
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on.sort();
    on
}

#[test]
fn ports_at_127_0_0_1_go_through_the_kernel_and_never_open_host_loopback() {
    if !netns::own_netns("ports_at_127_0_0_1_go_through_the_kernel_and_never_open_host_loopback") {
        return;
    }
    let _cleanup = Cleanup;
    let secret = netns::serve_on_loopback(SECRET);
    // Port 53 of the test's namespace: what busybox's nslookup sends to.
    let udp_sink = std::net::UdpSocket::bind("0.0.0.0:53").unwrap();
    udp_sink
        .set_read_timeout(Some(std::time::Duration::from_secs(1)))
        .unwrap();
    let server = "nc -ll -p 80 -e echo hi-lo & nc -ll -p 82 -e echo hi-82 & wait";
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "lo-web",
        "-p",
        "127.0.0.1::80",
        "-p",
        "8082:82",
        "-p",
        "127.0.0.1:9191:91/udp",
        "busybox",
        "sh",
        "-c",
        server,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["port", "lo-web", "80/tcp"]);
    let chosen: u16 = stdout(&o)
        .trim()
        .strip_prefix("127.0.0.1:")
        .unwrap_or_else(|| panic!("{}{}", stdout(&o), stderr(&o)))
        .parse()
        .unwrap();

    // route_localnet is on for rbox's bridge, and nowhere else.
    assert_eq!(route_localnet_on(), vec!["rbox0".to_string()]);

    // At 127.0.0.1: answered by the container, with nobody of the host
    // listening on the port (no userspace relay: DNAT in output).
    let got = wait_for("127.0.0.1:chosen", || {
        netns::fetch(std::net::Ipv4Addr::LOCALHOST, chosen)
            .ok()
            .filter(|s| s.contains("hi-lo"))
    });
    assert_eq!(got.trim(), "hi-lo");
    assert!(
        !listening_on(chosen),
        "something of the host listens on {chosen}"
    );
    // A port published on every address answers at 127.0.0.1 too.
    let got = netns::fetch(std::net::Ipv4Addr::LOCALHOST, 8082).expect("127.0.0.1:8082");
    assert_eq!(got.trim(), "hi-82");
    assert!(!listening_on(8082));
    // The host port is held: a host service cannot take it over.
    assert!(std::net::TcpListener::bind(("127.0.0.1", chosen)).is_err());
    assert!(std::net::TcpListener::bind(("0.0.0.0", 8082)).is_err());

    // UDP at 127.0.0.1 reaches the container (counted as a datagram to a
    // closed port in its namespace: busybox has no UDP server).
    let before = snmp("lo-web", "Udp:", "NoPorts");
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    wait_for(
        "the datagram at 127.0.0.1:9191 to reach the container",
        || {
            sock.send_to(b"ping", ("127.0.0.1", 9191)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(100));
            (snmp("lo-web", "Udp:", "NoPorts") > before).then_some(String::new())
        },
    );

    // With route_localnet on the bridge, containers still never reach the
    // host's loopback: not plainly, not routing 127.0.0.1 to the bridge
    // with CAP_NET_ADMIN in their namespace, not with a 127.0.0.1 source.
    let o = sh(
        &[],
        &format!("nc -w 2 127.0.0.1 {secret} </dev/null; echo loopback=$?"),
    );
    assert!(!stdout(&o).contains(SECRET), "{}", stdout(&o));
    assert!(stdout(&o).contains("loopback=1"), "{}", stdout(&o));
    let o = sh(
        &["--privileged"],
        &format!(
            "ip route del local 127.0.0.0/8 dev lo table local; \
             ip route del local 127.0.0.1 dev lo table local; \
             echo 1 > /proc/sys/net/ipv4/conf/all/route_localnet; \
             echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet; \
             ip route add 127.0.0.1/32 via 10.87.0.1 dev eth0 onlink; \
             nc -w 2 127.0.0.1 {secret} </dev/null; echo routed=$?; \
             nc -w 2 127.0.0.1 {chosen} </dev/null; echo published=$?; \
             ip addr add 127.0.0.9/32 dev eth0; \
             timeout 1 nslookup honest.test 10.87.0.1; \
             ip route add 10.87.0.1/32 dev eth0 src 127.0.0.9; \
             timeout 1 nslookup spoofed.test 10.87.0.1"
        ),
    );
    let out = stdout(&o);
    assert!(
        !out.contains(SECRET),
        "the host's loopback service answered: {out}"
    );
    assert!(
        !out.contains("hi-lo"),
        "a container reached a port published on the host's 127.0.0.1: {out}"
    );
    assert!(out.contains("routed=1"), "{out}{}", stderr(&o));
    // A datagram from 127.0.0.9 (which a host service would take for a
    // local one) is dropped; the same from the container's address comes.
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while let Ok((n, from)) = udp_sink.recv_from(&mut buf) {
        let query = String::from_utf8_lossy(&buf[..n]).into_owned();
        let name = ["honest", "spoofed"]
            .into_iter()
            .find(|w| query.contains(w));
        got.push(format!("{} from {}", name.unwrap_or("?"), from.ip()));
    }
    assert!(
        got.iter().any(|g| g.starts_with("honest from 10.87.")),
        "{got:?} {out} {}",
        stderr(&o)
    );
    assert!(!got.iter().any(|g| g.starts_with("spoofed")), "{got:?}");
    // The host's own connection still works after all that.
    assert_eq!(
        netns::fetch(std::net::Ipv4Addr::LOCALHOST, chosen)
            .unwrap()
            .trim(),
        "hi-lo"
    );

    // A user network: route_localnet on its bridge too, gone with it.
    ok_run(&["network", "create", "lonet"]);
    ok_run(&[
        "run",
        "-d",
        "--name",
        "lo-user",
        "--network",
        "lonet",
        "-p",
        "127.0.0.1:8183:80",
        "busybox",
        "nc",
        "-ll",
        "-p",
        "80",
        "-e",
        "echo",
        "hi-user",
    ]);
    let got = wait_for("127.0.0.1:8183", || {
        netns::fetch(std::net::Ipv4Addr::LOCALHOST, 8183)
            .ok()
            .filter(|s| s.contains("hi-user"))
    });
    assert_eq!(got.trim(), "hi-user");
    let on = route_localnet_on();
    assert_eq!(on.len(), 2, "{on:?}");
    assert!(
        on.iter().all(|i| i == "rbox0" || i.starts_with("rbox-")),
        "{on:?}"
    );
    ok_run(&["rm", "-f", "lo-user", "lo-web"]);
    ok_run(&["network", "rm", "lonet"]);
    assert_eq!(route_localnet_on(), vec!["rbox0".to_string()]);
    let e = netns::fetch(std::net::Ipv4Addr::LOCALHOST, chosen).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
}

fn ok_run(args: &[&str]) -> String {
    let o = rrun(args);
    assert_eq!(code(&o), 0, "rrun {args:?}: {}{}", stdout(&o), stderr(&o));
    stdout(&o)
}

#[test]
fn a_failed_test_leaves_no_container_supervisor_or_resolver() {
    if !netns::own_netns("a_failed_test_leaves_no_container_supervisor_or_resolver") {
        return;
    }
    ok_run(&["network", "create", "leaky"]);
    ok_run(&[
        "run",
        "-d",
        "--name",
        "leaky-c",
        "--network",
        "leaky",
        "busybox",
        "sleep",
        "600",
    ]);
    let v: serde_json::Value =
        serde_json::from_str(&ok_run(&["network", "inspect", "leaky"])).unwrap();
    let bridge = v[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let store = store_root().to_string_lossy().into_owned();
    assert!(!bridge.is_empty());
    // rrun processes naming the test's store or the bridge: the
    // container's supervisor and the network's resolver.
    let ours = move || -> Vec<String> {
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
            .filter(|c| c.contains("rrun") && (c.contains(&store) || c.contains(&bridge)))
            .collect()
    };
    assert!(!ours().is_empty(), "no supervisor or resolver to look for");
    let pid = ok_run(&["inspect", "-f", "{{.State.Pid}}", "leaky-c"]);
    let pid: i32 = pid.trim().parse().unwrap();
    let alive = |p: i32| std::path::Path::new(&format!("/proc/{p}")).exists();
    assert!(alive(pid));
    // A test body that fails half-way, with the guard.
    let failed = std::panic::catch_unwind(|| {
        let _cleanup = Cleanup;
        panic!("a failed assertion");
    });
    assert!(failed.is_err());
    assert_eq!(
        ok_run(&["ps", "-a", "-q"]),
        "",
        "a container outlived the test"
    );
    assert!(!alive(pid), "the container's process outlived the test");
    let nets = ok_run(&["network", "ls"]);
    assert!(!nets.contains("leaky"), "{nets}");
    // Its resolver went with the bridge, and no supervisor is left.
    assert!(
        eventually(|| ours().is_empty()),
        "outlived the test: {:?}",
        ours()
    );
}

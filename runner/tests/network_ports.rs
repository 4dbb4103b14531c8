//! Port ranges (`-p 8000-8002:80-82`), `-P` and `rrun network connect`/
//! `disconnect`, for real, as root. Each test re-runs itself in a network
//! namespace of its own (fixtures::netns), standing for the host: all
//! bridges, nftables tables and leases are made there.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::*;
use fixtures::netns::{self, Outside, HOST_ADDR_OUTSIDE};

fn wait_for(what: &str, mut f: impl FnMut() -> Option<String>) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The elements of a network's published-port maps (nft's listing).
fn published_elements(bridge: &str) -> String {
    let mut all = String::new();
    for map in ["ports", "ports_ip"] {
        let o = std::process::Command::new("nft")
            .args(["list", "map", "ip", &format!("rbox-{bridge}"), map])
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

/// `rrun port NAME` as lines.
fn port_lines(name: &str) -> Vec<String> {
    let o = rrun(&["port", name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o).lines().map(String::from).collect()
}

/// The host port of `private` (`80/tcp`) in `rrun port` lines.
fn host_port_of(lines: &[String], private: &str) -> u16 {
    let l = lines
        .iter()
        .find(|l| l.starts_with(&format!("{private} -> ")))
        .unwrap_or_else(|| panic!("{private} is not published: {lines:?}"));
    l.rsplit(':').next().unwrap().parse().unwrap()
}

/// The kernel's ephemeral port range, where -P's ports come from.
fn ephemeral_range() -> (u16, u16) {
    let s = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let v: Vec<u16> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
    (v[0], v[1])
}

#[test]
fn port_ranges_publish_each_port() {
    if !netns::own_netns("port_ranges_publish_each_port") {
        return;
    }
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
    let outside = Outside::new();
    let server = "for p in 80 81 82 90; do nc -ll -p $p -e echo hi-from-$p & done; wait";
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "rng",
        "-p",
        "8000-8002:80-82",
        "-p",
        "8100-8110:90",
        "-p",
        "127.0.0.1:9000-9001:9000-9001/udp",
        "-p",
        "9100-9101:9100-9101/udp",
        "busybox",
        "sh",
        "-c",
        server,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    for (host, container) in [(8000, 80), (8001, 81), (8002, 82)] {
        let want = format!("hi-from-{container}");
        let got = wait_for(&format!("{host} -> {container} from outside"), || {
            outside
                .fetch(HOST_ADDR_OUTSIDE, host)
                .ok()
                .filter(|s| s.contains(&want))
        });
        assert_eq!(got.trim(), want);
        let got = netns::fetch(Ipv4Addr::LOCALHOST, host).expect("127.0.0.1");
        assert_eq!(got.trim(), want);
    }
    let lines = port_lines("rng");
    assert_eq!(
        lines[..3],
        [
            "80/tcp -> 0.0.0.0:8000",
            "81/tcp -> 0.0.0.0:8001",
            "82/tcp -> 0.0.0.0:8002"
        ],
        "{lines:?}"
    );
    // One host port of 8100-8110 for 90/tcp.
    let p90 = host_port_of(&lines, "90/tcp");
    assert!((8100..=8110).contains(&p90), "{lines:?}");
    let got = netns::fetch(Ipv4Addr::LOCALHOST, p90).expect("the ranged port");
    assert_eq!(got.trim(), "hi-from-90");
    assert!(
        lines.contains(&"9000/udp -> 127.0.0.1:9000".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"9001/udp -> 127.0.0.1:9001".to_string()),
        "{lines:?}"
    );
    assert_eq!(lines.len(), 8, "{lines:?}");
    // UDP: busybox has no UDP server, but the container's namespace
    // counts datagrams to closed ports. From outside to 9100-9101; the
    // ones on 127.0.0.1 are elements of the map (rrun relays TCP only).
    for port in [9100, 9101] {
        let before = snmp("rng", "Udp:", "NoPorts");
        outside.within(move || {
            let sock = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            sock.send_to(b"ping", (HOST_ADDR_OUTSIDE, port)).unwrap();
        });
        wait_for(
            &format!("the datagram to {port} to reach the container"),
            || (snmp("rng", "Udp:", "NoPorts") > before).then_some(String::new()),
        );
    }
    let elements = published_elements("rbox0");
    for want in [
        "127.0.0.1 . udp . 9000 : 10.87.",
        "127.0.0.1 . udp . 9001 : 10.87.",
        "tcp . 8002 : 10.87.",
    ] {
        assert!(elements.contains(want), "{want} not in {elements}");
    }
    let ps = stdout(&rrun(&["ps", "--format", "{{.Ports}}"]));
    for want in [
        "0.0.0.0:8000->80/tcp",
        "0.0.0.0:8002->82/tcp",
        &format!("0.0.0.0:{p90}->90/tcp"),
        "127.0.0.1:9001->9001/udp",
    ] {
        assert!(ps.contains(want), "{want} not in {ps}");
    }
    let inspect = stdout(&rrun(&[
        "inspect",
        "-f",
        "{{json .NetworkSettings.Ports}}",
        "rng",
    ]));
    assert!(
        inspect.contains(r#""81/tcp":[{"HostIp":"0.0.0.0","HostPort":"8001"}]"#),
        "{inspect}"
    );
    assert!(
        inspect.contains(r#""9000/udp":[{"HostIp":"127.0.0.1","HostPort":"9000"}]"#),
        "{inspect}"
    );

    // A second container's range runs into the first's.
    let o = sh(&["-p", "7999-8000:79-80"], "true");
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("already published by container"),
        "{}",
        stderr(&o)
    );

    assert_eq!(
        published_elements("rbox0").matches(" : ").count(),
        8,
        "{}",
        published_elements("rbox0")
    );
    ok_rm("rng");
    wait_for("the elements to go", || {
        published_elements("rbox0")
            .is_empty()
            .then_some(String::new())
    });
    let e = outside.fetch(HOST_ADDR_OUTSIDE, 8001).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
}

fn ok_rm(name: &str) {
    let o = rrun(&["rm", "-f", name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn mismatched_ranges_are_refused_by_name() {
    for (spec, says) in [
        ("8000-8001:80-82", "host port range 8000-8001 (2 ports) and container port range 80-82 (3 ports) differ in size"),
        ("8000:80-81", "container port range 80-81"),
        ("9-8:80", "the end is below the start"),
    ] {
        let o = sh(&["-p", spec], "true");
        assert_eq!(code(&o), 125, "{spec}");
        let e = stderr(&o);
        assert!(e.contains(says) && e.contains("-p, --publish") && e.contains(spec), "{spec}: {e}");
    }
    let o = sh(&["--expose", "80/sctp", "-P"], "true");
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("--expose") && stderr(&o).contains("sctp"),
        "{}",
        stderr(&o)
    );
    for net in ["none", "host"] {
        let o = sh(&["-P", "--network", net], "true");
        assert_eq!(code(&o), 125);
        assert!(
            stderr(&o).contains("-P, --publish-all")
                && stderr(&o).contains("needs --network bridge"),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn publish_all_publishes_exposed_ports_on_ephemeral_ports() {
    if !netns::own_netns("publish_all_publishes_exposed_ports_on_ephemeral_ports") {
        return;
    }
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
    let outside = Outside::new();
    // An image that EXPOSEs 80 and 81/udp.
    let o = rrun(&["create", "--name", "exposer", "busybox", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&[
        "commit",
        "-c",
        "EXPOSE 80",
        "-c",
        "EXPOSE 81/udp",
        "exposer",
        "exposing:1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    ok_rm("exposer");

    let server = "nc -ll -p 80 -e echo hi-from-80 & nc -ll -p 82 -e echo hi-from-82 & \
                  nc -ll -p 83 -e echo hi-from-83 & wait";
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "all",
        "-P",
        "--expose",
        "82",
        "--expose",
        "83/tcp",
        "-p",
        "127.0.0.1::83",
        "exposing:1",
        "sh",
        "-c",
        server,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines = port_lines("all");
    assert_eq!(lines.len(), 4, "{lines:?}");
    let (lo, hi) = ephemeral_range();
    for (private, want) in [("80/tcp", "hi-from-80"), ("82/tcp", "hi-from-82")] {
        let p = host_port_of(&lines, private);
        assert!(
            (lo..=hi).contains(&p),
            "{private} on {p}, not in {lo}-{hi}: {lines:?}"
        );
        let got = wait_for(&format!("{private} from outside"), || {
            outside
                .fetch(HOST_ADDR_OUTSIDE, p)
                .ok()
                .filter(|s| s.contains(want))
        });
        assert_eq!(got.trim(), want);
        let got = netns::fetch(HOST_ADDR_OUTSIDE, p).expect("from the host to its address");
        assert_eq!(got.trim(), want);
        let got = netns::fetch(Ipv4Addr::LOCALHOST, p).expect("from the host to 127.0.0.1");
        assert_eq!(got.trim(), want);
    }
    // 81/udp too; 83 only as -p gave it (on 127.0.0.1), not twice.
    let p81 = host_port_of(&lines, "81/udp");
    assert!((lo..=hi).contains(&p81), "{lines:?}");
    let p83 = host_port_of(&lines, "83/tcp");
    assert!(
        lines
            .iter()
            .any(|l| l == &format!("83/tcp -> 127.0.0.1:{p83}")),
        "{lines:?}"
    );
    let got = netns::fetch(Ipv4Addr::LOCALHOST, p83).expect("83 on 127.0.0.1");
    assert_eq!(got.trim(), "hi-from-83");
    assert!(
        outside.fetch(HOST_ADDR_OUTSIDE, p83).is_err(),
        "83 answered beyond 127.0.0.1"
    );

    let h = &inspect(&["inspect", "all"])[0]["HostConfig"];
    assert_eq!(h["PublishAllPorts"], true, "{h}");
    // Without -P, EXPOSE publishes nothing.
    let o = rrun(&["run", "-d", "--name", "quiet", "exposing:1", "sleep", "60"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(port_lines("quiet"), Vec::<String>::new());
    ok_rm("quiet");
    ok_rm("all");
    wait_for("the elements to go", || {
        published_elements("rbox0")
            .is_empty()
            .then_some(String::new())
    });
}

fn ok(o: &std::process::Output) -> String {
    assert_eq!(code(o), 0, "{}{}", stdout(o), stderr(o));
    stdout(o)
}

fn inspect(what: &[&str]) -> serde_json::Value {
    let o = rrun(what);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("{}{}", stdout(&o), stderr(&o)))
}

/// A network's bridge device.
fn bridge_of(name: &str) -> String {
    inspect(&["network", "inspect", name])[0]["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The leases of a network (files named by address in its state dir).
fn leases_of(bridge: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(format!("/run/rbox/networks/{bridge}"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.parse::<Ipv4Addr>().is_ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// rbox's host-side veths in this network namespace.
fn host_veths() -> usize {
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap();
    dev.lines()
        .filter(|l| l.trim_start().starts_with("rbx"))
        .count()
}

/// `sh -c script` in a running container.
fn exec_sh(container: &str, script: &str) -> String {
    let o = rrun(&["exec", container, "sh", "-c", script]);
    stdout(&o) + &stderr(&o)
}

#[test]
fn connect_and_disconnect_a_running_container() {
    if !netns::own_netns("connect_and_disconnect_a_running_container") {
        return;
    }
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
    ok(&rrun(&[
        "network",
        "create",
        "--subnet",
        "10.91.0.0/24",
        "front",
    ]));
    ok(&rrun(&[
        "network",
        "create",
        "--subnet",
        "10.92.0.0/24",
        "back",
    ]));
    let back = bridge_of("back");
    // srv on front; client and a bystander on back, other on front only.
    let serve = "nc -ll -p 80 -e echo hi-from-srv";
    ok(&rrun(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "front",
        "busybox",
        "sh",
        "-c",
        serve,
    ]));
    ok(&rrun(&[
        "run",
        "-d",
        "--name",
        "other",
        "--network",
        "front",
        "busybox",
        "sh",
        "-c",
        "nc -ll -p 80 -e echo hi-from-other",
    ]));
    ok(&rrun(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "back",
        "busybox",
        "sleep",
        "600",
    ]));
    let other_ip = inspect(&["inspect", "other"])[0]["NetworkSettings"]["Networks"]["front"]
        ["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(other_ip.starts_with("10.91.0."), "{other_ip}");
    // Before: client does not know srv.
    let out = exec_sh("client", "nc -w 2 srv 80 </dev/null; echo rc=$?");
    assert!(!out.contains("hi-from-srv"), "{out}");
    let veths_before = host_veths();

    ok(&rrun(&[
        "network",
        "connect",
        "--alias",
        "web",
        "--ip",
        "10.92.0.50",
        "back",
        "srv",
    ]));
    let out = exec_sh("srv", "ip -4 -o addr show eth1; ip route");
    assert!(out.contains("inet 10.92.0.50/24"), "{out}");
    assert!(
        out.contains("default via 10.91.0.1 dev eth0"),
        "the default route moved: {out}"
    );
    assert_eq!(host_veths(), veths_before + 1);
    assert!(
        leases_of(&back).contains(&"10.92.0.50".to_string()),
        "{:?}",
        leases_of(&back)
    );
    let nets = &inspect(&["inspect", "srv"])[0]["NetworkSettings"]["Networks"];
    assert_eq!(nets["back"]["IPAddress"], "10.92.0.50", "{nets}");
    assert_eq!(
        nets["back"]["Aliases"],
        serde_json::json!(["web"]),
        "{nets}"
    );
    assert!(
        nets["front"]["IPAddress"]
            .as_str()
            .unwrap()
            .starts_with("10.91.0."),
        "{nets}"
    );
    let members = inspect(&["network", "inspect", "back"])[0]["Containers"].to_string();
    assert!(members.contains("10.92.0.50/24"), "{members}");

    // Client reaches it by name, alias and address; through /etc/hosts
    // and through the network's resolver.
    for target in ["srv", "web", "10.92.0.50"] {
        let out = exec_sh("client", &format!("nc -w 3 {target} 80 </dev/null"));
        assert_eq!(out.trim(), "hi-from-srv", "{target}: {out}");
    }
    let hosts = exec_sh("client", "cat /etc/hosts");
    assert!(hosts.contains("10.92.0.50\tsrv web"), "{hosts}");
    let out = exec_sh("client", "nslookup web");
    assert!(
        out.contains("10.92.0.50"),
        "the resolver does not know web: {out}"
    );
    // And srv, through its own network's resolver, finds back's members
    // (as Docker's resolver answers for each network of the container);
    // other, on front only, does not.
    let client_ip = inspect(&["inspect", "client"])[0]["NetworkSettings"]["Networks"]["back"]
        ["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    let out = exec_sh("srv", "nslookup client");
    assert!(
        out.contains(&client_ip),
        "srv does not resolve client: {out}"
    );
    let out = exec_sh("other", "timeout 8 nslookup client");
    assert!(
        !out.contains(&client_ip),
        "other resolved a container of back: {out}"
    );
    // Renamed: known by its new name on back too.
    ok(&rrun(&["rename", "srv", "srv2"]));
    let hosts = exec_sh("client", "cat /etc/hosts");
    assert!(hosts.contains("10.92.0.50\tsrv2 web"), "{hosts}");
    ok(&rrun(&["rename", "srv2", "srv"]));
    // Connect gives client no way to front's other containers.
    let out = exec_sh(
        "client",
        &format!("nc -w 2 {other_ip} 80 </dev/null; echo rc=$?"),
    );
    assert!(
        !out.contains("hi-from-other"),
        "client reached front through srv: {out}"
    );

    // Refusals, by name.
    for (args, says) in [
        (
            &["network", "connect", "back", "srv"][..],
            "container srv is already on network back",
        ),
        (
            &["network", "connect", "front", "srv"],
            "container srv is already on network front",
        ),
        (
            &["network", "connect", "--ip", "10.92.0.50", "back", "client"],
            "already on network back",
        ),
        (
            &["network", "connect", "--ip", "10.91.0.200", "back", "other"],
            "10.91.0.200 is not one for a container in 10.92.0.0/24",
        ),
        (&["network", "connect", "nosuch", "srv"], "nosuch not found"),
        (
            &["network", "disconnect", "front", "srv"],
            "only networks joined with rrun network connect",
        ),
        (
            &["network", "disconnect", "back", "other"],
            "container other is not connected to network back",
        ),
    ] {
        let o = rrun(args);
        assert_ne!(code(&o), 0, "{args:?}");
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    ok(&rrun(&[
        "run",
        "-d",
        "--name",
        "hostly",
        "--network",
        "host",
        "busybox",
        "sleep",
        "600",
    ]));
    let o = rrun(&["network", "connect", "back", "hostly"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("container hostly runs with --network host"),
        "{}",
        stderr(&o)
    );
    ok(&rrun(&["rm", "-f", "hostly"]));

    // Disconnect: the interface, the name and the lease go.
    ok(&rrun(&["network", "disconnect", "back", "srv"]));
    let out = exec_sh("srv", "cat /proc/net/dev");
    assert!(!out.contains("eth1"), "{out}");
    assert_eq!(host_veths(), veths_before, "the host's end of eth1 is left");
    assert!(out.contains("eth0"), "{out}");
    assert!(
        !leases_of(&back).contains(&"10.92.0.50".to_string()),
        "{:?}",
        leases_of(&back)
    );
    let hosts = exec_sh("client", "cat /etc/hosts");
    assert!(!hosts.contains("srv"), "{hosts}");
    let out = exec_sh("client", "nc -w 2 10.92.0.50 80 </dev/null; echo rc=$?");
    assert!(!out.contains("hi-from-srv"), "{out}");
    let nets = &inspect(&["inspect", "srv"])[0]["NetworkSettings"]["Networks"];
    assert!(nets.get("back").is_none(), "{nets}");
    let o = rrun(&["network", "disconnect", "back", "srv"]);
    assert!(
        stderr(&o).contains("not connected to network back"),
        "{}",
        stderr(&o)
    );

    // The default bridge too (no names there).
    ok(&rrun(&["network", "connect", "bridge", "client"]));
    let out = exec_sh("client", "ip -4 -o addr show eth1");
    assert!(out.contains("inet 10.87."), "{out}");
    let o = rrun(&["network", "connect", "--alias", "x", "bridge", "other"]);
    assert!(
        stderr(&o).contains("only on user-defined networks"),
        "{}",
        stderr(&o)
    );
    ok(&rrun(&["network", "disconnect", "bridge", "client"]));
    assert!(!exec_sh("client", "cat /proc/net/dev").contains("eth1"));

    // A container that renames its end still leaves the network: rrun
    // deletes the host's end.
    ok(&rrun(&[
        "run",
        "--privileged",
        "-d",
        "--name",
        "sly",
        "--network",
        "front",
        "busybox",
        "sleep",
        "600",
    ]));
    let before = host_veths();
    ok(&rrun(&["network", "connect", "back", "sly"]));
    let out = exec_sh("sly", "ip link set eth1 down && ip link set eth1 name sneaky && ip link set sneaky up && echo renamed");
    assert!(out.contains("renamed"), "{out}");
    ok(&rrun(&["network", "disconnect", "back", "sly"]));
    let out = exec_sh("sly", "cat /proc/net/dev");
    assert!(
        !out.contains("sneaky"),
        "the renamed interface stayed on back: {out}"
    );
    assert_eq!(host_veths(), before);
    ok(&rrun(&["rm", "-f", "sly"]));

    // Connected again, then removed: its exit gives everything back.
    ok(&rrun(&["network", "connect", "back", "srv"]));
    assert_eq!(leases_of(&back).len(), 2, "{:?}", leases_of(&back));
    let o = rrun(&["network", "rm", "back"]);
    assert!(
        stderr(&o).contains("srv"),
        "a network in use by a connected container was removed: {}",
        stderr(&o)
    );
    for c in ["srv", "other", "client"] {
        ok(&rrun(&["rm", "-f", c]));
    }
    wait_for("the leases of back to go", || {
        leases_of(&back).is_empty().then_some(String::new())
    });
    wait_for("the veths to go", || {
        (host_veths() == 0).then_some(String::new())
    });
    assert_eq!(leases_of("bridge"), Vec::<String>::new());
    let members = std::fs::read_dir(format!("/run/rbox/networks/{back}/members"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    assert_eq!(members, 0, "member records left on back");
    ok(&rrun(&["network", "rm", "front", "back"]));
}

/// `rrun network connect` of a container that does not run (created, or
/// exited) is kept, as Docker keeps it: the container is on the network
/// from its start (eth1 before its command runs), by name there, and
/// again after a restart; a disconnect before the start undoes it.
#[test]
fn connect_a_stopped_container_applies_at_its_start() {
    if !netns::own_netns("connect_a_stopped_container_applies_at_its_start") {
        return;
    }
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
    ok(&rrun(&[
        "network",
        "create",
        "--subnet",
        "10.93.0.0/24",
        "home",
    ]));
    ok(&rrun(&[
        "network",
        "create",
        "--subnet",
        "10.94.0.0/24",
        "later",
    ]));
    ok(&rrun(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "later",
        "busybox",
        "sleep",
        "600",
    ]));
    let peer_ip = inspect(&["inspect", "peer"])[0]["NetworkSettings"]["Networks"]["later"]
        ["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    // Its command sees eth1 at once: it records its addresses first.
    ok(&rrun(&[
        "create",
        "--name",
        "late",
        "--network",
        "home",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show >/tmp/at-start; exec sleep 600",
    ]));
    ok(&rrun(&[
        "network", "connect", "--alias", "lately", "later", "late",
    ]));
    // Twice is refused, as for a running container.
    let o = rrun(&["network", "connect", "later", "late"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("already on network later"),
        "{}",
        stderr(&o)
    );
    // Nothing is made before the start.
    assert!(
        leases_of(&bridge_of("later")).len() == 1,
        "{:?}",
        leases_of(&bridge_of("later"))
    );

    ok(&rrun(&["start", "late"]));
    let at_start = exec_sh("late", "cat /tmp/at-start");
    assert!(
        at_start.contains("eth1") && at_start.contains("inet 10.94.0."),
        "eth1 was not there when the command started: {at_start}"
    );
    let late_ip = inspect(&["inspect", "late"])[0]["NetworkSettings"]["Networks"]["later"]
        ["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(late_ip.starts_with("10.94.0."), "not on later: {late_ip:?}");
    let out = exec_sh("late", "ip -4 -o addr show eth1; ip route");
    assert!(out.contains(&format!("inet {late_ip}/24")), "{out}");
    assert!(out.contains("default via 10.93.0.1 dev eth0"), "{out}");
    // By name, both ways: late asks home's resolver, which answers for
    // later's members too; peer asks later's.
    let out = exec_sh("late", "nslookup peer");
    assert!(out.contains(&format!("Address: {peer_ip}")), "{out}");
    let out = exec_sh("late", "ping -c 1 -W 2 peer");
    assert!(out.contains("1 packets received"), "{out}");
    for name in ["late", "lately"] {
        let out = exec_sh("peer", &format!("nslookup {name}"));
        assert!(
            out.contains(&format!("Address: {late_ip}")),
            "{name}: {out}"
        );
    }

    // Restarted: on later again.
    ok(&rrun(&["restart", "-t", "1", "late"]));
    let out = wait_for("late back on later", || {
        let out = exec_sh("late", "ip -4 -o addr show eth1");
        out.contains("inet 10.94.0.").then_some(out)
    });
    assert!(out.contains("eth1"), "{out}");

    // Connected while created, disconnected before the start: no eth1.
    ok(&rrun(&[
        "create",
        "--name",
        "undone",
        "--network",
        "home",
        "busybox",
        "sleep",
        "600",
    ]));
    ok(&rrun(&["network", "connect", "later", "undone"]));
    ok(&rrun(&["network", "disconnect", "later", "undone"]));
    ok(&rrun(&["start", "undone"]));
    let out = exec_sh("undone", "ip -o link show eth1; echo rc=$?");
    assert!(
        !out.contains("rc=0") && out.contains("can't find device"),
        "undone has an eth1: {out}"
    );

    // A network that went before the start: the start fails, naming it.
    ok(&rrun(&["network", "create", "gone"]));
    ok(&rrun(&[
        "create",
        "--name",
        "orphan",
        "--network",
        "home",
        "busybox",
        "true",
    ]));
    ok(&rrun(&["network", "connect", "gone", "orphan"]));
    ok(&rrun(&["network", "rm", "gone"]));
    let o = rrun(&["start", "orphan"]);
    assert_ne!(code(&o), 0, "started without its network");
    assert!(stderr(&o).contains("gone"), "{}", stderr(&o));

    for c in ["late", "peer", "undone", "orphan"] {
        ok(&rrun(&["rm", "-f", c]));
    }
    wait_for("the leases of later to go", || {
        leases_of(&bridge_of("later"))
            .is_empty()
            .then_some(String::new())
    });
    ok(&rrun(&["network", "rm", "home", "later"]));
}

/// A container on the default bridge that joins a user-defined network
/// (`rrun network connect` before its start) asks that network's resolver,
/// as Docker's embedded DNS serves a container once it has a user-defined
/// network: it finds the network's containers by name, and they find it.
#[test]
fn a_default_bridge_container_resolves_names_of_its_user_network() {
    if !netns::own_netns("a_default_bridge_container_resolves_names_of_its_user_network") {
        return;
    }
    // Containers and networks go even if the test fails.
    let _cleanup = Cleanup;
    ok(&rrun(&[
        "network",
        "create",
        "--subnet",
        "10.95.0.0/24",
        "named",
    ]));
    ok(&rrun(&[
        "run",
        "-d",
        "--name",
        "there",
        "--network",
        "named",
        "busybox",
        "sleep",
        "600",
    ]));
    let there_ip = inspect(&["inspect", "there"])[0]["NetworkSettings"]["Networks"]["named"]
        ["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&rrun(&[
        "create", "--name", "plain", "busybox", "sleep", "600",
    ]));
    ok(&rrun(&["network", "connect", "named", "plain"]));
    ok(&rrun(&["start", "plain"]));
    let resolv = exec_sh("plain", "cat /etc/resolv.conf");
    assert_eq!(
        resolv
            .lines()
            .filter(|l| l.starts_with("nameserver"))
            .collect::<Vec<_>>(),
        ["nameserver 10.95.0.1"],
        "{resolv}"
    );
    let out = exec_sh("plain", "nslookup there");
    assert!(out.contains(&format!("Address: {there_ip}")), "{out}");
    let plain_ip = inspect(&["inspect", "plain"])[0]["NetworkSettings"]["Networks"]["named"]
        ["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(plain_ip.starts_with("10.95.0."), "{plain_ip:?}");
    let out = exec_sh("there", "nslookup plain");
    assert!(out.contains(&format!("Address: {plain_ip}")), "{out}");
    // Without a user-defined network: the host's resolv.conf, as before.
    let o = rrun(&["run", "--rm", "busybox", "cat", "/etc/resolv.conf"]);
    assert!(!stdout(&o).contains("10.95.0.1"), "{}", stdout(&o));

    for c in ["plain", "there"] {
        ok(&rrun(&["rm", "-f", c]));
    }
    ok(&rrun(&["network", "rm", "named"]));
}

/// The `nameserver` lines of container `c`'s /etc/resolv.conf.
fn nameservers(c: &str) -> Vec<String> {
    exec_sh(c, "cat /etc/resolv.conf")
        .lines()
        .filter(|l| l.starts_with("nameserver"))
        .map(String::from)
        .collect()
}

/// Container `c`'s address on network `net` (empty when it has none).
fn ip_on(c: &str, net: &str) -> String {
    inspect(&["inspect", c])[0]["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_running_default_bridge_container_gets_the_names_of_a_network_it_joins() {
    if !netns::own_netns("a_running_default_bridge_container_gets_the_names_of_a_network_it_joins")
    {
        return;
    }
    let _cleanup = Cleanup;
    ok(&rrun(&[
        "network",
        "create",
        "--subnet",
        "10.96.0.0/24",
        "joined",
    ]));
    let bridge = bridge_of("joined");
    ok(&rrun(&[
        "run",
        "-d",
        "--name",
        "there",
        "--network",
        "joined",
        "busybox",
        "sleep",
        "600",
    ]));
    let there_ip = ip_on("there", "joined");
    ok(&rrun(&[
        "run",
        "-d",
        "--name",
        "plain",
        "--add-host",
        "extra.test:192.0.2.77",
        "busybox",
        "sleep",
        "600",
    ]));
    let pid = inspect(&["inspect", "plain"])[0]["State"]["Pid"].clone();
    assert!(!nameservers("plain").contains(&"nameserver 10.96.0.1".to_string()));
    let out = exec_sh("plain", "nslookup there");
    assert!(!out.contains(&there_ip), "{out}");

    ok(&rrun(&["network", "connect", "joined", "plain"]));
    // Without a restart: the same process, now with the network's names.
    assert_eq!(inspect(&["inspect", "plain"])[0]["State"]["Pid"], pid);
    assert_eq!(nameservers("plain"), ["nameserver 10.96.0.1"]);
    let out = exec_sh("plain", "nslookup there");
    assert!(out.contains(&format!("Address: {there_ip}")), "{out}");
    let hosts = exec_sh("plain", "cat /etc/hosts");
    let plain_ip = ip_on("plain", "joined");
    assert!(plain_ip.starts_with("10.96.0."), "{plain_ip:?}");
    assert!(hosts.contains(&format!("{there_ip}\tthere")), "{hosts}");
    assert!(hosts.contains(&format!("{plain_ip}\tplain")), "{hosts}");
    assert!(hosts.contains("192.0.2.77\textra.test"), "{hosts}");
    // The network's files are not the container's to write.
    let out = exec_sh("plain", "echo 6.6.6.6 there >> /etc/hosts; echo rc=$?");
    assert!(!out.contains("rc=0"), "{out}");
    // They follow: a container that comes later is in its hosts file,
    // and it in the newcomer's.
    ok(&rrun(&[
        "run",
        "-d",
        "--name",
        "later",
        "--network",
        "joined",
        "busybox",
        "sleep",
        "600",
    ]));
    let later_ip = ip_on("later", "joined");
    let hosts = exec_sh("plain", "cat /etc/hosts");
    assert!(hosts.contains(&format!("{later_ip}\tlater")), "{hosts}");
    let out = exec_sh("plain", "nslookup later");
    assert!(out.contains(&format!("Address: {later_ip}")), "{out}");
    let out = exec_sh("later", "nslookup plain");
    assert!(out.contains(&format!("Address: {plain_ip}")), "{out}");

    // Disconnected: the host's servers and its own hosts lines again.
    ok(&rrun(&["network", "disconnect", "joined", "plain"]));
    assert!(!nameservers("plain").contains(&"nameserver 10.96.0.1".to_string()));
    assert!(!nameservers("plain").is_empty());
    let hosts = exec_sh("plain", "cat /etc/hosts");
    assert!(
        !hosts.contains("there") && !hosts.contains("later"),
        "{hosts}"
    );
    assert!(hosts.contains("192.0.2.77\textra.test"), "{hosts}");
    let left = std::fs::read_dir(format!("/run/rbox/networks/{bridge}/resolv"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    assert_eq!(
        left, 0,
        "a resolv.conf of the network outlived the connection"
    );
    ok(&rrun(&["rm", "-f", "plain", "there", "later"]));
    ok(&rrun(&["network", "rm", "joined"]));
}

#[test]
fn a_container_left_with_one_user_network_keeps_its_resolver() {
    if !netns::own_netns("a_container_left_with_one_user_network_keeps_its_resolver") {
        return;
    }
    let _cleanup = Cleanup;
    for (name, subnet) in [("first", "10.97.0.0/24"), ("second", "10.98.0.0/24")] {
        ok(&rrun(&["network", "create", "--subnet", subnet, name]));
    }
    ok(&rrun(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "second",
        "busybox",
        "sleep",
        "600",
    ]));
    let peer_ip = ip_on("peer", "second");
    assert!(peer_ip.starts_with("10.98.0."), "{peer_ip:?}");
    ok(&rrun(&[
        "run", "-d", "--name", "plain", "busybox", "sleep", "600",
    ]));
    // The first user network it joins gives it its names (the first
    // member of a network can be a connected one); the second does not
    // take them over while the first is there.
    ok(&rrun(&["network", "connect", "first", "plain"]));
    assert_eq!(nameservers("plain"), ["nameserver 10.97.0.1"]);
    ok(&rrun(&["network", "connect", "second", "plain"]));
    assert_eq!(nameservers("plain"), ["nameserver 10.97.0.1"]);

    // Leaving the first: the second's resolver, not the host's servers.
    ok(&rrun(&["network", "disconnect", "first", "plain"]));
    assert_eq!(nameservers("plain"), ["nameserver 10.98.0.1"]);
    let out = exec_sh("plain", "nslookup peer");
    assert!(out.contains(&format!("Address: {peer_ip}")), "{out}");
    let hosts = exec_sh("plain", "cat /etc/hosts");
    assert!(hosts.contains(&format!("{peer_ip}\tpeer")), "{hosts}");

    // Leaving the last user network: the host's servers again.
    ok(&rrun(&["network", "disconnect", "second", "plain"]));
    let servers = nameservers("plain");
    assert!(!servers.is_empty(), "no nameserver left");
    assert!(
        !servers
            .iter()
            .any(|s| s.contains("10.97.0.1") || s.contains("10.98.0.1")),
        "{servers:?}"
    );
    let hosts = exec_sh("plain", "cat /etc/hosts");
    assert!(!hosts.contains("peer"), "{hosts}");
    ok(&rrun(&["rm", "-f", "plain", "peer"]));
    ok(&rrun(&["network", "rm", "first", "second"]));
}

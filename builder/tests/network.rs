//! The network of RUN steps, for real, as root. Each test re-runs itself
//! in a network namespace of its own (fixtures::netns) standing for the
//! host, with a 127.0.0.1-only service in it and an "outside" namespace
//! at 192.0.2.1: the machine's own network is never touched.

mod common;

use common::*;
use fixtures::netns::{self, Outside, HOST_ADDR_OUTSIDE, OUTSIDE_ADDR};

const SECRET: &str = "host-loopback-secret";

#[test]
fn run_steps_go_out_but_never_reach_host_loopback() {
    if !netns::own_netns("run_steps_go_out_but_never_reach_host_loopback") {
        return;
    }
    let outside = Outside::new();
    outside.serve(8080);
    let port = netns::serve_on_loopback(SECRET);
    let probe = format!(
        "(nc -w 2 127.0.0.1 {port} </dev/null; nc -w 3 {OUTSIDE_ADDR} 8080 </dev/null) > /got; true"
    );
    let ctx = context(&[("Containerfile", format!("FROM busybox\nRUN {probe}\n"))]);

    // The default: an isolated namespace that still goes out.
    build_ok("net:default", ctx.path(), &[]);
    let got = run_ok("net:default", &["cat", "/got"]);
    assert!(
        got.contains(&format!("hello from outside, you are {HOST_ADDR_OUTSIDE}")),
        "a RUN step did not reach the outside through NAT: {got:?}"
    );
    assert!(
        !got.contains(SECRET),
        "a RUN step read the host's loopback service: {got:?}"
    );

    // --network host is the opt-in that reaches it (so the test can tell).
    build_ok("net:host", ctx.path(), &["--network", "host", "--no-cache"]);
    assert!(run_ok("net:host", &["cat", "/got"]).contains(SECRET));

    // A Containerfile cannot opt itself in.
    let own = context(&[(
        "Containerfile",
        format!("FROM busybox\nRUN --network=host {probe}\n"),
    )]);
    let o = rbuild(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "net:own",
        own.path().to_str().unwrap(),
    ]);
    assert!(
        !o.status.success(),
        "RUN --network=host ran without the opt-in"
    );
    assert!(
        stderr(&o)
            .contains("RUN --network=host needs the builder's opt-in: rbuild build --network host"),
        "{}",
        stderr(&o)
    );
    build_ok("net:own", own.path(), &["--network", "host"]);
    assert!(run_ok("net:own", &["cat", "/got"]).contains(SECRET));

    // --network none: neither.
    build_ok("net:none", ctx.path(), &["--network", "none", "--no-cache"]);
    assert_eq!(run_ok("net:none", &["cat", "/got"]), "");
}

/// Parallel stages start their RUN steps side by side on the bridge: a
/// step's child was once cloned while another thread held the network's
/// lock file open, kept that lock alive, and the build hung for good
/// (seen in CI). Each build must end within a minute.
#[test]
fn parallel_run_steps_on_the_bridge_never_deadlock() {
    if !netns::own_netns("parallel_run_steps_on_the_bridge_never_deadlock") {
        return;
    }
    let mut file = String::new();
    for s in ["a", "b", "c", "d"] {
        file.push_str(&format!("FROM busybox AS {s}\nRUN echo {s} > /{s}\n"));
    }
    file.push_str("FROM busybox\n");
    for s in ["a", "b", "c", "d"] {
        file.push_str(&format!("COPY --from={s} /{s} /{s}\n"));
    }
    let ctx = context(&[("Containerfile", file)]);
    for round in 0..6 {
        let mut child = std::process::Command::new(RBUILD)
            .arg("--root")
            .arg(store_root())
            .args(["build", "--progress", "plain", "--no-cache", "-t", "par:1"])
            .arg(ctx.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("round {round}: the build hung (parallel RUN steps on the bridge)");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(status.success(), "round {round}: {status:?}");
    }
    assert_eq!(
        run_ok("par:1", &["cat", "/a", "/b", "/c", "/d"]),
        "a\nb\nc\nd\n"
    );
}

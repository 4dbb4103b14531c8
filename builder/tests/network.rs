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

//! `--cache-to type=local` / `--cache-from type=local`: the step cache of
//! one store reused by a fresh one, for real, as root.

mod common;

use std::process::Command;

use common::*;

#[test]
fn a_fresh_store_reuses_the_steps_another_store_exported() {
    let ctx = context(&[
        (
            "Containerfile",
            "FROM busybox\nRUN cat /proc/sys/kernel/random/uuid > /id\nCOPY f /f\n",
        ),
        ("f", "one\n"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let to = format!("type=local,dest={}", cache.path().display());
    let from = format!("type=local,src={}", cache.path().display());
    build_ok(
        "ct:a",
        ctx.path(),
        &["--network", "none", "--cache-to", &to],
    );
    let id = run_ok("ct:a", &["cat", "/id"]);

    // Another store, empty but for the same base image.
    let fresh = tempfile::tempdir().unwrap();
    let store = engine::Store::open(fresh.path()).unwrap();
    fixtures::ensure_busybox_image(&store, "busybox").unwrap();
    drop(store);
    let ctx_arg = ctx.path().to_str().unwrap();
    let o = rbuild_in(
        fresh.path(),
        &[
            "build",
            "--progress",
            "plain",
            "--network",
            "none",
            "--cache-from",
            &from,
            "-t",
            "ct:b",
            ctx_arg,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        cached_steps(&o),
        2,
        "every step came from the imported cache:\n{}",
        stderr(&o)
    );
    let o = Command::new(rrun_path())
        .arg("--root")
        .arg(fresh.path())
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "ct:b",
            "cat",
            "/id",
            "/f",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&o), format!("{id}one\n"), "{}", stderr(&o));

    // A changed file: the RUN before it still comes from the cache.
    std::fs::write(ctx.path().join("f"), "two\n").unwrap();
    let o = rbuild_in(
        fresh.path(),
        &[
            "build",
            "--progress",
            "plain",
            "--network",
            "none",
            "--cache-from",
            &from,
            "-t",
            "ct:c",
            ctx_arg,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(cached_steps(&o), 1, "{}", stderr(&o));

    // Bad locations are refused naming them.
    let o = rbuild_in(
        fresh.path(),
        &["build", "--cache-from", "type=registry,ref=x", ctx_arg],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown field \"ref=x\""),
        "{}",
        stderr(&o)
    );
    let empty = tempfile::tempdir().unwrap();
    let nothing = format!("type=local,src={}", empty.path().display());
    let o = rbuild_in(fresh.path(), &["build", "--cache-from", &nothing, ctx_arg]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no cache here"), "{}", stderr(&o));
}

//! The limits on how far one layer may expand (issue 11 item 11) reach
//! the commands through the environment: `rbuild import` and a build's
//! ADD of a local tarball refuse a layer past RBOX_MAX_LAYER_BYTES or
//! RBOX_MAX_LAYER_ENTRIES with an error naming the entry, the limit and
//! the variable, and a value that is not a limit is an error naming it.
//! (engine unpack_tar applies them on every path; fixtures/tests/
//! layer_limits.rs tests each bomb shape against them.)

mod common;

use std::process::{Command, Output, Stdio};

use common::*;

fn rbuild_with(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(RBUILD);
    c.arg("--root").arg(store_root()).args(args);
    c.env_remove("RBOX_MAX_LAYER_BYTES")
        .env_remove("RBOX_MAX_LAYER_ENTRIES");
    for (k, v) in env {
        c.env(k, v);
    }
    c.stdin(Stdio::null()).output().expect("run rbuild")
}

#[test]
fn import_and_add_honour_the_layer_limits_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    // 32 MiB of zeros in one file, about 1 KiB of zstd.
    let blob = fixtures::bombs::zstd_expansion(b"big", 32 << 20);
    let tarball = dir.path().join("big.tar.zst");
    std::fs::write(&tarball, &blob).unwrap();
    let tarball = tarball.to_str().unwrap();
    let small = [("RBOX_MAX_LAYER_BYTES", "16M")];

    let o = rbuild_with(&small, &["import", tarball, "limits:import"]);
    let err = stderr(&o);
    assert!(!o.status.success(), "imported past the limit");
    for want in ["\"big\"", "16 MiB", "RBOX_MAX_LAYER_BYTES"] {
        assert!(err.contains(want), "the error does not say {want}: {err}");
    }
    let o = rbuild_with(&[], &["import", tarball, "limits:import"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let ctx = context(&[("Containerfile", "FROM busybox\nADD big.tar.zst /x/\n")]);
    std::fs::write(ctx.path().join("big.tar.zst"), &blob).unwrap();
    let ctx = ctx.path().to_str().unwrap();
    let build = ["build", "--progress", "plain", "-t", "limits:add", ctx];
    let o = rbuild_with(&small, &build);
    let err = stderr(&o);
    assert!(!o.status.success(), "ADD unpacked past the limit");
    assert!(err.contains("RBOX_MAX_LAYER_BYTES"), "{err}");
    let o = rbuild_with(&[("RBOX_MAX_LAYER_ENTRIES", "1")], &build);
    // busybox's own layer is already unpacked; the ADD has 1 entry.
    assert!(o.status.success(), "{}", stderr(&o));

    let o = rbuild_with(
        &[("RBOX_MAX_LAYER_ENTRIES", "lots")],
        &["import", tarball, "limits:bad"],
    );
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("RBOX_MAX_LAYER_ENTRIES=\"lots\" is not a valid limit"),
        "{err}"
    );
}

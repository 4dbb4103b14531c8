//! `--cache-to type=local` / `--cache-from type=local`: the step cache of
//! one store reused by a fresh one, for real, as root.

mod common;
// Debian's docker-registry on loopback, as the interop tests start it.
mod interop_common;

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
        &["build", "--cache-from", "type=local,ref=x", ctx_arg],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("ref= is for type=registry"),
        "{}",
        stderr(&o)
    );
    let empty = tempfile::tempdir().unwrap();
    let nothing = format!("type=local,src={}", empty.path().display());
    let o = rbuild_in(fresh.path(), &["build", "--cache-from", &nothing, ctx_arg]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no cache here"), "{}", stderr(&o));
}

fn registry_or_skip() -> Option<interop_common::Registry> {
    if !std::path::Path::new("/usr/bin/docker-registry").exists() {
        eprintln!("skipped: docker-registry is not installed (apt-get install docker-registry)");
        return None;
    }
    Some(interop_common::Registry::start(None))
}

fn fresh_busybox_store() -> tempfile::TempDir {
    let fresh = tempfile::tempdir().unwrap();
    let store = engine::Store::open(fresh.path()).unwrap();
    fixtures::ensure_busybox_image(&store, "busybox").unwrap();
    fresh
}

fn cache_steps_recorded(root: &std::path::Path) -> usize {
    std::fs::read_dir(root.join("cache/steps"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn a_cold_store_reuses_the_steps_pushed_to_a_registry() {
    let Some(reg) = registry_or_skip() else {
        return;
    };
    let ctx = context(&[
        (
            "Containerfile",
            "FROM busybox\nRUN cat /proc/sys/kernel/random/uuid > /id\nCOPY f /f\nRUN echo more >> /f\n",
        ),
        ("f", "one\n"),
    ]);
    let cache_ref = format!("{}/team/cache:main", reg.host());
    let to = format!("type=registry,ref={cache_ref},mode=max");
    let from = format!("type=registry,ref={cache_ref}");
    let o = build_ok(
        "regcache:a",
        ctx.path(),
        &["--network", "none", "--cache-to", &to],
    );
    assert!(
        stderr(&o).contains("exported 3 cached steps"),
        "{}",
        stderr(&o)
    );
    let id = run_ok("regcache:a", &["cat", "/id"]);

    // A cold store: the busybox base only.
    let fresh = fresh_busybox_store();
    let ctx_arg = ctx.path().to_str().unwrap();
    let build = |tag: &str| {
        rbuild_in(
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
                tag,
                ctx_arg,
            ],
        )
    };
    let o = build("regcache:b");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("imported 3 cached steps"),
        "{}",
        stderr(&o)
    );
    assert_eq!(cached_steps(&o), 3, "every step cached:\n{}", stderr(&o));
    let o = Command::new(rrun_path())
        .arg("--root")
        .arg(fresh.path())
        .args([
            "run",
            "--rm",
            "--network",
            "none",
            "regcache:b",
            "cat",
            "/id",
            "/f",
        ])
        .output()
        .unwrap();
    assert_eq!(stdout(&o), format!("{id}one\nmore\n"), "{}", stderr(&o));

    // A changed file: the RUN before it still comes from the registry.
    std::fs::write(ctx.path().join("f"), "two\n").unwrap();
    let o = build("regcache:c");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(cached_steps(&o), 1, "{}", stderr(&o));

    // An image that is no build cache is refused, naming the ref.
    let plain = format!("{}/team/plain:v1", reg.host());
    let o = rbuild(&["push", "busybox", &plain]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = rbuild_in(
        fresh.path(),
        &[
            "build",
            "--cache-from",
            &format!("type=registry,ref={plain}"),
            ctx_arg,
        ],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not an image index"), "{}", stderr(&o));
}

#[test]
fn a_registry_cache_with_a_corrupt_blob_is_refused_and_nothing_recorded() {
    let Some(reg) = registry_or_skip() else {
        return;
    };
    let ctx = context(&[(
        "Containerfile",
        "FROM busybox\nRUN dd if=/dev/urandom of=/r bs=1k count=64\nRUN echo two > /two\n",
    )]);
    let cache_ref = format!("{}/team/bad:main", reg.host());
    build_ok(
        "regcache:bad",
        ctx.path(),
        &[
            "--network",
            "none",
            "--cache-to",
            &format!("type=registry,ref={cache_ref}"),
        ],
    );
    // Flip a byte of every layer blob the registry keeps (its files are
    // `.../blobs/sha256/xx/HEX/data`); manifests and configs are small JSON
    // and left alone, so the index still lists the entries.
    let blobs = reg.dir.path().join("data/docker/registry/v2/blobs/sha256");
    let mut flipped = 0;
    for shard in std::fs::read_dir(&blobs).unwrap() {
        for blob in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let data = blob.unwrap().path().join("data");
            let mut bytes = std::fs::read(&data).unwrap();
            if bytes.first() == Some(&b'{') {
                continue;
            }
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0xff;
            std::fs::write(&data, bytes).unwrap();
            flipped += 1;
        }
    }
    assert!(
        flipped >= 2,
        "no layer blobs found under {}",
        blobs.display()
    );
    let fresh = fresh_busybox_store();
    let before = cache_steps_recorded(fresh.path());
    let o = rbuild_in(
        fresh.path(),
        &[
            "build",
            "--network",
            "none",
            "--cache-from",
            &format!("type=registry,ref={cache_ref}"),
            ctx.path().to_str().unwrap(),
        ],
    );
    assert!(!o.status.success(), "a corrupt cache was used");
    let err = stderr(&o);
    assert!(
        err.contains("--cache-from type=registry") && err.contains("hashes to"),
        "{err}"
    );
    assert_eq!(
        cache_steps_recorded(fresh.path()),
        before,
        "a cache entry was recorded from a corrupt cache"
    );
}

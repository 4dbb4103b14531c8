//! Building real images and running them: every instruction's effect,
//! checked in a container started by the real rrun.

mod common;
use common::*;

#[test]
fn instructions_take_effect_in_the_container() {
    let ctx = context(&[
        ("hello.txt", "hello from the context\n"),
        (
            "Containerfile",
            r#"FROM busybox
ENV GREETING="hi there" OTHER=x
WORKDIR /app
COPY hello.txt .
RUN echo "built" > /app/built && chown nobody /app/built
USER nobody
LABEL org.example.k=v
EXPOSE 8080
CMD ["sh", "-c", "echo $GREETING; pwd; id -u; cat hello.txt built"]
"#,
        ),
    ]);
    build_ok("inst:1", ctx.path(), &[]);
    let out = run_ok("inst:1", &[]);
    assert_eq!(
        out,
        "hi there\n/app\n65534\nhello from the context\nbuilt\n"
    );

    let inspect = rbuild(&["inspect", "inst:1"]);
    let json: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let cfg = &json["Config"]["config"];
    assert_eq!(cfg["Labels"]["org.example.k"], "v");
    assert!(cfg["ExposedPorts"]["8080/tcp"].is_object());
    assert_eq!(cfg["User"], "nobody");
    assert_eq!(cfg["WorkingDir"], "/app");
}

/// A RUN step's upper is snapshotted into a synced blob as soon as the
/// step ends, so its overlay skips syncing it (`volatile`).
#[test]
fn run_steps_mount_a_volatile_overlay() {
    let ctx = context(&[(
        "Containerfile",
        "FROM busybox\nRUN grep '^overlay / ' /proc/mounts > /root-mount\n",
    )]);
    build_ok("volatile:1", ctx.path(), &[]);
    let out = run_ok("volatile:1", &["cat", "/root-mount"]);
    assert!(
        out.starts_with("overlay / ") && out.contains("volatile"),
        "the RUN step's root overlay is not volatile: {out}"
    );
}

#[test]
fn entrypoint_and_cmd_combine_as_in_docker() {
    let ctx = context(&[(
        "Containerfile",
        "FROM busybox\nENTRYPOINT [\"echo\", \"entry\"]\nCMD [\"default-arg\"]\n",
    )]);
    build_ok("ep:1", ctx.path(), &[]);
    assert_eq!(run_ok("ep:1", &[]), "entry default-arg\n");
    assert_eq!(run_ok("ep:1", &["given"]), "entry given\n");
}

#[test]
fn cache_reruns_only_what_changed() {
    let ctx = context(&[
        ("a.txt", "one\n"),
        (
            "Containerfile",
            "FROM busybox\nRUN echo first > /first\nCOPY a.txt /a.txt\nARG FLAVOUR=plain\nRUN echo $FLAVOUR > /flavour\n",
        ),
    ]);
    let cold = build_ok("cache:1", ctx.path(), &[]);
    assert_eq!(cached_steps(&cold), 0, "{}", stderr(&cold));
    let warm = build_ok("cache:1", ctx.path(), &[]);
    assert_eq!(
        cached_steps(&warm),
        3,
        "a rebuild with no change hits every layer step:\n{}",
        stderr(&warm)
    );
    // The same image, to the digest.
    assert_eq!(stdout(&cold), stdout(&warm));

    std::fs::write(ctx.path().join("a.txt"), "two\n").unwrap();
    let changed = build_ok("cache:1", ctx.path(), &[]);
    assert_eq!(
        cached_steps(&changed),
        1,
        "only the RUN before the COPY is cached:\n{}",
        stderr(&changed)
    );
    assert_eq!(run_ok("cache:1", &["cat", "/a.txt"]), "two\n");

    let arg = build_ok("cache:1", ctx.path(), &["--build-arg", "FLAVOUR=spicy"]);
    assert_eq!(
        cached_steps(&arg),
        2,
        "a build arg in scope reruns the RUN that sees it:\n{}",
        stderr(&arg)
    );
    assert_eq!(run_ok("cache:1", &["cat", "/flavour"]), "spicy\n");

    let nocache = build_ok("cache:1", ctx.path(), &["--no-cache"]);
    assert_eq!(cached_steps(&nocache), 0);
}

#[test]
fn deleted_files_are_whiteouts_and_replaced_dirs_are_opaque() {
    let ctx = context(&[(
        "Containerfile",
        "FROM busybox\nRUN rm /etc/group\nRUN rm -rf /home && mkdir /home && echo new > /home/only\n",
    )]);
    build_ok("wh:1", ctx.path(), &[]);
    let out = run_ok(
        "wh:1",
        &[
            "sh",
            "-c",
            "test -e /etc/group && echo present || echo absent; ls -A /home",
        ],
    );
    assert_eq!(out, "absent\nonly\n");
}

#[test]
fn multi_stage_copies_from_parallel_stages_and_builds_only_what_the_target_needs() {
    let ctx = context(&[(
        "Containerfile",
        r#"FROM busybox AS left
RUN echo left > /left
FROM busybox AS right
RUN echo right > /right
FROM busybox AS unused
RUN exit 3
FROM busybox
COPY --from=left /left /out/left
COPY --from=right /right /out/right
CMD ["cat", "/out/left", "/out/right"]
"#,
    )]);
    let out = build_ok("ms:1", ctx.path(), &[]);
    assert!(
        !stderr(&out).contains("exit 3"),
        "the unused stage was built:\n{}",
        stderr(&out)
    );
    assert_eq!(run_ok("ms:1", &[]), "left\nright\n");
    build_ok("ms:left", ctx.path(), &["--target", "left"]);
    assert_eq!(run_ok("ms:left", &["cat", "/left"]), "left\n");
}

#[test]
fn heredocs_run_and_create_files() {
    let ctx = context(&[(
        "Containerfile",
        "FROM busybox\nRUN <<EOF\necho one > /h1\necho two >> /h1\nEOF\nCOPY <<greeting.txt /etc/\nhello heredoc\ngreeting.txt\n",
    )]);
    build_ok("hd:1", ctx.path(), &[]);
    assert_eq!(
        run_ok("hd:1", &["cat", "/h1", "/etc/greeting.txt"]),
        "one\ntwo\nhello heredoc\n"
    );
}

#[test]
fn cache_mounts_persist_across_builds_and_stay_out_of_layers() {
    let ctx = context(&[(
        "Containerfile",
        "FROM busybox\nARG N\nRUN --mount=type=cache,target=/cache echo run$N >> /cache/log && cat /cache/log > /seen\n",
    )]);
    build_ok("cm:1", ctx.path(), &["--build-arg", "N=1"]);
    build_ok("cm:1", ctx.path(), &["--build-arg", "N=2"]);
    let out = run_ok(
        "cm:1",
        &["sh", "-c", "cat /seen; ls -A /cache 2>/dev/null | wc -l"],
    );
    assert_eq!(
        out, "run1\nrun2\n0\n",
        "the cache dir must survive builds and never be in the image"
    );
}

#[test]
fn copy_exclude_and_dockerignore_filter_the_context() {
    let ctx = context(&[
        ("src/keep.rs", "k"),
        ("src/skip.log", "s"),
        ("src/secret.key", "x"),
        (".dockerignore", "**/*.key\n"),
        (
            "Containerfile",
            "FROM busybox\nCOPY --exclude=*.log src/ /src/\n",
        ),
    ]);
    build_ok("ex:1", ctx.path(), &[]);
    assert_eq!(run_ok("ex:1", &["ls", "/src"]), "keep.rs\n");
}

#[test]
fn a_failing_run_names_its_line_and_keeps_earlier_cache() {
    let ctx = context(&[(
        "Containerfile",
        "FROM busybox\nRUN echo ok > /ok\nRUN echo about to fail; exit 42\n",
    )]);
    let out = rbuild(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "fail:1",
        ctx.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("Containerfile:3") && err.contains("exit code 42"),
        "{err}"
    );
    assert!(
        err.contains("about to fail") || stdout(&out).contains("about to fail"),
        "the step's output is shown"
    );
    assert!(
        !rrun(&["run", "--rm", "fail:1", "true"]).status.success(),
        "no image may be tagged"
    );
    std::fs::write(
        ctx.path().join("Containerfile"),
        "FROM busybox\nRUN echo ok > /ok\nRUN true\n",
    )
    .unwrap();
    let again = build_ok("fail:1", ctx.path(), &[]);
    assert_eq!(
        cached_steps(&again),
        1,
        "the step before the failure stays cached:\n{}",
        stderr(&again)
    );
}

#[test]
fn malformed_containerfiles_get_line_numbered_errors() {
    for (text, expect) in [
        ("FROM busybox\nRUNN echo\n", "Containerfile:2"),
        ("RUN echo\n", "Containerfile:1"),
        ("FROM busybox\nCOPY --chwon=1 a /\n", "--chwon"),
        ("FROM busybox\nRUN <<EOF\necho\n", "Containerfile:2"),
    ] {
        let ctx = context(&[("Containerfile", text)]);
        let out = rbuild(&["build", "-t", "bad:1", ctx.path().to_str().unwrap()]);
        assert!(!out.status.success(), "{text:?} built");
        assert!(stderr(&out).contains(expect), "{text:?}: {}", stderr(&out));
    }
}

/// A one-file HTTP server on loopback, answering every request with `body`.
fn serve_once_per_request(body: &'static str) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(8) {
            let Ok(mut s) = stream else { continue };
            let mut req = [0u8; 4096];
            let _ = s.read(&mut req);
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn add_downloads_urls_and_checks_checksums() {
    let port = serve_once_per_request("downloaded body\n");
    use sha2::Digest as _;
    let right = format!("sha256:{:x}", sha2::Sha256::digest(b"downloaded body\n"));
    let wrong = format!("sha256:{}", "0".repeat(64));
    let ctx = context(&[(
        "Containerfile",
        &format!("FROM busybox\nADD http://127.0.0.1:{port}/dir/tool.txt /srv/\n"),
    )]);
    build_ok("url:1", ctx.path(), &[]);
    assert_eq!(
        run_ok(
            "url:1",
            &["sh", "-c", "cat /srv/tool.txt; stat -c %a /srv/tool.txt"]
        ),
        "downloaded body\n600\n"
    );

    let good = context(&[(
        "Containerfile",
        &format!("FROM busybox\nADD --checksum={right} http://127.0.0.1:{port}/tool.txt /srv/\n"),
    )]);
    build_ok("url:2", good.path(), &[]);
    let bad = context(&[(
        "Containerfile",
        &format!("FROM busybox\nADD --checksum={wrong} http://127.0.0.1:{port}/tool.txt /srv/\n"),
    )]);
    let out = rbuild(&["build", "-t", "url:2", bad.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Containerfile:2") && stderr(&out).contains("checksum mismatch"),
        "{}",
        stderr(&out)
    );

    // Nothing listens on this port: a clear error, not a hang.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = context(&[(
        "Containerfile",
        &format!("FROM busybox\nADD http://127.0.0.1:{closed}/x /x\n"),
    )]);
    let out = rbuild(&["build", "-t", "url:3", down.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("download failed"), "{}", stderr(&out));
}

#[test]
fn tag_adds_a_name_and_rmi_of_it_keeps_the_image() {
    let o = rbuild(&["tag", "busybox", "tagged/box:1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ids = |name: &str| -> Vec<String> {
        stdout(&rbuild(&["images"]))
            .lines()
            .filter(|l| l.split_whitespace().next() == Some(name))
            .map(|l| l.split_whitespace().nth(2).unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        ids("tagged/box"),
        ids("busybox"),
        "the new name is another image"
    );
    assert_eq!(run_ok("tagged/box:1", &["echo", "hi"]), "hi\n");
    assert!(rbuild(&["rmi", "tagged/box:1"]).status.success());
    assert!(ids("tagged/box").is_empty());
    assert_eq!(run_ok("busybox", &["echo", "still"]), "still\n");

    let o = rbuild(&["tag", "no-such-image:1", "x:1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no-such-image"), "{}", stderr(&o));
    let o = rbuild(&["tag", "busybox", "Bad Name"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Bad Name"), "{}", stderr(&o));
}

/// The store is private to root (engine::store::access), but a RUN step
/// as a non-root user still walks its root file system: overlayfs reaches
/// the store's layers with the mounter's credentials.
#[test]
fn a_run_step_as_a_non_root_user_reaches_its_root_file_system() {
    let ctx = context(&[(
        "Containerfile",
        "FROM busybox\nUSER 1000:1000\nRUN ls / >/dev/null && cat /etc/passwd >/dev/null && id -u\n",
    )]);
    build_ok("nonroot-run:1", ctx.path(), &[]);
}

#[test]
fn no_cache_filter_rebuilds_only_the_named_stages() {
    let ctx = context(&[(
        "Containerfile",
        "FROM busybox AS first\nRUN cat /proc/sys/kernel/random/uuid > /a\nFROM busybox AS second\nRUN cat /proc/sys/kernel/random/uuid > /b\nCOPY --from=first /a /a\n",
    )]);
    let net = ["--network", "none"];
    build_ok("ncf:1", ctx.path(), &net);
    let before = run_ok("ncf:1", &["cat", "/a", "/b"]);
    let o = build_ok(
        "ncf:2",
        ctx.path(),
        &["--network", "none", "--no-cache-filter", "SECOND"],
    );
    assert_eq!(
        cached_steps(&o),
        1,
        "only the first stage's RUN is cached:\n{}",
        stderr(&o)
    );
    let after = run_ok("ncf:2", &["cat", "/a", "/b"]);
    let (b1, a1) = (
        before.lines().collect::<Vec<_>>(),
        after.lines().collect::<Vec<_>>(),
    );
    assert_eq!(b1[0], a1[0], "stage first was rebuilt");
    assert_ne!(b1[1], a1[1], "stage second came from the cache");
    // By index too; an unknown stage is refused naming it.
    let o = build_ok(
        "ncf:3",
        ctx.path(),
        &["--network", "none", "--no-cache-filter", "0"],
    );
    // Stage 0 rebuilt: the second stage's RUN stays cached, its COPY of
    // the new /a does not.
    assert!(
        stderr(&o).contains("[second 1/2] RUN cat /proc/sys/kernel/random/uuid > /b\n#2 CACHED"),
        "{}",
        stderr(&o)
    );
    assert_eq!(cached_steps(&o), 1, "{}", stderr(&o));
    let o = rbuild(&[
        "build",
        "--no-cache-filter",
        "third",
        ctx.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--no-cache-filter third: Containerfile has no such stage"),
        "{}",
        stderr(&o)
    );
}

/// Every file of the tree under `root`: path, type and mode, and the
/// content of a file or the target of a link (not times: two builds
/// never write at the same moment).
fn tree_listing(root: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let t = m.file_type();
            let what = if t.is_dir() {
                stack.push(p.clone());
                "dir".to_string()
            } else if t.is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if t.is_char_device() {
                format!("char {}", m.rdev())
            } else {
                format!("file {:?}", std::fs::read(&p).unwrap())
            };
            out.push(format!(
                "{rel} {:o} {}:{} {what}",
                m.mode(),
                m.uid(),
                m.gid()
            ));
        }
    }
    out.sort();
    out
}

/// `--runtime crun` runs the RUN steps through the external runtime
/// behind the same seam: the step's layer has the same content as the
/// native runtime's; a bridge network is refused by asking the runtime.
#[test]
fn a_run_step_through_crun_makes_the_same_layer_as_native() {
    let ctx = context(&[(
        "Containerfile",
        "FROM busybox\nRUN mkdir -p /app && echo built > /app/out && chmod 640 /app/out \
         && ln -s out /app/link && rm /bin/vi && id -u > /app/uid && hostname > /app/host \
         && cat /proc/1/cmdline > /app/cmd\n",
    )]);
    build_ok(
        "rt/native:1",
        ctx.path(),
        &["--no-cache", "--network", "none"],
    );
    build_ok(
        "rt/crun:1",
        ctx.path(),
        &["--no-cache", "--network", "none", "--runtime", "crun"],
    );
    let store = engine::Store::open(store_root()).unwrap();
    let native = fixtures::image_lowerdirs(&store, "rt/native:1").unwrap();
    let crun = fixtures::image_lowerdirs(&store, "rt/crun:1").unwrap();
    let (n, c) = (tree_listing(&native[0]), tree_listing(&crun[0]));
    assert!(
        n.iter().any(|l| l.starts_with("app/out 100640 0:0 file")),
        "{n:#?}"
    );
    assert!(
        n.iter().any(|l| l.starts_with("bin/vi ")),
        "no whiteout: {n:#?}"
    );
    assert_eq!(n, c, "the RUN layers differ");

    let dir = ctx.path().display().to_string();
    let o = rbuild(&[
        "build",
        "--no-cache",
        "--runtime",
        "crun",
        "-t",
        "rt/bridge:1",
        &dir,
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not available with the crun runtime"),
        "{}",
        stderr(&o)
    );
    let o = rbuild(&["build", "--runtime", "kata", "-t", "rt/x:1", &dir]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("kata"), "{}", stderr(&o));
}

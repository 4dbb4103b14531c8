//! `rrun commit`: a container's changes as a new image that rrun runs and
//! the store lists, with `-c` changes to its config and a history entry.

mod common;

use common::*;

fn ok(o: &std::process::Output) -> String {
    assert_eq!(code(o), 0, "stderr: {}", stderr(o));
    stdout(o)
}

fn image_json(reference: &str) -> serde_json::Value {
    let out = ok(&rrun(&["inspect", "--type", "image", reference]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v[0].clone()
}

#[test]
fn commit_a_stopped_container_and_run_the_image() {
    ok(&rrun(&[
        "run",
        "--name",
        "to-commit",
        "busybox",
        "sh",
        "-c",
        "echo made > /made-file; rm /bin/ls",
    ]));
    let out = ok(&rrun(&[
        "commit",
        "-m",
        "my message",
        "-c",
        r#"CMD ["cat", "/made-file"]"#,
        "to-commit",
        "committed:v1",
    ]));
    let digest = out.trim().to_string();
    assert!(
        digest.contains(':'),
        "commit prints the image digest: {out}"
    );
    // The new default command sees the container's file.
    assert_eq!(ok(&rrun(&["run", "--rm", "committed:v1"])), "made\n");
    // Its deletion too (a whiteout in the new layer).
    assert_eq!(
        ok(&rrun(&[
            "run",
            "--rm",
            "committed:v1",
            "sh",
            "-c",
            "test -e /bin/ls || echo gone"
        ])),
        "gone\n"
    );
    // In the store's list of images (what rbuild images prints), with
    // one layer more than busybox and a history entry for it.
    let store = engine::Store::open(store_root()).unwrap();
    let refs = store.list_refs().unwrap();
    assert!(
        refs.iter()
            .any(|(r, d)| r.to_string() == "committed:v1" && d.to_string() == digest),
        "{refs:?}"
    );
    let base = store.find_image("busybox").unwrap();
    let img = store.find_image("committed:v1").unwrap();
    assert_eq!(
        img.config.rootfs.diff_ids.len(),
        base.config.rootfs.diff_ids.len() + 1
    );
    let last = img.config.history.last().unwrap();
    assert_eq!(last.comment.as_deref(), Some("my message"));
    assert!(!last.empty_layer);
    assert!(
        last.created_by
            .as_deref()
            .unwrap_or("")
            .contains("echo made"),
        "{last:?}"
    );
    // The container itself is untouched: its upper dir is still its own.
    assert_eq!(
        ok(&rrun(&["diff", "to-commit"]))
            .lines()
            .filter(|l| l.contains("made-file"))
            .count(),
        1
    );
    assert_eq!(code(&rrun(&["rm", "to-commit"])), 0);
}

#[test]
fn commit_a_running_container_with_config_changes() {
    ok(&rrun(&[
        "run",
        "-d",
        "--name",
        "live-commit",
        "busybox",
        "sh",
        "-c",
        "echo live > /live; touch /ready; sleep 60",
    ]));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while code(&rrun(&["exec", "live-commit", "test", "-e", "/ready"])) != 0 {
        assert!(std::time::Instant::now() < deadline, "never ready");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    ok(&rrun(&[
        "commit",
        "-c",
        "ENV FOO=bar",
        "-c",
        "WORKDIR /tmp",
        "-c",
        "USER nobody",
        "-c",
        "LABEL team=rbox",
        "-c",
        "EXPOSE 8080",
        "-c",
        "ENTRYPOINT [\"sh\", \"-c\"]",
        "-c",
        "CMD [\"echo default\"]",
        "live-commit",
        "live-img",
    ]));
    // Still running, and not left paused.
    let st = ok(&rrun(&[
        "inspect",
        "-f",
        "{{.State.Status}}",
        "live-commit",
    ]));
    assert_eq!(st, "running\n");
    assert_eq!(
        ok(&rrun(&["exec", "live-commit", "cat", "/live"])),
        "live\n"
    );
    let out = ok(&rrun(&[
        "run",
        "--rm",
        "live-img",
        "cat /live; echo $FOO; pwd; id -u",
    ]));
    assert_eq!(out, "live\nbar\n/tmp\n65534\n");
    assert_eq!(ok(&rrun(&["run", "--rm", "live-img"])), "default\n");
    let v = image_json("live-img");
    assert_eq!(v["Config"]["Labels"]["team"], "rbox");
    assert!(v["Config"]["ExposedPorts"]["8080/tcp"].is_object(), "{v}");
    // A bad change is refused before anything is made.
    let o = rrun(&["commit", "-c", "RUN rm -rf /", "live-commit", "bad-img"]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("not supported"), "{}", stderr(&o));
    assert_ne!(code(&rrun(&["inspect", "--type", "image", "bad-img"])), 0);
    assert_eq!(code(&rrun(&["rm", "-f", "live-commit"])), 0);
}

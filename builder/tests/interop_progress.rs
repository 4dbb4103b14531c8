//! Transfer progress of pull, push and load (quiet, plain lines off a
//! terminal, indicatif bars on one) and automatic cross-repository mounts,
//! against Debian's docker-registry on loopback.

mod interop_common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use engine::oci::export::{export_image, ExportCompression};
use engine::progress::{human_bytes, short_id};
use interop_common::*;

/// (sha256 digest, size) of every blob `image` pushes as: layers, then config.
fn blobs(root: &Path, image: &str) -> Vec<(String, u64)> {
    let store = engine::Store::open(root).unwrap();
    let img = store.find_image(image).unwrap();
    let ex = export_image(&store, &img, ExportCompression::Keep).unwrap();
    ex.layers
        .iter()
        .map(|l| &l.descriptor)
        .chain([&ex.config_descriptor])
        .map(|d| (d.digest.to_string(), d.size))
        .collect()
}

fn output(root: &Path, args: &[&str]) -> (String, String) {
    let out = rbuild(root, args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "rbuild {args:?} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

/// The plain line for a finished transfer of `digest` with `size` bytes.
fn done_line(verb: &str, digest: &str, size: u64) -> String {
    format!(
        "{verb}: {} {} done in ",
        short_id(digest),
        human_bytes(size)
    )
}

#[test]
fn quiet_pull_push_and_load_print_nothing() {
    let reg = Registry::start(None);
    let src = busybox_store();
    let remote = format!("{}/quiet/bb:1", reg.host());
    for args in [
        vec!["push", "-q", "busybox", &remote],
        vec!["push", "--quiet", "busybox", &remote],
    ] {
        let (stdout, stderr) = output(src.path(), &args);
        assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""), "{args:?}");
    }
    let dst = empty_store();
    let (stdout, stderr) = output(dst.path(), &["pull", "-q", &remote]);
    assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""));
    assert_eq!(resolve(dst.path(), &remote), resolve(src.path(), "busybox"));

    let work = tempfile::tempdir().unwrap();
    for format in ["oci", "docker-archive"] {
        let file = work.path().join(format!("bb-{format}.tar"));
        let file = file.to_str().unwrap();
        rbuild_ok(
            src.path(),
            &["save", "busybox", "-o", file, "--format", format],
        );
        let loaded = empty_store();
        let (stdout, stderr) = output(loaded.path(), &["load", "-q", "-i", file, "-t", "bb:q"]);
        assert_eq!((stdout.as_str(), stderr.as_str()), ("", ""), "{format}");
        assert_eq!(
            diff_ids(loaded.path(), "bb:q"),
            diff_ids(src.path(), "busybox"),
            "{format}: quiet load stored something else"
        );
    }
}

#[test]
fn without_a_terminal_plain_lines_name_each_blob_with_its_size() {
    let reg = Registry::start(None);
    let src = busybox_store();
    let blobs = blobs(src.path(), "busybox");
    let layers = &blobs[..blobs.len() - 1];
    let remote = format!("{}/plain/bb:1", reg.host());

    let (stdout, stderr) = output(src.path(), &["push", "busybox", &remote]);
    for (digest, size) in &blobs {
        let want = done_line("push", digest, *size);
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&want) && l.ends_with("/s)")),
            "no line {want:?}... in:\n{stderr}"
        );
    }
    assert!(
        stderr.contains(" manifest sha256:"),
        "no manifest line:\n{stderr}"
    );
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "bar redraws on a pipe:\n{stderr:?}"
    );
    assert!(
        stdout.starts_with("Pushed ") && !stdout.contains("done in"),
        "progress on stdout:\n{stdout}"
    );

    let dst = empty_store();
    let (_, stderr) = output(dst.path(), &["pull", &remote]);
    for (digest, size) in layers {
        let want = done_line("pull", digest, *size);
        assert!(
            stderr.lines().any(|l| l.starts_with(&want)),
            "no line {want:?}... in:\n{stderr}"
        );
        let unpacked = format!("unpack: {} ", short_id(digest));
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&unpacked) && l.contains(" unpacked in ")),
            "no unpack line for {digest} in:\n{stderr}"
        );
    }
    let (_, again) = output(dst.path(), &["pull", &remote]);
    assert!(
        again.contains("already exists") && !again.contains(" done in "),
        "a pull of what is here transferred again:\n{again}"
    );

    // load: one line per layer read from the file, one per layer unpacked.
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("bb.tar");
    let file = file.to_str().unwrap();
    rbuild_ok(src.path(), &["save", "busybox", "-o", file]);
    let loaded = empty_store();
    let (_, stderr) = output(loaded.path(), &["load", "-i", file]);
    for (digest, size) in layers {
        let want = done_line("load", digest, *size);
        assert!(
            stderr.lines().any(|l| l.starts_with(&want)),
            "no line {want:?}... in:\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("unpack: {} ", short_id(digest))),
            "no unpack line for {digest} in:\n{stderr}"
        );
    }
}

/// Run `rbuild ARGS` on a pseudo-terminal (util-linux `script`); returns
/// what the terminal showed.
fn on_a_pty(root: &Path, args: &[&str]) -> String {
    let script = require_tool("script");
    let mut cmd = vec![
        RBUILD.to_string(),
        "--root".into(),
        root.display().to_string(),
    ];
    cmd.extend(args.iter().map(|a| a.to_string()));
    let out = Command::new(script)
        .args(["-qefc", &cmd.join(" "), "/dev/null"])
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "rbuild {args:?} on a pty failed:\n{shown}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    shown
}

#[test]
fn on_a_terminal_indicatif_draws_bars() {
    let reg = Registry::start(None);
    let src = busybox_store();
    let remote = format!("{}/tty/bb:1", reg.host());
    let shown = on_a_pty(src.path(), &["push", "busybox", &remote]);
    let layer = &blobs(src.path(), "busybox")[0];
    assert!(
        shown.contains('\x1b') || shown.contains('\r'),
        "no bar redraws (\\r or ANSI escapes) on a terminal:\n{shown:?}"
    );
    // A bar was drawn, and it ends with the blob's size, time and rate.
    let finished = format!(
        "push {} {} done in ",
        short_id(&layer.0),
        human_bytes(layer.1)
    );
    assert!(
        (shown.contains("[=") || shown.contains("[>"))
            && shown.contains(&finished)
            && shown.contains("/s)"),
        "no finished bar for {layer:?}:\n{shown:?}"
    );
    let dst = empty_store();
    let shown = on_a_pty(dst.path(), &["pull", &remote]);
    assert!(
        (shown.contains('\x1b') || shown.contains('\r')) && shown.contains("unpack"),
        "no download and unpack bars on a terminal:\n{shown:?}"
    );
    assert_eq!(resolve(dst.path(), &remote), resolve(src.path(), "busybox"));
    // -q on a terminal: nothing at all.
    let quiet = on_a_pty(empty_store().path(), &["pull", "-q", &remote]);
    assert_eq!(quiet, "", "quiet pull on a terminal showed something");
}

/// Upload requests (POST without mount, PATCH, PUT) the registry logged
/// for blobs of `repo`.
fn blob_uploads(reg: &Registry, repo: &str) -> Vec<String> {
    let log = fs::read_to_string(reg.dir.path().join("log")).unwrap_or_default()
        + &fs::read_to_string(reg.dir.path().join("log.err")).unwrap_or_default();
    let prefix = format!("/v2/{repo}/blobs/uploads/");
    log.lines()
        .filter(|l| l.contains(&prefix))
        .filter(|l| {
            l.contains("\"PATCH ")
                || l.contains("\"PUT ")
                || (l.contains("\"POST ") && !l.contains("mount="))
        })
        .map(str::to_string)
        .collect()
}

fn mount_requests(reg: &Registry, repo: &str) -> usize {
    let log = fs::read_to_string(reg.dir.path().join("log")).unwrap_or_default()
        + &fs::read_to_string(reg.dir.path().join("log.err")).unwrap_or_default();
    let prefix = format!("\"POST /v2/{repo}/blobs/uploads/?mount=");
    log.lines().filter(|l| l.contains(&prefix)).count()
}

#[test]
fn cross_repository_mount_is_automatic() {
    let reg = Registry::start(None);
    let src = busybox_store();
    let blobs = blobs(src.path(), "busybox");
    let one = format!("{}/one/bb:1", reg.host());
    let (_, first) = output(src.path(), &["push", "busybox", &one]);
    assert!(first.contains(" done in "), "{first}");
    assert!(
        !blob_uploads(&reg, "one/bb").is_empty(),
        "the registry's access log shows no uploads to one (is its format as expected?):\n{}",
        fs::read_to_string(reg.dir.path().join("log")).unwrap_or_default()
    );

    // Same registry, another repository, no --mount-from: every blob mounts.
    let two = format!("{}/two/bb:1", reg.host());
    let (_, second) = output(src.path(), &["push", "busybox", &two]);
    for (digest, _) in &blobs {
        let want = format!("push: {} mounted from one/bb", short_id(digest));
        assert!(second.contains(&want), "no {want:?} in:\n{second}");
    }
    assert!(
        !second.contains(" done in "),
        "bytes uploaded despite the mount:\n{second}"
    );
    assert_eq!(
        blob_uploads(&reg, "two/bb"),
        Vec::<String>::new(),
        "the registry saw uploads to two"
    );
    assert_eq!(mount_requests(&reg, "two/bb"), blobs.len());
    for (digest, _) in &blobs {
        let hex = digest.strip_prefix("sha256:").unwrap();
        let link = reg
            .dir
            .path()
            .join("data/docker/registry/v2/repositories/two/bb/_layers/sha256")
            .join(hex)
            .join("link");
        assert!(link.exists(), "the registry did not link {digest} into two");
    }

    // A store that pulled from one remembers it too, and mounts from there.
    let other = empty_store();
    rbuild_ok(other.path(), &["pull", "-q", &one]);
    let three = format!("{}/three/bb:1", reg.host());
    let (_, third) = output(other.path(), &["push", &one, &three]);
    assert!(
        third.matches("mounted from one/bb").count() == blobs.len() && !third.contains(" done in "),
        "{third}"
    );
    assert!(blob_uploads(&reg, "three/bb").is_empty());

    // The image arrived whole: pull it from two and run it.
    let dst = empty_store();
    rbuild_ok(dst.path(), &["pull", "-q", &two]);
    assert_eq!(resolve(dst.path(), &two), resolve(src.path(), "busybox"));
    assert_eq!(
        rrun_ok(dst.path(), &two, &["echo", "mounted"]).trim(),
        "mounted"
    );
}

#[test]
fn a_refused_mount_falls_back_to_an_upload() {
    let reg = Registry::start(None);
    let src = busybox_store();
    let blobs = blobs(src.path(), "busybox");
    // The store believes a repository holds the blobs that never got them:
    // the registry answers the mount with 202 and an upload session.
    {
        let store = engine::Store::open(src.path()).unwrap();
        for (digest, _) in &blobs {
            engine::oci::sources::record(&store, &digest.parse().unwrap(), &reg.host(), "ghost")
                .unwrap();
        }
    }
    let real = format!("{}/real/bb:1", reg.host());
    let (_, err) = output(src.path(), &["push", "busybox", &real]);
    for (digest, size) in &blobs {
        let want = done_line("push", digest, *size);
        assert!(err.contains(&want), "no {want:?} in:\n{err}");
    }
    assert!(!err.contains("mounted from"), "{err}");
    assert_eq!(mount_requests(&reg, "real/bb"), blobs.len());
    let dst = empty_store();
    rbuild_ok(dst.path(), &["pull", "-q", &real]);
    assert_eq!(resolve(dst.path(), &real), resolve(src.path(), "busybox"));
}

//! Registries on loopback: Debian's docker-registry (plain and with
//! htpasswd basic auth), skopeo against what we push, and a tiny registry of
//! the test's own for the Bearer token flow and for faults.

mod interop_common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use interop_common::*;

#[test]
fn push_pull_run_through_docker_registry() {
    let reg = Registry::start(None);
    let src = busybox_store();
    let remote = format!("{}/team/bb:v1", reg.host());
    let out = rbuild(src.path(), &["push", "busybox", &remote]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains("push: sha256:")
            && progress.contains(" done in ")
            && progress.contains("/s)"),
        "no progress lines: {progress}"
    );
    // Again: every blob is already there (HEAD), nothing is uploaded.
    let again = rbuild(src.path(), &["push", "busybox", &remote]);
    let again_err = String::from_utf8_lossy(&again.stderr);
    assert!(
        again.status.success()
            && again_err.contains("already exists")
            && !again_err.contains(" done in "),
        "{again_err}"
    );
    // Cross-repository mount into another repository of the same registry.
    let mounted = rbuild(
        src.path(),
        &[
            "push",
            "busybox",
            &format!("{}/other/bb:m", reg.host()),
            "--mount-from",
            "team/bb",
        ],
    );
    assert!(
        String::from_utf8_lossy(&mounted.stderr).contains("mounted from team/bb"),
        "{}",
        String::from_utf8_lossy(&mounted.stderr)
    );
    // Chunked upload, gzip layers, to a third repository.
    let chunked = format!("{}/chunked/bb:gz", reg.host());
    rbuild_ok(
        src.path(),
        &[
            "push",
            "busybox",
            &chunked,
            "--chunk-size",
            "65536",
            "--compression",
            "gzip",
            "-q",
        ],
    );

    // `rrun run REF` pulls a missing image, as `docker run` does.
    let on_demand = empty_store();
    assert_eq!(
        rrun_ok(on_demand.path(), &remote, &["echo", "pulled on run"]).trim(),
        "pulled on run"
    );
    assert_eq!(
        resolve(on_demand.path(), &remote),
        resolve(src.path(), "busybox")
    );

    let dst = empty_store();
    let out = rbuild_ok(dst.path(), &["pull", &remote]);
    assert!(out.contains("Pulled"), "{out}");
    assert_eq!(
        resolve(dst.path(), &remote),
        resolve(src.path(), "busybox"),
        "the pulled image is not the pushed one"
    );
    assert_eq!(
        rrun_ok(dst.path(), &remote, &["echo", "pulled"]).trim(),
        "pulled"
    );
    rbuild_ok(dst.path(), &["pull", "-q", &chunked]);
    assert_eq!(
        diff_ids(dst.path(), &chunked),
        diff_ids(src.path(), "busybox")
    );
    assert_eq!(rrun_ok(dst.path(), &chunked, &["echo", "gz"]).trim(), "gz");
    // Pull of what is already here downloads no layer (only the small config).
    let again = rbuild(dst.path(), &["pull", &remote]);
    let again_err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{again_err}");
    assert!(
        again_err.contains("already exists") && !again_err.contains(" done in "),
        "layers downloaded again: {again_err}"
    );
}

#[test]
fn skopeo_reads_what_we_push_and_we_read_what_it_pushes() {
    require_tool("skopeo");
    let reg = Registry::start(None);
    let src = busybox_store();
    let work = tempfile::tempdir().unwrap();
    // gzip: skopeo 1.9 converts to docker formats, which have no zstd.
    let remote = format!("{}/ours/bb:1", reg.host());
    rbuild_ok(
        src.path(),
        &["push", "busybox", &remote, "--compression", "gzip", "-q"],
    );
    let oci = work.path().join("skopeo-oci");
    run_tool(
        Command::new("skopeo")
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{remote}"))
            .arg(format!("oci:{}:s", oci.display())),
    );
    let dst = empty_store();
    rbuild_ok(
        dst.path(),
        &[
            "load",
            "-i",
            &format!("oci:{}:s", oci.display()),
            "-t",
            "via-skopeo:1",
        ],
    );
    assert_eq!(
        diff_ids(dst.path(), "via-skopeo:1"),
        diff_ids(src.path(), "busybox")
    );
    // And back: skopeo pushes our layout (zstd) to the registry, we pull it.
    let layout = work.path().join("layout");
    rbuild_ok(
        src.path(),
        &[
            "save",
            "busybox",
            "-o",
            &format!("oci:{}:z", layout.display()),
        ],
    );
    let theirs = format!("{}/theirs/bb:z", reg.host());
    run_tool(
        Command::new("skopeo")
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:z", layout.display()))
            .arg(format!("docker://{theirs}")),
    );
    rbuild_ok(dst.path(), &["pull", "-q", &theirs]);
    assert_eq!(
        diff_ids(dst.path(), &theirs),
        diff_ids(src.path(), "busybox")
    );
    assert_eq!(
        rrun_ok(dst.path(), &theirs, &["echo", "back"]).trim(),
        "back"
    );
    // A docker v2 schema 2 manifest (skopeo --format v2s2) pulls too.
    let v2 = format!("{}/docker/bb:v2s2", reg.host());
    run_tool(
        Command::new("skopeo")
            .args([
                "copy",
                "--format",
                "v2s2",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
            ])
            .arg(format!("docker://{remote}"))
            .arg(format!("docker://{v2}")),
    );
    rbuild_ok(dst.path(), &["pull", "-q", &v2]);
    assert_eq!(diff_ids(dst.path(), &v2), diff_ids(src.path(), "busybox"));
}

#[test]
fn basic_auth_with_htpasswd_and_login() {
    let htpasswd = require_tool("htpasswd");
    let line = run_tool(Command::new(htpasswd).args(["-Bbn", "alice", "s3cret"]));
    let reg = Registry::start(Some(line.trim()));
    let src = busybox_store();
    let remote = format!("{}/private/bb:1", reg.host());
    let err = rbuild_err(src.path(), &["push", "busybox", &remote]);
    assert!(err.contains("rbuild login"), "no hint to log in: {err}");
    let err = rbuild_err(
        src.path(),
        &["login", &reg.host(), "-u", "alice", "-p", "wrong"],
    );
    assert!(
        err.contains("wrong username or password") || err.contains("not authorised"),
        "{err}"
    );
    assert!(!src.path().join("auth.json").exists());
    rbuild_ok(
        src.path(),
        &["login", &reg.host(), "-u", "alice", "-p", "s3cret"],
    );
    let mode = fs::metadata(src.path().join("auth.json"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "auth.json is readable by others");
    rbuild_ok(src.path(), &["push", "-q", "busybox", &remote]);
    // The same credentials in another store: pull.
    let dst = empty_store();
    rbuild_err(dst.path(), &["pull", &remote]);
    fs::copy(src.path().join("auth.json"), dst.path().join("auth.json")).unwrap();
    rbuild_ok(dst.path(), &["pull", "-q", &remote]);
    assert_eq!(resolve(dst.path(), &remote), resolve(src.path(), "busybox"));
    rbuild_ok(dst.path(), &["logout", &reg.host()]);
    let dst2 = empty_store();
    fs::copy(dst.path().join("auth.json"), dst2.path().join("auth.json")).unwrap();
    rbuild_err(dst2.path(), &["pull", &remote]);
}

/// `--authfile` / `$RBOX_AUTH_FILE`: one credentials file (here shaped as
/// Docker's config.json, with a key of its own) for several stores and rrun.
#[test]
fn an_auth_file_outside_the_store_serves_several_stores() {
    let htpasswd = require_tool("htpasswd");
    let line = run_tool(Command::new(htpasswd).args(["-Bbn", "bob", "pw0"]));
    let reg = Registry::start(Some(line.trim()));
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("docker/config.json");
    fs::create_dir(work.path().join("docker")).unwrap();
    fs::write(
        &file,
        r#"{"auths": {}, "HttpHeaders": {"User-Agent": "kept"}}"#,
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let src = busybox_store();
    let remote = format!("{}/shared/bb:1", reg.host());
    rbuild_ok(
        src.path(),
        &[
            "login",
            &reg.host(),
            "-u",
            "bob",
            "-p",
            "pw0",
            "--authfile",
            f,
        ],
    );
    assert!(
        !src.path().join("auth.json").exists(),
        "login wrote the store's file, not --authfile"
    );
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["HttpHeaders"]["User-Agent"], "kept", "{v}");
    assert!(v["auths"][reg.host()]["auth"].is_string(), "{v}");
    let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{f} is readable by others");
    rbuild_err(src.path(), &["push", "-q", "busybox", &remote]);
    rbuild_ok(
        src.path(),
        &["push", "-q", "busybox", &remote, "--authfile", f],
    );

    let with_env = |root: &std::path::Path, bin: &std::path::Path, args: &[&str]| {
        let out = Command::new(bin)
            .arg("--root")
            .arg(root)
            .args(args)
            .env("RBOX_AUTH_FILE", &file)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let dst = empty_store();
    rbuild_err(dst.path(), &["pull", "-q", &remote]);
    let (ok, text) = with_env(dst.path(), RBUILD.as_ref(), &["pull", "-q", &remote]);
    assert!(ok, "pull with $RBOX_AUTH_FILE failed: {text}");
    assert_eq!(resolve(dst.path(), &remote), resolve(src.path(), "busybox"));
    // rrun's pull-on-run reads the same variable.
    let run = empty_store();
    let (ok, text) = with_env(
        run.path(),
        &rrun_path(),
        &["run", "--rm", &remote, "echo", "from the shared file"],
    );
    assert!(ok && text.contains("from the shared file"), "{text}");

    rbuild_ok(dst.path(), &["logout", &reg.host(), "--authfile", f]);
    let v: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    assert!(v["auths"].get(reg.host()).is_none(), "{v}");
    assert_eq!(v["HttpHeaders"]["User-Agent"], "kept", "{v}");
    let (ok, _) = with_env(
        empty_store().path(),
        RBUILD.as_ref(),
        &["pull", "-q", &remote],
    );
    assert!(!ok, "pull succeeded after logout");
}

/// The tiny registry serves a layout saved by us (gzip layers, as Hub has them).
fn tiny_layout(work: &std::path::Path) -> (tempfile::TempDir, std::path::PathBuf) {
    let src = busybox_store();
    let layout = work.join("tiny-layout");
    rbuild_ok(
        src.path(),
        &[
            "save",
            "busybox",
            "--compression",
            "gzip",
            "-o",
            &format!("oci:{}", layout.display()),
        ],
    );
    (src, layout)
}

#[test]
fn bearer_token_flow() {
    let work = tempfile::tempdir().unwrap();
    let (src, layout) = tiny_layout(work.path());
    let tiny = TinyRegistry::start(TinyConfig {
        layout,
        bearer: Some(("bob".into(), "pw".into())),
        fault: Fault::None,
    });
    let remote = format!("{}/tiny/app:latest", tiny.host());
    // Without credentials the token server refuses.
    let dst = empty_store();
    let err = rbuild_err(dst.path(), &["pull", &remote]);
    assert!(err.contains("token server refused"), "{err}");
    rbuild_ok(
        dst.path(),
        &["login", &tiny.host(), "-u", "bob", "-p", "pw"],
    );
    let before = tiny
        .token_requests
        .load(std::sync::atomic::Ordering::SeqCst);
    rbuild_ok(dst.path(), &["pull", "-q", &remote]);
    assert!(
        tiny.token_requests
            .load(std::sync::atomic::Ordering::SeqCst)
            > before,
        "no token was fetched"
    );
    assert_eq!(
        diff_ids(dst.path(), &remote),
        diff_ids(src.path(), "busybox")
    );
    assert_eq!(
        rrun_ok(dst.path(), &remote, &["echo", "token"]).trim(),
        "token"
    );
}

#[test]
fn a_registry_that_goes_away_mid_pull_leaves_no_image() {
    let work = tempfile::tempdir().unwrap();
    let (_src, layout) = tiny_layout(work.path());
    let tiny = TinyRegistry::start(TinyConfig {
        layout,
        bearer: None,
        fault: Fault::Truncate,
    });
    let dst = empty_store();
    let err = rbuild_err(dst.path(), &["pull", &format!("{}/tiny/app", tiny.host())]);
    assert!(
        err.contains("download or read failed") || err.contains("bytes, but the descriptor says"),
        "unclear error: {err}"
    );
    eprintln!("mid-pull failure reads: {err}");
    assert_store_empty(dst.path());
    assert_eq!(
        fs::read_dir(dst.path().join("tmp")).unwrap().count(),
        0,
        "temp files left behind"
    );
}

/// SIGTERM, SIGINT or SIGHUP in the middle of a pull (rbuild pull, and
/// rrun run pulling a missing image): the session's temp files are removed
/// before the process dies of the signal, and nothing is stored.
#[test]
fn a_pull_ended_by_a_signal_removes_its_temp_files() {
    use nix::sys::signal::{kill, Signal};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let work = tempfile::tempdir().unwrap();
    let (_src, layout) = tiny_layout(work.path());
    let cases = [
        (RBUILD.to_string(), "pull", Signal::SIGTERM),
        (rrun_path().display().to_string(), "run", Signal::SIGTERM),
        (RBUILD.to_string(), "pull", Signal::SIGINT),
        (rrun_path().display().to_string(), "run", Signal::SIGHUP),
    ];
    for (bin, cmd, sig) in cases {
        // One registry per pull: it serves one connection at a time.
        let tiny = TinyRegistry::start(TinyConfig {
            layout: layout.clone(),
            bearer: None,
            fault: Fault::Stall,
        });
        let dst = empty_store();
        let remote = format!("{}/tiny/app", tiny.host());
        let mut c = Command::new(&bin);
        c.arg("--root").arg(dst.path()).arg(cmd);
        if cmd == "run" {
            c.args(["--rm", &remote, "true"]);
        } else {
            c.args(["-q", &remote]);
        }
        let mut child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let tmp = dst.path().join("tmp");
        let deadline = Instant::now() + Duration::from_secs(60);
        // Wait until a blob is half written into the session dir.
        loop {
            let writing = fs::read_dir(&tmp).into_iter().flatten().flatten().any(|s| {
                fs::read_dir(s.path())
                    .map(|rd| {
                        rd.flatten()
                            .any(|f| f.metadata().is_ok_and(|m| m.len() > 0))
                    })
                    .unwrap_or(false)
            });
            if writing {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{cmd}: the pull never started writing"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(sig as i32), "{cmd} {sig}: {status:?}");
        assert_eq!(
            fs::read_dir(&tmp).unwrap().count(),
            0,
            "{cmd} {sig}: temp files left behind"
        );
        // Whole blobs may have landed (the manifest, the config); no image.
        assert_eq!(
            fs::read_dir(dst.path().join("images")).unwrap().count(),
            0,
            "{cmd} {sig}: an image was tagged"
        );
    }
}

#[test]
fn a_blob_with_a_wrong_digest_is_refused_and_nothing_stored() {
    let work = tempfile::tempdir().unwrap();
    let (_src, layout) = tiny_layout(work.path());
    let tiny = TinyRegistry::start(TinyConfig {
        layout,
        bearer: None,
        fault: Fault::Corrupt,
    });
    let dst = empty_store();
    let err = rbuild_err(dst.path(), &["pull", &format!("{}/tiny/app", tiny.host())]);
    assert!(err.contains("hashes to"), "unclear error: {err}");
    assert_store_empty(dst.path());
}

/// An image index (as Hub serves multi-arch images): linux/amd64 by default,
/// `--platform` picks another, an absent platform is named in the error.
#[test]
fn image_index_platform_selection() {
    let work = tempfile::tempdir().unwrap();
    let (src, layout) = tiny_layout(work.path());
    let index_path = layout.join("index.json");
    let top: serde_json::Value = serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    let amd64 = top["manifests"][0].clone();
    let missing = "sha256:".to_string() + &"ab".repeat(32);
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": missing, "size": 500,
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
            {"mediaType": amd64["mediaType"], "digest": amd64["digest"], "size": amd64["size"],
             "platform": {"architecture": "amd64", "os": "linux"}}
        ]
    })).unwrap();
    let nd = engine::Digest::sha256_of(&nested);
    fs::write(layout.join("blobs/sha256").join(nd.hex()), &nested).unwrap();
    fs::write(&index_path, serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": nd.to_string(), "size": nested.len()}]
    })).unwrap()).unwrap();
    let tiny = TinyRegistry::start(TinyConfig {
        layout: layout.clone(),
        bearer: None,
        fault: Fault::None,
    });
    let remote = format!("{}/tiny/multi:latest", tiny.host());
    let dst = empty_store();
    rbuild_ok(dst.path(), &["pull", "-q", &remote]);
    assert_eq!(
        diff_ids(dst.path(), &remote),
        diff_ids(src.path(), "busybox")
    );
    let err = rbuild_err(dst.path(), &["pull", "--platform", "linux/arm64", &remote]);
    assert!(
        err.contains(&missing[7..]) && err.contains("404"),
        "the arm64 manifest was not the one asked for: {err}"
    );
    let err = rbuild_err(dst.path(), &["pull", "--platform", "linux/s390x", &remote]);
    assert!(
        err.contains("linux/amd64") && err.contains("linux/arm64/v8"),
        "error does not list the platforms: {err}"
    );
    // The same index in a layout directory loads the amd64 image too.
    let dst2 = empty_store();
    rbuild_ok(
        dst2.path(),
        &[
            "load",
            "-i",
            &format!("oci:{}", layout.display()),
            "-t",
            "multi:1",
        ],
    );
    assert_eq!(
        diff_ids(dst2.path(), "multi:1"),
        diff_ids(src.path(), "busybox")
    );
}

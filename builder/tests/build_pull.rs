//! `FROM` an image the store does not have pulls it from its registry, as
//! `docker build` does; `--pull` pulls again, `--pull=never` refuses.
//! Also `--iidfile` and `--label`. A docker-registry on loopback.

mod interop_common;

use std::fs;

use interop_common::*;

#[test]
fn from_pulls_a_missing_base_and_labels_and_iidfile_apply() {
    let reg = Registry::start(None);
    let src = busybox_store();
    let remote = format!("{}/base/bb:v1", reg.host());
    rbuild_ok(src.path(), &["push", "busybox", &remote]);

    let store = empty_store();
    let ctx = tempfile::tempdir().unwrap();
    fs::write(
        ctx.path().join("Containerfile"),
        format!("FROM {remote}\nLABEL from=file\nRUN echo built > /b\n"),
    )
    .unwrap();
    let ctxp = ctx.path().to_str().unwrap();
    // Never: the base is missing and nothing may be pulled.
    let err = rbuild_err(
        store.path(),
        &["build", "--pull=never", "-t", "app:1", ctxp],
    );
    assert!(err.contains(&remote) && err.contains("not found"), "{err}");
    assert!(resolve(store.path(), &remote).is_none());

    let iid = ctx.path().join("iid");
    let out = rbuild(
        store.path(),
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "app:1",
            "--label",
            "team=infra",
            "--label",
            "from=flag",
            "--iidfile",
            iid.to_str().unwrap(),
            ctxp,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("pulling {remote}")), "{stderr}");
    assert!(
        resolve(store.path(), &remote).is_some(),
        "the base was not kept"
    );
    assert_eq!(rrun_ok(store.path(), "app:1", &["cat", "/b"]), "built\n");
    let id = fs::read_to_string(&iid).unwrap();
    assert_eq!(Some(id.clone()), resolve(store.path(), "app:1"));
    let cfg = rbuild_ok(store.path(), &["inspect", "app:1"]);
    assert!(
        cfg.contains("\"team\": \"infra\"") && cfg.contains("\"from\": \"flag\""),
        "{cfg}"
    );

    // Present now: a second build does not pull; --pull does.
    let out = rbuild(
        store.path(),
        &["build", "--progress", "plain", "-t", "app:2", ctxp],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("pulling"),
        "{stderr}"
    );
    let out = rbuild(
        store.path(),
        &[
            "build",
            "--pull",
            "--progress",
            "plain",
            "-t",
            "app:3",
            ctxp,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains(&format!("pulling {remote}")),
        "{stderr}"
    );
}

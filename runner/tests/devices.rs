//! Device access, as Docker's default: a container may create any device
//! node (CAP_MKNOD is one of the default 14) but open only null, zero,
//! full, random, urandom, tty, console, ptmx and the ptys; `--privileged`
//! opens anything. Without the cgroup's device control a container could
//! mknod the host's disk or console and use it. Both cgroup lanes.

mod common;

use common::*;

/// Opens a node made with mknod, for read and write; prints what happened.
const PROBE: &str = "mknod /tmp/fuse c 10 229 && echo mknod-ok; \
    (exec 3<>/tmp/fuse) 2>/dev/null && echo fuse-opened || echo fuse-refused; \
    mknod /tmp/null2 c 1 3 && echo x > /tmp/null2 && echo null2-usable; \
    mknod /tmp/full2 c 1 7 && (echo x > /tmp/full2) 2>&1 | grep -q 'No space' && echo full2-usable; \
    head -c 8 /dev/urandom | wc -c";

#[test]
fn only_dockers_default_devices_open() {
    let o = rrun(&["run", "--rm", "busybox", "sh", "-c", PROBE]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "mknod-ok\nfuse-refused\nnull2-usable\nfull2-usable\n8\n",
        "{}",
        stderr(&o)
    );
    // The refusal is the cgroup's (EPERM), not a missing node or driver.
    let o = rrun(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "mknod /tmp/tty0 c 4 0; exec 3</tmp/tty0",
    ]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("Operation not permitted"),
        "opening the host console's node: {}",
        stderr(&o)
    );
}

#[test]
fn privileged_opens_any_device() {
    let o = rrun(&["run", "--rm", "--privileged", "busybox", "sh", "-c", PROBE]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    // /dev/fuse may lack a driver in the guest (ENODEV), but never EPERM.
    let o2 = rrun(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        "mknod /tmp/fuse c 10 229; exec 3<>/tmp/fuse",
    ]);
    assert!(
        !stderr(&o2).contains("Operation not permitted"),
        "--privileged was refused a device: {} / {out}",
        stderr(&o2)
    );
}

/// The same policy through an external OCI runtime: the bundle's device
/// rules (before, they ignored --privileged and had no mknod rules).
#[test]
fn oci_runtimes_get_the_same_device_rules() {
    for runtime in ["crun", "runc"] {
        let o = rrun(&[
            "run",
            "--rm",
            "--runtime",
            runtime,
            "busybox",
            "sh",
            "-c",
            PROBE,
        ]);
        assert_eq!(code(&o), 0, "{runtime}: {}", stderr(&o));
        assert_eq!(
            stdout(&o),
            "mknod-ok\nfuse-refused\nnull2-usable\nfull2-usable\n8\n",
            "{runtime}: {}",
            stderr(&o)
        );
        let o = rrun(&[
            "run",
            "--rm",
            "--runtime",
            runtime,
            "--privileged",
            "busybox",
            "sh",
            "-c",
            "mknod /tmp/fuse c 10 229; exec 3<>/tmp/fuse",
        ]);
        assert!(
            !stderr(&o).contains("Operation not permitted"),
            "{runtime} --privileged was refused a device: {}",
            stderr(&o)
        );
    }
}

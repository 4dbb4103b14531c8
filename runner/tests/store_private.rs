//! A container's upper dir is root's alone: a setuid-root file a container
//! writes is out of another local user's reach, while the container's own
//! non-root user still uses its root file system as before.

mod common;

use std::fs;
use std::process::{Command, Output};

use common::*;

/// `argv` as nobody: setpriv execs `env` with root's capabilities still
/// effective (they go with that exec), `env` execs `argv` as plain nobody.
fn as_nobody(argv: &[&str]) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid",
            "65534",
            "--regid",
            "65534",
            "--clear-groups",
            "--",
        ])
        .args(["env", "--"])
        .args(argv)
        .output()
        .expect("run setpriv (util-linux)")
}

#[test]
fn another_user_cannot_run_a_setuid_file_a_container_wrote() {
    let o = rrun(&[
        "run",
        "--name",
        "store-private-suid",
        "-v",
        "/usr/bin:/hostbin:ro",
        "busybox",
        "sh",
        "-c",
        "cp /hostbin/id /sus && chmod 4755 /sus",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // By its id: the other test of this binary runs containers beside it.
    let id = stdout(&rrun(&["inspect", "-f", "{{.Id}}", "store-private-suid"]));
    let dir = store_root().join("containers").join(id.trim());
    assert!(dir.is_dir(), "no directory for container {id:?}");
    let sus = dir.join("upper/sus");
    let mode = fs::metadata(&sus)
        .expect("the container's file")
        .permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o7777,
        0o4755
    );

    let o = as_nobody(&[sus.to_str().unwrap(), "-u"]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let _ = rrun(&["rm", "store-private-suid"]);
    assert!(
        !o.status.success() && out.trim() != "0",
        "nobody ran the container's setuid-root file: {:?} {out:?} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    let o = as_nobody(&["ls", store_root().join("containers").to_str().unwrap()]);
    assert!(!o.status.success(), "nobody listed the containers");
}

#[test]
fn a_non_root_container_user_still_reaches_its_root_file_system() {
    let o = sh(
        &["-u", "1000:1000"],
        "ls / >/dev/null && cat /etc/passwd >/dev/null && ls /bin/sh >/dev/null && id -u",
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "1000");
}

//! `rbuild build --output`: the built stage's files into a directory, a
//! tar file or standard output, for real, as root.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use common::*;

const FILE: &str = "FROM busybox AS build
RUN mkdir -p /out/etc && echo built > /out/etc/hostname && chmod 0640 /out/etc/hostname && ln -s /etc/shadow /out/link
FROM scratch
COPY --from=build --chown=12:34 /out /
";

fn tar_list(tar: &std::path::Path) -> String {
    let o = Command::new("tar").arg("-tvf").arg(tar).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn output_writes_the_final_stage_into_a_directory_without_following_symlinks() {
    let ctx = context(&[("Containerfile", FILE)]);
    let dest = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    // A symlink already in the destination, pointing out of it.
    std::os::unix::fs::symlink(outside.path(), dest.path().join("etc")).unwrap();
    let spec = format!("type=local,dest={}", dest.path().display());
    build_ok(
        "out:local",
        ctx.path(),
        &["--network", "none", "--output", &spec],
    );

    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "a file went through the destination's symlink"
    );
    let f = dest.path().join("etc/hostname");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "built\n");
    let m = std::fs::symlink_metadata(&f).unwrap();
    assert_eq!(
        (m.permissions().mode() & 0o7777, m.uid(), m.gid()),
        (0o640, 12, 34)
    );
    assert_eq!(
        std::fs::read_link(dest.path().join("link")).unwrap(),
        std::path::Path::new("/etc/shadow"),
        "the image's symlink is copied as a symlink"
    );
    // The image is stored and tagged as well.
    assert!(stdout(&rbuild(&["images"])).contains("out"));
}

#[test]
fn output_writes_a_tar_file_or_a_tar_on_stdout() {
    let ctx = context(&[("Containerfile", FILE)]);
    let dir = tempfile::tempdir().unwrap();
    let tar = dir.path().join("out.tar");
    let spec = format!("type=tar,dest={}", tar.display());
    let o = build_ok("out:tar", ctx.path(), &["--network", "none", "-o", &spec]);
    let list = tar_list(&tar);
    assert!(list.contains("etc/hostname"), "{list}");
    assert!(list.contains("link -> /etc/shadow"), "{list}");
    assert!(
        stdout(&o).starts_with("sha256:") || stdout(&o).len() > 12,
        "the id is printed"
    );

    // `-o -`: the tar is all of standard output (no image id after it).
    let o = build_ok("out:stdout", ctx.path(), &["--network", "none", "-o", "-"]);
    let piped = dir.path().join("piped.tar");
    std::fs::write(&piped, &o.stdout).unwrap();
    assert_eq!(tar_list(&piped), list);
}

#[test]
fn a_bad_output_spec_is_refused_naming_it() {
    let ctx = context(&[("Containerfile", FILE)]);
    let o = rbuild(&[
        "build",
        "--progress",
        "plain",
        "-o",
        "type=registry,dest=x",
        ctx.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("type \"registry\" is not supported"),
        "{}",
        stderr(&o)
    );
}

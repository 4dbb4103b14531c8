//! `rrun cp` against real containers, running and stopped: both
//! directions, trees, modes and owners (`-a`), tar streams on stdin and
//! stdout, and a hostile container whose symlinks point at the host.

mod common;

use common::*;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;

fn ok(o: &std::process::Output) -> String {
    assert_eq!(code(o), 0, "stderr: {}", stderr(o));
    stdout(o)
}

fn detached(name: &str, script: &str) {
    ok(&rrun(&[
        "run", "-d", "--name", name, "busybox", "sh", "-c", script,
    ]));
}

fn exec(name: &str, script: &str) -> String {
    ok(&rrun(&["exec", name, "sh", "-c", script]))
}

fn tmpdir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(tag).tempdir().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A host tree: f.txt (0640, owned 4321:4321), tree/sub/deep.txt, tree/link -> sub.
fn host_tree(t: &Path) {
    std::fs::write(t.join("f.txt"), "file body\n").unwrap();
    std::fs::set_permissions(t.join("f.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(t.join("f.txt"), Some(4321), Some(4321)).unwrap();
    std::fs::create_dir_all(t.join("tree/sub")).unwrap();
    std::fs::write(t.join("tree/sub/deep.txt"), "deep\n").unwrap();
    std::fs::set_permissions(t.join("tree/sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::os::unix::fs::symlink("sub", t.join("tree/link")).unwrap();
}

#[test]
fn cp_into_and_out_of_a_running_container() {
    let t = tmpdir("cp-run");
    host_tree(t.path());
    detached("cp-run", "sleep 60");
    let into = |src: &str, dest: &str, extra: &[&str]| {
        let mut a = vec!["cp"];
        a.extend_from_slice(extra);
        a.extend_from_slice(&[src, dest]);
        ok(&rrun(&a));
    };
    let f = t.path().join("f.txt");
    // A file into an existing directory: its own name, its mode, root's.
    into(s(&f), "cp-run:/tmp", &[]);
    assert_eq!(
        exec("cp-run", "cat /tmp/f.txt; stat -c '%a %u:%g' /tmp/f.txt"),
        "file body\n640 0:0\n"
    );
    // -a keeps the owner; a missing destination is the new name.
    into(s(&f), "cp-run:/tmp/kept.txt", &["-a"]);
    assert_eq!(
        exec("cp-run", "stat -c '%a %u:%g' /tmp/kept.txt"),
        "640 4321:4321\n"
    );
    // Onto an existing file: replaced.
    exec("cp-run", "echo old > /tmp/over.txt");
    into(s(&f), "cp-run:/tmp/over.txt", &[]);
    assert_eq!(exec("cp-run", "cat /tmp/over.txt"), "file body\n");
    // A tree onto a missing path becomes that path, recursively, links as links.
    into(s(&t.path().join("tree")), "cp-run:/tmp/tree2", &[]);
    assert_eq!(
        exec(
            "cp-run",
            "cat /tmp/tree2/sub/deep.txt; readlink /tmp/tree2/link; stat -c %a /tmp/tree2/sub"
        ),
        "deep\nsub\n750\n"
    );
    // A tree into an existing directory lands under its own name; `/.`
    // copies its contents.
    into(s(&t.path().join("tree")), "cp-run:/tmp/tree2", &[]);
    assert_eq!(exec("cp-run", "cat /tmp/tree2/tree/sub/deep.txt"), "deep\n");
    exec("cp-run", "mkdir /tmp/flat");
    into(
        &format!("{}/.", s(&t.path().join("tree"))),
        "cp-run:/tmp/flat",
        &[],
    );
    assert_eq!(exec("cp-run", "cat /tmp/flat/sub/deep.txt"), "deep\n");

    // -L copies what a link points at, under the link's name.
    into(
        s(&t.path().join("tree/link")),
        "cp-run:/tmp/followed",
        &["-L"],
    );
    assert_eq!(exec("cp-run", "cat /tmp/followed/deep.txt"), "deep\n");
    into(s(&t.path().join("tree/link")), "cp-run:/tmp/as-link", &[]);
    assert_eq!(exec("cp-run", "readlink /tmp/as-link"), "sub\n");

    // Out of the container: the invoking user's owner, or the container's with -a.
    exec(
        "cp-run",
        "mkdir -p /out/d && echo made > /out/d/m.txt && chown -R 1234:1234 /out && chmod 751 /out/d/m.txt",
    );
    let host = t.path().join("back");
    ok(&rrun(&["cp", "cp-run:/out/d", s(&host)]));
    let md = std::fs::metadata(host.join("m.txt")).unwrap();
    assert_eq!(
        std::fs::read_to_string(host.join("m.txt")).unwrap(),
        "made\n"
    );
    assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o751, 0, 0));
    ok(&rrun(&[
        "cp",
        "-a",
        "cp-run:/out/d/m.txt",
        s(&t.path().join("m2")),
    ]));
    let md = std::fs::metadata(t.path().join("m2")).unwrap();
    assert_eq!(
        (md.mode() & 0o7777, md.uid(), md.gid()),
        (0o751, 1234, 1234)
    );
    // Into an existing host directory: under its own name.
    ok(&rrun(&["cp", "cp-run:/out/d", s(&host)]));
    assert!(host.join("d/m.txt").is_file());
    assert_eq!(code(&rrun(&["rm", "-f", "cp-run"])), 0);
}

#[test]
fn cp_works_on_a_stopped_container() {
    let t = tmpdir("cp-stopped");
    host_tree(t.path());
    let o = rrun(&[
        "run",
        "--name",
        "cp-stopped",
        "busybox",
        "sh",
        "-c",
        "echo hi > /made",
    ]);
    ok(&o);
    let out = t.path().join("made");
    ok(&rrun(&["cp", "cp-stopped:/made", s(&out)]));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hi\n");
    // Image content is there too (the overlay, not just the upper dir).
    ok(&rrun(&[
        "cp",
        "cp-stopped:/bin/busybox",
        s(&t.path().join("bb")),
    ]));
    assert!(std::fs::metadata(t.path().join("bb")).unwrap().len() > 100_000);
    // In, then out again.
    ok(&rrun(&[
        "cp",
        s(&t.path().join("tree")),
        "cp-stopped:/tree",
    ]));
    ok(&rrun(&[
        "cp",
        "cp-stopped:/tree/sub/deep.txt",
        s(&t.path().join("d")),
    ]));
    assert_eq!(
        std::fs::read_to_string(t.path().join("d")).unwrap(),
        "deep\n"
    );
    // It went into the container's own upper dir.
    let o = ok(&rrun(&["inspect", "-f", "{{.Id}}", "cp-stopped"]));
    let upper = store_root().join("containers").join(o.trim()).join("upper");
    assert!(upper.join("tree/sub/deep.txt").is_file());
    assert_eq!(code(&rrun(&["rm", "cp-stopped"])), 0);
}

#[test]
fn cp_streams_tar_both_ways() {
    detached(
        "cp-tar",
        "mkdir -p /data/sub && echo one > /data/sub/a && sleep 60",
    );
    // Wait for the directory to exist.
    let mut tries = 0;
    while exec("cp-tar", "ls /data/sub 2>/dev/null || true").is_empty() {
        tries += 1;
        assert!(tries < 200, "the container never made /data");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = rrun(&["cp", "cp-tar:/data", "-"]);
    let bytes = o.stdout.clone();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut names = Vec::new();
    let mut a = tar::Archive::new(&bytes[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        if name == "data/sub/a" {
            let mut body = String::new();
            std::io::Read::read_to_string(&mut e, &mut body).unwrap();
            assert_eq!(body, "one\n");
        }
        names.push(name);
    }
    assert_eq!(names, ["data/", "data/sub/", "data/sub/a"]);

    // A tar on stdin into a directory of the container.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o600);
    h.set_uid(777);
    h.set_gid(778);
    b.append_data(&mut h, "in/x.txt", &b"xyz\n"[..]).unwrap();
    let stream = b.into_inner().unwrap();
    for (flags, owner) in [(&[][..], "0:0"), (&["-a"][..], "777:778")] {
        let mut args = vec!["cp"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["-", "cp-tar:/tmp"]);
        let mut child = rrun_cmd(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&stream).unwrap();
        ok(&child.wait_with_output().unwrap());
        assert_eq!(
            exec(
                "cp-tar",
                "cat /tmp/in/x.txt; stat -c '%a %u:%g' /tmp/in/x.txt"
            ),
            format!("xyz\n600 {owner}\n")
        );
    }
    // Stdin needs an existing directory.
    let o = rrun(&["cp", "-", "cp-tar:/data/sub/a"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("must be an existing directory"),
        "{}",
        stderr(&o)
    );
    assert_eq!(code(&rrun(&["rm", "-f", "cp-tar"])), 0);
}

#[test]
fn cp_reports_missing_paths_and_bad_arguments() {
    let t = tmpdir("cp-err");
    host_tree(t.path());
    detached("cp-err", "sleep 60");
    let fails = |args: &[&str], want: &str| {
        let mut a = vec!["cp"];
        a.extend_from_slice(args);
        let o = rrun(&a);
        assert_ne!(code(&o), 0, "{args:?} should fail");
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    };
    let back = t.path().join("x");
    fails(&["cp-err:/no/such/file", s(&back)], "cp-err:/no/such/file");
    fails(&["cp-err:/no/such/file", s(&back)], "no such file");
    let missing = t.path().join("missing");
    fails(&[s(&missing), "cp-err:/tmp"], "missing");
    fails(
        &[s(&t.path().join("f.txt")), "cp-err:/nodir/x"],
        "does not exist",
    );
    fails(
        &[s(&t.path().join("f.txt")), "cp-err:/newdir/"],
        "does not exist",
    );
    fails(
        &[s(&t.path().join("tree")), "cp-err:/etc/passwd"],
        "cannot copy the directory",
    );
    fails(
        &[s(&t.path().join("f.txt")), s(&back)],
        "must specify at least one container",
    );
    fails(&["cp-err:/etc", "cp-err:/tmp"], "between containers");
    fails(&["nosuchcontainer:/etc", s(&back)], "no such container");
    assert!(!back.exists());
    assert_eq!(code(&rrun(&["rm", "-f", "cp-err"])), 0);
}

/// Host canary: a directory with a secret, whose absolute path a hostile
/// container points its symlinks at.
struct Canary {
    _t: tempfile::TempDir,
    dir: std::path::PathBuf,
}

impl Canary {
    fn new() -> Canary {
        let t = tmpdir("cp-canary");
        let dir = t.path().join("canary");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("secret"), "host secret\n").unwrap();
        Canary { _t: t, dir }
    }

    /// Nothing was added, removed or changed.
    fn untouched(&self) {
        let names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["secret"], "the host canary directory was written");
        assert_eq!(
            std::fs::read_to_string(self.dir.join("secret")).unwrap(),
            "host secret\n"
        );
    }
}

/// `/abs -> <canary>`, `/rel -> ../../../../../../../<canary>`; the
/// container's own copy of the canary's path holds "container secret".
fn hostile_links(c: &Canary) -> String {
    let abs = s(&c.dir);
    format!(
        "mkdir -p {abs} && echo 'container secret' > {abs}/secret && \
         ln -s {abs} /abs && ln -s ../../../../../../../..{abs} /rel && \
         ln -s {abs}/secret /file"
    )
}

/// What a copy out left at `out`, never following a symlink it made
/// (a link is copied as a link, pointing wherever it pointed).
fn read_back(out: &Path) -> String {
    let Ok(md) = std::fs::symlink_metadata(out) else {
        return String::new();
    };
    if md.is_file() {
        return std::fs::read_to_string(out).unwrap();
    }
    if md.is_dir() {
        return read_back(&out.join("secret"));
    }
    format!("link to {}", std::fs::read_link(out).unwrap().display())
}

fn check_hostile(name: &str, c: &Canary, t: &Path, round: &str) {
    let t = t.join(round);
    std::fs::create_dir(&t).unwrap();
    // As sources: the container's file or nothing, never the host's.
    for (i, src) in ["/abs/secret", "/rel/secret", "/abs/", "/rel/.", "/file"]
        .iter()
        .enumerate()
    {
        let out = t.join(format!("out{i}"));
        let o = rrun(&["cp", &format!("{name}:{src}"), s(&out)]);
        assert_eq!(code(&o), 0, "{src}: {}", stderr(&o));
        let got = read_back(&out);
        assert!(!got.contains("host secret"), "{src} read the host: {got}");
        // The container's own file (overwritten by the first round's
        // copies in), or the link itself.
        assert!(
            got.contains("container secret") || got == "intruder\n" || got.starts_with("link"),
            "{src}: {got}"
        );
        let o = rrun(&["cp", &format!("{name}:{src}"), "-"]);
        assert_eq!(code(&o), 0, "{src}: {}", stderr(&o));
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("host secret"),
            "{src} to stdout read the host"
        );
    }
    // -L follows the link, inside the container.
    for (i, src) in ["/file", "/abs", "/rel"].iter().enumerate() {
        let out = t.join(format!("followed{i}"));
        ok(&rrun(&["cp", "-L", &format!("{name}:{src}"), s(&out)]));
        let got = read_back(&out);
        assert!(
            got == "container secret\n" || got == "intruder\n",
            "-L {src} read {got:?}"
        );
    }
    // As destinations: the copy lands in the container's tree, if anywhere.
    let f = t.join("f.txt");
    std::fs::write(&f, "intruder\n").unwrap();
    for dest in ["/abs", "/rel", "/abs/", "/rel/new", "/abs/secret", "/file"] {
        let _ = rrun(&["cp", s(&f), &format!("{name}:{dest}")]);
        c.untouched();
    }
    // It did land in the container: under the canary's path there.
    let out = t.join("landed");
    ok(&rrun(&[
        "cp",
        &format!("{name}:{}/new", s(&c.dir)),
        s(&out),
    ]));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "intruder\n");
    // A tar stream whose entries go through a link is refused.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(5);
    h.set_mode(0o644);
    b.append_data(&mut h, "abs/evil", &b"evil\n"[..]).unwrap();
    let stream = b.into_inner().unwrap();
    let mut child = rrun_cmd(&["cp", "-", &format!("{name}:/")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_ne!(code(&o), 0, "an entry written through /abs was accepted");
    c.untouched();
}

#[test]
fn cp_never_follows_a_container_symlink_out_of_its_root() {
    let c = Canary::new();
    let t = tmpdir("cp-hostile");
    // Running.
    detached("cp-hostile", &format!("{} && sleep 60", hostile_links(&c)));
    let mut tries = 0;
    while exec("cp-hostile", "ls /file 2>/dev/null || true").is_empty() {
        tries += 1;
        assert!(tries < 200, "the container never made its links");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    check_hostile("cp-hostile", &c, t.path(), "running");
    // Stopped: the same links in its upper dir.
    assert_eq!(code(&rrun(&["stop", "-t", "0", "cp-hostile"])), 0);
    check_hostile("cp-hostile", &c, t.path(), "stopped");
    assert_eq!(code(&rrun(&["rm", "-f", "cp-hostile"])), 0);
}

#[test]
fn cp_is_not_raced_out_of_the_root_by_a_swapping_symlink() {
    let c = Canary::new();
    let t = tmpdir("cp-race");
    let abs = s(&c.dir);
    // /race flips between a directory holding a file and a link to the host path.
    detached(
        "cp-race",
        &format!(
            "mkdir -p /race.d && echo mine > /race.d/secret; \
             while :; do rm -rf /race; cp -a /race.d /race; rm -rf /race; ln -s {abs} /race; done"
        ),
    );
    let f = t.path().join("f.txt");
    std::fs::write(&f, "intruder\n").unwrap();
    for i in 0..40 {
        let _ = rrun(&["cp", s(&f), "cp-race:/race/"]);
        let out = t.path().join(format!("o{i}"));
        let _ = rrun(&["cp", "cp-race:/race/secret", s(&out)]);
        if let Ok(got) = std::fs::read_to_string(&out) {
            assert_eq!(got, "mine\n", "a copy out read the host");
        }
        c.untouched();
    }
    assert_eq!(code(&rrun(&["rm", "-f", "cp-race"])), 0);
}

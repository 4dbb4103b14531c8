//! Layer stacks as images really have them: the same layer twice (with
//! content between the two copies), more layers than a one-page mount
//! string holds, more than overlayfs stacks, hard links through export and
//! save, and `.wh.` names in user content. Every image runs through the
//! real rbuild and rrun (overlayfs, namespaces) as root.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;
use engine::image::ImageConfig;
use engine::layer::{self, LayerBlob, WriteOptions};
use engine::{ImageRef, Store};

fn store() -> Store {
    Store::open(store_root()).unwrap()
}

fn layer_of(store: &Store, tree: &Path) -> LayerBlob {
    layer::write_layer(store, tree, &WriteOptions::default())
        .unwrap()
        .expect("a non-empty tree")
}

/// busybox's layers, then `extra` (bottom first), tagged `tag`.
fn image_on_busybox(store: &Store, extra: &[&LayerBlob], tag: &str) {
    let base = store.find_image("busybox").unwrap();
    let mut config: ImageConfig = base.config.clone();
    let mut descs = base.manifest.layers.clone();
    for l in extra {
        config.rootfs.diff_ids.push(l.diff_id.clone());
        descs.push(l.descriptor());
    }
    let m = store.put_image(&config, descs).unwrap();
    store.tag(&tag.parse::<ImageRef>().unwrap(), &m).unwrap();
}

fn write(path: &Path, content: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
}

/// An overlay whiteout (char 0:0) at `path`, as an upperdir has it.
fn whiteout(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string; mknod only reads it.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o600, 0) };
    assert_eq!(rc, 0, "mknod {}", path.display());
}

fn opaque(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let p = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C strings and a value buffer of the length we pass.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    assert_eq!(rc, 0, "set opaque on {}", dir.display());
}

/// Entry names in a tar (`tar -tf`), without a leading `./`.
fn tar_names(tar: &Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tf").arg(tar).output().unwrap();
    assert!(out.status.success(), "tar -tf {}", tar.display());
    stdout(&out)
        .lines()
        .map(|l| l.trim_start_matches("./").to_string())
        .collect()
}

fn export(image: &str, out: &Path) {
    let o = rbuild(&["export", image, "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "rbuild export {image}:\n{}", stderr(&o));
}

/// What `ls` of /t and /t/o and `cat /t/f` give when a stack is applied
/// in order, layer by layer (bottom first):
///   B: t/{keep, gone, below, f=f-B, o/b}
///   A: whiteouts of t/gone and t/below, t/f=f-A, t/o opaque with t/o/a
///   M: t/below re-created, t/f=f-M, t/o/m, t/mid
///   A again (the very same blob).
/// A at the top deletes what M re-created, overwrites M's file and hides
/// M's additions to its opaque directory; what A deleted below stays gone.
const EXPECTED: &str = "f\nkeep\nmid\no\n--\na\n--\nf-A\n";
const SHOW: &str = "ls /t; echo --; ls /t/o; echo --; cat /t/f; echo";

fn stack_with_a_repeated_layer(store: &Store, tag: &str) {
    let w = tempfile::tempdir().unwrap();
    let b = w.path().join("b");
    for (p, c) in [
        ("t/keep", "keep"),
        ("t/gone", "gone-B"),
        ("t/below", "below-B"),
        ("t/f", "f-B"),
        ("t/o/b", "ob"),
    ] {
        write(&b.join(p), c);
    }
    let a = w.path().join("a");
    whiteout(&a.join("t/gone"));
    whiteout(&a.join("t/below"));
    write(&a.join("t/f"), "f-A");
    opaque(&a.join("t/o"));
    write(&a.join("t/o/a"), "oa");
    let m = w.path().join("m");
    for (p, c) in [
        ("t/below", "below-M"),
        ("t/f", "f-M"),
        ("t/o/m", "om"),
        ("t/mid", "mid"),
    ] {
        write(&m.join(p), c);
    }
    let (lb, la, lm) = (
        layer_of(store, &b),
        layer_of(store, &a),
        layer_of(store, &m),
    );
    image_on_busybox(store, &[&lb, &la, &lm, &la], tag);
}

#[test]
fn a_layer_repeated_with_content_between_gives_the_in_order_view() {
    let store = store();
    stack_with_a_repeated_layer(&store, "repeat/between:1");
    // rrun (native), and through an OCI runtime's bundle
    assert_eq!(run_ok("repeat/between:1", &["sh", "-c", SHOW]), EXPECTED);
    let o = rrun(&[
        "run",
        "--rm",
        "--runtime",
        "crun",
        "repeat/between:1",
        "sh",
        "-c",
        SHOW,
    ]);
    assert!(o.status.success(), "rrun --runtime crun:\n{}", stderr(&o));
    assert_eq!(stdout(&o), EXPECTED);
    // a RUN step on top of it
    let ctx = context(&[(
        "Containerfile",
        format!("FROM repeat/between:1\nRUN ({SHOW}) > /seen\n"),
    )]);
    build_ok("repeat/between-run:1", ctx.path(), &[]);
    assert_eq!(run_ok("repeat/between-run:1", &["cat", "/seen"]), EXPECTED);
    // export: the kernel's merge, written out
    let w = tempfile::tempdir().unwrap();
    let tar = w.path().join("x.tar");
    export("repeat/between:1", &tar);
    let mut under_t: Vec<String> = tar_names(&tar)
        .into_iter()
        .filter(|n| n.starts_with("t/") && n != "t/")
        .collect();
    under_t.sort();
    assert_eq!(under_t, ["t/f", "t/keep", "t/mid", "t/o/", "t/o/a"]);
    let x = w.path().join("x");
    fs::create_dir(&x).unwrap();
    let o = Command::new("tar")
        .arg("-C")
        .arg(&x)
        .arg("-xf")
        .arg(&tar)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(x.join("t/f")).unwrap(), "f-A");
}

#[test]
fn copy_of_the_same_file_twice_then_run() {
    let ctx = context(&[
        ("f", "same bytes\n"),
        (
            "Containerfile",
            "FROM busybox\nCOPY f /f\nRUN echo mid > /mid\nCOPY f /f\nRUN cat /f /mid > /both\n",
        ),
    ]);
    build_ok("repeat/copy:1", ctx.path(), &[]);
    let image = store().find_image("repeat/copy:1").unwrap();
    let ids = &image.config.rootfs.diff_ids;
    let n = ids.len();
    assert_eq!(
        ids[n - 4],
        ids[n - 2],
        "the two COPY layers should be one blob"
    );
    assert_eq!(
        run_ok("repeat/copy:1", &["cat", "/both"]),
        "same bytes\nmid\n"
    );
    let w = tempfile::tempdir().unwrap();
    export("repeat/copy:1", &w.path().join("x.tar"));
}

/// `n` layers of one small file each, on busybox.
fn many_layers(store: &Store, n: usize, tag: &str) {
    let w = tempfile::tempdir().unwrap();
    let layers: Vec<LayerBlob> = (0..n)
        .map(|i| {
            let t = w.path().join(format!("l{i}"));
            write(&t.join(format!("many/{i:04}")), &i.to_string());
            layer_of(store, &t)
        })
        .collect();
    image_on_busybox(store, &layers.iter().collect::<Vec<_>>(), tag);
}

#[test]
fn an_image_of_150_layers_runs_and_exports() {
    let store = store();
    many_layers(&store, 150, "many/l150:1");
    let n = run_ok("many/l150:1", &["sh", "-c", "ls /many | wc -l"]);
    assert_eq!(n.trim(), "150");
    let w = tempfile::tempdir().unwrap();
    let tar = w.path().join("x.tar");
    export("many/l150:1", &tar);
    let names = tar_names(&tar);
    assert_eq!(
        names.iter().filter(|n| n.starts_with("many/0")).count(),
        150
    );
}

#[test]
fn more_layers_than_overlayfs_stacks_is_a_clear_error() {
    let store = store();
    many_layers(&store, 501, "many/l501:1");
    let o = rrun(&["run", "--rm", "many/l501:1", "true"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("overlayfs stacks at most 500") && err.contains("distinct layers"),
        "{err}"
    );
    let w = tempfile::tempdir().unwrap();
    let tar = w.path().join("x.tar");
    let o = rbuild(&["export", "many/l501:1", "-o", tar.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("overlayfs stacks at most 500"),
        "{}",
        stderr(&o)
    );
    assert!(!tar.exists());
}

/// busybox is one binary with hundreds of hard-linked applet names.
#[test]
fn export_keeps_hard_links_as_links() {
    let w = tempfile::tempdir().unwrap();
    let tar = w.path().join("bb.tar");
    export("busybox", &tar);
    let size = fs::metadata(&tar).unwrap().len();
    let x = w.path().join("x");
    fs::create_dir(&x).unwrap();
    let o = Command::new("tar")
        .arg("-C")
        .arg(&x)
        .arg("-xf")
        .arg(&tar)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let sh = fs::metadata(x.join("bin/sh")).unwrap();
    assert!(
        sh.nlink() > 100,
        "bin/sh has {} links after export",
        sh.nlink()
    );
    assert!(
        size < 3 * sh.len() + (4 << 20),
        "export of busybox is {size} bytes for a {}-byte binary",
        sh.len()
    );
}

/// A RUN step making one file with many names: the layer, the save and the
/// export each hold the body once.
#[test]
fn hard_links_made_by_run_stay_links_in_layer_save_and_export() {
    let ctx = context(&[(
        "Containerfile",
        "FROM busybox\nRUN head -c 4194304 /dev/urandom > /big && for i in $(seq 100); do ln /big /big.$i; done\n",
    )]);
    build_ok("links/run:1", ctx.path(), &[]);
    let w = tempfile::tempdir().unwrap();
    let limit = 8 << 20;
    let tar = w.path().join("x.tar");
    export("links/run:1", &tar);
    let size = fs::metadata(&tar).unwrap().len();
    assert!(size < limit, "export is {size} bytes");
    let saved = w.path().join("s.tar");
    let o = rbuild(&[
        "save",
        "links/run:1",
        "-o",
        saved.to_str().unwrap(),
        "--format",
        "docker-archive",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let size = fs::metadata(&saved).unwrap().len();
    assert!(size < limit, "docker-archive save is {size} bytes");
    let out = run_ok(
        "links/run:1",
        &[
            "sh",
            "-c",
            "stat -c %h /big; cmp /big /big.100 && echo same",
        ],
    );
    assert_eq!(out, "101\nsame\n");
}

/// A tarball whose entries look like whiteouts: `bin/.wh..wh..opq` would
/// make /bin opaque and `.wh.x` delete `x` once the layer is saved and
/// loaded. Such names cannot be expressed in a layer: refused, named.
#[test]
fn add_of_a_tarball_with_whiteout_names_is_refused() {
    let w = tempfile::tempdir().unwrap();
    let src = w.path().join("src");
    write(&src.join("bin/.wh..wh..opq"), "");
    write(&src.join(".wh.x"), "x");
    let ctx = context(&[("Containerfile", "FROM busybox\nADD t.tar /\nRUN true\n")]);
    let o = Command::new("tar")
        .arg("-C")
        .arg(&src)
        .arg("-cf")
        .arg(ctx.path().join("t.tar"))
        .arg(".")
        .output()
        .unwrap();
    assert!(o.status.success());
    let o = rbuild(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "wh/add:1",
        ctx.path().to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(
        !o.status.success(),
        "the build should refuse the .wh. names:\n{err}"
    );
    assert!(err.contains(".wh.") && err.contains("whiteouts"), "{err}");
    assert!(
        store().find_image("wh/add:1").is_err(),
        "a refused build must not tag an image"
    );
}

/// Peak resident memory of a finished child, in KiB (its own, not the
/// maximum over every child this test binary has waited for).
fn wait_peak_rss_kib(child: std::process::Child) -> (std::process::ExitStatus, i64) {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value; wait4 fills it in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child with valid out-pointers.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4");
    (std::process::ExitStatus::from_raw(status), usage.ru_maxrss)
}

/// Loading an image of 600 layers works one bounded group of layers at
/// a time: each layer in flight holds buffers and an unpack thread.
#[test]
fn loading_600_layers_takes_bounded_memory() {
    let store = store();
    many_layers(&store, 600, "many/l600:1");
    let w = tempfile::tempdir().unwrap();
    let tar = w.path().join("many.tar");
    let o = rbuild(&["save", "many/l600:1", "-o", tar.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let child = Command::new(RBUILD)
        .arg("--root")
        .arg(w.path().join("store"))
        .args(["load", "-q", "-i", tar.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (status, peak) = wait_peak_rss_kib(child);
    assert!(status.success(), "rbuild load of 600 layers failed");
    assert!(
        peak < 256 << 10,
        "rbuild load of 600 layers peaked at {peak} KiB"
    );
    let loaded = Store::open(&w.path().join("store")).unwrap();
    let image = loaded.find_image("many/l600:1").unwrap();
    assert_eq!(
        image.config.rootfs.diff_ids.len(),
        600 + store
            .find_image("busybox")
            .unwrap()
            .config
            .rootfs
            .diff_ids
            .len()
    );
}

//! Shared setup for the build tests: a store with the busybox image, the
//! real `rbuild`, and the real `rrun` to check what the images do.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const RBUILD: &str = env!("CARGO_BIN_EXE_rbuild");

/// rrun is built beside rbuild by `cargo build --workspace` (scripts/test.sh does).
pub fn rrun_path() -> PathBuf {
    let p = Path::new(RBUILD).with_file_name("rrun");
    assert!(
        p.exists(),
        "{} is missing: build it first (cargo build -p runner --bin rrun, or scripts/test.sh)",
        p.display()
    );
    p
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the build tests need root (RUN steps use namespaces, overlayfs and cgroups): run as root"
    );
}

static ROOT: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_store() {
    if std::env::var_os("RBUILD_TEST_KEEP").is_some() {
        return;
    }
    if let Some(p) = ROOT.get() {
        let _ = fs::remove_dir_all(p);
    }
}

/// One store per test binary, `rbuild-test-<binary>` in the temp dir, with
/// the busybox image tagged `busybox`. Wiped at start (a crashed run never
/// accumulates) and removed at exit unless RBUILD_TEST_KEEP is set: a
/// static is never dropped, so a TempDir here would leak one per run.
pub fn store_root() -> &'static Path {
    ROOT.get_or_init(|| {
        require_root();
        fixtures::netns::require_private_netns();
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_string_lossy().into_owned();
        let dir = std::env::temp_dir().join(format!("rbuild-test-{name}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let store = engine::Store::open(&dir).unwrap();
        fixtures::ensure_busybox_image(&store, "busybox").expect("build the busybox fixture image");
        // SAFETY: registering a plain extern "C" function with no captures.
        unsafe { libc::atexit(remove_store) };
        dir
    })
}

/// A build context in a temp dir: (relative path, content) pairs.
pub fn context<S: AsRef<str>>(files: &[(&str, S)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let p = dir.path().join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content.as_ref()).unwrap();
    }
    dir
}

pub fn rbuild(args: &[&str]) -> Output {
    rbuild_in(store_root(), args)
}

/// `rbuild --root ROOT ARGS`, for a store other than the binary's own.
pub fn rbuild_in(root: &Path, args: &[&str]) -> Output {
    Command::new(RBUILD)
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run rbuild")
}

/// `rbuild build --progress plain -t TAG CONTEXT`, asserting success.
pub fn build_ok(tag: &str, ctx: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["build", "--progress", "plain", "-t", tag];
    args.extend_from_slice(extra);
    let ctx = ctx.to_str().unwrap();
    args.push(ctx);
    let out = rbuild(&args);
    assert!(
        out.status.success(),
        "build of {tag} failed:\n{}",
        stderr(&out)
    );
    out
}

pub fn rrun(args: &[&str]) -> Output {
    Command::new(rrun_path())
        .arg("--root")
        .arg(store_root())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run rrun")
}

/// `rrun run --rm IMAGE [cmd...]`, asserting success; returns stdout.
pub fn run_ok(image: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", image];
    args.extend_from_slice(cmd);
    let out = rrun(&args);
    assert!(
        out.status.success(),
        "rrun {args:?} failed ({:?}):\n{}{}",
        out.status,
        stdout(&out),
        stderr(&out)
    );
    stdout(&out)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// How many steps the build reported as CACHED.
pub fn cached_steps(o: &Output) -> usize {
    stderr(o).lines().filter(|l| l.ends_with(" CACHED")).count()
}

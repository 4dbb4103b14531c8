//! Shared setup for the root-only integration tests: a store on a temp
//! dir holding the busybox fixture image, and a way to run the real rrun.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub const RRUN: &str = env!("CARGO_BIN_EXE_rrun");

/// Fail (never skip) when what the tests need is missing.
pub fn require_root_and_kernel() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (namespaces, mounts, cgroups): run `cargo test` as root"
    );
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    assert!(
        fs.contains("overlay"),
        "overlayfs is missing: modprobe overlay"
    );
    assert!(
        Path::new("/sys/fs/cgroup").exists(),
        "no cgroup filesystem at /sys/fs/cgroup"
    );
}

static ROOT: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_store() {
    if std::env::var_os("RRUN_TEST_KEEP").is_some() {
        return;
    }
    if let Some(p) = ROOT.get() {
        let _ = std::fs::remove_dir_all(p);
    }
}

/// One store per test binary, `rrun-test-<binary>` under $RRUN_TEST_TMP or
/// the temp dir, with the busybox image tagged `busybox`. Wiped at start
/// (a crashed run never accumulates) and removed at exit unless
/// RRUN_TEST_KEEP is set.
pub fn store_root() -> &'static Path {
    ROOT.get_or_init(|| {
        require_root_and_kernel();
        fixtures::netns::require_private_netns();
        let base = std::env::var_os("RRUN_TEST_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_string_lossy().into_owned();
        let dir = base.join(format!("rrun-test-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = engine::Store::open(&dir).unwrap();
        fixtures::ensure_busybox_image(&store, "busybox").expect("build the busybox fixture image");
        // SAFETY: registering a plain extern "C" function with no captures.
        unsafe { libc::atexit(remove_store) };
        dir
    })
}

pub fn rrun(args: &[&str]) -> Output {
    rrun_cmd(args).output().expect("run rrun")
}

pub fn rrun_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(RRUN);
    c.arg("--root").arg(store_root()).args(args);
    c.stdin(Stdio::null());
    c
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run `sh -c script` in a fresh --rm busybox container.
pub fn sh(extra: &[&str], script: &str) -> Output {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox", "sh", "-c", script]);
    rrun(&args)
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn cgroup_v2() -> bool {
    nix::sys::statfs::statfs("/sys/fs/cgroup")
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// The busybox fixture as an OCI layout tarball (gzip layers, as any
/// containerd reads), named `name` (full, with registry and tag).
pub fn busybox_oci_tar(dir: &Path, name: &str) -> PathBuf {
    let store = engine::Store::open(store_root()).unwrap();
    let r: engine::ImageRef = "busybox".parse().unwrap();
    let digest = store.resolve(&r).unwrap().expect("the busybox fixture");
    let image = store.image_by_digest(&digest).unwrap();
    let ex =
        engine::oci::export::export_image(&store, &image, engine::oci::ExportCompression::Gzip)
            .unwrap();
    let p = dir.join("busybox.tar");
    let f = std::fs::File::create(&p).unwrap();
    let mut w = engine::oci::layout::save_tar(
        &ex,
        std::io::BufWriter::new(f),
        Some(name),
        name.rsplit_once(':').map(|(_, t)| t),
    )
    .unwrap();
    std::io::Write::flush(&mut w).unwrap();
    p
}

/// Declared first in a test that starts detached containers or makes
/// networks (`let _cleanup = Cleanup;`): dropped last, also when the test
/// panics, it `rm -f`s every container of the test's store and `network
/// rm`s every network but the built-in ones, so that no container, its
/// supervisor or a network's resolver outlives a failed test. The store
/// is the test's own (each networking test re-runs in a namespace and a
/// temp dir of its own, fixtures::netns::own_netns).
pub struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let words = |args: &[&str]| -> Vec<String> {
            rrun(args)
                .stdout
                .split(|b| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect()
        };
        let containers = words(&["ps", "-a", "-q"]);
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(containers.iter().map(String::as_str));
            let o = rrun(&args);
            if !o.status.success() {
                eprintln!("cleanup: rrun rm -f: {}", stderr(&o));
            }
        }
        // NETWORK ID, NAME, DRIVER, SCOPE; the built-in ones stay.
        let listed = stdout(&rrun(&["network", "ls"]));
        let networks = listed
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|n| !["bridge", "host", "none"].contains(n));
        for n in networks {
            let o = rrun(&["network", "rm", n]);
            if !o.status.success() {
                eprintln!("cleanup: rrun network rm {n}: {}", stderr(&o));
            }
        }
    }
}

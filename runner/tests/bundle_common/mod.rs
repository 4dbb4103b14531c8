//! Shared setup for the tests that drive OCI runtimes through their CLI
//! (rbox-runtime, runc, crun): a bundle of the busybox fixture rootfs with
//! `runc spec`'s config.json, and a state root beside it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::{json, Value};

pub const RUNTIME: &str = env!("CARGO_BIN_EXE_rbox-runtime");

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (namespaces, mounts, cgroups): run `cargo test` as root"
    );
}

/// The busybox fixture rootfs as a plain tar, made once per test binary.
pub fn rootfs_tar() -> &'static Path {
    static TAR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, p) = TAR.get_or_init(|| {
        require_root();
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("rootfs.tar");
        fixtures::busybox_rootfs_tar(&p, fixtures::Compression::None).unwrap();
        (d, p)
    });
    p
}

/// A bundle dir with the busybox rootfs and `runc spec`'s config, changed
/// by `tweak` (terminal off, `args` set first); and a state root beside it.
pub struct Bundle {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub root: PathBuf,
}

pub fn bundle(args: &[&str], tweak: impl FnOnce(&mut Value)) -> Bundle {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("bundle");
    std::fs::create_dir_all(dir.join("rootfs")).unwrap();
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir.join("rootfs"))
        .arg("-xf")
        .arg(rootfs_tar())
        .status()
        .unwrap();
    assert!(st.success(), "unpack the busybox rootfs");
    let st = Command::new("/usr/sbin/runc")
        .arg("spec")
        .current_dir(&dir)
        .status()
        .expect("runc spec");
    assert!(st.success(), "runc spec");
    let path = dir.join("config.json");
    let mut cfg: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cfg["process"]["terminal"] = json!(false);
    cfg["process"]["args"] = json!(args);
    tweak(&mut cfg);
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    let root = tmp.path().join("state");
    Bundle { tmp, dir, root }
}

impl Drop for Bundle {
    /// A failed test leaves no container behind: force-delete whatever
    /// is still in this bundle's state root.
    fn drop(&mut self) {
        for e in std::fs::read_dir(&self.root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            let _ = self.rt(&["delete", "--force", &id]);
        }
    }
}

impl Bundle {
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(RUNTIME);
        c.arg("--root").arg(&self.root).args(args);
        c.stdin(Stdio::null());
        c
    }
    pub fn rt(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
    /// `create` leaves the container process holding its stdio: give it
    /// files, not pipes (a pipe would stay open until the container ends).
    pub fn create(&self, id: &str, extra: &[&str]) -> (bool, String) {
        let errf = self.dir.join(format!("{id}.create.err"));
        let st = self
            .cmd(&["create", "--bundle", &self.bundle_arg()])
            .args(extra)
            .arg(id)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&errf).unwrap())
            .status()
            .unwrap();
        (st.success(), std::fs::read_to_string(&errf).unwrap())
    }
    pub fn bundle_arg(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }
    pub fn state(&self, id: &str) -> Value {
        let o = self.rt(&["state", id]);
        assert!(o.status.success(), "state {id}: {}", err(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

pub fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

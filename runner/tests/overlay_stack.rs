//! The overlay mount for kernels without `lowerdir+` (before 6.8): its
//! one options string is at most a page, yet it must take as many layers
//! as overlayfs stacks, however long their paths. Driven directly on any
//! kernel; real overlayfs, as root.

use std::ffi::CString;
use std::fs;
use std::path::Path;

use runner::native::rootfs::{overlay_legacy, RootfsPlan};

fn c(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).unwrap()
}

/// Unmounts (detached) on drop, so a failed assertion leaves no mount.
struct Mounted<'a>(&'a Path);

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[test]
fn legacy_mount_takes_500_layers_with_long_paths() {
    assert!(nix::unistd::geteuid().is_root(), "needs root (overlayfs)");
    let dir = tempfile::tempdir().unwrap();
    // As long as the store's layers/<64 hex digits>/fs paths, or longer.
    let layers = dir.path().join("layers-".to_string() + &"x".repeat(100));
    let n = 500;
    let mut lowers = Vec::new();
    for i in 0..n {
        let l = layers.join(format!("{i:064}")).join("fs");
        fs::create_dir_all(&l).unwrap();
        fs::write(l.join(format!("f{i}")), b"").unwrap();
        fs::write(l.join("top"), i.to_string()).unwrap();
        lowers.push(c(&l));
    }
    lowers.reverse(); // top first: layer n-1 is the top
    let (upper, work, merged) = (
        dir.path().join("upper"),
        dir.path().join("work"),
        dir.path().join("merged"),
    );
    for d in [&upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    let plan = RootfsPlan {
        lowers,
        upper: c(&upper),
        work: c(&work),
        merged: c(&merged),
        readonly: false,
        volatile: true,
        steps: Vec::new(),
    };
    let cwd = std::env::current_dir().unwrap();
    overlay_legacy(&plan).unwrap_or_else(|e| panic!("{e}"));
    let _m = Mounted(&merged);
    assert_eq!(
        std::env::current_dir().unwrap(),
        cwd,
        "the working directory is restored"
    );
    assert_eq!(
        fs::read_to_string(merged.join("top")).unwrap(),
        (n - 1).to_string()
    );
    assert_eq!(fs::read_dir(&merged).unwrap().count(), n + 1);
    // The upper works: writes land there.
    fs::write(merged.join("new"), b"x").unwrap();
    assert!(upper.join("new").exists());
}

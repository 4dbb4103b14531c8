//! Shared by the escape_* tests: a static C probe compiled at test time and
//! images made of busybox plus a few hostile files, written straight into
//! the test's store as an unpacked layer.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::common::store_root;

const PROBE_SRC: &str = include_str!("probe.c");

/// The probe, linked static (the busybox image has no libc). Fails with
/// what to install when gcc or the static glibc is missing.
pub fn probe_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Inside the test store, which is removed when the test binary exits.
        let dir = store_root().join("escape-probe");
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("probe.c");
        std::fs::write(&src, PROBE_SRC).unwrap();
        let out = dir.join("probe");
        let o = Command::new("gcc")
            .args(["-static", "-O1", "-o"])
            .arg(&out)
            .arg(&src)
            .output()
            .expect("the escape tests need gcc to build their static probe: apt-get install gcc libc6-dev");
        assert!(
            o.status.success(),
            "gcc -static failed (apt-get install libc6-dev for libc.a): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    })
}

/// One file to put into a test image.
pub enum Entry<'a> {
    /// A copy of a host file with this mode (e.g. 0o4755 for setuid root).
    Copy(&'a Path, u32),
    Symlink(&'a str),
    Dir,
}

/// Tag `name` = busybox plus one layer holding `files` (image path ->
/// entry), owned by root. `xattrs` are set on the named files (e.g.
/// security.capability).
pub fn image_with(name: &str, files: &[(&str, Entry)], xattrs: &[(&str, &str, &[u8])]) {
    let store = engine::Store::open(store_root()).unwrap();
    let base = store.find_image("busybox").unwrap();
    let staged = store.new_temp_dir("escape").unwrap();
    let fs = staged.join("fs");
    std::fs::create_dir(&fs).unwrap();
    let mut id = format!("escape layer {name}");
    for (path, entry) in files {
        let p = fs.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        match entry {
            Entry::Copy(src, mode) => {
                std::fs::copy(src, &p).unwrap();
                std::os::unix::fs::chown(&p, Some(0), Some(0)).unwrap();
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode)).unwrap();
                id.push_str(&format!(
                    " {path}={mode:o}:{}",
                    std::fs::metadata(src).unwrap().len()
                ));
            }
            Entry::Symlink(target) => {
                std::os::unix::fs::symlink(target, &p).unwrap();
                id.push_str(&format!(" {path}->{target}"));
            }
            Entry::Dir => {
                std::fs::create_dir_all(&p).unwrap();
                id.push_str(&format!(" {path}/"));
            }
        }
    }
    for (path, key, value) in xattrs {
        xattr_set(&fs.join(path), key, value);
        id.push_str(&format!(" {path}:{key}={value:?}"));
    }
    // Unique per content and per test run: a stale layer from an older
    // probe binary must never be reused.
    id.push_str(&format!(" pid {}", std::process::id()));
    let diff_id = engine::Digest::blake3_of(id.as_bytes());
    store.commit_layer_dir(&staged, &diff_id).unwrap();
    let mut config = base.config.clone();
    config.rootfs.diff_ids.push(diff_id.clone());
    let mut layers = base.manifest.layers.clone();
    let mut fake = layers[0].clone();
    fake.digest = diff_id;
    layers.push(fake);
    let m = store.put_image(&config, layers).unwrap();
    store.tag(&name.parse().unwrap(), &m).unwrap();
}

fn xattr_set(path: &Path, key: &str, value: &[u8]) {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let k = std::ffi::CString::new(key).unwrap();
    // SAFETY: valid NUL-terminated strings and a live buffer with its length.
    let r = unsafe {
        libc::setxattr(
            p.as_ptr(),
            k.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setxattr {key} on {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// `name=result` lines of the probe's output, in order.
pub fn results(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn unique_host_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rrun-escape-{tag}-{}", std::process::id()))
}

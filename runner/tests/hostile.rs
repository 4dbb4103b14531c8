//! Images that try to redirect the runtime: symlinks in the image must not
//! send a volume mount or the working directory outside the rootfs.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// Tag `name` = busybox plus one layer holding `links` (path -> target),
/// written straight into the store as an unpacked layer.
fn image_with_links(name: &str, links: &[(&str, &str)]) {
    let store = engine::Store::open(store_root()).unwrap();
    let base = store.find_image("busybox").unwrap();
    let staged = store.new_temp_dir("hostile").unwrap();
    let fs = staged.join("fs");
    std::fs::create_dir(&fs).unwrap();
    for (path, target) in links {
        let p = fs.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &p).unwrap();
    }
    let diff_id = engine::Digest::blake3_of(format!("hostile layer {name} {links:?}").as_bytes());
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

fn unique_host_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rrun-escape-{tag}-{}", std::process::id()))
}

#[test]
fn a_symlink_in_the_image_cannot_redirect_a_volume_onto_the_host() {
    let host_target = unique_host_dir("vol");
    let _ = std::fs::remove_dir_all(&host_target);
    let abs = host_target.to_str().unwrap().to_string();
    image_with_links(
        "hostile-vol",
        &[("evil", &abs), ("rel", "../../../../../../..")],
    );
    let vol = tempfile::tempdir().unwrap();
    std::fs::write(vol.path().join("marker"), "volume\n").unwrap();
    let o = rrun(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/evil/sub", vol.path().display()),
        "-v",
        &format!("{}:/rel/etc/escaped", vol.path().display()),
        "hostile-vol",
        "sh",
        "-c",
        &format!("cat {abs}/sub/marker; cat /etc/escaped/marker"),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // Both mounts landed inside the container's root: the absolute link
    // resolved against the rootfs, the `..` chain stopped at its top.
    assert_eq!(stdout(&o), "volume\nvolume\n");
    assert!(
        !host_target.exists(),
        "the runtime created {} on the host",
        host_target.display()
    );
    assert!(
        !Path::new("/etc/escaped").exists(),
        "the runtime created /etc/escaped on the host"
    );
}

#[test]
fn a_workdir_through_a_magic_link_is_refused() {
    image_with_links("hostile-wd", &[("wd", "/proc/self/cwd")]);
    let o = rrun(&["run", "--rm", "-w", "/wd", "hostile-wd", "pwd"]);
    assert_eq!(
        code(&o),
        125,
        "a workdir through /proc/self/cwd was accepted: {}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("working directory"), "{}", stderr(&o));
}

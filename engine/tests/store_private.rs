//! The store is root's alone: another local user can neither list it nor
//! reach what an image carries (a setuid-root binary, a device node).
//! Checked for real, as uid 65534 through `setpriv`.

mod layer_common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use engine::layer;
use engine::Store;
use layer_common::require_root;

/// Run `argv` as nobody (uid/gid 65534, no supplementary groups). setpriv
/// itself execs with root's capabilities still effective (they go only
/// with that exec), so it execs `env`, which execs `argv` as plain nobody.
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

fn show(o: &Output) -> String {
    format!(
        "status {:?}, stdout {:?}, stderr {:?}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A layer holding `/suid-id`, a copy of the host's `id` setuid root, and
/// `/dev/null-ish`, the null device open to everybody.
fn hostile_layer_tar(to: &Path) {
    let id = fs::read("/usr/bin/id").expect("read /usr/bin/id");
    let mut b = tar::Builder::new(fs::File::create(to).unwrap());
    let header = |kind, mode| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(0);
        h
    };
    let mut h = header(tar::EntryType::Directory, 0o755);
    b.append_data(&mut h, "dev/", std::io::empty()).unwrap();
    let mut h = header(tar::EntryType::Regular, 0o4755);
    h.set_size(id.len() as u64);
    b.append_data(&mut h, "suid-id", &id[..]).unwrap();
    let mut h = header(tar::EntryType::Char, 0o666);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    b.append_data(&mut h, "dev/null-ish", std::io::empty())
        .unwrap();
    b.into_inner().unwrap();
}

#[test]
fn another_user_reaches_nothing_an_image_carries() {
    require_root();
    // The store's parent is open to everybody, as /var/lib is.
    let dir = layer_common::scratch();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    let tarball = dir.path().join("hostile.tar");
    hostile_layer_tar(&tarball);
    let blob = layer::import_tarball(&store, &tarball).unwrap();
    let fs_dir = store.layer_fs(&blob.diff_id);
    let suid = fs_dir.join("suid-id");
    let dev = fs_dir.join("dev/null-ish");
    // The layer carries both, as the image says (root sees them).
    let m = fs::metadata(&suid).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o4755);
    assert!(fs::metadata(&dev).is_ok());

    let o = as_nobody(&[suid.to_str().unwrap(), "-u"]);
    assert!(
        !o.status.success() && String::from_utf8_lossy(&o.stdout).trim() != "0",
        "nobody ran the layer's setuid-root binary: {}",
        show(&o)
    );
    let o = as_nobody(&["head", "-c", "0", dev.to_str().unwrap()]);
    assert!(
        !o.status.success(),
        "nobody opened the layer's device node: {}",
        show(&o)
    );
    let o = as_nobody(&["ls", root.to_str().unwrap()]);
    assert!(!o.status.success(), "nobody listed the store: {}", show(&o));
    let o = as_nobody(&["ls", root.join("layers").to_str().unwrap()]);
    assert!(
        !o.status.success(),
        "nobody listed the layers: {}",
        show(&o)
    );
    // The sanity check that makes the refusals mean something: nobody can
    // run things at all (setpriv works, the parent is reachable).
    let o = as_nobody(&["ls", dir.path().to_str().unwrap()]);
    assert!(
        o.status.success(),
        "nobody cannot even list the parent: {}",
        show(&o)
    );
}

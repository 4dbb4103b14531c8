//! tree -> write_layer -> unpack -> the identical tree; determinism;
//! SOURCE_DATE_EPOCH; publishing the tree without an unpack.

mod layer_common;

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use engine::layer::{self, WriteOptions};
use engine::Store;
use layer_common::*;

/// security.capability v2 granting cap_net_bind_service (10), effective.
const CAP_NET_BIND: [u8; 20] = [
    0x01, 0x00, 0x00, 0x02, // magic_etc: VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE
    0x00, 0x04, 0x00, 0x00, // permitted[0]: 1 << 10
    0x00, 0x00, 0x00, 0x00, // inheritable[0]
    0x00, 0x00, 0x00, 0x00, // permitted[1]
    0x00, 0x00, 0x00, 0x00, // inheritable[1]
];

/// An upperdir-shaped tree with one of everything a layer must carry.
fn build_tree(t: &Path) {
    fs::create_dir_all(t.join("etc/ssl")).unwrap();
    fs::write(t.join("etc/hostname"), b"rbox\n").unwrap();
    fs::write(t.join("etc/empty"), b"").unwrap();
    fs::write(t.join("etc/ssl/big.bin"), pseudo_random(9 << 20 | 12345)).unwrap();
    fs::write(t.join("etc/shadow"), b"root:*:19000::::::\n").unwrap();
    fs::set_permissions(t.join("etc/shadow"), fs::Permissions::from_mode(0o640)).unwrap();
    lchown(&t.join("etc/shadow"), 0, 42);

    fs::create_dir_all(t.join("usr/bin")).unwrap();
    fs::write(t.join("usr/bin/su"), b"\x7fELF pretend").unwrap();
    fs::set_permissions(t.join("usr/bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::write(t.join("usr/bin/ping"), b"\x7fELF ping").unwrap();
    set_xattr(
        &t.join("usr/bin/ping"),
        "security.capability",
        &CAP_NET_BIND,
    );
    set_xattr(&t.join("usr/bin/ping"), "trusted.rbox.note", b"kept");
    fs::write(t.join("usr/bin/busybox"), b"\x7fELF busybox").unwrap();
    fs::hard_link(t.join("usr/bin/busybox"), t.join("usr/bin/sh")).unwrap();
    fs::create_dir(t.join("bin")).unwrap();
    fs::hard_link(t.join("usr/bin/busybox"), t.join("bin/ls")).unwrap();
    symlink("busybox", t.join("usr/bin/vi")).unwrap();
    symlink("/usr/bin/busybox", t.join("bin/absolute")).unwrap();
    symlink("../nowhere/at/all", t.join("bin/dangling")).unwrap();
    lchown(&t.join("bin/dangling"), 7, 8);

    fs::create_dir(t.join("home")).unwrap();
    fs::create_dir(t.join("home/user")).unwrap();
    fs::set_permissions(t.join("home/user"), fs::Permissions::from_mode(0o2750)).unwrap();
    lchown(&t.join("home/user"), 1000, 1000);
    fs::write(t.join("home/user/.profile"), b"export PS1='$ '\n").unwrap();
    lchown(&t.join("home/user/.profile"), 1000, 1000);
    fs::create_dir(t.join("tmp")).unwrap();
    fs::set_permissions(t.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();

    fs::create_dir(t.join("dev")).unwrap();
    mknod(&t.join("dev/null"), libc::S_IFCHR, 0o666, 1, 3);
    mknod(&t.join("dev/loop0"), libc::S_IFBLK, 0o660, 7, 0);
    mknod(&t.join("dev/initctl"), libc::S_IFIFO, 0o600, 0, 0);
    lchown(&t.join("dev/loop0"), 0, 6);

    // Overlay upperdir features: a whiteout and an opaque directory.
    fs::create_dir(t.join("var")).unwrap();
    mknod(&t.join("var/deleted"), libc::S_IFCHR, 0, 0, 0);
    fs::create_dir(t.join("var/cache")).unwrap();
    set_xattr(&t.join("var/cache"), "trusted.overlay.opaque", b"y");
    fs::write(t.join("var/cache/new"), b"fresh").unwrap();

    // Names that need PAX: long path, long link target, non-UTF-8 bytes.
    let deep = t.join("opt").join("d".repeat(60)).join("e".repeat(60));
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("f".repeat(90)), b"deep").unwrap();
    symlink("t".repeat(150), t.join("opt/longlink")).unwrap();
    fs::write(
        t.join("opt")
            .join(std::ffi::OsStr::from_bytes_compat(b"caf\xe9")),
        b"latin-1 name",
    )
    .unwrap();

    // mtimes last, directories after their contents.
    let mut all: Vec<_> = snapshot(t).into_keys().collect();
    all.sort_by_key(|p| std::cmp::Reverse(p.iter().filter(|&&b| b == b'/').count()));
    for (i, p) in all.iter().enumerate() {
        let full = t.join(std::ffi::OsStr::from_bytes_compat(p));
        set_mtime(&full, 1_500_000_000 + i as i64 * 1000);
    }
}

trait FromBytesCompat {
    fn from_bytes_compat(b: &[u8]) -> &std::ffi::OsStr;
}
impl FromBytesCompat for std::ffi::OsStr {
    fn from_bytes_compat(b: &[u8]) -> &std::ffi::OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(b)
    }
}

fn pseudo_random(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn round_trip_reproduces_every_kind_of_entry() {
    require_root();
    let dir = scratch();
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    build_tree(&tree);
    let want = snapshot(&tree);

    let store = Store::open(&dir.path().join("store")).unwrap();
    let blob = layer::write_layer(&store, &tree, &WriteOptions::default())
        .unwrap()
        .expect("a non-empty tree gives a layer");
    assert_eq!(blob.media_type, engine::image::media_type::LAYER_ZSTD);
    assert!(store.has_blob(&blob.digest));
    let fs_dir = layer::unpack_layer(&store, &blob.descriptor(), &blob.diff_id).unwrap();
    assert_eq!(fs_dir, store.layer_fs(&blob.diff_id));
    assert!(store.has_layer(&blob.diff_id));
    let got = snapshot(&fs_dir);
    assert_same_tree(&want, &got);
    // Spot checks that the comparison itself sees what matters.
    assert_eq!(got[&b"var/deleted"[..]].kind, "char");
    assert_eq!(got[&b"var/deleted"[..]].rdev, (0, 0));
    assert!(got[&b"var/cache"[..]]
        .xattrs
        .contains(&(b"trusted.overlay.opaque".to_vec(), b"y".to_vec())));
    assert_eq!(got[&b"usr/bin/su"[..]].mode, 0o4755);
    assert_eq!(
        got[&b"bin/ls"[..]].inode_group.as_deref(),
        Some(&b"bin/ls"[..]),
        "bin/ls, usr/bin/busybox and usr/bin/sh must share one inode"
    );
    assert_eq!(
        got[&b"usr/bin/sh"[..]].inode_group,
        got[&b"bin/ls"[..]].inode_group
    );

    // Unpacking again is a no-op returning the same directory.
    assert_eq!(
        layer::unpack_layer(&store, &blob.descriptor(), &blob.diff_id).unwrap(),
        fs_dir
    );
    assert_eq!(
        listing(store.tmp_dir()),
        Vec::<String>::new(),
        "unpack left temp files"
    );
}

#[test]
fn same_tree_gives_same_digests_and_epoch_clamps_mtimes() {
    require_root();
    let dir = scratch();
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    build_tree(&tree);
    let store = Store::open(&dir.path().join("store")).unwrap();
    let a = layer::write_layer(&store, &tree, &WriteOptions::default())
        .unwrap()
        .unwrap();
    let b = layer::write_layer(&store, &tree, &WriteOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(a, b, "the same tree must give the same layer");

    // A second store (another "machine") gives the same bytes too.
    let other = Store::open(&dir.path().join("other")).unwrap();
    let c = layer::write_layer(&other, &tree, &WriteOptions::default())
        .unwrap()
        .unwrap();
    assert_eq!(a, c);

    let epoch = 1_500_000_000 + 5_000;
    let opts = WriteOptions {
        source_date_epoch: Some(epoch),
        publish_unpacked: false,
    };
    let clamped = layer::write_layer(&store, &tree, &opts).unwrap().unwrap();
    assert_ne!(clamped.diff_id, a.diff_id);
    let fs_dir = layer::unpack_layer(&store, &clamped.descriptor(), &clamped.diff_id).unwrap();
    let got = snapshot(&fs_dir);
    assert!(
        got.values().all(|n| n.mtime <= epoch),
        "an mtime above SOURCE_DATE_EPOCH survived"
    );
    assert!(got.values().any(|n| n.mtime == epoch));
    assert!(
        got.values().any(|n| n.mtime < epoch),
        "mtimes below the epoch must be kept"
    );
}

#[test]
fn empty_tree_gives_no_layer() {
    require_root();
    let dir = scratch();
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    assert_eq!(
        layer::write_layer(&store, &tree, &WriteOptions::default()).unwrap(),
        None
    );
    assert_eq!(
        listing(&store.root().join("blobs/blake3")),
        Vec::<String>::new()
    );
    assert_eq!(listing(store.tmp_dir()), Vec::<String>::new());
}

#[test]
fn publish_unpacked_moves_the_tree_into_the_store() {
    require_root();
    let dir = scratch();
    let tree = dir.path().join("store/containers/step/upper");
    fs::create_dir_all(&tree).unwrap();
    build_tree(&tree);
    let want = snapshot(&tree);
    let store = Store::open(&dir.path().join("store")).unwrap();
    let opts = WriteOptions {
        source_date_epoch: None,
        publish_unpacked: true,
    };
    let blob = layer::write_layer(&store, &tree, &opts).unwrap().unwrap();
    assert!(store.has_layer(&blob.diff_id));
    assert_same_tree(&want, &snapshot(&store.layer_fs(&blob.diff_id)));
    assert!(
        tree.is_dir() && listing(&tree).is_empty(),
        "an empty dir stays at the tree's path"
    );

    // What was published is exactly what an unpack of the blob gives.
    let other = Store::open(&dir.path().join("other")).unwrap();
    let (d, _) = other
        .put_blob(&fs::read(store.blob_path(&blob.digest)).unwrap())
        .unwrap();
    assert_eq!(d, blob.digest);
    let fs_dir = layer::unpack_layer(&other, &blob.descriptor(), &blob.diff_id).unwrap();
    assert_same_tree(&want, &snapshot(&fs_dir));
}

#[test]
fn publish_with_clamped_mtimes_unpacks_instead_of_moving() {
    require_root();
    let dir = scratch();
    let tree = dir.path().join("store/containers/step/upper");
    fs::create_dir_all(&tree).unwrap();
    build_tree(&tree);
    let store = Store::open(&dir.path().join("store")).unwrap();
    let opts = WriteOptions {
        source_date_epoch: Some(1_500_000_000),
        publish_unpacked: true,
    };
    let blob = layer::write_layer(&store, &tree, &opts).unwrap().unwrap();
    assert!(store.has_layer(&blob.diff_id));
    let got = snapshot(&store.layer_fs(&blob.diff_id));
    assert!(got.values().all(|n| n.mtime <= 1_500_000_000));
    assert!(
        !listing(&tree).is_empty(),
        "the tree stays when it cannot be moved as is"
    );
}

/// With at least as many unpacks side by side as there are cores, each
/// parser writes its bodies itself instead of handing them to the writer
/// threads: that path must give the same exact tree.
#[test]
fn unpacks_side_by_side_reproduce_the_tree_exactly() {
    require_root();
    let dir = scratch();
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    build_tree(&tree);
    let want = snapshot(&tree);
    let store = Store::open(&dir.path().join("store")).unwrap();
    let blob = layer::write_layer(&store, &tree, &WriteOptions::default())
        .unwrap()
        .expect("a non-empty tree gives a layer");
    let n = std::thread::available_parallelism().map_or(2, |n| n.get()) + 1;
    let start = std::sync::Barrier::new(n);
    let dests: Vec<_> = (0..n).map(|i| dir.path().join(format!("out{i}"))).collect();
    std::thread::scope(|s| {
        for dest in &dests {
            let (start, store, blob) = (&start, &store, &blob);
            s.spawn(move || {
                fs::create_dir(dest).unwrap();
                start.wait();
                let opts = layer::UnpackOptions::layer("side-by-side");
                let got = layer::unpack_file(&store.blob_path(&blob.digest), dest, &opts).unwrap();
                assert_eq!(got.diff_id, blob.diff_id);
            });
        }
    });
    for dest in &dests {
        assert_same_tree(&want, &snapshot(dest));
    }
}

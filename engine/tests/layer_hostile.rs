//! Hostile streams: each is refused with an error naming the entry, and
//! nothing lands outside the layer directory (its parent is checked).

mod layer_common;

use std::fs;
use std::path::{Path, PathBuf};

use engine::layer::{self, LayerError, UnpackOptions};
use engine::Store;
use layer_common::*;
use tar::EntryType::{Directory as D, Link as H, Regular as F, Symlink as S};

/// `<scratch>/outer/{layer/, sentinel}`: unpack into `layer`, then the
/// outer directory must still hold exactly those two names.
struct Arena {
    _dir: tempfile::TempDir,
    outer: PathBuf,
    layer: PathBuf,
}

fn arena() -> Arena {
    require_root();
    let dir = scratch();
    let outer = dir.path().join("outer");
    let layer = outer.join("layer");
    fs::create_dir_all(&layer).unwrap();
    fs::write(outer.join("sentinel"), b"untouched").unwrap();
    Arena {
        _dir: dir,
        outer,
        layer,
    }
}

impl Arena {
    fn unpack(&self, tar: &[u8]) -> Result<layer::Unpacked, LayerError> {
        layer::unpack_stream(tar, &self.layer, &UnpackOptions::layer("blake3:test"))
    }

    fn assert_outside_untouched(&self) {
        assert_eq!(
            listing(&self.outer),
            vec!["layer", "sentinel"],
            "something was written outside the layer"
        );
        assert_eq!(fs::read(self.outer.join("sentinel")).unwrap(), b"untouched");
        assert!(
            !Path::new("/tmp/rbox-escaped").exists(),
            "an entry escaped to /tmp"
        );
    }
}

fn message(e: &LayerError) -> String {
    e.to_string()
}

#[test]
fn dotdot_entry_is_refused_naming_it() {
    let a = arena();
    let tar = tar_of(&[(b"../../escaped", F, b"pwned", b"")]);
    let e = a.unpack(&tar).unwrap_err();
    assert!(matches!(e, LayerError::Escapes { .. }), "{e}");
    assert_eq!(
        message(&e),
        "layer blake3:test: entry \"../../escaped\" escapes the layer root (the layer is hostile or corrupt; nothing was kept)"
    );
    a.assert_outside_untouched();
    let tar = tar_of(&[(b"a/", D, b"", b""), (b"a/../../escaped", F, b"x", b"")]);
    assert!(matches!(a.unpack(&tar), Err(LayerError::Escapes { .. })));
    a.assert_outside_untouched();
}

#[test]
fn absolute_paths_land_inside_the_root() {
    // Docker's rule: a leading '/' is relative to the layer root.
    let a = arena();
    let tar = tar_of(&[(b"/etc/passwd", F, b"root:x:0:0::/:/bin/sh\n", b"")]);
    a.unpack(&tar).unwrap();
    assert_eq!(
        fs::read(a.layer.join("etc/passwd")).unwrap(),
        b"root:x:0:0::/:/bin/sh\n"
    );
    a.assert_outside_untouched();
}

#[test]
fn write_through_a_symlink_is_refused() {
    let a = arena();
    let outer = a.outer.to_str().unwrap().as_bytes().to_vec();
    for target in [&b".."[..], &outer[..], b"/tmp"] {
        let tar = tar_of(&[
            (b"link", S, b"", target),
            (b"link/rbox-escaped", F, b"pwned", b""),
        ]);
        let e = a.unpack(&tar).unwrap_err();
        assert!(matches!(e, LayerError::ThroughSymlink { .. }), "{e}");
        assert!(message(&e).contains("\"link/rbox-escaped\""), "{e}");
        a.assert_outside_untouched();
        fs::remove_file(a.layer.join("link")).unwrap();
    }
    // A directory entry through a symlink, and a symlink in the middle.
    let tar = tar_of(&[
        (b"d/", D, b"", b""),
        (b"d/up", S, b"", b"../.."),
        (b"d/up/x/y", F, b"pwned", b""),
    ]);
    let r = a.unpack(&tar);
    assert!(matches!(r, Err(LayerError::ThroughSymlink { .. })), "{r:?}");
    a.assert_outside_untouched();
}

#[test]
fn dot_as_a_symlink_is_refused() {
    // umoci CVE-2021-29136.
    let a = arena();
    let outer = a.outer.to_str().unwrap().as_bytes().to_vec();
    let tar = tar_of(&[(b".", S, b"", &outer), (b"rbox-escaped", F, b"pwned", b"")]);
    let e = a.unpack(&tar).unwrap_err();
    assert!(matches!(e, LayerError::Refused { .. }), "{e}");
    assert!(message(&e).contains("CVE-2021-29136"), "{e}");
    a.assert_outside_untouched();
    assert!(listing(&a.layer).is_empty());
    let tar = tar_of(&[(b"./", S, b"", b"/")]);
    assert!(a.unpack(&tar).is_err());
}

#[test]
fn hard_links_must_name_earlier_entries_of_the_layer() {
    let a = arena();
    fs::write(a.outer.join("secret"), b"host secret").unwrap();
    let cases: [&[u8]; 4] = [b"../secret", b"/etc/passwd", b"never-seen", b"link/secret"];
    for target in cases {
        let tar = tar_of(&[(b"link", S, b"", b".."), (b"hl", H, b"", target)]);
        let e = a.unpack(&tar).unwrap_err();
        assert!(
            matches!(e, LayerError::Escapes { .. } | LayerError::Refused { .. }),
            "hard link to {:?}: {e}",
            String::from_utf8_lossy(target)
        );
        assert!(!a.layer.join("hl").exists());
        let _ = fs::remove_file(a.layer.join("link"));
    }
    fs::remove_file(a.outer.join("secret")).unwrap();
    a.assert_outside_untouched();

    // The legitimate case works, and is one inode.
    let tar = tar_of(&[(b"f", F, b"data", b""), (b"g", H, b"", b"f")]);
    a.unpack(&tar).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(a.layer.join("f")).unwrap().ino(),
        fs::metadata(a.layer.join("g")).unwrap().ino()
    );
}

#[test]
fn whiteout_of_a_path_in_the_same_layer_is_refused() {
    let a = arena();
    let tar = tar_of(&[(b"a", F, b"x", b""), (b".wh.a", F, b"", b"")]);
    let e = a.unpack(&tar).unwrap_err();
    assert!(message(&e).contains("same layer"), "{e}");
    fs::remove_file(a.layer.join("a")).unwrap();
    let tar = tar_of(&[(b".wh.b", F, b"", b""), (b"b", F, b"x", b"")]);
    let e = a.unpack(&tar).unwrap_err();
    assert!(message(&e).contains("same path"), "{e}");
    a.assert_outside_untouched();
    // And a lone whiteout is an overlay whiteout.
    let a = arena();
    a.unpack(&tar_of(&[
        (b"d/", D, b"", b""),
        (b"d/.wh.gone", F, b"", b""),
        (b"d/.wh..wh..opq", F, b"", b""),
    ]))
    .unwrap();
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = fs::symlink_metadata(a.layer.join("d/gone")).unwrap();
    assert!(md.file_type().is_char_device() && md.rdev() == 0);
    assert!(
        xattrs(&a.layer.join("d")).contains(&(b"trusted.overlay.opaque".to_vec(), b"y".to_vec()))
    );
}

#[test]
fn overlay_xattrs_from_the_stream_are_dropped() {
    // A layer must not smuggle trusted.overlay.redirect and the like.
    let a = arena();
    let mut pax = Vec::new();
    let rec = b"trusted.overlay.redirect=/etc";
    let line = format!(
        "{} SCHILY.xattr.{}\n",
        rec.len() + 13 + 1 + 3,
        std::str::from_utf8(rec).unwrap()
    );
    pax.extend_from_slice(line.as_bytes());
    let mut tar = Vec::new();
    tar.extend_from_slice(
        raw_header(b"pax", tar::EntryType::XHeader, pax.len() as u64, b"").as_bytes(),
    );
    tar.extend_from_slice(&pax);
    tar.extend(std::iter::repeat_n(0u8, (512 - pax.len() % 512) % 512));
    tar.extend_from_slice(&tar_of(&[(b"d/", D, b"", b"")]));
    a.unpack(&tar).unwrap();
    assert!(a.layer.join("d").is_dir());
    assert!(
        xattrs(&a.layer.join("d")).is_empty(),
        "{:?}",
        xattrs(&a.layer.join("d"))
    );
}

#[test]
fn huge_size_fields_give_a_clean_error() {
    let a = arena();
    let mut tar = Vec::new();
    // 8 GiB - 1 claimed, a few bytes present.
    tar.extend_from_slice(raw_header(b"huge", F, 0o77777777777, b"").as_bytes());
    tar.extend_from_slice(&[b'x'; 4096]);
    let e = a.unpack(&tar).unwrap_err();
    assert!(matches!(e, LayerError::Corrupt { .. }), "{e}");
    a.assert_outside_untouched();
    // The same through zstd.
    let e = a.unpack(&zstd_of(&tar)).unwrap_err();
    assert!(matches!(e, LayerError::Corrupt { .. }), "{e}");
}

#[test]
fn truncated_streams_give_a_clean_error() {
    let a = arena();
    let full = tar_of(&[(b"f", F, &[7u8; 5000], b""), (b"g", F, b"tail", b"")]);
    // Cut inside a body, inside a header, at a header boundary (no end marker).
    for cut in [700, 5700, 6144] {
        let e = a.unpack(&full[..cut]).unwrap_err();
        assert!(matches!(e, LayerError::Corrupt { .. }), "cut at {cut}: {e}");
    }
    let z = zstd_of(&full);
    let e = a.unpack(&z[..z.len() / 2]).unwrap_err();
    assert!(matches!(e, LayerError::Corrupt { .. }), "{e}");
    a.assert_outside_untouched();
}

#[test]
fn truncated_blob_leaves_no_layer_in_the_store() {
    require_root();
    let dir = scratch();
    let store = Store::open(dir.path()).unwrap();
    let full = zstd_of(&tar_of(&[(b"f", F, &[7u8; 100_000], b"")]));
    let diff_id = engine::Digest::blake3_of(&tar_of(&[(b"f", F, &[7u8; 100_000], b"")]));
    let (digest, size) = store.put_blob(&full[..full.len() - 20]).unwrap();
    let desc = engine::Descriptor {
        media_type: engine::image::media_type::LAYER_ZSTD.into(),
        digest,
        size,
        annotations: Default::default(),
    };
    let e = layer::unpack_layer(&store, &desc, &diff_id).unwrap_err();
    assert!(matches!(e, LayerError::Corrupt { .. }), "{e}");
    assert!(!store.has_layer(&diff_id));
    assert!(listing(&store.root().join("layers")).is_empty());
    assert!(
        listing(store.tmp_dir()).is_empty(),
        "the staged directory was left behind"
    );

    // A whole stream that hashes to something else is refused too.
    let (digest, size) = store.put_blob(&full).unwrap();
    let wrong = engine::Digest::blake3_of(b"not this layer");
    let e = layer::unpack_layer(
        &store,
        &engine::Descriptor {
            digest,
            size,
            ..desc
        },
        &wrong,
    )
    .unwrap_err();
    assert!(matches!(e, LayerError::DiffIdMismatch { .. }), "{e}");
    assert!(listing(&store.root().join("layers")).is_empty());
}

#[test]
fn unknown_entry_types_and_compressions_are_refused() {
    let a = arena();
    let tar = tar_of(&[(b"vol", tar::EntryType::new(b'V'), b"", b"")]);
    assert!(matches!(a.unpack(&tar), Err(LayerError::Refused { .. })));
    let mut xz = vec![0xfd, b'7', b'z', b'X', b'Z', 0];
    xz.extend_from_slice(&[0; 100]);
    let e = a.unpack(&xz).unwrap_err();
    assert!(message(&e).contains("xz"), "{e}");
}

#[test]
fn giant_extension_headers_are_refused_before_they_are_read() {
    // The tar crate reads PAX and GNU long-name bodies whole; a tiny zstd
    // blob can claim and inflate to gigabytes of one.
    let a = arena();
    for kind in [tar::EntryType::XHeader, tar::EntryType::GNULongName] {
        let claimed: u64 = 4 << 30;
        let mut tar = Vec::new();
        tar.extend_from_slice(raw_header(b"ext", kind, claimed, b"").as_bytes());
        let mut enc = zstd::Encoder::new(Vec::new(), 3).unwrap();
        std::io::Write::write_all(&mut enc, &tar).unwrap();
        let zeros = vec![b'a'; 1 << 20];
        for _ in 0..64 {
            std::io::Write::write_all(&mut enc, &zeros).unwrap();
        }
        let blob = enc.finish().unwrap();
        let e = a.unpack(&blob).unwrap_err();
        assert!(matches!(e, LayerError::HeaderRefused { .. }), "{e}");
        assert!(message(&e).contains("extension header"), "{e}");
    }
    // Normal-sized ones (long names) still work.
    let long = format!("{}file", "dir/".repeat(75));
    let mut t = Vec::new();
    let mut pax = format!("{} path={long}\n", long.len() + 6 + 4);
    if pax.len() != long.len() + 6 + 4 {
        pax = format!("{} path={long}\n", pax.len());
    }
    t.extend_from_slice(
        raw_header(b"pax", tar::EntryType::XHeader, pax.len() as u64, b"").as_bytes(),
    );
    t.extend_from_slice(pax.as_bytes());
    t.extend(std::iter::repeat_n(0u8, (512 - pax.len() % 512) % 512));
    t.extend_from_slice(&tar_of(&[(b"short", F, b"body", b"")]));
    a.unpack(&t).unwrap();
    assert_eq!(fs::read(a.layer.join(&long)).unwrap(), b"body");
    a.assert_outside_untouched();
}

/// A byte changed inside a zstd frame that still decompresses: without an
/// expected diff id, zstd's frame checksum refuses it; with one (a layer
/// of an image), the unpack skips that checksum and the diff id refuses it.
#[test]
fn a_changed_byte_inside_a_zstd_frame_is_refused_with_or_without_its_checksum() {
    use std::io::Write;
    let a = arena();
    // Incompressible bytes: zstd stores them in raw blocks, so a changed
    // byte decompresses to a changed byte instead of failing to decode.
    let mut x: u32 = 0x1234_5678;
    let body: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let tar = tar_of(&[(b"f", F, &body, b"")]);
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    enc.include_checksum(true).unwrap();
    enc.write_all(&tar).unwrap();
    let mut blob = enc.finish().unwrap();
    let mid = blob.len() / 2;
    blob[mid] ^= 0x55;

    let e = a.unpack(&blob).unwrap_err();
    assert!(matches!(e, LayerError::Corrupt { .. }), "{e}");
    a.assert_outside_untouched();

    let store = Store::open(&a.outer.join("store")).unwrap();
    let (digest, size) = store.put_blob(&blob).unwrap();
    let desc = engine::Descriptor {
        media_type: engine::image::media_type::LAYER_ZSTD.into(),
        digest,
        size,
        annotations: Default::default(),
    };
    let diff_id = engine::Digest::blake3_of(&tar);
    let e = layer::unpack_layer(&store, &desc, &diff_id).unwrap_err();
    assert!(matches!(e, LayerError::DiffIdMismatch { .. }), "{e}");
    assert!(!store.has_layer(&diff_id));
    assert!(listing(store.tmp_dir()).is_empty());
}

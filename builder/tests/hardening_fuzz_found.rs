//! Inputs the fuzzers found (fuzz/regressions/), replayed against the real
//! engine with the property they broke.

use std::path::Path;

fn vm_peak_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmPeak:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmPeak in /proc/self/status")
}

/// cargo fuzz (unpack target, ~45 s, 48k inputs): a 13-byte zstd frame
/// header that declares a 2 GiB window. The decoder allocates the whole
/// window before it reads one byte of data, so any layer blob can make
/// rbuild (import, pull, load) and rrun (pull) reserve 2 GiB: libFuzzer
/// stopped on malloc(2147876928). A layer must not cost more memory than
/// a sane window (zstd's own default limit is 128 MiB, --long=27).
#[test]
fn a_tiny_zstd_frame_cannot_reserve_gigabytes() {
    let input = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/regressions/unpack/zstd-2gib-window-13-bytes"),
    )
    .unwrap();
    assert_eq!(input.len(), 13);
    let dir = tempfile::tempdir().unwrap();
    let before = vm_peak_kib();
    let r = engine::layer::unpack_stream(
        &input[..],
        dir.path(),
        &engine::layer::UnpackOptions::layer("fuzz-regression"),
    );
    let grew_mib = (vm_peak_kib() - before) / 1024;
    assert!(r.is_err(), "a truncated frame unpacked");
    assert!(
        grew_mib < 512,
        "13 bytes of zstd made the unpacker reserve {grew_mib} MiB (error: {})",
        r.unwrap_err()
    );
}

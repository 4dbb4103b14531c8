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

/// Every input in fuzz/regressions/ (what the fuzzers found, kept once
/// fixed) through the fuzz targets' properties, so CI replays each one and
/// not only the fuzz drivers do: the unpacker writes nothing beside its
/// target, the parser's errors name a line of the file. A panic fails too.
#[test]
fn every_committed_fuzz_regression_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let inputs = |target: &str| -> Vec<(String, Vec<u8>)> {
        let dir = root.join(target);
        // git keeps no empty directory: none found yet for this target.
        let rd = match std::fs::read_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            r => r.unwrap_or_else(|e| panic!("read {}: {e}", dir.display())),
        };
        let mut v: Vec<_> = rd
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read(e.path()).unwrap())
            })
            .collect();
        v.sort();
        v
    };
    let unpack = inputs("unpack");
    let containerfile = inputs("containerfile");
    assert!(
        !unpack.is_empty(),
        "no input in {}/unpack: the replay would test nothing",
        root.display()
    );
    // The header and expansion bombs among them claim 512 MiB to 1 TiB;
    // replaying all of them must not cost a fraction of that.
    let peak_before = vm_peak_kib();
    for (name, data) in &unpack {
        let sandbox = tempfile::tempdir().unwrap();
        let target = sandbox.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(sandbox.path().join("sibling"), "untouched").unwrap();
        let _ = engine::layer::unpack_stream(
            &data[..],
            &target,
            &engine::layer::UnpackOptions::layer(name),
        );
        let mut beside: Vec<_> = std::fs::read_dir(sandbox.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        beside.sort();
        assert_eq!(
            beside,
            ["sibling", "target"],
            "{name}: wrote beside its target"
        );
        assert_eq!(
            std::fs::read_to_string(sandbox.path().join("sibling")).unwrap(),
            "untouched",
            "{name}: rewrote a file beside its target"
        );
        let grew_mib = (vm_peak_kib() - peak_before) / 1024;
        assert!(
            grew_mib < 512,
            "{name}: the unpacker's peak memory grew by {grew_mib} MiB"
        );
    }
    for (name, data) in &containerfile {
        let Ok(text) = std::str::from_utf8(data) else {
            continue;
        };
        if let Err(e) = builder::parse::Containerfile::parse("Containerfile", text) {
            let lines = text.lines().count().max(1);
            assert!(
                e.line <= lines + 1,
                "{name}: the error names line {} of a {lines}-line file: {e}",
                e.line
            );
        }
    }
    eprintln!(
        "replayed {} unpack and {} containerfile regression inputs",
        unpack.len(),
        containerfile.len()
    );
}

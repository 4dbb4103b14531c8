//! Stable-toolchain fuzz driver (cargo-fuzz needs nightly): feeds the
//! seeds, then random mutations of them, to the same checks as the
//! libFuzzer targets for a given time. On a panic it saves the input to
//! fuzz/artifacts/<target>/ and exits 1.
//!
//! Usage: fuzz_stable <unpack|containerfile> [seconds=60] [seed]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::time::{Duration, Instant};

use rbox_fuzz::seeds;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\0", b"\xff", b"0", b"7", b"77777777777", b"99999999999", b"..", b"/", b"../", b"ustar\0",
    b"ustar  \0", b"2", b"1", b"5", b"L", b"K", b"x", b"g", b"S", b".wh.", b".wh..wh..opq",
    b"path=", b"linkpath=", b"size=", b"GNU.sparse.", b"\x80", b"\x28\xb5\x2f\xfd", b"\x1f\x8b\x08",
];

fn mutate(rng: &mut Rng, pool: &[Vec<u8>], tokens: &[&[u8]]) -> Vec<u8> {
    let mut v = pool[rng.below(pool.len())].clone();
    for _ in 0..1 + rng.below(6) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            2 => {
                let t = tokens[rng.below(tokens.len())];
                let i = rng.below(len + 1);
                v.splice(i..i, t.iter().copied());
            }
            3 if len > 0 => {
                // Overwrite in place: keeps tar offsets where they were.
                let t = tokens[rng.below(tokens.len())];
                let i = rng.below(len);
                for (k, b) in t.iter().enumerate() {
                    if i + k < v.len() {
                        v[i + k] = *b;
                    }
                }
            }
            4 if len > 0 => {
                let a = rng.below(len);
                let b = (a + rng.below(64)).min(len);
                v.drain(a..b);
            }
            5 if len > 0 => v.truncate(rng.below(len)),
            6 => {
                // Splice a piece of another input.
                let o = &pool[rng.below(pool.len())];
                if !o.is_empty() {
                    let a = rng.below(o.len());
                    let b = (a + rng.below(1024)).min(o.len());
                    let i = rng.below(len + 1);
                    v.splice(i..i, o[a..b].iter().copied());
                }
            }
            _ if len > 0 => {
                // Duplicate a block (a tar header, a line).
                let a = rng.below(len);
                let b = (a + rng.below(600)).min(len);
                let piece = v[a..b].to_vec();
                let i = rng.below(len + 1);
                v.splice(i..i, piece);
            }
            _ => {}
        }
    }
    v
}

fn vm_peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmPeak:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let target = args.get(1).map(String::as_str).unwrap_or("");
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(60);
    let seed: u64 = args
        .get(3)
        .filter(|_| args.get(2).map(String::as_str) != Some("write-seeds"))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::process::id() as u64 * 0x9e37_79b9 + 1);
    let (check, mut pool, tokens): (fn(&[u8]), Vec<Vec<u8>>, Vec<&[u8]>) = match target {
        "unpack" => (rbox_fuzz::check_unpack, seeds::unpack_seeds(), INTERESTING.to_vec()),
        "containerfile" => (
            rbox_fuzz::check_containerfile,
            seeds::CONTAINERFILES.iter().map(|s| s.as_bytes().to_vec()).collect(),
            seeds::TOKENS.iter().map(|s| s.as_bytes()).collect(),
        ),
        _ => {
            eprintln!("usage: fuzz_stable <unpack|containerfile> [seconds] [seed]");
            std::process::exit(2);
        }
    };
    if args.get(2).map(String::as_str) == Some("write-seeds") {
        // Seeds for libFuzzer: fuzz_stable <target> write-seeds DIR
        let dir = Path::new(args.get(3).expect("write-seeds DIR"));
        std::fs::create_dir_all(dir).unwrap();
        for (i, s) in pool.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i:03}")), s).unwrap();
        }
        println!("{} seeds written to {}", pool.len(), dir.display());
        return;
    }
    // Committed corpus and regression inputs run first, every time.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["corpus", "regressions"] {
        if let Ok(rd) = std::fs::read_dir(root.join(dir).join(target)) {
            for e in rd.flatten() {
                pool.push(std::fs::read(e.path()).unwrap());
            }
        }
    }
    std::panic::set_hook(Box::new(|_| {}));
    // libFuzzer stops on a malloc over its limit; this driver watches the
    // process's peak address space instead (a 13-byte zstd header once
    // reserved 2 GiB). Off with FUZZ_VM_LIMIT_MIB=0.
    let vm_limit_kib: u64 = std::env::var("FUZZ_VM_LIMIT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
        * 1024;
    // Measured after the first input: the unpacker's worker threads and
    // buffers are set up once, then reused.
    let mut vm_base = u64::MAX;
    let mut rng = Rng(seed | 1);
    let start = Instant::now();
    let mut runs = 0u64;
    let seeds_n = pool.len();
    let mut i = 0;
    while i < seeds_n || start.elapsed() < Duration::from_secs(secs) {
        let input = if i < seeds_n { pool[i].clone() } else { mutate(&mut rng, &pool, &tokens) };
        i += 1;
        runs += 1;
        let result = catch_unwind(AssertUnwindSafe(|| check(&input))).and_then(|()| {
            if vm_base == u64::MAX {
                vm_base = vm_peak_kib();
            }
            let grew = vm_peak_kib().saturating_sub(vm_base);
            if vm_limit_kib > 0 && grew > vm_limit_kib {
                let msg = format!("the address space grew by {} MiB on one input", grew / 1024);
                Err(Box::new(msg) as Box<dyn std::any::Any + Send>)
            } else {
                Ok(())
            }
        });
        if let Err(p) = result {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let dir = root.join("artifacts").join(target);
            std::fs::create_dir_all(&dir).unwrap();
            let name = format!("crash-{}", engine::Digest::blake3_of(&input).to_string().replace(':', "-"));
            std::fs::write(dir.join(&name), &input).unwrap();
            eprintln!(
                "fuzz_stable {target}: FAILED after {runs} inputs, {:.1} s (seed {seed}): {}\ninput saved as {}",
                start.elapsed().as_secs_f64(),
                msg.chars().take(2000).collect::<String>(),
                dir.join(&name).display()
            );
            std::process::exit(1);
        }
        // Keep a few interesting-looking mutants: grows the pool slowly.
        if i > seeds_n && rng.below(64) == 0 && pool.len() < 4096 {
            pool.push(input);
        }
    }
    println!(
        "fuzz_stable {target}: {runs} inputs in {:.1} s (seed {seed}), no failure",
        start.elapsed().as_secs_f64()
    );
}

//! unpack: the synthetic image (≈200 MB, ≈10k files, 3 layers) from zstd
//! blobs in a store to overlay lowerdirs, beside `tar -I zstd -x` of the
//! same layer blobs one after the other and side by side (issue 2 compares
//! with the latter).
//!
//! The unpacker sizes its own threads (a decompressor per layer, writers
//! only while a core is free), so there is no thread-count dimension: an
//! earlier one set a rayon pool the unpacker no longer uses.

use std::process::Command;

use criterion::{BatchSize, Criterion};

use benches::corpus;
use benches::rbox_store::{forget_unpacked, ingest};
use benches::suite::{slow_criterion, Env};
use benches::tools::{clean_dir, run_quiet, sync};
use engine::store::Store;

fn main() {
    let Some(env) = Env::open("unpack") else {
        return;
    };
    let s = slow_criterion();
    let mut c = Criterion::default()
        .sample_size(s.sample_size)
        .measurement_time(s.measurement)
        .warm_up_time(s.warm_up)
        .configure_from_args();
    let img = match corpus::synthetic(&env.cache, 200) {
        Ok(i) => i,
        Err(e) => return env.skip("unpack", format!("cannot make the synthetic image: {e}")),
    };
    eprintln!("unpack: {}", img.describe());
    let mut g = c.benchmark_group("unpack");
    g.throughput(criterion::Throughput::Bytes(img.stats().0));

    let root = env.scratch.mountpoint.join("bench-unpack-store");
    let prepared = clean_dir(&root)
        .map_err(|e| e.to_string())
        .and_then(|_| ingest(&root, &img, "bench"));
    match prepared {
        Err(e) => env.skip(
            "unpack/rbox",
            format!("cannot put the image into a store: {e}"),
        ),
        Ok(()) => {
            let store = Store::open(&root).expect("store just made");
            let image = store.find_image("bench:latest").expect("image just tagged");
            // One probe first: a stub or a failure is reported, not timed.
            forget_unpacked(&root).expect("clean layers");
            match engine::layer::unpack_image(&store, &image) {
                Err(e) => env.skip("unpack/rbox", e),
                Ok(_) => {
                    g.bench_function("rbox", |b| {
                        b.iter_batched(
                            || {
                                forget_unpacked(&root).expect("clean layers");
                                sync();
                            },
                            |_| engine::layer::unpack_image(&store, &image).expect("unpack"),
                            BatchSize::PerIteration,
                        )
                    });
                }
            }
        }
    }

    let target = env.scratch.mountpoint.join("bench-unpack-tar");
    let script: String = img
        .zst_paths()
        .iter()
        .map(|l| {
            format!(
                "tar -I zstd -xf {} -C {} || exit 1; ",
                l.display(),
                target.display()
            )
        })
        .collect();
    g.bench_function("tar-x/sequential", |b| {
        b.iter_batched(
            || {
                clean_dir(&target).expect("clean target");
                std::fs::create_dir_all(&target).expect("target dir");
                sync();
            },
            |_| run_quiet(Command::new("sh").arg("-c").arg(&script)).expect("tar -x"),
            BatchSize::PerIteration,
        )
    });
    // One tar per layer, each into its own directory, all at once.
    let mut par = String::new();
    for (i, l) in img.zst_paths().iter().enumerate() {
        par.push_str(&format!(
            "mkdir -p {d}/{i} && tar -I zstd -xf {} -C {d}/{i} & p{i}=$!; ",
            l.display(),
            d = target.display()
        ));
    }
    par.push_str(
        &(0..img.layers)
            .map(|i| format!("wait $p{i} || exit 1"))
            .collect::<Vec<_>>()
            .join("; "),
    );
    g.bench_function("tar-x/layers-in-parallel", |b| {
        b.iter_batched(
            || {
                clean_dir(&target).expect("clean target");
                sync();
            },
            |_| run_quiet(Command::new("sh").arg("-c").arg(&par)).expect("tar -x"),
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let _ = clean_dir(&target);
    let _ = clean_dir(&root);
    c.final_summary();
}

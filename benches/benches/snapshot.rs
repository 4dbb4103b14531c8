//! snapshot: an upperdir of ≈100 MB / 5k files to a layer blob
//! (engine::layer::write_layer: tar + zstd + blake3 + fsync'ed store
//! commit), beside `tar -c | zstd -3` of the same tree.

use std::process::Command;

use criterion::{BatchSize, Criterion};

use benches::corpus;
use benches::suite::{slow_criterion, Env};
use benches::tools::{clean_dir, run_quiet, sync};
use engine::layer::WriteOptions;
use engine::store::Store;

fn main() {
    let Some(env) = Env::open("snapshot") else {
        return;
    };
    let s = slow_criterion();
    let mut c = Criterion::default()
        .sample_size(s.sample_size)
        .measurement_time(s.measurement)
        .warm_up_time(s.warm_up)
        .configure_from_args();
    let tree = env.scratch.mountpoint.join("bench-snapshot-tree");
    let marker = env.scratch.mountpoint.join("bench-snapshot-tree.complete");
    if !marker.exists() {
        let made = clean_dir(&tree)
            .map_err(|e| e.to_string())
            .and_then(|_| corpus::upper_tree(&tree, 100, 5000).map_err(|e| e.to_string()));
        if let Err(e) = made {
            return env.skip("snapshot", format!("cannot make the 100 MB tree: {e}"));
        }
        std::fs::write(&marker, "").expect("marker");
    }
    let mut g = c.benchmark_group("snapshot");
    let root = env.scratch.mountpoint.join("bench-snapshot-store");
    let _ = clean_dir(&root);
    match Store::open(&root) {
        Err(e) => env.skip("snapshot/rbox", e),
        Ok(store) => match engine::layer::write_layer(&store, &tree, &WriteOptions::default()) {
            Err(e) => env.skip("snapshot/rbox-write_layer", e),
            Ok(None) => env.skip(
                "snapshot/rbox-write_layer",
                "write_layer found the tree empty",
            ),
            Ok(Some(blob)) => {
                eprintln!("snapshot: tree → {} bytes ({})", blob.size, blob.digest);
                g.bench_function("rbox-write_layer", |b| {
                    b.iter_batched(
                        || {
                            // The same tree gives the same digest: drop the
                            // blob so every iteration writes and commits it.
                            let _ = std::fs::remove_file(store.blob_path(&blob.digest));
                            sync();
                        },
                        |_| {
                            engine::layer::write_layer(&store, &tree, &WriteOptions::default())
                                .expect("write_layer")
                        },
                        BatchSize::PerIteration,
                    )
                });
            }
        },
    }
    let out = env.scratch.mountpoint.join("bench-snapshot.tar.zst");
    let script = format!(
        "set -o pipefail; tar -C {} -cf - . | zstd -3 -q -f -o {}",
        tree.display(),
        out.display()
    );
    g.bench_function("tar-c|zstd-3", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(&out);
                sync();
            },
            |_| run_quiet(Command::new("bash").arg("-c").arg(&script)).expect("tar | zstd"),
            BatchSize::PerIteration,
        )
    });
    g.finish();
    let _ = clean_dir(&root);
    c.final_summary();
}

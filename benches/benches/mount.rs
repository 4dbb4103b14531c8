//! mount: overlay assemble and teardown for 1, 4 and 16 lower layers, as
//! the container start path does it: a fresh upper and work dir, mount(2)
//! of the overlay, then umount and removal of upper/work.

use std::path::{Path, PathBuf};

use criterion::Criterion;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use benches::corpus;
use benches::suite::Env;
use benches::tools::clean_dir;

const MAX_LAYERS: usize = 16;

fn layers(env: &Env) -> Result<Vec<PathBuf>, String> {
    let base = env.scratch.mountpoint.join("bench-mount-layers");
    let done = base.join("complete");
    let dirs: Vec<PathBuf> = (0..MAX_LAYERS)
        .map(|i| base.join(format!("l{i:02}")))
        .collect();
    if !done.exists() {
        clean_dir(&base).map_err(|e| e.to_string())?;
        for (i, d) in dirs.iter().enumerate() {
            // 50 files of a small distro-like tree each, distinct per layer.
            corpus::generate_tree(d, &format!("usr/l{i}"), 50, 200_000, 100 + i as u64)
                .map_err(|e| e.to_string())?;
        }
        std::fs::write(&done, "").map_err(|e| e.to_string())?;
    }
    Ok(dirs)
}

/// Assemble, then tear down; what `rrun` does around every container.
fn cycle(dir: &Path, lowers: &[PathBuf]) -> Result<(), String> {
    let (upper, work, merged) = (dir.join("upper"), dir.join("work"), dir.join("merged"));
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    let lowerdir: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowerdir.join(":"),
        upper.display(),
        work.display()
    );
    mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .map_err(|e| format!("mount overlay on {}: {e}", merged.display()))?;
    umount2(&merged, MntFlags::empty()).map_err(|e| format!("umount {}: {e}", merged.display()))?;
    engine::fsutil::remove_tree(dir).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())
}

fn main() {
    let Some(env) = Env::open("mount") else {
        return;
    };
    let mut c = Criterion::default().configure_from_args();
    let dirs = match layers(&env) {
        Ok(d) => d,
        Err(e) => return env.skip("mount", format!("cannot make the layers: {e}")),
    };
    let snap = env.scratch.mountpoint.join("bench-mount-snapshot");
    let _ = clean_dir(&snap);
    std::fs::create_dir_all(&snap).expect("snapshot dir");
    let mut g = c.benchmark_group("mount");
    for n in [1, 4, 16] {
        let lowers: Vec<PathBuf> = dirs[..n].iter().rev().cloned().collect();
        if let Err(e) = cycle(&snap, &lowers) {
            env.skip(&format!("mount/overlay-{n}-layers"), e);
            continue;
        }
        g.bench_function(format!("overlay-{n}-layers"), |b| {
            b.iter(|| cycle(&snap, &lowers).expect("overlay cycle"))
        });
    }
    g.finish();
    let _ = clean_dir(&snap);
    c.final_summary();
}

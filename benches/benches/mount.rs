//! mount: overlay assemble and teardown for 1, 4 and 16 lower layers, as
//! the container start path does it: the engine's OverlaySnapshotter
//! describes the mount (fresh upper + work), mount(2) performs it, then
//! umount and removal of upper/work.

use std::path::{Path, PathBuf};

use criterion::Criterion;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use benches::corpus;
use benches::suite::Env;
use benches::tools::clean_dir;
use engine::snapshot::{OverlaySnapshotter, Snapshotter};

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
    let specs = OverlaySnapshotter
        .prepare(dir, lowers)
        .map_err(|e| e.to_string())?;
    let spec = &specs[0];
    // mount(2) takes one options string; lowerdir+= needs fsconfig(2), so
    // the lowers are joined the classic way (top first).
    let lowerdir: Vec<String> = spec
        .options
        .iter()
        .filter_map(|o| o.strip_prefix("lowerdir+="))
        .map(str::to_string)
        .collect();
    let mut opts = vec![format!("lowerdir={}", lowerdir.join(":"))];
    opts.extend(
        spec.options
            .iter()
            .filter(|o| !o.starts_with("lowerdir+="))
            .cloned(),
    );
    std::fs::create_dir_all(&spec.target).map_err(|e| e.to_string())?;
    mount(
        Some("overlay"),
        &spec.target,
        Some("overlay"),
        MsFlags::empty(),
        Some(opts.join(",").as_str()),
    )
    .map_err(|e| format!("mount overlay on {}: {e}", spec.target.display()))?;
    umount2(&spec.target, MntFlags::empty())
        .map_err(|e| format!("umount {}: {e}", spec.target.display()))?;
    OverlaySnapshotter.remove(dir).map_err(|e| e.to_string())?;
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

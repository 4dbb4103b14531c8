//! spawn: the start path of `/bin/true` in the busybox image — overlay +
//! namespaces + cgroup + pivot_root + exec + wait + teardown.
//!
//! Timed three ways: the library path (`runner::native::NativeRuntime::run`
//! on a `ContainerSpec` over the unpacked busybox layer, plus removal of
//! the upper/work dirs as `--rm` does), the whole CLI path `rrun run --rm`
//! (process start and image lookup included), and the lower bound
//! `unshare … chroot`.

use std::path::PathBuf;
use std::process::Command;

use criterion::Criterion;

use benches::suite::Env;
use benches::tools::{clean_dir, run_quiet, run_stdout};
use engine::runtime::{ContainerSpec, ExitStatus, RootfsSpec, Runtime};
use engine::store::Store;
use runner::native::NativeRuntime;

/// rrun from this workspace's target dir (built by `cargo build --release -p runner`).
fn rrun() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // target/release/deps/spawn-HASH → target/release/rrun
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .ok_or("no target dir")?;
    let p = dir.join("rrun");
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "{} not built: run `cargo build --release -p runner` first",
            p.display()
        ))
    }
}

fn spec(lowers: &[PathBuf], dir: &std::path::Path, i: u64) -> ContainerSpec {
    ContainerSpec {
        env: vec![format!("PATH={}", runner::DEFAULT_PATH)],
        hostname: "bench".into(),
        ..ContainerSpec::new(
            &format!("bench-spawn-{}-{i}", std::process::id()),
            RootfsSpec::under(dir, lowers.to_vec()),
            vec!["/bin/true".into()],
        )
    }
}

/// The library start path over the busybox image's unpacked layer(s).
fn library(
    env: &Env,
    store_root: &std::path::Path,
    bb_tar: &std::path::Path,
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
) {
    let lowers = benches::corpus::zstd_of(bb_tar)
        .map_err(|e| e.to_string())
        .and_then(|zst| {
            benches::rbox_store::ingest_layers(
                store_root,
                &[(bb_tar.to_path_buf(), zst)],
                "busybox-lib",
            )
        })
        .and_then(|_| Store::open(store_root).map_err(|e| e.to_string()))
        .and_then(|store| {
            let img = store.find_image("busybox-lib").map_err(|e| e.to_string())?;
            let mut l = engine::layer::unpack_image(&store, &img).map_err(|e| e.to_string())?;
            l.reverse(); // overlay order: top first
            Ok(l)
        });
    let lowers = match lowers {
        Ok(l) => l,
        Err(e) => return env.skip("spawn/library", format!("no unpacked busybox image: {e}")),
    };
    let dir = env.scratch.mountpoint.join("bench-spawn");
    let rt = NativeRuntime::new();
    let mut i = 0u64;
    let mut once = || -> Result<(), String> {
        i += 1;
        let _ = clean_dir(&dir);
        let st = rt.run(&spec(&lowers, &dir, i)).map_err(|e| e.to_string())?;
        clean_dir(&dir).map_err(|e| e.to_string())?;
        match st {
            ExitStatus::Exited(0) => Ok(()),
            other => Err(format!("/bin/true ended with {other:?}")),
        }
    };
    if let Err(e) = once() {
        return env.skip("spawn/library", e);
    }
    g.bench_function("library-NativeRuntime", |b| {
        b.iter(|| once().expect("NativeRuntime::run"))
    });
}

fn main() {
    let Some(env) = Env::open("spawn") else {
        return;
    };
    let mut c = Criterion::default().configure_from_args();
    let bb = match benches::busybox::ensure(&env.cache) {
        Ok(b) => b,
        Err(e) => return env.skip("spawn", e),
    };
    let mut g = c.benchmark_group("spawn");

    let store = env.scratch.mountpoint.join("rbox-store");
    let ready = rrun().and_then(|rrun| {
        let rbuild = rrun.with_file_name("rbuild");
        if !rbuild.exists() {
            return Err(format!(
                "{} not built: run `cargo build --release -p builder` first",
                rbuild.display()
            ));
        }
        run_quiet(
            Command::new(&rbuild)
                .arg("--root")
                .arg(&store)
                .arg("import")
                .arg(&bb.tar)
                .arg("busybox"),
        )
        .map_err(|e| e.to_string())?;
        let out = run_stdout(Command::new(&rrun).arg("--root").arg(&store).args([
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "/bin/sh",
            "-c",
            "echo pid=$$",
        ]))
        .map_err(|e| e.to_string())?;
        if out.trim() != "pid=1" {
            return Err(format!(
                "rrun's probe printed {:?}, not \"pid=1\"",
                out.trim()
            ));
        }
        Ok(rrun)
    });
    library(&env, &store, &bb.tar, &mut g);
    match ready {
        Err(e) => env.skip("spawn/rrun-cli", e),
        Ok(rrun) => {
            g.bench_function("rrun-cli", |b| {
                b.iter(|| {
                    run_quiet(Command::new(&rrun).arg("--root").arg(&store).args([
                        "run",
                        "--rm",
                        "--network",
                        "none",
                        "busybox",
                        "/bin/true",
                    ]))
                    .expect("rrun run")
                })
            });
        }
    }
    g.bench_function("unshare-chroot-lower-bound", |b| {
        b.iter(|| {
            run_quiet(
                Command::new("unshare")
                    .args([
                        "--pid", "--mount", "--uts", "--ipc", "--net", "--fork", "chroot",
                    ])
                    .arg(&bb.dir)
                    .arg("/bin/true"),
            )
            .expect("unshare chroot")
        })
    });
    g.finish();
    c.final_summary();
}

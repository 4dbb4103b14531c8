//! spawn: the start path of `/bin/true` in the busybox image — overlay +
//! namespaces + cgroup + pivot_root + exec + wait + teardown.
//!
//! Timed through `rrun run --rm` (the whole CLI path, image lookup
//! included) beside the lower bound `unshare … chroot`. The in-process
//! library path (runner's native Runtime) is added once the runner exposes
//! it; until then that benchmark says it is skipped.

use std::path::PathBuf;
use std::process::Command;

use criterion::Criterion;

use benches::suite::Env;
use benches::tools::{run_quiet, run_stdout};

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
    env.skip(
        "spawn/library",
        "runner::native::NativeRuntime is not exposed by the runner crate yet",
    );

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
    match ready {
        Err(e) => env.skip("spawn/rrun-cli", e),
        Ok(rrun) => {
            g.bench_function("rrun-cli", |b| {
                b.iter(|| {
                    run_quiet(Command::new(&rrun).arg("--root").arg(&store).args([
                        "run",
                        "--rm",
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

//! growth: how the work scales. Unpack time against image size (synthetic,
//! 50 MB → 1 GB) and thread count; startup time against the number of
//! layers (1 → 64) and against image size, for rrun and for the kernel's
//! own floor (namespaces + an overlay of the same lowers + chroot).

use std::path::{Path, PathBuf};
use std::process::Command;

use benches::corpus;
use benches::tools::{clean_dir, render, run_quiet, time_quiet};

use crate::interleave::{interleave, Contender};
use crate::plot::{lines, series_from};
use crate::report::{table, Section};
use crate::{rbox, unpack, Ctx};

pub fn run(ctx: &Ctx) -> Section {
    let mut s = Section::new(
        "growth",
        "Growth: unpack against image size and threads; startup against layers and image size",
    );
    s.intro.push(format!(
        "{} warm-up + {} timed runs per point (fewer than the other parts: one point of the unpack curve takes seconds).",
        ctx.warmup.min(1),
        ctx.growth_runs
    ));
    unpack_growth(ctx, &mut s);
    startup_layers(ctx, &mut s);
    startup_size(ctx, &mut s);
    s
}

fn unpack_growth(ctx: &Ctx, s: &mut Section) {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut threads = vec![Some(1)];
    if cores > 1 {
        threads.push(Some(cores));
    }
    let mut points = Vec::new();
    for mb in [50u64, 200, 500, 1000]
        .into_iter()
        .filter(|&m| m <= ctx.growth_max_mb)
    {
        let img = match corpus::synthetic(&ctx.cache, mb) {
            Ok(i) => i,
            Err(e) => {
                s.notes.push(format!("unpack of {mb} MB skipped: {e}"));
                continue;
            }
        };
        let t = unpack::unpack_table(
            ctx,
            &img,
            &threads,
            ctx.growth_runs,
            ctx.warmup.min(1),
            false,
        );
        points.push((mb as f64, t.medians.clone()));
        s.tables.push(t);
    }
    let file = "growth-unpack.svg";
    match lines(
        &ctx.out.join(file),
        "unpack time vs image size (synthetic, 3 layers)",
        "image size, MB (uncompressed)",
        "seconds (median)",
        &series_from(&points, 1.0),
    ) {
        Ok(()) => s
            .plots
            .push((file.into(), "unpack time against image size".into())),
        Err(e) => s.notes.push(format!("plot {file} not drawn: {e}")),
    }
}

/// One overlay+chroot run of the kernel floor over `lowers` (top first).
fn floor_cmd(lowers: &[PathBuf], run_dir: &Path, args: &[&str]) -> Command {
    let lowerdir = lowers
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let m = run_dir.join("m");
    let script = format!(
        "mount -t overlay overlay -o lowerdir={lowerdir},upperdir={d}/u,workdir={d}/w {m} && exec chroot {m} {args}",
        d = run_dir.display(),
        m = m.display(),
        args = args.join(" ")
    );
    let mut c = Command::new("unshare");
    c.args([
        "--pid",
        "--mount",
        "--uts",
        "--ipc",
        "--net",
        "--fork",
        "--propagation",
        "private",
        "sh",
        "-c",
    ])
    .arg(script);
    c
}

fn fresh_run_dir(d: &Path) -> Result<(), String> {
    clean_dir(d).map_err(|e| e.to_string())?;
    for sub in ["u", "w", "m"] {
        std::fs::create_dir_all(d.join(sub)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// rrun on an image of these layers (bottom first), verified to really run.
fn rrun_contender<'a>(
    ctx: &'a Ctx,
    label: &str,
    pairs: &[(PathBuf, PathBuf)],
    name: &str,
) -> Contender<'a> {
    let store = ctx.scratch.mountpoint.join("growth-store");
    let ready = rbox::binary("rrun").and_then(|rrun| {
        benches::rbox_store::ingest_layers(&store, pairs, name)?;
        let out = benches::tools::run_stdout(Command::new(&rrun).arg("--root").arg(&store).args([
            "run",
            "--rm",
            "--network",
            "none",
            name,
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
        Err(e) => Contender::skipped(label, e),
        Ok(rrun) => {
            let name = name.to_string();
            let mk = move || {
                let mut c = Command::new(&rrun);
                c.arg("--root").arg(&store).args([
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    &name,
                    "/bin/true",
                ]);
                c
            };
            let shown = render(&mk());
            Contender::new(
                label,
                shown,
                "",
                Box::new(move |_| time_quiet(&mut mk()).map_err(|e| e.to_string())),
            )
            .rbox()
        }
    }
}

fn floor_contender<'a>(label: &str, lowers: Vec<PathBuf>, run_dir: PathBuf) -> Contender<'a> {
    let probe = fresh_run_dir(&run_dir).and_then(|_| {
        run_quiet(&mut floor_cmd(&lowers, &run_dir, &["/bin/true"])).map_err(|e| e.to_string())
    });
    if let Err(e) = probe {
        return Contender::skipped(label, e);
    }
    let shown = render(&floor_cmd(&lowers, &run_dir, &["/bin/true"]));
    Contender::new(
        label,
        shown,
        "unshare + mount overlay + chroot: no cgroup, no /proc, no pivot_root",
        Box::new(move |_| {
            fresh_run_dir(&run_dir)?;
            time_quiet(&mut floor_cmd(&lowers, &run_dir, &["/bin/true"])).map_err(|e| e.to_string())
        }),
    )
}

fn startup_layers(ctx: &Ctx, s: &mut Section) {
    let bb = match benches::busybox::ensure(&ctx.cache) {
        Ok(b) => b,
        Err(e) => {
            s.notes.push(format!("startup vs layers skipped: {e}"));
            return;
        }
    };
    let bb_zst = match corpus::zstd_of(&bb.tar) {
        Ok(z) => z,
        Err(e) => {
            s.notes.push(format!("startup vs layers skipped: {e}"));
            return;
        }
    };
    let small = match corpus::small_layers(&ctx.cache, 63) {
        Ok(l) => l,
        Err(e) => {
            s.notes.push(format!("startup vs layers skipped: {e}"));
            return;
        }
    };
    let mut points = Vec::new();
    for n in [1usize, 4, 16, 64] {
        let mut pairs = vec![(bb.tar.clone(), bb_zst.clone())];
        pairs.extend(
            small[..n - 1]
                .iter()
                .map(|(t, z, _)| (t.clone(), z.clone())),
        );
        // Top layer first for overlay.
        let mut lowers: Vec<PathBuf> = small[..n - 1]
            .iter()
            .rev()
            .map(|(_, _, d)| d.clone())
            .collect();
        lowers.push(bb.dir.clone());
        let mut cs = vec![
            rrun_contender(ctx, "rrun", &pairs, &format!("stack{n}")),
            floor_contender(
                "kernel floor",
                lowers,
                ctx.scratch.mountpoint.join("growth-floor"),
            ),
        ];
        interleave(
            &mut cs,
            ctx.warmup.min(1),
            ctx.runs,
            &format!("startup {n} layers"),
        );
        let t = table(
            &format!(
                "`/bin/true` in busybox + {} small layers ({n} in all)",
                n - 1
            ),
            &cs,
        );
        points.push((n as f64, t.medians.clone()));
        s.tables.push(t);
    }
    let file = "growth-startup-layers.svg";
    match lines(
        &ctx.out.join(file),
        "startup vs number of layers",
        "layers",
        "ms (median)",
        &series_from(&points, 1e3),
    ) {
        Ok(()) => s
            .plots
            .push((file.into(), "startup time against number of layers".into())),
        Err(e) => s.notes.push(format!("plot {file} not drawn: {e}")),
    }
}

fn startup_size(ctx: &Ctx, s: &mut Section) {
    let Ok(bb) = benches::busybox::ensure(&ctx.cache) else {
        return;
    };
    let Ok(bb_zst) = corpus::zstd_of(&bb.tar) else {
        return;
    };
    let mut points = Vec::new();
    for mb in [50u64, 200, 1000]
        .into_iter()
        .filter(|&m| m <= ctx.growth_max_mb)
    {
        let img = match corpus::synthetic(&ctx.cache, mb) {
            Ok(i) => i,
            Err(e) => {
                s.notes.push(format!("startup with {mb} MB skipped: {e}"));
                continue;
            }
        };
        let mut pairs = vec![(bb.tar.clone(), bb_zst.clone())];
        pairs.extend((0..img.layers).map(|i| (img.tar(i), img.zst(i))));
        let mut cs = vec![rrun_contender(ctx, "rrun", &pairs, &format!("sized{mb}"))];
        interleave(
            &mut cs,
            1, // one warm-up: the probe already unpacked the layers
            ctx.runs,
            &format!("startup {mb} MB"),
        );
        let t = table(&format!("`/bin/true` in busybox + the {mb} MB synthetic image's 3 layers (layers already unpacked by the probe)"), &cs);
        points.push((mb as f64, t.medians.clone()));
        s.tables.push(t);
    }
    let file = "growth-startup-size.svg";
    match lines(
        &ctx.out.join(file),
        "startup vs image size (layers unpacked)",
        "image size, MB",
        "ms (median)",
        &series_from(&points, 1e3),
    ) {
        Ok(()) => s
            .plots
            .push((file.into(), "startup time against image size".into())),
        Err(e) => s.notes.push(format!("plot {file} not drawn: {e}")),
    }
}

//! unpack: a layered image from compressed layer blobs to directories on
//! disk, rbox against umoci, buildah and tar, for the realistic Debian image
//! and the synthetic one. Every tool reads the same layer tars (the OCI
//! layout for umoci/buildah hard-links them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use benches::corpus::LayeredImage;
use benches::oci::{write_image_layout, LayoutLayer};
use benches::tools::{clean_dir, render, sync, time_quiet, warm_page_cache, which};

use crate::interleave::{interleave, Contender};
use crate::report::{table, Section, Table};
use crate::{rbox, Ctx};

pub fn run(ctx: &Ctx) -> Section {
    let mut s = Section::new("unpack", "Image unpack: layer blobs → directories");
    s.intro.push(
        "rbox unpacks each layer into its own overlay lowerdir (layers side by side; file bodies written by the parsing thread when every core already has a layer, else by writer threads), verifying each layer's diff id; `umoci unpack` applies the layers in order into one rootfs (and writes its mtree manifest); `buildah pull` imports the OCI layout into containers-storage (overlay driver, one diff dir per layer); `tar` extracts without whiteout handling. Times include process start for every tool (rbox runs as a child process too).".into(),
    );
    let mut images = Vec::new();
    match benches::corpus::debian(&ctx.cache) {
        Ok(img) => images.push(img),
        Err(e) => s.notes.push(format!("Debian image skipped: {e}")),
    }
    match benches::corpus::synthetic(&ctx.cache, 200) {
        Ok(img) => images.push(img),
        Err(e) => s.notes.push(format!("synthetic image skipped: {e}")),
    }
    for img in &images {
        s.tables
            .push(unpack_table(ctx, img, &[None], ctx.runs, ctx.warmup, true));
    }
    if let Some(debian) = images.iter().find(|i| i.name.starts_with("debian")) {
        s.tables.push(import_table(ctx, debian));
    }
    s
}

/// Issue 2: `rbuild import` of a zstd rootfs tarball against `tar -I zstd
/// -xf` of the same file. Import does more (hashes the blob, copies it into
/// the store, makes an image); it must still not be slower.
fn import_table(ctx: &Ctx, img: &LayeredImage) -> Table {
    let work = ctx.scratch.mountpoint.join("import");
    let file = img.zst(0);
    let mut cs = Vec::new();
    match rbox::binary("rbuild") {
        Err(e) => cs.push(Contender::skipped("rbuild import", e)),
        Ok(rbuild) => {
            let store = work.join("rbox-store");
            let mk = {
                let (store, file) = (store.clone(), file.clone());
                move || {
                    let mut c = Command::new(&rbuild);
                    c.arg("--root").arg(&store).arg("import");
                    c.arg(&file).arg("bench:latest");
                    c
                }
            };
            let inputs = vec![file.clone()];
            cs.push(
                Contender::new(
                    "rbuild import",
                    render(&mk()),
                    "blake3 of the blob, the blob copied into the store, the layer unpacked beside, an image tagged",
                    Box::new(move |_| timed(&store, &inputs, &mut mk())),
                )
                .rbox(),
            );
        }
    }
    let target = work.join("tar");
    let inputs = vec![file.clone()];
    let cmd = format!(
        "mkdir -p {t} && tar -I zstd -xf {} -C {t}",
        file.display(),
        t = target.display()
    );
    cs.push(Contender::new(
        "tar -I zstd -xf",
        format!("sh -c '{cmd}'"),
        "extraction only",
        Box::new(move |_| timed(&target, &inputs, Command::new("sh").arg("-c").arg(&cmd))),
    ));
    interleave(&mut cs, ctx.warmup, ctx.runs, "import");
    let size = |p: &Path| p.metadata().map(|m| m.len() as f64 / 1e6).unwrap_or(0.0);
    table(
        &format!(
            "import: the minbase rootfs as one tarball, {:.0} MB ({:.0} MB zstd -3)",
            size(&img.tar(0)),
            size(&file)
        ),
        &cs,
    )
}

/// One table: every tool unpacking `img`. `threads` pins rbox's pool (the
/// growth part); `peers` = false times only rbox and tar.
pub fn unpack_table(
    ctx: &Ctx,
    img: &LayeredImage,
    threads: &[Option<usize>],
    runs: usize,
    warmup: usize,
    peers: bool,
) -> Table {
    let mut cs = contenders(ctx, img, threads, peers);
    interleave(&mut cs, warmup, runs, &format!("unpack {}", img.name));
    table(&img.describe(), &cs)
}

/// An OCI layout of `img` for the OCI peers: zstd if `probe` accepts it,
/// else gzip. Returns the layout dir and the compression used.
fn layout(ctx: &Ctx, img: &LayeredImage, zstd: bool) -> Result<PathBuf, String> {
    let tag = if zstd { "zstd" } else { "gzip" };
    // buildah names the pulled image after the directory: keep it a valid
    // lowercase repository name.
    let slug: String = img
        .name
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let dir = ctx.cache.join("oci").join(format!("{slug}-{tag}"));
    if dir.join("index.json").exists() {
        return Ok(dir);
    }
    let blobs = if zstd {
        img.zst_paths()
    } else {
        img.ensure_gzip().map_err(|e| e.to_string())?
    };
    let layers: Vec<LayoutLayer> = blobs
        .into_iter()
        .enumerate()
        .map(|(i, blob)| LayoutLayer {
            blob,
            media_type: if zstd {
                "application/vnd.oci.image.layer.v1.tar+zstd"
            } else {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            },
            uncompressed: img.tar(i),
        })
        .collect();
    write_image_layout(&dir, "bench", &layers).map_err(|e| e.to_string())?;
    Ok(dir)
}

fn blobs_of(layout: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(layout.join("blobs/sha256"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Untimed before every run: a clean target, warm inputs, no pending writeback.
fn prepare(target: &Path, inputs: &[PathBuf]) -> Result<(), String> {
    clean_dir(target).map_err(|e| e.to_string())?;
    warm_page_cache(inputs).map_err(|e| e.to_string())?;
    sync();
    Ok(())
}

fn timed(target: &Path, inputs: &[PathBuf], cmd: &mut Command) -> Result<Duration, String> {
    prepare(target, inputs)?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    time_quiet(cmd).map_err(|e| e.to_string())
}

fn rbox_contender<'a>(
    ctx: &'a Ctx,
    img: &'a LayeredImage,
    threads: Option<usize>,
    k: usize,
) -> Contender<'a> {
    let work = ctx.scratch.mountpoint.join("unpack");
    let label = match threads {
        Some(n) => format!("rbox ({n} thread{})", if n == 1 { "" } else { "s" }),
        None => "rbox".to_string(),
    };
    // rbox, through the store, as rrun would on first use of the image.
    let store = work.join(format!("rbox-store-{}-{k}", img.name));
    let ingest = clean_dir(&store)
        .map_err(|e| e.to_string())
        .and_then(|_| rbox::ingest(&store, img, "bench"));
    if let Err(e) = ingest {
        return Contender::skipped(&label, format!("could not put the image into a store: {e}"));
    }
    let exe = std::env::current_exe().expect("current_exe");
    let mk = {
        let store = store.clone();
        move || {
            let mut c = Command::new(&exe);
            c.arg("unpack-one").arg(&store).arg("bench:latest");
            if let Some(n) = threads {
                c.env("RAYON_NUM_THREADS", n.to_string());
            }
            c
        }
    };
    let shown = format!("{}  (engine::layer::unpack_image)", render(&mk()));
    let blobs: Vec<PathBuf> = blobs_of_store(&store);
    Contender::new(
        &label,
        shown,
        "one lowerdir per layer; whiteouts become overlay whiteouts; diff ids verified",
        Box::new(move |_| {
            rbox::forget_unpacked(&store)?;
            warm_page_cache(&blobs).map_err(|e| e.to_string())?;
            sync();
            time_quiet(&mut mk()).map_err(|e| e.to_string())
        }),
    )
}

fn contenders<'a>(
    ctx: &'a Ctx,
    img: &'a LayeredImage,
    thread_settings: &[Option<usize>],
    peers: bool,
) -> Vec<Contender<'a>> {
    let mut cs = Vec::new();
    let work = ctx.scratch.mountpoint.join("unpack");
    let zst = img.zst_paths();
    for (k, &threads) in thread_settings.iter().enumerate() {
        let c = rbox_contender(ctx, img, threads, k);
        // The first rbox row is the baseline of the ratios.
        cs.push(if k == 0 { c.rbox() } else { c });
    }

    if peers {
        // umoci: zstd if it takes it, else gzip.
        match which("umoci") {
            None => cs.push(Contender::skipped("umoci unpack", "umoci is not installed")),
            Some(umoci) => match pick_layout(ctx, img, |l| {
                let t = work.join("umoci-probe");
                let r = timed(
                    &t,
                    &[],
                    Command::new(&umoci)
                        .arg("unpack")
                        .arg("--image")
                        .arg(format!("{}:bench", l.display()))
                        .arg(&t),
                );
                let _ = clean_dir(&t);
                r
            }) {
                Err(e) => cs.push(Contender::skipped("umoci unpack", e)),
                Ok((l, comp)) => {
                    let target = work.join("umoci");
                    let inputs = blobs_of(&l);
                    let mk = move || {
                        let mut c = Command::new(&umoci);
                        c.arg("unpack")
                            .arg("--image")
                            .arg(format!("{}:bench", l.display()))
                            .arg(&target);
                        c
                    };
                    let shown = render(&mk());
                    let target = work.join("umoci");
                    cs.push(Contender::new(
                        "umoci unpack",
                        shown,
                        &format!("{comp} layers; one merged rootfs + mtree manifest"),
                        Box::new(move |_| timed(&target, &inputs, &mut mk())),
                    ));
                }
            },
        }
    }

    // tar, sequential: all layers in order into one directory.
    let t_seq = work.join("tar-seq");
    let script = zst
        .iter()
        .map(|l| {
            format!(
                "tar -I zstd -xf {} -C {} || exit 1",
                l.display(),
                t_seq.display()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let seq = format!("mkdir -p {} && {script}", t_seq.display());
    let inputs = zst.clone();
    cs.push(Contender::new(
        "tar -I zstd -x, sequential",
        format!("sh -c '{seq}'"),
        "one merged dir; no whiteout handling; no digests",
        Box::new(move |_| timed(&t_seq, &inputs, Command::new("sh").arg("-c").arg(&seq))),
    ));

    // tar, one process per layer, side by side.
    let t_par = work.join("tar-par");
    let mut par = String::new();
    for (i, l) in zst.iter().enumerate() {
        par.push_str(&format!(
            "mkdir -p {d}/{i} && tar -I zstd -xf {} -C {d}/{i} & p{i}=$!; ",
            l.display(),
            d = t_par.display()
        ));
    }
    par.push_str(
        &(0..zst.len())
            .map(|i| format!("wait $p{i} || exit 1"))
            .collect::<Vec<_>>()
            .join("; "),
    );
    let inputs = zst.clone();
    cs.push(Contender::new(
        "tar -I zstd -x, layers in parallel",
        format!("sh -c '{par}'"),
        "a dir per layer; no whiteout handling; no digests",
        Box::new(move |_| timed(&t_par, &inputs, Command::new("sh").arg("-c").arg(&par))),
    ));

    if peers {
        match which("buildah") {
            None => cs.push(Contender::skipped(
                "buildah pull",
                "buildah is not installed",
            )),
            Some(buildah) => {
                let broot = work.join("buildah");
                let mk = {
                    let broot = broot.clone();
                    move |l: &Path| {
                        let mut c = Command::new(&buildah);
                        c.arg("--root")
                            .arg(broot.join("root"))
                            .arg("--runroot")
                            .arg(broot.join("run"));
                        c.args(["--storage-driver", "overlay", "pull", "-q"])
                            .arg(format!("oci:{}:bench", l.display()));
                        c
                    }
                };
                match pick_layout(ctx, img, |l| timed(&broot, &[], &mut mk(l))) {
                    Err(e) => cs.push(Contender::skipped("buildah pull", e)),
                    Ok((l, comp)) => {
                        let inputs = blobs_of(&l);
                        let shown = render(&mk(&l));
                        cs.push(Contender::new("buildah pull oci:", shown, &format!("{comp} layers; containers-storage overlay driver, a diff dir per layer"), Box::new(move |_| timed(&broot, &inputs, &mut mk(&l)))));
                    }
                }
            }
        }
    }
    cs
}

fn blobs_of_store(store: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(store.join("blobs/blake3"))
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Try the zstd layout with `probe`; fall back to gzip.
fn pick_layout(
    ctx: &Ctx,
    img: &LayeredImage,
    probe: impl Fn(&Path) -> Result<Duration, String>,
) -> Result<(PathBuf, &'static str), String> {
    let z = layout(ctx, img, true)?;
    let zerr = match probe(&z) {
        Ok(_) => return Ok((z, "zstd")),
        Err(e) => e,
    };
    let g = layout(ctx, img, false)?;
    match probe(&g) {
        Ok(_) => Ok((g, "gzip (zstd refused)")),
        Err(e) => Err(format!("zstd: {zerr}; gzip: {e}")),
    }
}

//! build: `rbuild build` against `buildah bud` on issue 4's Containerfile,
//! from the same debootstrap minbase base, cold (--no-cache) and cached.

use std::path::{Path, PathBuf};
use std::process::Command;

use benches::tools::{render, run_quiet, time_quiet, which};

use crate::interleave::{interleave, Contender};
use crate::report::{table, Section};
use crate::{rbox, Ctx};

const CONTAINERFILE: &str = "FROM rbox-bench-base\nRUN echo hi > /hello\nCOPY somefile /somefile\nENV A=b\nCMD [\"/bin/sh\"]\n";

fn context(ctx: &Ctx) -> Result<PathBuf, String> {
    let dir = ctx.cache.join("build-context");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("Containerfile"), CONTAINERFILE).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("somefile"), "some file\n").map_err(|e| e.to_string())?;
    Ok(dir)
}

pub fn run(ctx: &Ctx) -> Section {
    let mut s = Section::new("build", "Image build: `rbuild build` vs `buildah bud`");
    s.intro.push(format!(
        "Containerfile (issue 4):\n\n```\n{CONTAINERFILE}```\n\nBase: the `debootstrap --variant=minbase bookworm` tree as one layer, already in each tool's store (rbuild: `rbuild import`; buildah: `podman import` into the same containers-storage). Cold = `--no-cache`; cached = the same build again with every step cached (buildah with `--layers`, without which it caches nothing). RUN steps: buildah uses runc (crun refuses the hybrid cgroup layout) and `--network host`, Docker's build default, which rbuild also uses."
    ));
    let base = match benches::corpus::debian(&ctx.cache) {
        Ok(img) => img,
        Err(e) => {
            s.intro.push(format!("skipped: no base image: {e}"));
            return s;
        }
    };
    let ctxdir = match context(ctx) {
        Ok(d) => d,
        Err(e) => {
            s.intro
                .push(format!("skipped: cannot write the build context: {e}"));
            return s;
        }
    };
    let base_tar = base.tar(0);
    let base_zst = base.zst(0);

    let rb = rbuild_contenders(ctx, &base_zst, &ctxdir);
    let bh = buildah_contenders(ctx, &base_tar, &ctxdir);
    let (mut cold, mut cached): (Vec<Contender>, Vec<Contender>) = (Vec::new(), Vec::new());
    for (c, w) in [rb, bh] {
        cold.push(c);
        cached.push(w);
    }
    interleave(&mut cold, ctx.warmup, ctx.runs, "build cold");
    s.tables.push(table("cold: `--no-cache`", &cold));
    interleave(&mut cached, ctx.warmup, ctx.runs, "build cached");
    s.tables
        .push(table("cached: every step a cache hit", &cached));
    s
}

fn rbuild_contenders<'a>(
    ctx: &'a Ctx,
    base_zst: &Path,
    ctxdir: &Path,
) -> (Contender<'a>, Contender<'a>) {
    let store = ctx.scratch.mountpoint.join("build-rbox-store");
    let ready = rbox::binary("rbuild").and_then(|rbuild| {
        rbox::import(&store, base_zst, "rbox-bench-base")?;
        let mut probe = Command::new(&rbuild);
        probe
            .arg("--root")
            .arg(&store)
            // The host's network, as buildah below (rbuild's default is its bridge).
            .args(["build", "--network", "host", "-t", "rbox-bench-built"])
            .arg(ctxdir);
        run_quiet(&mut probe).map_err(|e| format!("rbuild build does not work yet: {e}"))?;
        Ok(rbuild)
    });
    let rbuild = match ready {
        Ok(r) => r,
        Err(e) => {
            return (
                Contender::skipped("rbuild", e.clone()).rbox(),
                Contender::skipped("rbuild", e).rbox(),
            )
        }
    };
    let mk = {
        let (rbuild, store, ctxdir) = (rbuild.clone(), store.clone(), ctxdir.to_path_buf());
        move |no_cache: bool| {
            let mut c = Command::new(&rbuild);
            c.arg("--root").arg(&store).args([
                "build",
                "--progress",
                "quiet",
                "-t",
                "rbox-bench-built",
            ]);
            if no_cache {
                c.arg("--no-cache");
            }
            c.arg(&ctxdir);
            c
        }
    };
    let mk2 = mk.clone();
    (
        Contender::new(
            "rbuild",
            render(&mk(true)),
            "",
            Box::new(move |_| time_quiet(&mut mk(true)).map_err(|e| e.to_string())),
        )
        .rbox(),
        Contender::new(
            "rbuild",
            render(&mk2(false)),
            "",
            Box::new(move |_| time_quiet(&mut mk2(false)).map_err(|e| e.to_string())),
        )
        .rbox(),
    )
}

fn buildah_contenders<'a>(
    ctx: &'a Ctx,
    base_tar: &Path,
    ctxdir: &Path,
) -> (Contender<'a>, Contender<'a>) {
    let (Some(buildah), Some(podman)) = (which("buildah"), which("podman")) else {
        let e = "buildah and podman are needed (benches/scripts/install-peers.sh)";
        return (
            Contender::skipped("buildah bud", e),
            Contender::skipped("buildah bud", e),
        );
    };
    let root = ctx.scratch.mountpoint.join("build-buildah");
    let storage = |bin: &Path| {
        let mut c = Command::new(bin);
        c.arg("--root")
            .arg(root.join("root"))
            .arg("--runroot")
            .arg(root.join("run"))
            .args(["--storage-driver", "overlay"]);
        c
    };
    let mk = {
        let (buildah, ctxdir) = (buildah.clone(), ctxdir.to_path_buf());
        let root = root.clone();
        move |no_cache: bool| {
            let mut c = Command::new(&buildah);
            c.arg("--root")
                .arg(root.join("root"))
                .arg("--runroot")
                .arg(root.join("run"))
                .args(["--storage-driver", "overlay"]);
            c.args([
                "bud",
                "-q",
                "--layers",
                "--runtime",
                "runc",
                "--network",
                "host",
                "-t",
                "rbox-bench-built",
            ]);
            if no_cache {
                c.arg("--no-cache");
            }
            c.arg(&ctxdir);
            c
        }
    };
    let ready = run_quiet(
        storage(&podman)
            .arg("import")
            .arg(base_tar)
            .arg("rbox-bench-base"),
    )
    .map_err(|e| format!("podman import of the base failed: {e}"))
    .and_then(|_| run_quiet(&mut mk(false)).map_err(|e| format!("buildah bud failed: {e}")));
    if let Err(e) = ready {
        return (
            Contender::skipped("buildah bud", e.clone()),
            Contender::skipped("buildah bud", e),
        );
    }
    let mk2 = mk.clone();
    (
        Contender::new(
            "buildah bud",
            render(&mk(true)),
            "runc for RUN",
            Box::new(move |_| time_quiet(&mut mk(true)).map_err(|e| e.to_string())),
        ),
        Contender::new(
            "buildah bud",
            render(&mk2(false)),
            "runc for RUN",
            Box::new(move |_| time_quiet(&mut mk2(false)).map_err(|e| e.to_string())),
        ),
    )
}

//! rbox's side: its binaries (built here, so the numbers are always of the
//! tree being measured), images put into a store on the scratch filesystem,
//! and the unpack helper the parent times as a process like every peer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::Context;
use engine::store::Store;

/// `rrun` or `rbuild` from this workspace, built in release mode; `Err` is
/// the one-line reason for a "skipped" row.
pub fn binary(name: &str) -> Result<PathBuf, String> {
    static BUILT: OnceLock<Vec<(String, Result<PathBuf, String>)>> = OnceLock::new();
    let all = BUILT.get_or_init(|| {
        [("rrun", "runner"), ("rbuild", "builder")]
            .iter()
            .map(|(bin, pkg)| (bin.to_string(), build(bin, pkg)))
            .collect()
    });
    all.iter()
        .find(|(b, _)| b == name)
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| Err(format!("{name} is not a binary of this workspace")))
}

fn build(bin: &str, pkg: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Build into the target dir this binary runs from, where it looks for
    // the result: without it a compare started outside `cargo run` (no
    // CARGO_TARGET_DIR) built into one dir and timed a stale binary in another.
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let target_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} has no target dir above it", exe.display()))?;
    // Linked statically, as scripts/build-release.sh ships it.
    eprintln!("compare: building {bin} (cargo rustc --release -p {pkg} --bin {bin} -- -C target-feature=+crt-static)");
    let out = Command::new(&cargo)
        .args(["rustc", "--release", "-q", "-p", pkg, "--bin", bin])
        .arg("--target-dir")
        .arg(target_dir)
        .args(["--", "-C", "target-feature=+crt-static"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map_err(|e| format!("cannot run cargo ({cargo}): {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err
            .lines()
            .find(|l| l.starts_with("error"))
            .unwrap_or("see cargo's output");
        return Err(format!("{bin} does not build yet ({first})"));
    }
    let path = exe.parent().expect("exe has a dir").join(bin);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("{} missing after cargo build", path.display()))
    }
}

/// `rbuild --root STORE import TAR NAME`, the way a user makes the image.
pub fn import(store: &Path, tar: &Path, name: &str) -> Result<(), String> {
    let rbuild = binary("rbuild")?;
    benches::tools::run_quiet(
        Command::new(rbuild)
            .arg("--root")
            .arg(store)
            .arg("import")
            .arg(tar)
            .arg(name),
    )
    .map_err(|e| format!("rbuild import failed: {e}"))
}

pub use benches::rbox_store::{forget_unpacked, ingest};

/// The hidden `unpack-one` subcommand.
pub fn unpack_one(root: &Path, image: &str) -> anyhow::Result<()> {
    let store = Store::open(root).with_context(|| format!("open store {}", root.display()))?;
    let img = store
        .find_image(image)
        .with_context(|| format!("find {image}"))?;
    engine::layer::unpack_image(&store, &img).with_context(|| format!("unpack {image}"))?;
    Ok(())
}

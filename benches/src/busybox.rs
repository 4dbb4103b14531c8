//! The busybox rootfs every startup contender runs `/bin/true` in: Debian's
//! static busybox, its applet links, /etc/passwd and /etc/group. One
//! directory (for chroot and the OCI bundles) and one tar of that same
//! directory (for `rbuild import`, `podman import`, `docker import`).

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools::{run_quiet, run_stdout};
use crate::{io_err, BenchError, Result};

pub const BUSYBOX: &str = "/usr/bin/busybox";

pub struct BusyboxRootfs {
    pub dir: PathBuf,
    pub tar: PathBuf,
}

/// Made once under `cache/busybox/`.
pub fn ensure(cache: &Path) -> Result<BusyboxRootfs> {
    let base = cache.join("busybox");
    let dir = base.join("rootfs");
    let tar = base.join("rootfs.tar");
    if tar.exists() && dir.join("bin/true").exists() {
        return Ok(BusyboxRootfs { dir, tar });
    }
    if !Path::new(BUSYBOX).exists() {
        return Err(BenchError::Missing(format!(
            "{BUSYBOX} is missing (apt-get install busybox-static)"
        )));
    }
    crate::tools::clean_dir(&base)?;
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root", "var",
        "run",
    ] {
        let p = dir.join(d);
        std::fs::create_dir_all(&p).map_err(io_err("create directory", &p))?;
    }
    std::fs::set_permissions(dir.join("tmp"), std::fs::Permissions::from_mode(0o1777))
        .map_err(io_err("chmod", &dir))?;
    let bb = dir.join("bin/busybox");
    std::fs::copy(BUSYBOX, &bb).map_err(io_err("copy", &bb))?;
    let list = run_stdout(Command::new(BUSYBOX).arg("--list-full"))?;
    for applet in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let link = dir.join(applet);
        if applet == "bin/busybox" || link.exists() {
            continue;
        }
        let depth = applet.matches('/').count();
        let target = format!("{}bin/busybox", "../".repeat(depth));
        symlink(&target, &link).map_err(io_err("symlink", &link))?;
    }
    write(
        &dir.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )?;
    write(&dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    run_quiet(
        Command::new("tar")
            .args(["--sort=name", "--numeric-owner", "-C"])
            .arg(&dir)
            .arg("-cf")
            .arg(&tar)
            .arg("."),
    )?;
    Ok(BusyboxRootfs { dir, tar })
}

fn write(p: &Path, s: &str) -> Result<()> {
    std::fs::write(p, s).map_err(io_err("write", p))
}

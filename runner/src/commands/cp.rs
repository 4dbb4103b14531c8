//! `rrun cp SRC DEST`: one side `CONTAINER:PATH`, the other a local path
//! or `-` (a tar stream). A running container is reached through its first
//! process's root; a created or stopped one through its overlay, mounted
//! in a mount namespace of this process's own. Every container path is
//! resolved beneath the container's root (`runner::copy`).

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use runner::copy::{self, Ownership, Root};
use runner::state;

use crate::cli::CpArgs;
use crate::run::{require_root, Coded};

/// One side of the copy, as Docker splits it: a path that is absolute or
/// starts with `.` is local; else `NAME:PATH` names a container (a name
/// has no `/`).
#[derive(Debug, PartialEq, Eq)]
enum Side<'a> {
    Local(&'a str),
    Container(&'a str, &'a str),
}

fn split(arg: &str) -> Side<'_> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return Side::Local(arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() && !c.contains('/') => Side::Container(c, p),
        _ => Side::Local(arg),
    }
}

fn usage(msg: &str) -> anyhow::Error {
    Coded(1, anyhow!("{msg}")).into()
}

/// The container's root, running or not.
fn container_root(root: &Path, key: &str) -> Result<Root> {
    let containers = root.join("containers");
    let (dir, s) = state::find(&containers, key).map_err(|e| Coded(1, e.into()))?;
    let what = format!("container {key}");
    if s.is_running() {
        let pid = s.pid.expect("a running container has a pid");
        return Ok(Root::of_process(pid, what).map_err(|e| Coded(1, e.into()))?);
    }
    let store = engine::Store::open(root).map_err(|e| Coded(125, e.into()))?;
    let image = store.find_image(&s.image_digest).map_err(|e| {
        Coded(
            1,
            anyhow!("the image of container {key} ({}): {e}", s.image_digest),
        )
    })?;
    let lowers = crate::run::image_lowers(&store, &image)?;
    let mnt = store.root().join("mnt");
    let r = Root::mount_overlay(&lowers, &dir.join("upper"), &dir.join("work"), &mnt, what)
        .map_err(|e| Coded(1, e.into()))?;
    Ok(r)
}

pub fn cp(root: &Path, a: &CpArgs) -> Result<i32> {
    let (src, dest) = (split(&a.src), split(&a.dest));
    if a.src == "-" && a.dest == "-" {
        bail!(usage(
            "SRC and DEST cannot both be - (one side must be CONTAINER:PATH)"
        ));
    }
    let fail = |e: copy::CopyError| -> anyhow::Error { Coded(1, e.into()).into() };
    match (src, dest) {
        (Side::Container(..), Side::Container(..)) => bail!(usage(
            "copying between containers is not supported: copy to the host first"
        )),
        (Side::Local(_), Side::Local(_)) => bail!(usage(
            "must specify at least one container source: CONTAINER:PATH as SRC or DEST"
        )),
        (Side::Container(c, p), Side::Local(d)) => {
            require_root("rrun cp")?;
            let from = container_root(root, c)?;
            let source = copy::find_source_as(&from, p.as_bytes(), a.follow_link).map_err(fail)?;
            if d == "-" {
                let out = std::io::stdout().lock();
                let out = copy::archive_to(&source, std::io::BufWriter::new(out)).map_err(fail)?;
                out.into_inner()
                    .map(drop)
                    .map_err(|e| anyhow!("write the tar stream: {}", e.error()))?;
                return Ok(0);
            }
            let host = Root::host();
            let target = copy::find_destination(&host, d.as_bytes(), &source).map_err(fail)?;
            let owner = if a.archive {
                Ownership::Keep
            } else {
                Ownership::As(
                    nix::unistd::getuid().as_raw(),
                    nix::unistd::getgid().as_raw(),
                )
            };
            copy::copy(&source, target, owner).map_err(fail)?;
            Ok(0)
        }
        (Side::Local(s), Side::Container(c, p)) => {
            require_root("rrun cp")?;
            // Into a container without -a: owned by its root, as Docker.
            let owner = if a.archive {
                Ownership::Keep
            } else {
                Ownership::As(0, 0)
            };
            if s == "-" {
                let to = container_root(root, c)?;
                let target = copy::find_directory(&to, p.as_bytes()).map_err(fail)?;
                copy::extract(std::io::stdin().lock(), target, owner).map_err(fail)?;
                return Ok(0);
            }
            // The host side first: a missing source fails before any mount.
            let source =
                copy::find_source_as(&Root::host(), s.as_bytes(), a.follow_link).map_err(fail)?;
            let to = container_root(root, c)?;
            let target = copy::find_destination(&to, p.as_bytes(), &source).map_err(fail)?;
            copy::copy(&source, target, owner).map_err(fail)?;
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_split_as_dockers() {
        assert_eq!(
            split("web:/etc/hosts"),
            Side::Container("web", "/etc/hosts")
        );
        assert_eq!(split("/tmp/a:b"), Side::Local("/tmp/a:b"));
        assert_eq!(split("./a:b"), Side::Local("./a:b"));
        assert_eq!(split("dir/a:b"), Side::Local("dir/a:b"));
        assert_eq!(split("file"), Side::Local("file"));
        assert_eq!(split("-"), Side::Local("-"));
        assert_eq!(split("c:"), Side::Container("c", ""));
    }
}

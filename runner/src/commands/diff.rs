//! `rrun diff NAME`: what the container changed, from its upper dir, as
//! `docker diff` prints it: `A` added, `C` changed, `D` deleted (an
//! overlay whiteout). Whether a path is new is decided against the
//! image's layers, looked up component by component without following a
//! symlink, so a link in an image cannot make this read host paths.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use runner::state;

use crate::cli::DiffArgs;
use crate::run::Coded;

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// `rel`'s metadata inside `layer`, if every parent is a real directory.
fn beneath(layer: &Path, rel: &Path) -> Option<Metadata> {
    let mut at = layer.to_path_buf();
    let mut parts = rel.components().peekable();
    while let Some(c) = parts.next() {
        at.push(c);
        let m = std::fs::symlink_metadata(&at).ok()?;
        if parts.peek().is_some() && !m.is_dir() {
            return None;
        }
        if parts.peek().is_none() {
            return Some(m);
        }
    }
    None
}

/// Whether the image (its layers top first) has `rel`.
fn in_image(layers: &[PathBuf], rel: &Path) -> bool {
    for l in layers {
        if let Some(m) = beneath(l, rel) {
            return !is_whiteout(&m);
        }
    }
    false
}

fn walk(upper: &Path, rel: &Path, layers: &[PathBuf], out: &mut Vec<(char, PathBuf)>) {
    let Ok(rd) = std::fs::read_dir(upper.join(rel)) else {
        return;
    };
    let mut names: Vec<_> = rd.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let r = rel.join(&name);
        let Ok(m) = std::fs::symlink_metadata(upper.join(&r)) else {
            continue;
        };
        let kind = if is_whiteout(&m) {
            'D'
        } else if in_image(layers, &r) {
            'C'
        } else {
            'A'
        };
        out.push((kind, r.clone()));
        if m.is_dir() {
            walk(upper, &r, layers, out);
        }
    }
}

pub fn changes(upper: &Path, layers: &[PathBuf]) -> Vec<(char, PathBuf)> {
    let mut out = Vec::new();
    walk(upper, Path::new(""), layers, &mut out);
    out
}

pub fn diff(root: &Path, a: &DiffArgs) -> Result<i32> {
    let (dir, s) =
        state::find(&root.join("containers"), &a.container).map_err(|e| Coded(1, e.into()))?;
    let store = engine::Store::open(root).map_err(|e| Coded(1, e.into()))?;
    let image = store
        .find_image(&s.image_digest)
        .map_err(|e| Coded(1, anyhow!("the image of {}: {e}", s.name)))?;
    let layers: Vec<PathBuf> = image
        .config
        .rootfs
        .diff_ids
        .iter()
        .rev()
        .map(|d| store.layer_fs(d))
        .collect();
    for (kind, path) in changes(&dir.join("upper"), &layers) {
        println!("{kind} /{}", path.display());
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_changed_deleted_against_the_layers() {
        let t = tempfile::tempdir().unwrap();
        let (lower, upper) = (t.path().join("l"), t.path().join("u"));
        std::fs::create_dir_all(lower.join("etc")).unwrap();
        std::fs::write(lower.join("etc/passwd"), "root").unwrap();
        std::fs::write(lower.join("gone"), "x").unwrap();
        // A link in the image to a host directory is not followed.
        std::os::unix::fs::symlink("/etc", lower.join("hostetc")).unwrap();
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/passwd"), "root2").unwrap();
        std::fs::write(upper.join("etc/new"), "n").unwrap();
        std::fs::create_dir_all(upper.join("hostetc")).unwrap();
        std::fs::write(upper.join("hostetc/passwd"), "p").unwrap();
        let got: Vec<String> = changes(&upper, &[lower])
            .into_iter()
            .map(|(k, p)| format!("{k} /{}", p.display()))
            .collect();
        assert_eq!(
            got,
            [
                "C /etc",
                "A /etc/new",
                "C /etc/passwd",
                "C /hostetc",
                "A /hostetc/passwd"
            ]
        );
    }
}

//! `--cpuset-cpus` / `--cpuset-mems`: the CPUs and memory nodes a
//! container may use. Only containers that ask get a cpuset: the others
//! pay nothing for it.
//!
//! v1: the cpuset hierarchy's group `rbox/<id>`; a new v1 cpuset group
//! starts with empty `cpuset.cpus` and `cpuset.mems` (no task may join it
//! then), so each level made here gets its parent's before ours are set.
//! v2: `cpuset` is delegated from the root down to the group's parent,
//! then `cpuset.cpus` / `cpuset.mems` written in the group.

use std::path::{Path, PathBuf};

use super::{io_err, write_file, CgroupError, Result};

const FILES: [&str; 2] = ["cpuset.cpus", "cpuset.mems"];

fn read_trimmed(p: &Path) -> Result<String> {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .map_err(io_err("read", p))
}

/// v1: make `mount/parent/id` with `cpus` and `mems` (None: the parent's)
/// and return it. What is made for the group is removed on failure.
pub fn create_v1(
    mount: &Path,
    parent: &Path,
    id: &str,
    cpus: Option<&str>,
    mems: Option<&str>,
) -> Result<PathBuf> {
    let mut dir = mount.to_path_buf();
    let levels: Vec<&std::ffi::OsStr> = parent
        .components()
        .map(|c| c.as_os_str())
        .chain(std::iter::once(std::ffi::OsStr::new(id)))
        .collect();
    let last = levels.len() - 1;
    for (i, level) in levels.into_iter().enumerate() {
        let up = dir.clone();
        dir.push(level);
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && i < last => {}
            Err(e) => return Err(io_err("create", &dir)(e)),
        }
        let filled = (|| {
            for f in FILES {
                let p = dir.join(f);
                if read_trimmed(&p)?.is_empty() {
                    write_file(&p, &read_trimmed(&up.join(f))?)?;
                }
            }
            Ok(())
        })();
        if let Err(e) = filled {
            if i == last {
                let _ = std::fs::remove_dir(&dir);
            }
            return Err(e);
        }
    }
    let set = write_values(&dir, cpus, mems);
    if let Err(e) = set {
        let _ = std::fs::remove_dir(&dir);
        return Err(e);
    }
    Ok(dir)
}

/// v2: delegate `cpuset` from `root` down to `group`'s parent, then set.
pub fn apply_v2(root: &Path, group: &Path, cpus: Option<&str>, mems: Option<&str>) -> Result<()> {
    let rel = group
        .strip_prefix(root)
        .map_err(|_| CgroupError::NoCgroupFs(group.to_path_buf()))?;
    let mut dir = root.to_path_buf();
    let levels: Vec<_> = rel.components().collect();
    for level in &levels[..levels.len().saturating_sub(1)] {
        super::v2::V2Driver::enable_controllers(&dir, &["cpuset"], "--cpuset-cpus/--cpuset-mems")?;
        dir.push(level);
    }
    super::v2::V2Driver::enable_controllers(&dir, &["cpuset"], "--cpuset-cpus/--cpuset-mems")?;
    write_values(group, cpus, mems)
}

fn write_values(dir: &Path, cpus: Option<&str>, mems: Option<&str>) -> Result<()> {
    // mems first: a v1 group's cpus may only be narrowed while it has mems.
    if let Some(m) = mems {
        write_file(&dir.join("cpuset.mems"), m)?;
    }
    if let Some(c) = cpus {
        write_file(&dir.join("cpuset.cpus"), c)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_levels_get_their_parents_values_and_a_failed_group_goes() {
        let t = tempfile::tempdir().unwrap();
        let m = t.path();
        std::fs::write(m.join("cpuset.cpus"), "0-3\n").unwrap();
        std::fs::write(m.join("cpuset.mems"), "0\n").unwrap();
        // The kernel makes the files with a directory; a temp dir does not:
        // rbox has them (empty: filled from the root), c1 will not.
        let pre = |d: &Path| {
            std::fs::create_dir_all(d).unwrap();
            for f in FILES {
                std::fs::write(d.join(f), "").unwrap();
            }
        };
        pre(&m.join("rbox"));
        let dir = m.join("rbox").join("c1");
        let err = create_v1(m, Path::new("rbox"), "c1", Some("1"), None).unwrap_err();
        // A plain directory has no cpuset files: the read fails, and the
        // group made is gone again.
        assert!(err.to_string().contains("cpuset.cpus"), "{err}");
        assert!(!dir.exists());
        assert_eq!(
            std::fs::read_to_string(m.join("rbox/cpuset.cpus")).unwrap(),
            "0-3"
        );
        assert_eq!(
            std::fs::read_to_string(m.join("rbox/cpuset.mems")).unwrap(),
            "0"
        );
    }

    #[test]
    fn v2_delegates_cpuset_down_to_the_parent() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        for d in [root.to_path_buf(), root.join("rbox")] {
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("cgroup.controllers"), "cpuset cpu memory pids").unwrap();
            std::fs::write(d.join("cgroup.subtree_control"), "cpu memory pids").unwrap();
        }
        let g = root.join("rbox/c1");
        std::fs::create_dir(&g).unwrap();
        apply_v2(root, &g, Some("0-1"), Some("0")).unwrap();
        for d in [root.to_path_buf(), root.join("rbox")] {
            assert_eq!(
                std::fs::read_to_string(d.join("cgroup.subtree_control")).unwrap(),
                "+cpuset"
            );
        }
        assert_eq!(
            std::fs::read_to_string(g.join("cpuset.cpus")).unwrap(),
            "0-1"
        );
        assert_eq!(std::fs::read_to_string(g.join("cpuset.mems")).unwrap(), "0");
    }
}

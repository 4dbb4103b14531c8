//! Limits for rootless containers, in a cgroup v2 subtree delegated to
//! the user (what systemd's user@.service gives with `Delegate=yes`):
//! the group rrun runs in is the user's (its directory, `cgroup.procs`
//! and `cgroup.subtree_control` writable by them) and its parent enables
//! the controllers for it (they are listed in its `cgroup.controllers`).
//!
//! cgroup v2 lets a group either hold processes or give its children
//! controllers, not both: the processes of the delegated group move into
//! a leaf of it, `rbox-rrun`, then its `cgroup.subtree_control` enables
//! the controllers, and containers get groups under `rbox/` of it, made
//! by the same driver as root's. Moving needs write access to the
//! `cgroup.procs` of both groups' common ancestor, the delegated one:
//! the kernel's own check that nothing leaves the user's subtree.
//!
//! Elsewhere (cgroup v1, whose controllers only root configures, or v2
//! without delegation) limits are refused, saying which is the case.

use std::path::{Path, PathBuf};

use crate::cgroup::CgroupDriver;

/// The leaf the delegated group's own processes move into.
pub const LEAF: &str = "rbox-rrun";
/// Where containers' groups go, under the delegated group.
pub const PARENT: &str = "rbox";

const ROOT: &str = "/sys/fs/cgroup";
const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

/// The path of the v2 group in /proc/self/cgroup text ("0::/a/b").
pub fn own_group(proc_cgroup: &str) -> Option<PathBuf> {
    let path = proc_cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))?
        .trim();
    if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
        return None;
    }
    Some(PathBuf::from(path.trim_start_matches('/')))
}

fn writable(p: &Path) -> bool {
    nix::unistd::access(p, nix::unistd::AccessFlags::W_OK).is_ok()
}

/// The delegated group (relative to /sys/fs/cgroup) this process may put
/// containers' groups under, or why there is none.
pub fn delegated() -> Result<PathBuf, String> {
    if !CgroupDriver::probe().is_ok_and(|d| d.version() == 2) {
        return Err("this host has cgroup v1, whose controllers only root may configure".into());
    }
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut rel = own_group(&text).ok_or("this process is in no cgroup v2 group")?;
    // A process a previous rrun moved into the leaf.
    if rel.file_name().is_some_and(|n| n == LEAF) {
        rel.pop();
    }
    let dir = Path::new(ROOT).join(&rel);
    let shown = Path::new("/").join(&rel);
    if rel.as_os_str().is_empty()
        || !writable(&dir)
        || !writable(&dir.join("cgroup.procs"))
        || !writable(&dir.join("cgroup.subtree_control"))
    {
        return Err(format!(
            "your cgroup {} is not delegated to you (not writable by you, as systemd's Delegate=yes makes it)",
            shown.display()
        ));
    }
    let available = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let missing: Vec<&str> = CONTROLLERS
        .iter()
        .copied()
        .filter(|c| !available.split_whitespace().any(|a| a == *c))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "your delegated cgroup {} lacks the {} controller(s) (its parent's cgroup.subtree_control does not enable them)",
            shown.display(),
            missing.join(", ")
        ));
    }
    Ok(rel)
}

/// Make the delegated group `rel` ready for containers' groups (its
/// processes moved into the leaf, the controllers enabled for its
/// children) and return the driver that makes them under `rel/rbox`.
pub fn driver(rel: &Path) -> Result<CgroupDriver, String> {
    let dir = Path::new(ROOT).join(rel);
    let control = dir.join("cgroup.subtree_control");
    let have = std::fs::read_to_string(&control).unwrap_or_default();
    if !CONTROLLERS
        .iter()
        .all(|c| have.split_whitespace().any(|h| h == *c))
    {
        let leaf = dir.join(LEAF);
        match std::fs::create_dir(&leaf) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("create {}: {e}", leaf.display())),
        }
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines() {
            // One pid per write; one that exited meanwhile is ESRCH.
            match std::fs::write(leaf.join("cgroup.procs"), pid) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                Err(e) => return Err(format!("move process {pid} into {}: {e}", leaf.display())),
            }
        }
        let line: Vec<String> = CONTROLLERS.iter().map(|c| format!("+{c}")).collect();
        std::fs::write(&control, line.join(" "))
            .map_err(|e| format!("enable {} in {}: {e}", line.join(" "), control.display()))?;
    }
    let driver = CgroupDriver::probe().map_err(|e| e.to_string())?;
    if driver.version() != 2 {
        return Err("the cgroup filesystem is not v2".into());
    }
    Ok(driver.with_parent(&rel.join(PARENT)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_own_group_is_the_v2_line_and_never_climbs() {
        assert_eq!(
            own_group("0::/user.slice/user-1000.slice/user@1000.service/app.slice\n"),
            Some(PathBuf::from(
                "user.slice/user-1000.slice/user@1000.service/app.slice"
            ))
        );
        let hybrid = "12:pids:/user.slice\n1:name=systemd:/user.slice\n0::/x\n";
        assert_eq!(own_group(hybrid), Some(PathBuf::from("x")));
        assert_eq!(own_group("0::/\n"), Some(PathBuf::from("")));
        assert_eq!(own_group("0::/a/../b\n"), None);
        assert_eq!(own_group("3:memory:/a\n"), None);
    }
}

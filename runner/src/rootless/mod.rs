//! Rootless rbox: rrun and rbuild run by a user other than root.
//!
//! At startup, before any thread, [`init`] puts such a process into a user
//! namespace of its own (`enter`): uid and gid 0 inside are the user, 1..N
//! their subordinate ranges from /etc/subuid and /etc/subgid, written by
//! the setuid `newuidmap`/`newgidmap`; with no range, only the user's own
//! ids, with a warning. Everything after runs as root of that namespace,
//! which the kernel lets touch only files of those ids: the user's store
//! (`engine::rootless::default_root`), where layers unpack with image
//! uid 1000 landing on subordinate id 1000 - 1 + START, the container's
//! namespaces (owned by this one), its overlay (`userxattr`) and pivot_root.
//!
//! Commands addressing a running container join its user namespace
//! instead of making one (`join`). What a user namespace cannot do is
//! refused before anything is made, by the checks here: cgroup limits
//! where no cgroup v2 subtree is delegated to the user (`cgroup`; a v1
//! hierarchy cannot be delegated at all) and the bridge network (it
//! needs root in the host's network namespace). The network is pasta's
//! instead (`pasta`): the default where the host has a route out.

pub mod cgroup;
pub mod enter;
pub mod fuse;
pub mod idmap;
pub mod join;
pub mod keepid;
pub mod pasta;

use std::ffi::CString;
use std::sync::OnceLock;

use engine::runtime::Resources;

use crate::native::rootfs::Step;

#[derive(Debug, thiserror::Error)]
pub enum RootlessError {
    #[error("rootless: {0}")]
    Enter(#[from] enter::EnterError),
    #[error("rootless: {0}")]
    Join(#[from] join::JoinError),
}

/// What the namespace we run in maps, read once from /proc.
#[derive(Debug, Clone, Default)]
struct Mapped {
    /// Only the user's own id (no subordinate range): setgroups is denied
    /// and no other id exists inside.
    single_id: bool,
    /// The user's host uid and gid (what ids 0 inside are).
    host_uid: u32,
    host_gid: u32,
}

static MAPPED: OnceLock<Mapped> = OnceLock::new();

/// Enter the rootless user namespace when not root, or recognise that a
/// re-executed copy of us already runs in it. Root pays one geteuid and
/// one environment lookup. `tool` prefixes the warning.
pub fn init(tool: &str) -> Result<(), RootlessError> {
    init_joining(tool, None)
}

/// As [`init`], but a user joins the user namespace of the running
/// process `join` (pid, start time: a detached container's) instead of
/// making a new one (see `join`).
pub fn init_joining(tool: &str, join: Option<(i32, u64)>) -> Result<(), RootlessError> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        if let Some((pid, start_time)) = join {
            join::join(pid, start_time)?;
        } else if let Some(why) = enter::enter()? {
            eprintln!(
                "{tool}: warning: rootless with a single-id user namespace: {why}; \
                 only uid 0 exists in containers, and images with files of other users \
                 fail to unpack"
            );
        }
        // Children that re-execute (exeseal) find it; believed only in a
        // user namespace (engine::rootless::rootless_user).
        std::env::set_var(engine::rootless::ENV_MARKER, euid.as_raw().to_string());
    } else if std::env::var_os(engine::rootless::ENV_MARKER).is_none()
        || engine::rootless::initial_user_namespace()
    {
        return Ok(());
    }
    engine::rootless::set_active();
    let uid_map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let map = idmap::parse_proc_map(&uid_map);
    let gid_map = std::fs::read_to_string("/proc/self/gid_map").unwrap_or_default();
    let gmap = idmap::parse_proc_map(&gid_map);
    let _ = MAPPED.set(Mapped {
        single_id: map.len() == 1 && map[0].count == 1,
        host_uid: idmap::to_host(&map, 0).unwrap_or(u32::MAX),
        host_gid: idmap::to_host(&gmap, 0).unwrap_or(u32::MAX),
    });
    Ok(())
}

/// Whether this process is rootless rbox.
pub fn active() -> bool {
    engine::rootless::active()
}

/// Whether only the user's own id is mapped.
pub fn single_id() -> bool {
    MAPPED.get().map(|m| m.single_id).unwrap_or(false)
}

/// The user's host uid, when rootless.
pub fn host_uid() -> Option<u32> {
    MAPPED.get().map(|m| m.host_uid)
}

/// The user's host gid, when rootless.
pub fn host_gid() -> Option<u32> {
    MAPPED.get().map(|m| m.host_gid)
}

/// Why rootless rbox cannot make cgroups here (None: it can, in the
/// delegated subtree, see `cgroup`). `cgroup_v2`: the host's hierarchy.
pub fn cgroups_unavailable(cgroup_v2: bool) -> Option<String> {
    if !cgroup_v2 {
        return Some("rootless cgroups need cgroup v2 with a subtree delegated to the user, and this host has cgroup v1, whose controllers only root may configure".into());
    }
    cgroup::delegated().err().map(|why| {
        format!("rootless cgroups need a cgroup v2 subtree delegated to the user (systemd's Delegate=yes), and {why}")
    })
}

/// Why `res` cannot be applied rootless, naming the options, given why
/// no cgroup can be made (`unavailable`, from `cgroups_unavailable`):
/// None when no limit was asked for or cgroups are available.
pub fn limits_refusal(res: &Resources, unavailable: Option<&str>) -> Option<String> {
    if *res == Resources::default() {
        return None;
    }
    let why = unavailable?;
    let mut flags = Vec::new();
    if res.memory_bytes.is_some() {
        flags.push("-m/--memory");
    }
    if res.memory_swap_bytes.is_some() {
        flags.push("--memory-swap");
    }
    if res.cpu_quota_us.is_some() || res.cpu_period_us.is_some() {
        flags.push("--cpus");
    }
    if res.cpu_shares.is_some() {
        flags.push("-c/--cpu-shares");
    }
    if res.pids_limit.is_some() {
        flags.push("--pids-limit");
    }
    if flags.is_empty() {
        flags.push("resource limits");
    }
    Some(format!(
        "{} cannot be applied by rootless rbox: {why}; run without them, or as root",
        flags.join(", ")
    ))
}

/// Adapt the standard container filesystems to a user namespace:
/// device nodes cannot be made there, so the host's are bind-mounted
/// (as Podman does rootless); with the host's network namespace sysfs
/// cannot be mounted (it belongs to the host's user namespace), so the
/// host's /sys is bind-mounted read-only instead; and with a single-id
/// map devpts gets no `gid=5` (no such group inside).
pub fn adapt_steps(steps: &mut [Step], host_network: bool) {
    let single = single_id();
    for s in steps.iter_mut() {
        let replace = match s {
            Step::Device { target, .. } => {
                let source = format!("/{}", target.to_string_lossy());
                Some(Step::Bind {
                    source: crate::sys::cstring(source),
                    target: target.clone(),
                    dir: false,
                    readonly: false,
                    attrs: crate::sys::MOUNT_ATTR_NOSUID | crate::sys::MOUNT_ATTR_NOEXEC,
                    recursive: false,
                })
            }
            Step::Fs { fs, target } if host_network && fs.fstype.as_bytes() == b"sysfs" => {
                Some(Step::Bind {
                    source: CString::from(c"/sys"),
                    target: target.clone(),
                    dir: true,
                    readonly: true,
                    attrs: fs.attrs,
                    recursive: true,
                })
            }
            Step::Fs { fs, .. } if single && fs.fstype.as_bytes() == b"devpts" => {
                fs.options.retain(|(k, _)| k.as_bytes() != b"gid");
                None
            }
            _ => None,
        };
        if let Some(r) = replace {
            *s = r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_limits_no_refusal_any_limit_is_named() {
        let v1 = cgroups_unavailable(false);
        assert_eq!(limits_refusal(&Resources::default(), v1.as_deref()), None);
        let r = Resources {
            memory_bytes: Some(64 << 20),
            pids_limit: Some(10),
            ..Default::default()
        };
        let m = limits_refusal(&r, v1.as_deref()).unwrap();
        assert!(m.contains("-m/--memory, --pids-limit"), "{m}");
        assert!(
            m.contains("rootless cgroups") && m.contains("cgroup v1"),
            "{m}"
        );
        assert_eq!(limits_refusal(&r, None), None, "a delegated subtree");
    }

    #[test]
    fn devices_become_binds_of_the_hosts_and_host_sysfs_a_read_only_bind() {
        let mut steps = crate::native::rootfs::standard_steps(&[], false);
        adapt_steps(&mut steps, true);
        assert!(!steps.iter().any(|s| matches!(s, Step::Device { .. })));
        let null = steps
            .iter()
            .find(|s| matches!(s, Step::Bind { target, .. } if target.as_bytes() == b"dev/null"))
            .expect("dev/null bound");
        assert!(
            matches!(null, Step::Bind { source, dir: false, .. } if source.as_bytes() == b"/dev/null")
        );
        assert!(steps.iter().any(|s| matches!(s,
            Step::Bind { source, readonly: true, recursive: true, .. } if source.as_bytes() == b"/sys")));
        let mut own_net = crate::native::rootfs::standard_steps(&[], false);
        adapt_steps(&mut own_net, false);
        assert!(own_net
            .iter()
            .any(|s| matches!(s, Step::Fs { fs, .. } if fs.fstype.as_bytes() == b"sysfs")));
    }
}

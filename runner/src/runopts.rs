//! Run options that change how a container's first process starts
//! (Docker's `--ulimit`, `--sysctl`, `--shm-size`, `--oom-score-adj`,
//! `--group-add`) or what rrun records and does with it (`--label`,
//! `--stop-signal`, `--stop-timeout`). Parsed and checked here, without
//! root; kept in the container's state (so `rrun create` then `rrun start`
//! keeps them) and applied to the child's plan by `container::run`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::native::rootfs::Step;
use crate::native::spawn::ChildPlan;
use crate::sys;

/// One `--ulimit`: Docker's inspect shape (`-1` is unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// The options as given (checked), recorded in the state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunOptions {
    pub ulimits: Vec<Ulimit>,
    pub sysctls: BTreeMap<String, String>,
    /// /dev/shm's size in bytes (None: Docker's 64 MiB).
    pub shm_size: Option<u64>,
    /// `--group-add` as given (resolved into the spec's additional gids).
    pub group_add: Vec<String>,
    pub oom_score_adj: Option<i32>,
    pub labels: BTreeMap<String, String>,
    /// `--stop-signal` as given (checked to name a signal).
    pub stop_signal: Option<String>,
    /// `--stop-timeout` in seconds: `rrun stop`'s default grace.
    pub stop_timeout: Option<u64>,
    /// `--cpuset-cpus` / `--cpuset-mems` (cgroup::cpuset).
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// `--device`: nodes made in the container and allowed by its
    /// device cgroup (cgroup::devices).
    pub devices: Vec<Device>,
    /// The health check (crate::health): the flags over the image's.
    pub healthcheck: Option<crate::health::Healthcheck>,
    /// `--log-opt` (crate::logfile).
    pub log: crate::logfile::LogConfig,
    /// `--userns=keep-id` (rootless only, crate::rootless::keepid).
    pub keep_id: bool,
}

/// One `--device`: Docker's inspect shape, plus the node's numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Device {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
    #[serde(default)]
    pub major: u32,
    #[serde(default)]
    pub minor: u32,
}

/// `--device HOST[:CONTAINER][:PERMS]`: a character device of the host
/// (links followed, as Docker does), where it goes in the container
/// (default: the same path) and the access (`rwm` by default).
pub fn parse_device(s: &str) -> Result<Device, String> {
    use std::os::unix::fs::FileTypeExt;
    let parts: Vec<&str> = s.split(':').collect();
    let is_perms = |p: &str| !p.is_empty() && p.chars().all(|c| "rwm".contains(c));
    let (host, inside, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if is_perms(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => return Err(format!("invalid device specification: {s}")),
    };
    if !is_perms(perms) {
        return Err(format!("invalid device mode: {perms}"));
    }
    if !inside.starts_with('/') || inside.split('/').any(|c| c == "..") || inside == "/" {
        return Err(format!(
            "{inside} is not an absolute path below / without '..'"
        ));
    }
    let meta = std::fs::metadata(host).map_err(|e| {
        format!("error gathering device information while adding custom device {host:?}: {e}")
    })?;
    let ft = meta.file_type();
    if ft.is_block_device() {
        return Err(format!(
            "{host} is a block device: only character devices are supported"
        ));
    }
    if !ft.is_char_device() {
        return Err(format!("{host} is not a device node"));
    }
    use std::os::unix::fs::MetadataExt;
    let rdev = meta.rdev();
    Ok(Device {
        path_on_host: host.to_string(),
        path_in_container: inside.to_string(),
        cgroup_permissions: perms.to_string(),
        major: libc::major(rdev),
        minor: libc::minor(rdev),
    })
}

/// Docker's default /dev/shm size.
pub const DEFAULT_SHM: u64 = 64 << 20;

/// Names Docker (go-units) knows, and their resources.
const ULIMITS: [(&str, libc::__rlimit_resource_t); 15] = [
    ("core", libc::RLIMIT_CORE),
    ("cpu", libc::RLIMIT_CPU),
    ("data", libc::RLIMIT_DATA),
    ("fsize", libc::RLIMIT_FSIZE),
    ("locks", libc::RLIMIT_LOCKS),
    ("memlock", libc::RLIMIT_MEMLOCK),
    ("msgqueue", libc::RLIMIT_MSGQUEUE),
    ("nice", libc::RLIMIT_NICE),
    ("nofile", libc::RLIMIT_NOFILE),
    ("nproc", libc::RLIMIT_NPROC),
    ("rss", libc::RLIMIT_RSS),
    ("rtprio", libc::RLIMIT_RTPRIO),
    ("rttime", libc::RLIMIT_RTTIME),
    ("sigpending", libc::RLIMIT_SIGPENDING),
    ("stack", libc::RLIMIT_STACK),
];

fn limit(v: &str) -> Result<i64, String> {
    match v {
        "unlimited" | "-1" => Ok(-1),
        _ => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= i64::MAX as u64)
            .map(|n| n as i64)
            .ok_or_else(|| format!("invalid ulimit value {v:?}: a whole number, -1 or unlimited")),
    }
}

/// `NAME=SOFT[:HARD]` (no HARD: the same as SOFT).
pub fn parse_ulimit(s: &str) -> Result<Ulimit, String> {
    let (name, values) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {s}"))?;
    if !ULIMITS.iter().any(|(n, _)| *n == name) {
        let known: Vec<&str> = ULIMITS.iter().map(|(n, _)| *n).collect();
        return Err(format!(
            "invalid ulimit type: {name} (known: {})",
            known.join(", ")
        ));
    }
    let (soft, hard) = match values.split_once(':') {
        Some((s, h)) => (limit(s)?, limit(h)?),
        None => {
            let v = limit(values)?;
            (v, v)
        }
    };
    let n = |v: i64| if v < 0 { u64::MAX } else { v as u64 };
    if n(soft) > n(hard) {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// `--sysctl KEY=VALUE`: only the keys a container has its own copy of
/// (its IPC namespace's; net.* with a network namespace of its own).
pub fn parse_sysctl(s: &str, own_netns: bool) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("sysctl {s:?}: expected KEY=VALUE"))?;
    if v.contains(['\0', '\n']) {
        return Err(format!("sysctl '{k}': the value holds a NUL or newline"));
    }
    if crate::ocispec::sysctl_namespaced(k, own_netns) {
        return Ok((k.to_string(), v.to_string()));
    }
    if crate::ocispec::sysctl_namespaced(k, true) {
        return Err(format!(
            "sysctl '{k}' is not allowed in the host's or another container's network namespace"
        ));
    }
    Err(format!(
        "sysctl '{k}' is not allowed: only kernel.msgmax, kernel.msgmnb, kernel.msgmni, \
         kernel.sem, kernel.shmall, kernel.shmmax, kernel.shmmni, kernel.shm_rmid_forced, \
         fs.mqueue.* and net.* are namespaced"
    ))
}

/// `--oom-score-adj`: Docker's range.
pub fn parse_oom_score_adj(s: &str) -> Result<i32, String> {
    let v: i32 = s
        .trim()
        .parse()
        .map_err(|_| "expected an integer".to_string())?;
    if !(-1000..=1000).contains(&v) {
        return Err(format!(
            "invalid value {v}, range for oom score adj is [-1000, 1000]"
        ));
    }
    Ok(v)
}

/// The numbers of a cpuset list (`0-2,4`), or why it is not one.
fn cpu_list(s: &str) -> Option<std::collections::BTreeSet<u32>> {
    let mut set = std::collections::BTreeSet::new();
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
        if a > b || b >= 1 << 16 {
            return None;
        }
        set.extend(a..=b);
    }
    Some(set)
}

/// `--cpuset-cpus` / `--cpuset-mems` LIST against the list the kernel
/// says is online (`/sys/devices/system/cpu/online`, `.../node/online`).
/// `what`: `CPUs` or `MEMs`, as Docker's messages say.
pub fn parse_cpuset(s: &str, online: &str, what: &str) -> Result<String, String> {
    let v = s.trim();
    let want = cpu_list(v)
        .ok_or_else(|| format!("invalid value {v} for cpuset {}", what.to_ascii_lowercase()))?;
    let have = cpu_list(online.trim()).unwrap_or_default();
    if !want.is_subset(&have) {
        return Err(format!(
            "Requested {what} are not available - requested {v}, available: {}",
            online.trim()
        ));
    }
    Ok(v.to_string())
}

/// `--label K=V` (no `=`: an empty value, as Docker).
pub fn parse_label(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').unwrap_or((s, ""));
    if k.trim().is_empty() {
        return Err("a label needs a key: KEY=VALUE".into());
    }
    Ok((k.to_string(), v.to_string()))
}

/// A `--label-file`'s lines: `K=V`, blank lines and `#` comments skipped.
pub fn labels_of_file(text: &str) -> Result<Vec<(String, String)>, String> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(parse_label)
        .collect()
}

/// `--group-add GID|NAME`: names through the image's /etc/group, read
/// beneath its layers (`user::read_from_layers`: no link leads out).
pub fn resolve_groups(groups: &[String], lowers_top_first: &[PathBuf]) -> Result<Vec<u32>, String> {
    let mut table: Option<Option<String>> = None;
    let mut gids = Vec::new();
    for g in groups {
        let gid = match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                let text = table
                    .get_or_insert_with(|| {
                        crate::user::read_from_layers(lowers_top_first, "etc/group")
                    })
                    .as_deref();
                text.and_then(|t| group_gid(t, g)).ok_or_else(|| {
                    format!(
                        "unable to find group {g}: no matching entries in the image's /etc/group"
                    )
                })?
            }
        };
        if !gids.contains(&gid) {
            gids.push(gid);
        }
    }
    Ok(gids)
}

fn group_gid(group_file: &str, name: &str) -> Option<u32> {
    crate::user::group_entries(group_file)
        .into_iter()
        .find_map(|(n, gid, _)| (n == name).then_some(gid))
}

impl RunOptions {
    /// Put the options into the child's plan: rlimits, sysctls, the
    /// oom_score_adj and /dev/shm's size.
    pub fn apply(&self, plan: &mut ChildPlan) {
        for u in &self.ulimits {
            let Some((_, res)) = ULIMITS.iter().find(|(n, _)| *n == u.name) else {
                continue;
            };
            let n = |v: i64| if v < 0 { libc::RLIM_INFINITY } else { v as u64 };
            #[allow(clippy::unnecessary_cast)]
            plan.rlimits.retain(|(r, _, _)| *r != *res as u32);
            #[allow(clippy::unnecessary_cast)]
            plan.rlimits.push((*res as u32, n(u.soft), n(u.hard)));
        }
        for (k, v) in &self.sysctls {
            plan.sysctl.push((
                sys::cstring(format!("/proc/sys/{}", k.replace('.', "/"))),
                v.clone().into_bytes(),
            ));
        }
        if let Some(a) = self.oom_score_adj {
            plan.oom_score_adj = Some(sys::cstring(a.to_string()));
        }
        if let Some(size) = self.shm_size {
            set_shm_size(&mut plan.rootfs.steps, size);
        }
        for d in &self.devices {
            let target = sys::cstring(d.path_in_container.trim_start_matches('/'));
            // Over a node of the default set (--device /dev/zero:/dev/null).
            plan.rootfs
                .steps
                .retain(|s| !matches!(s, Step::Device { target: t, .. } if *t == target));
            plan.rootfs.steps.push(Step::Device {
                target,
                major: d.major,
                minor: d.minor,
            });
        }
    }

    /// What the device cgroup allows (`privileged`: everything).
    pub fn device_access(&self, privileged: bool) -> crate::cgroup::Devices {
        use crate::cgroup::{devices::ExtraDevice, Devices};
        if privileged {
            return Devices::All;
        }
        if self.devices.is_empty() {
            return Devices::Default;
        }
        Devices::Plus(
            self.devices
                .iter()
                .map(|d| ExtraDevice {
                    major: d.major,
                    minor: d.minor,
                    access: d.cgroup_permissions.clone(),
                })
                .collect(),
        )
    }
}

/// The /dev/shm tmpfs step's `size=` option, in bytes.
fn set_shm_size(steps: &mut [Step], size: u64) {
    for s in steps.iter_mut() {
        if let Step::Fs { fs, target } = s {
            if target.as_bytes() == b"dev/shm" {
                fs.options.retain(|(k, _)| k.as_bytes() != b"size");
                fs.options
                    .push((sys::cstring("size"), Some(sys::cstring(size.to_string()))));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits_parse_like_docker() {
        let u = parse_ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 1024, 2048));
        let u = parse_ulimit("core=unlimited").unwrap();
        assert_eq!((u.soft, u.hard), (-1, -1));
        let u = parse_ulimit("memlock=100:-1").unwrap();
        assert_eq!((u.soft, u.hard), (100, -1));
        assert!(parse_ulimit("nofile=2048:1024")
            .unwrap_err()
            .contains("soft limit must be less than or equal to hard limit"));
        assert!(parse_ulimit("bogus=1")
            .unwrap_err()
            .contains("invalid ulimit type: bogus"));
        assert!(parse_ulimit("nofile").is_err());
        assert!(parse_ulimit("nofile=abc").is_err());
        assert!(parse_ulimit("nofile=-5").is_err());
    }

    #[test]
    fn only_namespaced_sysctls_pass() {
        assert!(parse_sysctl("net.ipv4.ip_forward=1", true).is_ok());
        assert!(parse_sysctl("kernel.shmmax=1000000", false).is_ok());
        assert!(parse_sysctl("fs.mqueue.msg_max=20", false).is_ok());
        let e = parse_sysctl("net.ipv4.ip_forward=1", false).unwrap_err();
        assert!(e.contains("network namespace"), "{e}");
        let e = parse_sysctl("kernel.panic=1", true).unwrap_err();
        assert!(e.contains("'kernel.panic' is not allowed"), "{e}");
        assert!(parse_sysctl("vm.swappiness=1", true).is_err());
        assert!(parse_sysctl("net.ipv4/../../x=1", true).is_err());
        assert!(parse_sysctl("net..x=1", true).is_err());
        assert!(parse_sysctl("net.ipv4.ip_forward", true).is_err());
        assert!(parse_sysctl("net.core.somaxconn=1\n2", true).is_err());
    }

    #[test]
    fn cpuset_lists_are_checked_against_the_online_ones() {
        assert_eq!(parse_cpuset("0-1", "0-3\n", "CPUs"), Ok("0-1".into()));
        assert_eq!(parse_cpuset("0,2-3", "0-3", "CPUs"), Ok("0,2-3".into()));
        let e = parse_cpuset("0-7", "0-1", "CPUs").unwrap_err();
        assert_eq!(
            e,
            "Requested CPUs are not available - requested 0-7, available: 0-1"
        );
        assert!(parse_cpuset("1-0", "0-3", "CPUs")
            .unwrap_err()
            .contains("invalid value"));
        assert!(parse_cpuset("a", "0-3", "CPUs").is_err());
        assert!(parse_cpuset("", "0-3", "CPUs").is_err());
        assert!(parse_cpuset("0-99999999", "0-3", "MEMs")
            .unwrap_err()
            .contains("cpuset mems"));
    }

    #[test]
    fn devices_parse_like_docker() {
        let d = parse_device("/dev/null:/dev/mynull:rw").unwrap();
        assert_eq!(
            (
                d.path_on_host.as_str(),
                d.path_in_container.as_str(),
                d.cgroup_permissions.as_str()
            ),
            ("/dev/null", "/dev/mynull", "rw")
        );
        assert_eq!((d.major, d.minor), (1, 3));
        let d = parse_device("/dev/zero").unwrap();
        assert_eq!(
            (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
            ("/dev/zero", "rwm")
        );
        let d = parse_device("/dev/zero:r").unwrap();
        assert_eq!(
            (d.path_in_container.as_str(), d.cgroup_permissions.as_str()),
            ("/dev/zero", "r")
        );
        assert!(parse_device("/dev/null:/dev/x:rwx")
            .unwrap_err()
            .contains("invalid device mode"));
        assert!(parse_device("/dev/null:dev/x").is_err());
        assert!(parse_device("/dev/null:/dev/../x").is_err());
        assert!(parse_device("/no/such/dev")
            .unwrap_err()
            .contains("error gathering device information"));
        assert!(parse_device("/etc/hostname")
            .unwrap_err()
            .contains("not a device node"));
    }

    #[test]
    fn oom_score_adj_range() {
        assert_eq!(parse_oom_score_adj("-1000"), Ok(-1000));
        assert_eq!(parse_oom_score_adj("500"), Ok(500));
        assert!(parse_oom_score_adj("1001")
            .unwrap_err()
            .contains("[-1000, 1000]"));
        assert!(parse_oom_score_adj("x").is_err());
    }

    #[test]
    fn labels_from_flags_and_files() {
        assert_eq!(parse_label("a=b=c").unwrap(), ("a".into(), "b=c".into()));
        assert_eq!(parse_label("flag").unwrap(), ("flag".into(), "".into()));
        assert!(parse_label("=v").is_err());
        let l = labels_of_file("# c\n\nx=1\n  y=2\n").unwrap();
        assert_eq!(l, [("x".into(), "1".into()), ("y".into(), "2".into())]);
    }

    #[test]
    fn groups_resolve_in_the_image_and_never_outside_it() {
        let t = tempfile::tempdir().unwrap();
        let layer = t.path().join("l1");
        std::fs::create_dir_all(layer.join("etc")).unwrap();
        std::fs::write(layer.join("etc/group"), "root:x:0:\naudio:x:29:\n").unwrap();
        let lowers = vec![layer.clone()];
        let g = resolve_groups(&["audio".into(), "4242".into(), "29".into()], &lowers).unwrap();
        assert_eq!(g, [29, 4242]);
        assert!(resolve_groups(&["video".into()], &lowers)
            .unwrap_err()
            .contains("unable to find group video"));
        // An image whose /etc/group is a link out of its root: not followed.
        let evil = t.path().join("l2");
        std::fs::create_dir_all(evil.join("etc")).unwrap();
        std::fs::write(t.path().join("outside"), "sneaky:x:7:\n").unwrap();
        std::os::unix::fs::symlink(t.path().join("outside"), evil.join("etc/group")).unwrap();
        assert!(resolve_groups(&["sneaky".into()], &[evil]).is_err());
    }

    #[test]
    fn shm_size_replaces_the_default() {
        let mut steps = crate::native::rootfs::standard_steps(&[], false);
        set_shm_size(&mut steps, 128 << 20);
        let shm = steps
            .iter()
            .find_map(|s| match s {
                Step::Fs { fs, target } if target.as_bytes() == b"dev/shm" => Some(fs),
                _ => None,
            })
            .unwrap();
        let sizes: Vec<_> = shm
            .options
            .iter()
            .filter(|(k, _)| k.as_bytes() == b"size")
            .collect();
        assert_eq!(sizes.len(), 1);
        assert_eq!(
            sizes[0].1.as_deref().map(|v| v.to_bytes()),
            Some(&b"134217728"[..])
        );
    }
}

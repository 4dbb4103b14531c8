//! OCI runtime-spec bundles for `rbox-runtime`: a bundle's config.json
//! (parsed with the `oci-spec` crate) translated into what the native
//! spawn path needs (`spawn::ChildPlan`), and the container lifecycle of
//! a runc-compatible runtime (create, start, state, kill, delete) on top
//! of rbox's own rootfs, security and cgroup code.
//!
//! What is not supported is refused with an error naming the field
//! (`check.rs`), never ignored.

pub mod check;
pub mod events;
pub mod exec;
pub mod hooks;
pub mod lifecycle;
pub mod pause;
pub mod seccomp;
pub mod seccomp_cache;
pub mod state;
pub mod update;
pub mod userns;

use std::collections::BTreeMap;
use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use engine::runtime::Resources;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::native::rootfs::{FsMount, Step};
use crate::native::security::{Cap, CapSet, OciCaps};
use crate::sys::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};

const MOUNT_ATTR_NOATIME: u64 = 0x10;
const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
const MOUNT_ATTR_NODIRATIME: u64 = 0x80;

#[cfg(test)]
mod tests {
    use super::device_rule_within_default as within;

    #[test]
    fn in_a_user_namespace_devices_sysfs_and_cgroups_become_binds() {
        use super::{bind_cgroups, userns_step, MOUNT_ATTR_RDONLY};
        use crate::cgroup::InnerMount;
        use crate::native::rootfs::{FsMount, Step};
        let fs = |t: &str, target: &str, attrs| Step::Fs {
            fs: FsMount {
                fstype: crate::sys::cstring(t),
                options: Vec::new(),
                attrs,
            },
            target: crate::sys::cstring(target),
        };
        let bind_of = |s: &Step| match s {
            Step::Bind {
                source,
                readonly,
                recursive,
                ..
            } => Some((source.to_string_lossy().into_owned(), *readonly, *recursive)),
            _ => None,
        };
        let mut dev = Step::Device {
            target: c"dev/null".into(),
            major: 1,
            minor: 3,
        };
        userns_step(&mut dev, true);
        assert_eq!(bind_of(&dev), Some(("/dev/null".into(), false, false)));
        let mut sys = fs("sysfs", "sys", MOUNT_ATTR_RDONLY);
        userns_step(&mut sys, true);
        assert_eq!(bind_of(&sys), None, "a new network namespace: sysfs itself");
        userns_step(&mut sys, false);
        assert_eq!(bind_of(&sys), Some(("/sys".into(), true, true)));
        let inner = |t: &str| InnerMount {
            fstype: "cgroup",
            options: t.into(),
            target: t.into(),
            aliases: Vec::new(),
        };
        let mut steps = vec![
            fs("tmpfs", "sys/fs/cgroup", 0),
            fs("cgroup", "sys/fs/cgroup/memory", MOUNT_ATTR_RDONLY),
            fs("cgroup", "sys/fs/cgroup/pids", MOUNT_ATTR_RDONLY),
        ];
        let paths = ["/sys/fs/cgroup/memory/rbox/c", "/sys/fs/cgroup/pids/rbox/c"]
            .map(std::path::PathBuf::from);
        bind_cgroups(&mut steps, &[inner("memory"), inner("pids")], &paths);
        assert_eq!(bind_of(&steps[0]), None);
        assert_eq!(
            bind_of(&steps[1]),
            Some(("/sys/fs/cgroup/memory/rbox/c".into(), true, false))
        );
        assert_eq!(
            bind_of(&steps[2]),
            Some(("/sys/fs/cgroup/pids/rbox/c".into(), true, false))
        );
        let mut v2 = vec![fs("cgroup2", "sys/fs/cgroup", 0)];
        let v2_inner = InnerMount {
            fstype: "cgroup2",
            options: String::new(),
            target: String::new(),
            aliases: Vec::new(),
        };
        bind_cgroups(&mut v2, &[v2_inner], &["/sys/fs/cgroup/rbox/c".into()]);
        assert_eq!(
            bind_of(&v2[0]),
            Some(("/sys/fs/cgroup/rbox/c".into(), false, false))
        );
    }

    #[test]
    fn device_rules_within_rbox_default_policy() {
        let c = || Some("c".to_string());
        assert!(within(false, None, None, None, Some("rwm")));
        assert!(within(true, c(), None, None, Some("m")));
        assert!(within(true, Some("b".into()), None, None, Some("m")));
        assert!(within(true, c(), Some(1), Some(3), Some("rwm")));
        assert!(within(true, c(), Some(136), None, Some("rwm")));
        assert!(within(true, c(), Some(136), Some(4), Some("rw")));
        // Wider than the default, or a deny the default would not enforce.
        assert!(!within(true, None, None, None, Some("rwm")));
        assert!(!within(true, c(), Some(10), Some(229), Some("rwm")));
        assert!(!within(true, c(), Some(1), None, Some("rw")));
        assert!(!within(true, Some("b".into()), Some(8), Some(0), Some("r")));
        assert!(!within(false, c(), Some(5), Some(1), Some("rwm")));
        // Denies of what the list never opens (Docker's fuse rule).
        assert!(within(false, c(), Some(10), Some(229), Some("rwm")));
        assert!(within(false, Some("b".into()), Some(8), None, Some("rw")));
        assert!(!within(false, c(), Some(1), None, Some("rw")));
        assert!(!within(false, c(), Some(136), Some(3), Some("rw")));
        assert!(!within(false, c(), None, None, Some("m")));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error("{field}: not supported by rbox-runtime yet{}", if .why.is_empty() { String::new() } else { format!(" ({})", .why) })]
    Unsupported { field: String, why: String },
    #[error("{field}: {why}")]
    Invalid { field: String, why: String },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("parse {path}: {msg}")]
    Parse { path: PathBuf, msg: String },
    #[error("container {0:?} does not exist")]
    NotFound(String),
    #[error("container {0:?} already exists")]
    Exists(String),
    #[error("container {id:?} is {status}: {what}")]
    WrongState {
        id: String,
        status: &'static str,
        what: &'static str,
    },
    #[error("{0}")]
    Other(String),
    #[error(transparent)]
    Cgroup(#[from] crate::cgroup::CgroupError),
    #[error("{0}")]
    Spawn(#[from] crate::native::spawn::SpawnError),
    #[error(transparent)]
    Hook(#[from] hooks::HookError),
}

pub type Result<T, E = OciError> = std::result::Result<T, E>;

static DEBUG_LOG: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();

/// Where the library's debug messages go (the binary's `--debug` log).
pub fn set_debug_log(f: fn(&str)) {
    let _ = DEBUG_LOG.set(f);
}

pub(crate) fn debug(msg: &str) {
    if let Some(f) = DEBUG_LOG.get() {
        f(msg);
    }
}

pub(crate) fn io_err<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> OciError + 'a {
    move |source| OciError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn unsupported(field: impl Into<String>, why: impl Into<String>) -> OciError {
    OciError::Unsupported {
        field: field.into(),
        why: why.into(),
    }
}

fn invalid(field: impl Into<String>, why: impl Into<String>) -> OciError {
    OciError::Invalid {
        field: field.into(),
        why: why.into(),
    }
}

/// A bundle's config, checked and translated; nothing host-specific yet
/// (the cgroup layout is applied in `steps`).
#[derive(Debug, Clone)]
pub struct Bundle {
    pub dir: PathBuf,
    /// `root.path`, absolute.
    pub rootfs: PathBuf,
    pub readonly: bool,
    pub mounts: Vec<MountPlan>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub new_net: bool,
    pub new_cgroup_ns: bool,
    /// Namespaces joined by path: (file, CLONE_NEW* type).
    pub join_ns: Vec<(PathBuf, libc::c_int)>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub caps: OciCaps,
    pub rlimits: Vec<(u32, u64, u64)>,
    pub no_new_privs: bool,
    pub terminal: bool,
    pub console_size: Option<(u16, u16)>,
    pub masked: Vec<String>,
    pub readonly_paths: Vec<String>,
    /// `linux.sysctl` as (path below /proc/sys, value).
    pub sysctl: Vec<(String, String)>,
    pub oom_score_adj: Option<i32>,
    /// `linux.devices`: nodes made in the container's /dev.
    pub devices: Vec<Step>,
    pub resources: Resources,
    /// `linux.cgroupsPath`, relative to the cgroup root(s); `None`: `rbox/<id>`.
    pub cgroups_path: Option<String>,
    pub annotations: BTreeMap<String, String>,
    pub hooks: hooks::Hooks,
    /// `linux.seccomp`, compiled (`seccomp.rs`); loaded by the process.
    pub seccomp: Option<seccomp::Filter>,
    /// `linux.namespaces` of type user with the id maps (`userns.rs`).
    pub userns: Option<userns::UserNs>,
}

/// One entry of `mounts`, translated.
#[derive(Debug, Clone)]
pub enum MountPlan {
    Step(Step),
    /// `type: cgroup` at /sys/fs/cgroup: the host's layout, read-only or not.
    Cgroup {
        readonly: bool,
    },
}

/// Read and translate `<bundle>/config.json`.
pub fn load(bundle: &Path) -> Result<Bundle> {
    let path = bundle.join("config.json");
    load_value(bundle, &path, read_json(&path)?)
}

/// A process with `process.terminal` needs `--console-socket`, and one
/// without it must not get one (create and exec alike).
pub(crate) fn check_terminal(terminal: bool, console_socket: Option<&Path>) -> Result<()> {
    match (terminal, console_socket) {
        (true, None) => Err(OciError::Invalid {
            field: "process.terminal".into(),
            why: "true needs --console-socket".into(),
        }),
        (false, Some(_)) => Err(OciError::Other(
            "--console-socket given but process.terminal is false".into(),
        )),
        _ => Ok(()),
    }
}

/// Connect to the caller's `--console-socket` (the pty's master goes there).
pub(crate) fn connect_console(path: &Path) -> Result<std::os::fd::OwnedFd> {
    Ok(std::os::unix::net::UnixStream::connect(path)
        .map_err(io_err("connect to console socket", path))?
        .into())
}

/// Read a JSON file.
pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(io_err("read", path))?;
    serde_json::from_str(&text).map_err(|e| OciError::Parse {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

/// Check and translate a config read from `path` (named in errors).
pub(crate) fn load_value(bundle: &Path, path: &Path, raw: serde_json::Value) -> Result<Bundle> {
    let path = path.to_path_buf();
    if let Some(field) = check::first_unsupported(&raw) {
        return Err(unsupported(field, ""));
    }
    // From the raw JSON, before the typed parse: its errors name the path
    // of a bad action, operator, architecture or flag.
    let filter = match raw.pointer("/linux/seccomp").filter(|v| !v.is_null()) {
        Some(v) => Some(seccomp_cache::compile(v, no_new_privs_raw(&raw))?),
        None => None,
    };
    let spec: Spec = serde_json::from_value(raw).map_err(|e| OciError::Parse {
        path: path.clone(),
        msg: e.to_string(),
    })?;
    translate_with(&spec, bundle, filter)
}

fn no_new_privs_raw(raw: &serde_json::Value) -> bool {
    raw.pointer("/process/noNewPrivileges")
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

/// Translate a parsed spec whose keys passed `check`.
pub fn translate(spec: &Spec, bundle: &Path) -> Result<Bundle> {
    let filter = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
        None => None,
        Some(s) => {
            let v = serde_json::to_value(s)
                .map_err(|e| OciError::Other(format!("linux.seccomp: {e}")))?;
            let nnp = spec
                .process()
                .as_ref()
                .and_then(|p| p.no_new_privileges())
                .unwrap_or(false);
            Some(seccomp_cache::compile(&v, nnp)?)
        }
    };
    translate_with(spec, bundle, filter)
}

fn translate_with(spec: &Spec, bundle: &Path, seccomp: Option<seccomp::Filter>) -> Result<Bundle> {
    let dir = std::path::absolute(bundle).map_err(io_err("resolve bundle", bundle))?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "required"))?;
    let rootfs = dir.join(root.path());
    if !rootfs.is_dir() {
        return Err(invalid(
            "root.path",
            format!("{} is not a directory", rootfs.display()),
        ));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "required"))?;
    let args = process.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(invalid("process.args", "must not be empty"));
    }
    let cwd = process.cwd().to_string_lossy().into_owned();
    if !cwd.starts_with('/') {
        return Err(invalid("process.cwd", "must be an absolute path"));
    }
    let user = process.user();
    // Podman always sends its default, 0022, which is the umask every rbox
    // container process starts with; any other value is not honoured yet.
    if let Some(m) = user.umask() {
        if m != 0o022 {
            return Err(unsupported(
                "process.user.umask",
                format!("{m:04o}: only 0022 (the umask rbox starts every process with)"),
            ));
        }
    }
    let caps = match process.capabilities() {
        None => OciCaps::default(),
        Some(c) => {
            let set =
                |field: &str, s: &Option<oci_spec::runtime::Capabilities>| -> Result<CapSet> {
                    let mut bits = 0u64;
                    for cap in s.iter().flatten() {
                        let name = cap.to_string();
                        let c = Cap::parse(&name).map_err(|_| {
                            invalid(
                                format!("process.capabilities.{field}"),
                                format!("unknown capability {name}"),
                            )
                        })?;
                        bits |= c.bit();
                    }
                    Ok(CapSet(bits))
                };
            OciCaps {
                bounding: set("bounding", c.bounding())?,
                effective: set("effective", c.effective())?,
                permitted: set("permitted", c.permitted())?,
                inheritable: set("inheritable", c.inheritable())?,
                ambient: set("ambient", c.ambient())?,
            }
        }
    };
    let mut rlimits = Vec::new();
    for (i, r) in process.rlimits().iter().flatten().enumerate() {
        let name = r.typ().to_string();
        let res = rlimit_resource(&name).ok_or_else(|| {
            invalid(
                format!("process.rlimits[{i}].type"),
                format!("unknown limit {name}"),
            )
        })?;
        rlimits.push((res, r.soft(), r.hard()));
    }
    let terminal = process.terminal().unwrap_or(false);
    let console_size = process.console_size().map(|b| {
        (
            b.height().min(u16::MAX as u64) as u16,
            b.width().min(u16::MAX as u64) as u16,
        )
    });

    let linux = spec.linux().as_ref();
    let mut have = Vec::new();
    let mut join_ns = Vec::new();
    let mut user_ns = None;
    for (i, ns) in linux
        .and_then(|l| l.namespaces().as_ref())
        .iter()
        .copied()
        .flatten()
        .enumerate()
    {
        if ns.typ() == LinuxNamespaceType::User {
            user_ns = Some(ns.path().clone());
            continue;
        }
        if let Some(p) = ns.path() {
            let flag = match ns.typ() {
                LinuxNamespaceType::Network => libc::CLONE_NEWNET,
                LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
                LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
                t => {
                    return Err(unsupported(
                        format!("linux.namespaces[{i}].path"),
                        format!(
                            "joining a {} namespace; only network, ipc and uts",
                            format!("{t:?}").to_lowercase()
                        ),
                    ))
                }
            };
            if !p.exists() || p.is_dir() {
                return Err(invalid(
                    format!("linux.namespaces[{i}].path"),
                    format!("{} is not a namespace file", p.display()),
                ));
            }
            join_ns.push((p.clone(), flag));
            // Joined, not new (the clone's own ipc/uts are left for it).
            if ns.typ() == LinuxNamespaceType::Network {
                continue;
            }
        }
        have.push(ns.typ());
    }
    for (t, name) in [
        (LinuxNamespaceType::Pid, "pid"),
        (LinuxNamespaceType::Mount, "mount"),
        (LinuxNamespaceType::Ipc, "ipc"),
        (LinuxNamespaceType::Uts, "uts"),
    ] {
        if !have.contains(&t) {
            return Err(unsupported(
                "linux.namespaces",
                format!("running in the host's {name} namespace; list {{\"type\": \"{name}\"}}"),
            ));
        }
    }
    for t in &have {
        if *t == LinuxNamespaceType::Time {
            return Err(unsupported(
                "linux.namespaces",
                format!("a new {} namespace", format!("{t:?}").to_lowercase()),
            ));
        }
    }
    let new_net = have.contains(&LinuxNamespaceType::Network);
    let groups = user.additional_gids().clone().unwrap_or_default();
    let userns = userns::translate(
        user_ns,
        linux.and_then(|l| l.uid_mappings().as_ref()),
        linux.and_then(|l| l.gid_mappings().as_ref()),
        (user.uid(), user.gid(), &groups),
    )?;
    if hostname_set_in_joined_uts(spec, &join_ns) {
        return Err(invalid(
            "hostname",
            "would rename a joined uts namespace (leave hostname and domainname out)",
        ));
    }
    let new_cgroup_ns = have.contains(&LinuxNamespaceType::Cgroup);
    if let Some(p) = linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        if !matches!(p, "private" | "rprivate") {
            return Err(unsupported(
                "linux.rootfsPropagation",
                format!("{p:?}; only private and rprivate"),
            ));
        }
    }
    let resources = match linux.and_then(|l| l.resources().as_ref()) {
        None => Resources::default(),
        Some(r) => translate_resources(r)?,
    };
    let mut sysctl = Vec::new();
    let sysctls: BTreeMap<String, String> = linux
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    for (k, v) in sysctls {
        if !sysctl_namespaced(&k, new_net) {
            return Err(unsupported(
                format!("linux.sysctl.{k}"),
                "only keys of the container's own ipc (kernel.msg*, kernel.sem, kernel.shm*, \
                 fs.mqueue.*) or new network namespace (net.*)",
            ));
        }
        sysctl.push((format!("/proc/sys/{}", k.replace('.', "/")), v));
    }
    let oom_score_adj = process.oom_score_adj();
    if oom_score_adj.is_some_and(|a| !(-1000..=1000).contains(&a)) {
        return Err(invalid("process.oomScoreAdj", "must be within -1000..1000"));
    }
    let mut devices = Vec::new();
    for (i, d) in linux
        .and_then(|l| l.devices().as_ref())
        .iter()
        .copied()
        .flatten()
        .enumerate()
    {
        devices.push(device_node(i, d)?);
    }
    let cgroups_path = match linux.and_then(|l| l.cgroups_path().as_ref()) {
        None => None,
        Some(p) => Some(cgroups_path(&p.to_string_lossy())?),
    };
    let mut mounts = Vec::new();
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        mounts.push(translate_mount(i, m, &dir)?);
    }
    let hostname = spec.hostname().clone().filter(|h| !h.is_empty());
    if hostname.is_some() && !have.contains(&LinuxNamespaceType::Uts) {
        return Err(invalid("hostname", "needs a new uts namespace"));
    }
    let domainname = spec.domainname().clone().filter(|d| !d.is_empty());
    if domainname.is_some() && !have.contains(&LinuxNamespaceType::Uts) {
        return Err(invalid("domainname", "needs a new uts namespace"));
    }
    if domainname
        .as_ref()
        .is_some_and(|d| d.len() > 64 || d.contains('\0'))
    {
        return Err(invalid("domainname", "at most 64 bytes, no NUL"));
    }
    Ok(Bundle {
        rootfs,
        readonly: root.readonly().unwrap_or(false),
        mounts,
        hostname,
        domainname,
        new_net,
        new_cgroup_ns,
        join_ns,
        args,
        env: process.env().clone().unwrap_or_default(),
        cwd,
        uid: user.uid(),
        gid: user.gid(),
        groups,
        caps,
        rlimits,
        no_new_privs: process.no_new_privileges().unwrap_or(false),
        terminal,
        console_size,
        masked: linux
            .and_then(|l| l.masked_paths().clone())
            .unwrap_or_default(),
        readonly_paths: linux
            .and_then(|l| l.readonly_paths().clone())
            .unwrap_or_default(),
        resources,
        sysctl,
        oom_score_adj,
        devices,
        cgroups_path,
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        hooks: hooks::from_spec(spec.hooks().as_ref())?,
        seccomp,
        userns,
        dir,
    })
}

/// `linux.cgroupsPath` as a path relative to the cgroup root: absolute
/// or relative alike (a runtime may choose where relative ones go), no
/// `..`, not systemd's `slice:prefix:name` form.
fn cgroups_path(p: &str) -> Result<String> {
    if p.contains(':') {
        return Err(unsupported(
            "linux.cgroupsPath",
            format!("{p:?}: systemd's slice:prefix:name form (cgroupfs paths only)"),
        ));
    }
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.is_empty() || parts.contains(&"..") {
        return Err(invalid(
            "linux.cgroupsPath",
            format!("{p:?}: a path below the cgroup root without '..'"),
        ));
    }
    Ok(parts.join("/"))
}

/// The driver for a container's group and the group's last path part:
/// `rbox/<id>` by default, else the bundle's `linux.cgroupsPath`.
pub fn cgroup_for(
    cgroups_path: Option<&str>,
    id: &str,
) -> Result<(crate::cgroup::CgroupDriver, String)> {
    let driver = crate::cgroup::CgroupDriver::probe()?;
    Ok(match cgroups_path {
        None => (driver, id.to_string()),
        Some(p) => {
            let (parent, leaf) = p.rsplit_once('/').unwrap_or(("", p));
            (driver.with_parent(Path::new(parent)), leaf.to_string())
        }
    })
}

/// runc's rule: a sysctl may be set only where it is namespaced, so that
/// it changes the container's namespace and not the host.
pub(crate) fn sysctl_namespaced(key: &str, new_net: bool) -> bool {
    let ipc = matches!(
        key,
        "kernel.msgmax"
            | "kernel.msgmnb"
            | "kernel.msgmni"
            | "kernel.sem"
            | "kernel.shmall"
            | "kernel.shmmax"
            | "kernel.shmmni"
            | "kernel.shm_rmid_forced"
    ) || key.starts_with("fs.mqueue.");
    let clean = !key.is_empty()
        && key
            .split('.')
            .all(|c| !c.is_empty() && c != ".." && !c.contains('/'));
    clean && (ipc || (new_net && key.starts_with("net.")))
}

fn hostname_set_in_joined_uts(spec: &Spec, join: &[(PathBuf, libc::c_int)]) -> bool {
    let set = |v: &Option<String>| v.as_deref().is_some_and(|h| !h.is_empty());
    (set(spec.hostname()) || set(spec.domainname()))
        && join.iter().any(|(_, t)| *t == libc::CLONE_NEWUTS)
}

pub(crate) fn rlimit_resource(name: &str) -> Option<u32> {
    let r = match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    };
    #[allow(clippy::unnecessary_cast)]
    Some(r as u32)
}

fn positive(v: Option<i64>) -> Option<u64> {
    v.filter(|v| *v > 0).map(|v| v as u64)
}

pub(crate) fn translate_resources(r: &oci_spec::runtime::LinuxResources) -> Result<Resources> {
    // Devices: rbox enforces Docker's default list (mknod of anything,
    // read/write of the usual harmless character devices). A bundle's
    // rules are accepted when that policy already grants them: the
    // deny-all rule, mknod-only rules, and allows within the list
    // (containerd's and podman's defaults are of this shape). Anything
    // wider or narrower is refused by name rather than not enforced.
    for (i, d) in r.devices().iter().flatten().enumerate() {
        if !device_rule_within_default(
            d.allow(),
            d.typ().map(|t| t.as_str().to_string()),
            d.major(),
            d.minor(),
            d.access().as_deref(),
        ) {
            return Err(unsupported(
                format!("linux.resources.devices[{i}]"),
                format!(
                    "{d}: only rules within rbox's default device list (the deny-all rule, \
                     mknod, and read/write of null, zero, full, random, urandom, tty, \
                     console, ptmx, pts)"
                ),
            ));
        }
    }
    let mut res = Resources::default();
    if let Some(m) = r.memory() {
        res.memory_bytes = positive(m.limit());
        res.memory_swap_bytes = m.swap().filter(|s| *s != 0);
        // Docker sends false, the kernel's default.
        if m.disable_oom_killer() == Some(true) {
            return Err(unsupported(
                "linux.resources.memory.disableOOMKiller",
                "true (only the kernel's default, false)",
            ));
        }
    }
    // Docker sends weight 0: "not set".
    if let Some(w) = r.block_io().as_ref().and_then(|b| b.weight()) {
        if w != 0 {
            return Err(unsupported(
                "linux.resources.blockIO.weight",
                format!("{w} (only 0: not set)"),
            ));
        }
    }
    if let Some(c) = r.cpu() {
        res.cpu_shares = c.shares().filter(|s| *s > 0);
        res.cpu_quota_us = positive(c.quota());
        res.cpu_period_us = c.period().filter(|p| *p > 0);
        for (field, set) in [
            ("cpus", c.cpus().is_some()),
            ("mems", c.mems().is_some()),
            ("realtimeRuntime", c.realtime_runtime().is_some()),
            ("realtimePeriod", c.realtime_period().is_some()),
            ("idle", c.idle().is_some()),
            ("burst", c.burst().is_some()),
        ] {
            if set {
                return Err(unsupported(format!("linux.resources.cpu.{field}"), ""));
            }
        }
    }
    if let Some(p) = r.pids() {
        res.pids_limit = positive(Some(p.limit()));
    }
    Ok(res)
}

/// Whether a `linux.resources.devices` rule is what rbox's default
/// device policy does anyway (`cgroup::devices`).
fn device_rule_within_default(
    allow: bool,
    typ: Option<String>,
    major: Option<i64>,
    minor: Option<i64>,
    access: Option<&str>,
) -> bool {
    let access = access.unwrap_or("rwm");
    let typ = typ.unwrap_or_else(|| "a".into());
    if !allow {
        if typ == "a" && major.is_none() && minor.is_none() && access == "rwm" {
            return true;
        }
        // A deny of a device the list never lets the container read or
        // write (Docker's `c 10:229 rwm`, fuse): its r and w are denied
        // anyway, and mknod stays allowed as under runc, which appends
        // mknod-of-anything after a bundle's rules.
        let Some(major) = major.filter(|_| matches!(typ.as_str(), "c" | "b")) else {
            return false;
        };
        return typ == "b"
            || !crate::cgroup::devices::ALLOWED_CHAR.iter().any(|(ma, mi)| {
                i64::from(*ma) == major
                    && match (mi, minor) {
                        (None, _) | (_, None) => true,
                        (Some(m), Some(n)) => i64::from(*m) == n,
                    }
            });
    }
    if access.chars().all(|c| c == 'm') {
        return true;
    }
    if typ != "c" || !access.chars().all(|c| "rwm".contains(c)) {
        return false;
    }
    let Some(major) = major else { return false };
    crate::cgroup::devices::ALLOWED_CHAR.iter().any(|(ma, mi)| {
        i64::from(*ma) == major
            && match (mi, minor) {
                (None, _) => true,
                (Some(m), Some(n)) => i64::from(*m) == n,
                (Some(_), None) => false,
            }
    })
}

/// One `linux.devices` entry as a node step: a character device that
/// rbox's device policy lets the container use, mode 0666, owned by root
/// (what the node steps make); anything else is refused by index.
fn device_node(i: usize, d: &oci_spec::runtime::LinuxDevice) -> Result<Step> {
    let field = format!("linux.devices[{i}]");
    let p = d.path().to_string_lossy().into_owned();
    let rel = p.trim_start_matches('/');
    if !p.starts_with("/dev/") || rel.split('/').any(|c| c == ".." || c.is_empty()) {
        return Err(invalid(
            format!("{field}.path"),
            format!("{p:?}: a path below /dev"),
        ));
    }
    let is_char = matches!(d.typ().as_str(), "c" | "u");
    let allowed = is_char
        && device_rule_within_default(
            true,
            Some("c".into()),
            Some(d.major()),
            Some(d.minor()),
            Some("rw"),
        );
    if !allowed {
        return Err(unsupported(
            field,
            format!(
                "{} {}:{} at {p}; only character devices of rbox's default list",
                d.typ().as_str(),
                d.major(),
                d.minor()
            ),
        ));
    }
    if d.file_mode().is_some_and(|m| m & 0o7777 != 0o666)
        || d.uid().is_some_and(|u| u != 0)
        || d.gid().is_some_and(|g| g != 0)
    {
        return Err(unsupported(
            field,
            "a fileMode other than 0666 or an owner other than root",
        ));
    }
    Ok(Step::Device {
        target: sys::cstring(rel),
        major: d.major() as u32,
        minor: d.minor() as u32,
    })
}

fn rel_target(i: usize, dest: &Path) -> Result<CString> {
    let s = dest.to_string_lossy();
    let rel = s.trim_start_matches('/');
    if !s.starts_with('/') || rel.is_empty() || rel.split('/').any(|c| c == "..") {
        return Err(invalid(
            format!("mounts[{i}].destination"),
            format!("{s:?}: must be an absolute path below / without '..'"),
        ));
    }
    Ok(sys::cstring(rel.trim_end_matches('/')))
}

fn translate_mount(i: usize, m: &oci_spec::runtime::Mount, bundle: &Path) -> Result<MountPlan> {
    let target = rel_target(i, m.destination())?;
    let opts = m.options().clone().unwrap_or_default();
    let fstype = m.typ().clone().unwrap_or_default();
    let is_bind =
        fstype == "bind" || fstype == "rbind" || opts.iter().any(|o| o == "bind" || o == "rbind");
    let mut attrs = 0u64;
    let mut fs_opts: Vec<(CString, Option<CString>)> = Vec::new();
    for o in &opts {
        match o.as_str() {
            "ro" => attrs |= MOUNT_ATTR_RDONLY,
            "rw" => attrs &= !MOUNT_ATTR_RDONLY,
            "nosuid" => attrs |= MOUNT_ATTR_NOSUID,
            "suid" => attrs &= !MOUNT_ATTR_NOSUID,
            "nodev" => attrs |= MOUNT_ATTR_NODEV,
            "dev" => attrs &= !MOUNT_ATTR_NODEV,
            "noexec" => attrs |= MOUNT_ATTR_NOEXEC,
            "exec" => attrs &= !MOUNT_ATTR_NOEXEC,
            "relatime" => {}
            "strictatime" => attrs |= MOUNT_ATTR_STRICTATIME,
            "noatime" => attrs |= MOUNT_ATTR_NOATIME,
            "nodiratime" => attrs |= MOUNT_ATTR_NODIRATIME,
            // Every mount lives in the container's own private namespace.
            "private" | "rprivate" => {}
            o @ ("shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable") => {
                return Err(unsupported(
                    format!("mounts[{i}].options"),
                    format!("{o:?}: mount propagation other than private"),
                ))
            }
            "bind" | "rbind" if is_bind => {}
            o if !is_bind => match o.split_once('=') {
                Some((k, v)) => fs_opts.push((sys::cstring(k), Some(sys::cstring(v)))),
                None => fs_opts.push((sys::cstring(o), None)),
            },
            o => {
                return Err(unsupported(
                    format!("mounts[{i}].options"),
                    format!("{o:?} on a bind mount"),
                ))
            }
        }
    }
    if is_bind {
        let src = m
            .source()
            .as_ref()
            .ok_or_else(|| invalid(format!("mounts[{i}].source"), "required for a bind mount"))?;
        let src = bundle.join(src);
        let meta = std::fs::metadata(&src).map_err(io_err("bind source", &src))?;
        const ATIME: u64 = MOUNT_ATTR_NOATIME | MOUNT_ATTR_STRICTATIME | MOUNT_ATTR_NODIRATIME;
        if attrs & ATIME != 0 {
            return Err(unsupported(
                format!("mounts[{i}].options"),
                "atime options on a bind mount",
            ));
        }
        return Ok(MountPlan::Step(Step::Bind {
            source: sys::cstring(&src),
            target,
            dir: meta.is_dir(),
            readonly: attrs & MOUNT_ATTR_RDONLY != 0,
            attrs: attrs & !MOUNT_ATTR_RDONLY,
            recursive: fstype == "rbind" || opts.iter().any(|o| o == "rbind"),
        }));
    }
    match fstype.as_str() {
        "proc" | "tmpfs" | "devpts" | "mqueue" | "sysfs" => {}
        "cgroup" | "cgroup2" => {
            if target.as_bytes() != b"sys/fs/cgroup" {
                return Err(unsupported(
                    format!("mounts[{i}].destination"),
                    "a cgroup filesystem anywhere but /sys/fs/cgroup",
                ));
            }
            return Ok(MountPlan::Cgroup {
                readonly: attrs & MOUNT_ATTR_RDONLY != 0,
            });
        }
        "" => return Err(invalid(format!("mounts[{i}].type"), "required")),
        t => {
            return Err(unsupported(
                format!("mounts[{i}].type"),
                format!("{t:?}; proc, tmpfs, devpts, mqueue, sysfs, cgroup and bind are"),
            ))
        }
    }
    Ok(MountPlan::Step(Step::Fs {
        fs: FsMount {
            fstype: sys::cstring(&fstype),
            options: fs_opts,
            attrs,
        },
        target,
    }))
}

impl Bundle {
    /// The rootfs steps for this host's cgroup layout: the bundle's mounts
    /// in order, then the standard nodes and links of /dev (as runc and
    /// crun make them).
    pub fn steps(&self, cgroup: &[crate::cgroup::InnerMount]) -> Vec<Step> {
        let mut steps = Vec::new();
        for m in &self.mounts {
            match m {
                MountPlan::Step(s) => steps.push(s.clone()),
                MountPlan::Cgroup { readonly } => steps.extend(
                    crate::native::rootfs::standard_steps(cgroup, !readonly)
                        .into_iter()
                        .filter(|s| step_target(s).starts_with(b"sys/fs/cgroup")),
                ),
            }
        }
        // The standard nodes and links, but not where the bundle puts a
        // device of its own.
        let own: Vec<&[u8]> = self.devices.iter().map(step_target).collect();
        steps.extend(
            crate::native::rootfs::standard_steps(&[], false)
                .into_iter()
                .filter(|s| matches!(s, Step::Device { .. } | Step::Symlink { .. }))
                .filter(|s| !own.contains(&step_target(s))),
        );
        steps.extend(self.devices.iter().cloned());
        if self.userns.is_some() {
            for s in &mut steps {
                userns_step(s, self.new_net);
            }
        }
        steps
    }
}

/// Without a cgroup namespace of its own a container's cgroup mount
/// would show each hierarchy's root (and in a user namespace the kernel
/// refuses it): the container's own groups are bound there instead
/// (runc's and crun's way), `paths` in the order of `inner` (the cgroup's
/// `paths` and `inner_mounts`).
pub(crate) fn bind_cgroups(
    steps: &mut [Step],
    inner: &[crate::cgroup::InnerMount],
    paths: &[PathBuf],
) {
    for s in steps {
        let Step::Fs { fs, target } = s else { continue };
        if !matches!(fs.fstype.as_bytes(), b"cgroup" | b"cgroup2") {
            continue;
        }
        let rel = target.to_bytes().strip_prefix(b"sys/fs/cgroup");
        let rel = rel.map(|r| r.strip_prefix(b"/").unwrap_or(r));
        let Some(i) = inner.iter().position(|m| Some(m.target.as_bytes()) == rel) else {
            continue;
        };
        let Some(source) = paths.get(i) else { continue };
        *s = Step::Bind {
            source: sys::cstring(source),
            target: target.clone(),
            dir: true,
            readonly: fs.attrs & MOUNT_ATTR_RDONLY != 0,
            attrs: fs.attrs & !MOUNT_ATTR_RDONLY,
            recursive: false,
        };
    }
}

/// A step as it can be made inside a user namespace (runc's rules): a
/// device node, which mknod refuses there, becomes a bind of the host's
/// node of that path; sysfs, which needs a network namespace of the user
/// namespace's, becomes a recursive bind of the host's /sys when the
/// network namespace is not new.
fn userns_step(s: &mut Step, new_net: bool) {
    match s {
        Step::Device { target, .. } => {
            let mut source = b"/".to_vec();
            source.extend_from_slice(target.to_bytes());
            *s = Step::Bind {
                source: CString::new(source).expect("a CString's bytes"),
                target: target.clone(),
                dir: false,
                readonly: false,
                attrs: 0,
                recursive: false,
            };
        }
        Step::Fs { fs, target } if !new_net && fs.fstype.as_bytes() == b"sysfs" => {
            *s = Step::Bind {
                source: c"/sys".into(),
                target: target.clone(),
                dir: true,
                readonly: fs.attrs & MOUNT_ATTR_RDONLY != 0,
                attrs: fs.attrs & !MOUNT_ATTR_RDONLY,
                recursive: true,
            };
        }
        _ => {}
    }
}

fn step_target(s: &Step) -> &[u8] {
    match s {
        Step::Fs { target, .. }
        | Step::Bind { target, .. }
        | Step::Device { target, .. }
        | Step::Symlink { target, .. }
        | Step::ReadOnly { target } => target.to_bytes(),
    }
}

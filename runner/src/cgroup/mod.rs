//! The `CgroupDriver` seam: v2 (unified) and v1, picked by probing
//! `/sys/fs/cgroup`. Every container gets a group `rbox/<id>` under a parent
//! of our own; we never touch the host's other groups or mounts.
//!
//! Hybrid hosts (v1 controllers plus an empty cgroup2 at
//! `/sys/fs/cgroup/unified`, like the CI machine) use the v1 driver: the v2
//! tree there has no controllers.

pub mod cpuset;
pub mod devices;
pub mod kill;
pub mod v1;
pub mod v2;

use std::io;
use std::path::{Path, PathBuf};

use engine::runtime::Resources;

pub use devices::Devices;

pub const PARENT: &str = "rbox";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const TMPFS_MAGIC: i64 = 0x0102_1994;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("cgroup: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cgroup: no usable cgroup filesystem at {0} (mount cgroup2 there, or the v1 controllers under a tmpfs)")]
    NoCgroupFs(PathBuf),
    #[error("cgroup: controller {controller:?} is not available at {path} (enable it: needed for {why})")]
    MissingController {
        controller: &'static str,
        path: PathBuf,
        why: &'static str,
    },
    #[error(
        "cgroup: {path} did not empty within 5s after the container exited ({left} processes left)"
    )]
    NotEmpty { path: PathBuf, left: usize },
}

pub type Result<T, E = CgroupError> = std::result::Result<T, E>;

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> CgroupError + 'a {
    move |source| CgroupError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn write_file(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(io_err("write", path))
}

/// A cgroup filesystem the container sees at `/sys/fs/cgroup/<target>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InnerMount {
    /// `cgroup2`, or `cgroup` with `options` naming the v1 controllers.
    pub fstype: &'static str,
    pub options: String,
    /// Relative to /sys/fs/cgroup; empty for v2 (mounted at /sys/fs/cgroup itself).
    pub target: String,
    /// v1 only: extra names (`cpu` for a `cpu,cpuacct` hierarchy) linked to `target`.
    pub aliases: Vec<String>,
}

/// Which cgroup layout this host has.
#[derive(Debug, Clone)]
pub enum CgroupDriver {
    V1(v1::V1Driver),
    V2(v2::V2Driver),
}

impl CgroupDriver {
    /// Probe `/sys/fs/cgroup` by its filesystem magic (one statfs; the v1
    /// probe also reads /proc/self/cgroup).
    pub fn probe() -> Result<CgroupDriver> {
        Self::probe_at(Path::new("/sys/fs/cgroup"))
    }

    pub fn probe_at(root: &Path) -> Result<CgroupDriver> {
        let st = nix::sys::statfs::statfs(root)
            .map_err(|e| io_err("statfs", root)(io::Error::from(e)))?;
        let magic = st.filesystem_type().0 as i64;
        if magic == CGROUP2_SUPER_MAGIC {
            Ok(CgroupDriver::V2(v2::V2Driver::new(root.to_path_buf())))
        } else if magic == TMPFS_MAGIC {
            Ok(CgroupDriver::V1(v1::V1Driver::probe(root)?))
        } else {
            Err(CgroupError::NoCgroupFs(root.to_path_buf()))
        }
    }

    /// Groups under `parent` (relative to the cgroup root) instead of
    /// `rbox`: an OCI bundle's `linux.cgroupsPath` minus its last part.
    pub fn with_parent(self, parent: &Path) -> CgroupDriver {
        match self {
            CgroupDriver::V1(d) => CgroupDriver::V1(d.with_parent(parent)),
            CgroupDriver::V2(d) => CgroupDriver::V2(d.with_parent(parent)),
        }
    }

    pub fn version(&self) -> u8 {
        match self {
            CgroupDriver::V1(_) => 1,
            CgroupDriver::V2(_) => 2,
        }
    }

    /// Create `rbox/<id>` with `res` applied and device access limited
    /// to `devices`. On error nothing is left.
    pub fn create(&self, id: &str, res: &Resources, devices: Devices) -> Result<Cgroup> {
        match self {
            CgroupDriver::V1(d) => d.create(id, res, devices).map(Cgroup::V1),
            CgroupDriver::V2(d) => d.create(id, res, devices).map(Cgroup::V2),
        }
    }

    /// The group of an existing container (for exec, stop, reaping).
    /// `--cpuset-cpus` / `--cpuset-mems` for the group `cg` just made by
    /// `create` (before any process is in it); None: the parent's.
    pub fn set_cpuset(&self, cg: &Cgroup, cpus: Option<&str>, mems: Option<&str>) -> Result<()> {
        match (self, cg) {
            (CgroupDriver::V1(d), Cgroup::V1(c)) => d.create_cpuset(c, cpus, mems),
            (CgroupDriver::V2(d), Cgroup::V2(c)) => d.set_cpuset(c, cpus, mems),
            _ => unreachable!("a group is made by a driver of its own version"),
        }
    }

    pub fn open(&self, id: &str) -> Cgroup {
        match self {
            CgroupDriver::V1(d) => Cgroup::V1(d.open(id)),
            CgroupDriver::V2(d) => Cgroup::V2(d.open(id)),
        }
    }

    /// Ids of every container group under our parent.
    pub fn list(&self) -> Vec<String> {
        match self {
            CgroupDriver::V1(d) => d.list(),
            CgroupDriver::V2(d) => d.list(),
        }
    }
}

/// One container's group.
#[derive(Debug)]
pub enum Cgroup {
    V1(v1::V1Cgroup),
    V2(v2::V2Cgroup),
}

impl Cgroup {
    /// Move `pid` (all its threads) into the group.
    pub fn add_process(&self, pid: i32) -> Result<()> {
        match self {
            Cgroup::V1(c) => c.add_process(pid),
            Cgroup::V2(c) => c.add_process(pid),
        }
    }

    /// How many times the kernel's OOM killer killed a task in the group.
    pub fn oom_kills(&self) -> u64 {
        match self {
            Cgroup::V1(c) => c.oom_kills(),
            Cgroup::V2(c) => c.oom_kills(),
        }
    }

    /// Pids in the group (any controller for v1).
    pub fn procs(&self) -> Vec<i32> {
        match self {
            Cgroup::V1(c) => c.procs(),
            Cgroup::V2(c) => c.procs(),
        }
    }

    /// The owner's teardown of its own container's group: kill whatever
    /// is still in it (members only, see `kill`), wait for it to empty
    /// (bounded), remove it. Only for the container's own group: for a
    /// group found lying around use `remove_if_empty`.
    pub fn remove(&self) -> Result<()> {
        match self {
            Cgroup::V1(c) => c.remove(),
            Cgroup::V2(c) => c.remove(),
        }
    }

    /// Remove the group if nothing is in it; never signals anybody.
    /// Returns false (and leaves the group) if it holds a process. For
    /// groups of owners that are gone: the kernel's rmdir is the emptiness
    /// check, atomic with the removal, where a `procs()` check followed by
    /// `remove()` would kill a process that joined in between.
    pub fn remove_if_empty(&self) -> Result<bool> {
        for dir in self.paths() {
            if !rmdir_if_empty(&dir)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// What to mount at /sys/fs/cgroup inside the container's cgroup ns.
    pub fn inner_mounts(&self) -> Vec<InnerMount> {
        match self {
            Cgroup::V1(c) => c.inner_mounts(),
            Cgroup::V2(_) => vec![InnerMount {
                fstype: "cgroup2",
                options: String::new(),
                target: String::new(),
                aliases: Vec::new(),
            }],
        }
    }

    /// A directory fd for clone3's CLONE_INTO_CGROUP (v2 only).
    pub fn clone_into_fd(&self) -> Option<std::fs::File> {
        match self {
            Cgroup::V1(_) => None,
            Cgroup::V2(c) => c.dir_fd(),
        }
    }

    /// v1: the files through which the container's first process joins
    /// the group itself (see `V1Cgroup::self_join_files`); v2: none (the
    /// child is born in its group with CLONE_INTO_CGROUP).
    pub fn self_join_files(&self) -> Result<Vec<std::fs::File>> {
        match self {
            Cgroup::V1(c) => c.self_join_files(),
            Cgroup::V2(_) => Ok(Vec::new()),
        }
    }

    /// The group's directories (one per v1 hierarchy).
    pub fn paths(&self) -> Vec<PathBuf> {
        match self {
            Cgroup::V1(c) => c.paths(),
            Cgroup::V2(c) => vec![c.path().to_path_buf()],
        }
    }
}

/// Read the pids in a `cgroup.procs` file (empty if it is gone).
pub(crate) fn read_procs(file: &Path) -> Vec<i32> {
    std::fs::read_to_string(file)
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// rmdir one group directory: true if it is gone, false if it is busy
/// (a process or a child group in it).
pub(crate) fn rmdir_if_empty(dir: &Path) -> Result<bool> {
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(false),
        Err(e) => Err(io_err("remove", dir)(e)),
    }
}

/// rmdir the container's own group, killing stragglers and retrying while
/// it is busy: the pid namespace's init has exited, and the kernel is
/// killing the rest of the namespace, but they may still be dying (and
/// an `rrun exec` process may have joined at the last moment). `kill`
/// must signal members only. Bounded: 5 s, then `NotEmpty`.
pub(crate) fn remove_dir_when_empty(dir: &Path, kill: impl Fn()) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut delay = std::time::Duration::from_micros(200);
    while !rmdir_if_empty(dir)? {
        if std::time::Instant::now() > deadline {
            return Err(CgroupError::NotEmpty {
                path: dir.to_path_buf(),
                left: read_procs(&dir.join("cgroup.procs")).len(),
            });
        }
        kill();
        std::thread::sleep(delay);
        delay = (delay * 2).min(std::time::Duration::from_millis(50));
    }
    Ok(())
}

/// What pids.max (v1 and v2 alike) gets for a limit: `max` for
/// `Resources::UNLIMITED`.
pub(crate) fn pids_max(limit: u64) -> String {
    if limit == engine::runtime::Resources::UNLIMITED {
        "max".to_string()
    } else {
        limit.to_string()
    }
}

/// Docker's mapping of cpu shares (2..262144) to a v2 weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_map_to_weights_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }
}

/// What a group has used, as `rrun stats` shows it; `None` where this
/// host's layout does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time of all members, nanoseconds.
    pub cpu_ns: Option<u64>,
    pub memory_bytes: Option<u64>,
    /// `None`: no limit.
    pub memory_limit: Option<u64>,
    pub pids: Option<u64>,
    /// Bytes read and written on block devices.
    pub block_read: Option<u64>,
    pub block_written: Option<u64>,
}

impl Cgroup {
    /// Pause every member (`rrun pause`): v2's cgroup.freeze, v1's freezer.
    pub fn freeze(&self) -> Result<()> {
        match self {
            Cgroup::V1(c) => c.freeze(),
            Cgroup::V2(c) => c.freeze(),
        }
    }

    pub fn thaw(&self) -> Result<()> {
        match self {
            Cgroup::V1(c) => c.thaw(),
            Cgroup::V2(c) => c.thaw(),
        }
    }

    /// Change the limits of a live group: the fields of `res` that are set.
    pub fn update(&self, res: &Resources) -> Result<()> {
        match self {
            Cgroup::V1(c) => c.update(res),
            Cgroup::V2(c) => c.update(res),
        }
    }

    /// The first of the group's directories that has control file `name`,
    /// read whole (`memory.stat`, `pids.max`); `None` if none has it.
    pub fn read_control(&self, name: &str) -> Option<String> {
        self.paths()
            .iter()
            .find_map(|d| std::fs::read_to_string(d.join(name)).ok())
    }

    pub fn is_frozen(&self) -> bool {
        match self {
            Cgroup::V1(c) => c.is_frozen(),
            Cgroup::V2(c) => c.is_frozen(),
        }
    }

    /// The group's usage, read from its control files.
    pub fn usage(&self) -> Usage {
        match self {
            Cgroup::V1(c) => c.usage(),
            Cgroup::V2(c) => v2::usage_at(c.path()),
        }
    }
}

/// A control file holding one number (`max` and values of 2^62 and up,
/// v1's "no limit", read as `None`).
pub(crate) fn read_number(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: u64 = text.trim().parse().ok()?;
    (v < 1 << 62).then_some(v)
}

/// Poll `file` until `done` accepts its text (5 s at most): the kernel
/// freezes a group asynchronously.
pub(crate) fn wait_until(file: &Path, done: impl Fn(&str) -> bool) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(file).map_err(io_err("read", file))?;
        if done(&text) {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(io_err("wait for", file)(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("still {:?} after 5 s", text.trim()),
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

//! cgroup v2: one unified tree; limits in memory.max, memory.swap.max,
//! cpu.max, cpu.weight, pids.max; OOM kills counted in memory.events.

use std::path::{Path, PathBuf};

use engine::runtime::Resources;

use super::{
    io_err, kill::kill_members, read_procs, remove_dir_when_empty, write_file, CgroupError,
    Devices, Result, PARENT,
};

#[derive(Debug, Clone)]
pub struct V2Driver {
    root: PathBuf,
    /// Where groups go, relative to the root (`rbox`).
    parent: PathBuf,
}

#[derive(Debug)]
pub struct V2Cgroup {
    path: PathBuf,
}

const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

impl V2Driver {
    pub fn new(root: PathBuf) -> V2Driver {
        V2Driver {
            root,
            parent: PathBuf::from(PARENT),
        }
    }

    /// Groups under `parent` (relative to the root) instead of `rbox`:
    /// an OCI bundle's `linux.cgroupsPath`.
    pub fn with_parent(mut self, parent: &Path) -> V2Driver {
        self.parent = parent.to_path_buf();
        self
    }

    /// Make sure `dir` delegates our controllers to its children. Reads
    /// first so the common case is one read per level.
    pub(super) fn enable_controllers(
        dir: &Path,
        wanted: &[&'static str],
        why: &'static str,
    ) -> Result<()> {
        let file = dir.join("cgroup.subtree_control");
        let have = std::fs::read_to_string(&file).map_err(io_err("read", &file))?;
        let missing: Vec<&str> = wanted
            .iter()
            .copied()
            .filter(|c| !have.split_whitespace().any(|h| h == *c))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let available_file = dir.join("cgroup.controllers");
        let available = std::fs::read_to_string(&available_file).unwrap_or_default();
        for c in &missing {
            if !available.split_whitespace().any(|a| a == *c) {
                return Err(CgroupError::MissingController {
                    controller: c,
                    path: dir.to_path_buf(),
                    why,
                });
            }
        }
        let line: Vec<String> = missing.iter().map(|c| format!("+{c}")).collect();
        write_file(&file, &line.join(" "))
    }

    pub fn create(&self, id: &str, res: &Resources, devices: Devices) -> Result<V2Cgroup> {
        let wanted: Vec<&'static str> = CONTROLLERS.to_vec();
        Self::enable_controllers(&self.root, &wanted, "container limits")?;
        // Each level down to the parent exists and delegates our controllers.
        let mut parent = self.root.clone();
        for level in self.parent.components() {
            parent.push(level);
            match std::fs::create_dir(&parent) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err("create", &parent)(e)),
            }
            Self::enable_controllers(&parent, &wanted, "container limits")?;
        }
        let path = parent.join(id);
        std::fs::create_dir(&path).map_err(io_err("create", &path))?;
        let cg = V2Cgroup { path };
        let applied = cg
            .apply(res)
            .and_then(|()| super::devices::apply_v2(&cg.path, devices));
        if let Err(e) = applied {
            let _ = std::fs::remove_dir(&cg.path);
            return Err(e);
        }
        Ok(cg)
    }

    pub fn set_cpuset(&self, cg: &V2Cgroup, cpus: Option<&str>, mems: Option<&str>) -> Result<()> {
        super::cpuset::apply_v2(&self.root, &cg.path, cpus, mems)
    }

    pub fn open(&self, id: &str) -> V2Cgroup {
        V2Cgroup {
            path: self.root.join(&self.parent).join(id),
        }
    }

    pub fn list(&self) -> Vec<String> {
        list_dirs(&self.root.join(&self.parent))
    }
}

pub(crate) fn list_dirs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

impl V2Cgroup {
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn apply(&self, res: &Resources) -> Result<()> {
        if let Some(m) = res.memory_bytes {
            write_file(&self.path.join("memory.max"), &m.to_string())?;
            // Docker: --memory-swap is memory+swap; unset means swap = memory.
            let swap = match res.memory_swap_bytes {
                Some(-1) => "max".to_string(),
                Some(total) => (total as u64).saturating_sub(m).to_string(),
                None => m.to_string(),
            };
            let f = self.path.join("memory.swap.max");
            if f.exists() {
                write_file(&f, &swap)?;
            }
        }
        if res.cpu_quota_us == Some(Resources::UNLIMITED) {
            // "max" alone keeps the period.
            let max = match res.cpu_period_us {
                Some(period) => format!("max {period}"),
                None => "max".to_string(),
            };
            write_file(&self.path.join("cpu.max"), &max)?;
        } else if let Some(q) = res.cpu_quota_us {
            let period = res.cpu_period_us.unwrap_or(100_000);
            write_file(&self.path.join("cpu.max"), &format!("{q} {period}"))?;
        }
        if let Some(s) = res.cpu_shares {
            write_file(
                &self.path.join("cpu.weight"),
                &super::shares_to_weight(s).to_string(),
            )?;
        }
        if let Some(p) = res.pids_limit {
            write_file(&self.path.join("pids.max"), &super::pids_max(p))?;
        }
        Ok(())
    }

    /// Change the limits of a live group (`rbox-runtime update`).
    pub fn update(&self, res: &Resources) -> Result<()> {
        self.apply(res)
    }

    pub fn add_process(&self, pid: i32) -> Result<()> {
        write_file(&self.path.join("cgroup.procs"), &pid.to_string())
    }

    pub fn dir_fd(&self) -> Option<std::fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&self.path)
            .ok()
    }

    pub fn oom_kills(&self) -> u64 {
        let events = std::fs::read_to_string(self.path.join("memory.events")).unwrap_or_default();
        events
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn procs(&self) -> Vec<i32> {
        read_procs(&self.path.join("cgroup.procs"))
    }

    /// Pause: cgroup.freeze, then wait until cgroup.events says frozen.
    pub fn freeze(&self) -> Result<()> {
        write_file(&self.path.join("cgroup.freeze"), "1")?;
        super::wait_until(&self.path.join("cgroup.events"), |t| {
            t.lines().any(|l| l.trim() == "frozen 1")
        })
    }

    pub fn thaw(&self) -> Result<()> {
        write_file(&self.path.join("cgroup.freeze"), "0")
    }

    /// Paused (asked to freeze), as `ps` and `inspect` report it.
    pub fn is_frozen(&self) -> bool {
        std::fs::read_to_string(self.path.join("cgroup.freeze")).is_ok_and(|t| t.trim() == "1")
    }

    /// Kill the group's members and remove it. cgroup.kill (Linux 5.14)
    /// is the tool: the kernel kills every member, including one forked or
    /// moved in while it runs, and nobody else. Without it, the pidfd
    /// rounds of `kill::kill_members` (members only, never a bare pid).
    pub fn remove(&self) -> Result<()> {
        let kill_file = self.path.join("cgroup.kill");
        let procs = self.path.join("cgroup.procs");
        remove_dir_when_empty(&self.path, || {
            if std::fs::write(&kill_file, "1").is_err() {
                kill_members(&procs);
            }
        })
    }
}

/// The usage of the v2 group at `dir` (`cpu.stat`, `memory.current`,
/// `memory.max`, `pids.current`, `io.stat`).
pub fn usage_at(dir: &Path) -> super::Usage {
    let cpu_ns = std::fs::read_to_string(dir.join("cpu.stat"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .map(|us| us * 1000);
    // io.stat: a line per device, `rbytes=N wbytes=N ...`; no file, no
    // io controller in the group.
    let io = std::fs::read_to_string(dir.join("io.stat")).ok().map(|t| {
        let sum = |key: &str| -> u64 {
            t.split_whitespace()
                .filter_map(|f| f.strip_prefix(key)?.parse::<u64>().ok())
                .sum()
        };
        (sum("rbytes="), sum("wbytes="))
    });
    super::Usage {
        cpu_ns,
        memory_bytes: super::read_number(&dir.join("memory.current")),
        memory_limit: super::read_number(&dir.join("memory.max")),
        pids: super::read_number(&dir.join("pids.current")),
        block_read: io.map(|(r, _)| r),
        block_written: io.map(|(_, w)| w),
    }
}

#[cfg(test)]
mod tests {
    //! The driver against a temp-dir tree standing in for cgroup2: which
    //! controllers it enables and what it writes, without root. The device
    //! program (a BPF load) needs the kernel: runner/tests/devices.rs.
    use super::*;
    use std::fs;

    /// A cgroup2 root offering `controllers`, with our parent group made.
    fn fixture(controllers: &str) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for dir in [t.path().to_path_buf(), t.path().join(PARENT)] {
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("cgroup.controllers"), controllers).unwrap();
            fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        }
        t
    }

    fn read(path: std::path::PathBuf) -> String {
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn create_delegates_controllers_and_writes_v2_limits() {
        let t = fixture("cpuset cpu io memory hugetlb pids rdma misc");
        let d = V2Driver::new(t.path().to_path_buf());
        let res = Resources {
            memory_bytes: Some(64 << 20),
            cpu_quota_us: Some(150_000),
            cpu_period_us: Some(100_000),
            cpu_shares: Some(1024),
            pids_limit: Some(64),
            ..Resources::default()
        };
        let cg = d.create("c1", &res, Devices::All).unwrap();
        assert_eq!(
            read(t.path().join("cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
        assert_eq!(
            read(t.path().join(PARENT).join("cgroup.subtree_control")),
            "+memory +cpu +pids"
        );
        let dir = t.path().join(PARENT).join("c1");
        assert_eq!(cg.path(), dir);
        assert_eq!(read(dir.join("memory.max")), "67108864");
        assert_eq!(read(dir.join("cpu.max")), "150000 100000");
        assert_eq!(read(dir.join("cpu.weight")), "39");
        assert_eq!(read(dir.join("pids.max")), "64");
        assert_eq!(d.list(), ["c1"]);
    }

    #[test]
    fn update_to_unlimited_writes_max() {
        let t = fixture("cpu memory pids");
        let d = V2Driver::new(t.path().to_path_buf());
        let res = Resources {
            cpu_quota_us: Some(50_000),
            pids_limit: Some(64),
            ..Resources::default()
        };
        let cg = d.create("c1", &res, Devices::All).unwrap();
        cg.update(&Resources {
            cpu_quota_us: Some(Resources::UNLIMITED),
            pids_limit: Some(Resources::UNLIMITED),
            ..Resources::default()
        })
        .unwrap();
        let dir = t.path().join(PARENT).join("c1");
        assert_eq!(read(dir.join("cpu.max")), "max");
        assert_eq!(read(dir.join("pids.max")), "max");
    }

    #[test]
    fn controllers_already_delegated_are_not_written_again() {
        let t = fixture("cpu memory pids");
        fs::write(t.path().join("cgroup.subtree_control"), "cpu memory pids\n").unwrap();
        let d = V2Driver::new(t.path().to_path_buf());
        d.create("c1", &Resources::default(), Devices::All).unwrap();
        assert_eq!(
            read(t.path().join("cgroup.subtree_control")),
            "cpu memory pids\n"
        );
        assert!(!t.path().join(PARENT).join("c1/memory.max").exists());
    }

    #[test]
    fn a_controller_the_host_lacks_is_named() {
        let t = fixture("cpu memory");
        let d = V2Driver::new(t.path().to_path_buf());
        match d
            .create("c1", &Resources::default(), Devices::All)
            .unwrap_err()
        {
            CgroupError::MissingController { controller, .. } => assert_eq!(controller, "pids"),
            other => panic!("unexpected {other}"),
        }
        assert!(!t.path().join(PARENT).join("c1").exists());
    }

    #[test]
    fn oom_kills_and_members_are_read_from_the_groups_files() {
        let t = fixture("cpu memory pids");
        let d = V2Driver::new(t.path().to_path_buf());
        let cg = d.create("c1", &Resources::default(), Devices::All).unwrap();
        assert_eq!(cg.oom_kills(), 0);
        fs::write(
            cg.path().join("memory.events"),
            "low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), 2);
        fs::write(cg.path().join("cgroup.procs"), "12\n\n40\n").unwrap();
        assert_eq!(cg.procs(), [12, 40]);
    }

    #[test]
    fn usage_reads_the_v2_control_files() {
        let d = tempfile::tempdir().unwrap();
        let w = |f: &str, t: &str| std::fs::write(d.path().join(f), t).unwrap();
        w("cpu.stat", "usage_usec 1500\nuser_usec 1000\n");
        w("memory.current", "4096\n");
        w("memory.max", "max\n");
        w("pids.current", "3\n");
        w(
            "io.stat",
            "8:0 rbytes=100 wbytes=7 rios=1\n8:16 rbytes=1 wbytes=0\n",
        );
        let u = usage_at(d.path());
        assert_eq!(
            u,
            crate::cgroup::Usage {
                cpu_ns: Some(1_500_000),
                memory_bytes: Some(4096),
                memory_limit: None,
                pids: Some(3),
                block_read: Some(101),
                block_written: Some(7),
            }
        );
        w("memory.max", "1048576\n");
        assert_eq!(usage_at(d.path()).memory_limit, Some(1 << 20));
    }
}

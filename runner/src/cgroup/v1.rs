//! cgroup v1: one hierarchy per controller (or a few co-mounted). We use
//! memory, cpu, cpuacct, pids and devices; each gets `rbox/<id>` under its
//! mount.

use std::path::{Path, PathBuf};

use engine::runtime::Resources;

use super::{
    io_err, kill::kill_members, read_procs, remove_dir_when_empty, v2::list_dirs, write_file,
    CgroupError, Devices, InnerMount, Result, PARENT,
};

const CONTROLLERS: [&str; 5] = ["memory", "cpu", "cpuacct", "pids", "devices"];

/// One mounted v1 hierarchy we use.
#[derive(Debug, Clone)]
pub struct Hierarchy {
    /// Controllers co-mounted in it, as /proc/self/cgroup lists them (`cpu,cpuacct`).
    pub controllers: String,
    /// Its mount point (the hierarchy's root).
    pub mount: PathBuf,
}

#[derive(Debug, Clone)]
pub struct V1Driver {
    hierarchies: Vec<Hierarchy>,
    /// The freezer hierarchy's mount, if the host has one. Containers join
    /// it only when paused (`V1Cgroup::freeze`): joining at start would
    /// cost every start a write for a command few use.
    freezer: Option<PathBuf>,
    /// The cpuset hierarchy's mount: joined only by containers given
    /// --cpuset-cpus/--cpuset-mems (see super::cpuset).
    cpuset: Option<PathBuf>,
    /// Where groups go, relative to each hierarchy's root (`rbox`).
    parent: PathBuf,
}

#[derive(Debug)]
pub struct V1Cgroup {
    hierarchies: Vec<Hierarchy>,
    freezer: Option<PathBuf>,
    /// The group's directory in the cpuset hierarchy (used if it exists).
    cpuset: Option<PathBuf>,
    parent: PathBuf,
    id: String,
}

impl V1Driver {
    /// Groups under `parent` (relative to each hierarchy's root) instead
    /// of `rbox`: an OCI bundle's `linux.cgroupsPath`.
    pub fn with_parent(mut self, parent: &Path) -> V1Driver {
        self.parent = parent.to_path_buf();
        self
    }

    /// Find the hierarchies of our controllers: their names come from
    /// /proc/self/cgroup, their mounts are `root/<controller>` (on hosts
    /// that co-mount, a symlink to the co-mounted directory).
    pub fn probe(root: &Path) -> Result<V1Driver> {
        let text = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(io_err("read", Path::new("/proc/self/cgroup")))?;
        Self::from_proc_cgroup(root, &text)
    }

    /// The decision part of `probe`: `text` is a `/proc/<pid>/cgroup`
    /// listing, `root` the directory the v1 hierarchies are mounted under.
    pub fn from_proc_cgroup(root: &Path, text: &str) -> Result<V1Driver> {
        let mut hierarchies: Vec<Hierarchy> = Vec::new();
        let mut freezer = None;
        let mut cpuset = None;
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, Some(ctrls), _) = (parts.next(), parts.next(), parts.next()) else {
                continue;
            };
            if ctrls == "freezer" && root.join("freezer").is_dir() {
                freezer = Some(root.join("freezer"));
            }
            if ctrls == "cpuset" && root.join("cpuset").is_dir() {
                cpuset = Some(root.join("cpuset"));
            }
            if ctrls.is_empty() || !ctrls.split(',').any(|c| CONTROLLERS.contains(&c)) {
                continue;
            }
            let mount = ctrls
                .split(',')
                .map(|c| root.join(c))
                .chain(std::iter::once(root.join(ctrls)))
                .find(|p| p.is_dir());
            if let Some(mount) = mount {
                hierarchies.push(Hierarchy {
                    controllers: ctrls.to_string(),
                    mount,
                });
            }
        }
        for (needed, why) in [
            ("memory", "container limits (cgroup v1)"),
            ("cpu", "container limits (cgroup v1)"),
            ("pids", "container limits (cgroup v1)"),
            (
                "devices",
                "the containers' device access control (cgroup v1)",
            ),
        ] {
            if !hierarchies
                .iter()
                .any(|h| h.controllers.split(',').any(|c| c == needed))
            {
                return Err(CgroupError::MissingController {
                    controller: needed,
                    path: root.to_path_buf(),
                    why,
                });
            }
        }
        Ok(V1Driver {
            hierarchies,
            freezer,
            cpuset,
            parent: PathBuf::from(PARENT),
        })
    }

    pub fn create(&self, id: &str, res: &Resources, devices: Devices) -> Result<V1Cgroup> {
        let cg = self.open(id);
        let mut made = Vec::new();
        let result = (|| {
            for h in &self.hierarchies {
                let parent = h.mount.join(&self.parent);
                let dir = parent.join(id);
                // The parent exists but on a first start: try the group
                // first (a mkdir that fails with EEXIST still takes the
                // directory's lock, which concurrent starts contend for).
                match std::fs::create_dir(&dir) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        match std::fs::create_dir_all(&parent) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                            Err(e) => return Err(io_err("create", &parent)(e)),
                        }
                        std::fs::create_dir(&dir)
                    }
                    r => r,
                }
                .map_err(io_err("create", &dir))?;
                made.push(dir);
            }
            cg.apply(res)?;
            let dir = cg
                .dir_of("devices")
                .expect("probe requires the devices hierarchy");
            super::devices::apply_v1(&dir, devices)
        })();
        if result.is_err() {
            for d in made.iter().rev() {
                let _ = std::fs::remove_dir(d);
            }
        }
        result.map(|()| cg)
    }

    /// The group `cg` in the cpuset hierarchy (see super::cpuset).
    pub fn create_cpuset(
        &self,
        cg: &V1Cgroup,
        cpus: Option<&str>,
        mems: Option<&str>,
    ) -> Result<()> {
        let mount = self.cpuset.as_ref().ok_or(CgroupError::MissingController {
            controller: "cpuset",
            path: PathBuf::from("/sys/fs/cgroup"),
            why: "--cpuset-cpus/--cpuset-mems",
        })?;
        super::cpuset::create_v1(mount, &self.parent, &cg.id, cpus, mems).map(|_| ())
    }

    pub fn open(&self, id: &str) -> V1Cgroup {
        V1Cgroup {
            hierarchies: self.hierarchies.clone(),
            freezer: self.freezer.as_ref().map(|m| m.join(&self.parent).join(id)),
            cpuset: self.cpuset.as_ref().map(|m| m.join(&self.parent).join(id)),
            parent: self.parent.clone(),
            id: id.to_string(),
        }
    }

    pub fn list(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .hierarchies
            .iter()
            .flat_map(|h| list_dirs(&h.mount.join(&self.parent)))
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

/// Docker: --memory-swap is memory+swap (-1: unlimited); unset means
/// twice the memory.
fn memsw_total(memory: u64, swap: Option<i64>) -> String {
    match swap {
        Some(-1) => "-1".to_string(),
        Some(t) => t.to_string(),
        None => memory.saturating_mul(2).to_string(),
    }
}

impl V1Cgroup {
    fn dir_of(&self, controller: &str) -> Option<PathBuf> {
        self.hierarchies
            .iter()
            .find(|h| h.controllers.split(',').any(|c| c == controller))
            .map(|h| h.mount.join(&self.parent).join(&self.id))
    }

    /// The group's directories: one per hierarchy, and the freezer's once
    /// the container has been paused.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.hierarchies
            .iter()
            .map(|h| h.mount.join(&self.parent).join(&self.id))
            .chain(self.freezer.clone().filter(|f| f.is_dir()))
            .chain(self.cpuset.clone().filter(|f| f.is_dir()))
            .collect()
    }

    /// Pause: move every member into the freezer group (again until none
    /// is left outside: a member may fork meanwhile; children of moved
    /// members are born inside), then freeze it and wait until the kernel
    /// says FROZEN.
    pub fn freeze(&self) -> Result<()> {
        let dir = self
            .freezer
            .as_ref()
            .ok_or(CgroupError::MissingController {
                controller: "freezer",
                path: PathBuf::from("/sys/fs/cgroup"),
                why: "rrun pause (cgroup v1)",
            })?;
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent).map_err(io_err("create", parent))?;
        }
        match std::fs::create_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(io_err("create", dir)(e))
            }
            _ => {}
        }
        let procs = dir.join("cgroup.procs");
        for _ in 0..100 {
            let inside: std::collections::HashSet<i32> = read_procs(&procs).into_iter().collect();
            let outside: Vec<i32> = self
                .hierarchies
                .iter()
                .flat_map(|h| {
                    read_procs(
                        &h.mount
                            .join(&self.parent)
                            .join(&self.id)
                            .join("cgroup.procs"),
                    )
                })
                .filter(|p| !inside.contains(p))
                .collect();
            if outside.is_empty() {
                write_file(&dir.join("freezer.state"), "FROZEN")?;
                return super::wait_until(&dir.join("freezer.state"), |t| t.trim() == "FROZEN");
            }
            for pid in outside {
                // A member that exited meanwhile is not an error.
                let _ = std::fs::write(&procs, pid.to_string());
            }
        }
        Err(io_err("fill", dir)(std::io::Error::other(
            "members kept appearing outside the freezer group",
        )))
    }

    pub fn thaw(&self) -> Result<()> {
        match &self.freezer {
            Some(dir) if dir.is_dir() => write_file(&dir.join("freezer.state"), "THAWED"),
            _ => Ok(()),
        }
    }

    pub fn is_frozen(&self) -> bool {
        self.freezer.as_ref().is_some_and(|d| {
            std::fs::read_to_string(d.join("freezer.state"))
                .is_ok_and(|t| matches!(t.trim(), "FROZEN" | "FREEZING"))
        })
    }

    fn apply(&self, res: &Resources) -> Result<()> {
        if let (Some(m), Some(dir)) = (res.memory_bytes, self.dir_of("memory")) {
            write_file(&dir.join("memory.limit_in_bytes"), &m.to_string())?;
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                write_file(&memsw, &memsw_total(m, res.memory_swap_bytes))?;
            }
        }
        if let Some(dir) = self.dir_of("cpu") {
            if res.cpu_quota_us == Some(Resources::UNLIMITED) {
                if let Some(period) = res.cpu_period_us {
                    write_file(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
                }
                write_file(&dir.join("cpu.cfs_quota_us"), "-1")?;
            } else if let Some(q) = res.cpu_quota_us {
                let period = res.cpu_period_us.unwrap_or(100_000);
                write_file(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
                write_file(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
            }
            if let Some(s) = res.cpu_shares {
                write_file(&dir.join("cpu.shares"), &s.to_string())?;
            }
        }
        if let (Some(p), Some(dir)) = (res.pids_limit, self.dir_of("pids")) {
            write_file(&dir.join("pids.max"), &super::pids_max(p))?;
        }
        Ok(())
    }

    /// Change the limits of a live group (`rbox-runtime update`). The
    /// kernel keeps memory <= memory+swap after every write: a memory
    /// limit raised above the current memory+swap one needs that one
    /// raised first.
    pub fn update(&self, res: &Resources) -> Result<()> {
        if let (Some(m), Some(dir)) = (res.memory_bytes, self.dir_of("memory")) {
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                let total = memsw_total(m, res.memory_swap_bytes);
                let raise = match (total.parse::<u64>(), super::read_number(&memsw)) {
                    (Ok(_), None) => false,
                    (Ok(t), Some(cur)) => t > cur,
                    (Err(_), _) => true,
                };
                if raise {
                    write_file(&memsw, &total)?;
                }
            }
        }
        self.apply(res)
    }

    pub fn add_process(&self, pid: i32) -> Result<()> {
        for d in self.paths() {
            write_file(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The group's `tasks` files, opened for writing: the container's
    /// first process writes `0` to each to move itself in. A single thread
    /// moving itself skips the kernel's global threadgroup rwsem, whose
    /// write side waits an RCU grace period (a write of a pid to
    /// `cgroup.procs` took ~10 ms here, and concurrent starts queued on it).
    pub fn self_join_files(&self) -> Result<Vec<std::fs::File>> {
        use std::os::unix::fs::OpenOptionsExt;
        self.paths()
            .into_iter()
            .map(|d| {
                let p = d.join("tasks");
                std::fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_CLOEXEC)
                    .open(&p)
                    .map_err(io_err("open", &p))
            })
            .collect()
    }

    /// Usage from the memory, cpuacct and pids hierarchies (v1 does not
    /// put containers in blkio: block I/O is not known here).
    pub fn usage(&self) -> super::Usage {
        let at = |ctrl: &str, file: &str| self.dir_of(ctrl).map(|d| d.join(file));
        let num = |ctrl: &str, file: &str| at(ctrl, file).and_then(|p| super::read_number(&p));
        super::Usage {
            cpu_ns: num("cpuacct", "cpuacct.usage"),
            memory_bytes: num("memory", "memory.usage_in_bytes"),
            memory_limit: num("memory", "memory.limit_in_bytes"),
            pids: num("pids", "pids.current"),
            block_read: None,
            block_written: None,
        }
    }

    pub fn oom_kills(&self) -> u64 {
        let Some(dir) = self.dir_of("memory") else {
            return 0;
        };
        let ctl = std::fs::read_to_string(dir.join("memory.oom_control")).unwrap_or_default();
        ctl.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn procs(&self) -> Vec<i32> {
        let mut all: Vec<i32> = self
            .paths()
            .iter()
            .flat_map(|d| read_procs(&d.join("cgroup.procs")))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Kill the group's members and remove it, hierarchy by hierarchy.
    /// v1 has no cgroup.kill; freezing first would need every container in
    /// the freezer hierarchy too (one more join on the start path), and is
    /// not needed for safety: `kill::kill_members` signals through pidfds
    /// only processes still listed in this hierarchy's `cgroup.procs`, so a
    /// pid that was reused or left the group is never hit. A fork bomb
    /// cannot outrun it either: the container's pid namespace is dying
    /// (its init has exited), and the kernel refuses forks in it.
    pub fn remove(&self) -> Result<()> {
        // A frozen task cannot die on v1 until thawed.
        let _ = self.thaw();
        let mut first_err = None;
        for d in self.paths() {
            let procs = d.join("cgroup.procs");
            let r = remove_dir_when_empty(&d, || {
                kill_members(&procs);
            });
            if let Err(e) = r {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    pub fn inner_mounts(&self) -> Vec<InnerMount> {
        self.hierarchies
            .iter()
            .map(|h| {
                let names: Vec<&str> = h.controllers.split(',').collect();
                InnerMount {
                    fstype: "cgroup",
                    options: h.controllers.clone(),
                    target: h.controllers.clone(),
                    aliases: if names.len() > 1 {
                        names.iter().map(|s| s.to_string()).collect()
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    //! The driver against a temp-dir tree standing in for the v1 mounts:
    //! what it creates and writes, without root or a cgroup filesystem.
    use super::*;
    use std::fs;

    const PROC_CGROUP: &str = "12:memory:/\n11:cpu,cpuacct:/\n10:pids:/\n9:devices:/\n\
                               8:freezer:/\n1:name=systemd:/init.scope\n0::/init.scope\n";

    /// memory, cpu,cpuacct (with the `cpu` and `cpuacct` links a host
    /// makes), pids and devices, as mounted under /sys/fs/cgroup.
    fn fixture() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for d in ["memory", "cpu,cpuacct", "pids", "devices", "freezer"] {
            fs::create_dir(t.path().join(d)).unwrap();
        }
        std::os::unix::fs::symlink("cpu,cpuacct", t.path().join("cpu")).unwrap();
        std::os::unix::fs::symlink("cpu,cpuacct", t.path().join("cpuacct")).unwrap();
        t
    }

    fn limits() -> Resources {
        Resources {
            memory_bytes: Some(64 << 20),
            cpu_quota_us: Some(50_000),
            cpu_shares: Some(512),
            pids_limit: Some(100),
            ..Resources::default()
        }
    }

    fn read(path: std::path::PathBuf) -> String {
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn only_our_controllers_are_used_and_co_mounts_keep_their_name() {
        let t = fixture();
        let d = V1Driver::from_proc_cgroup(t.path(), PROC_CGROUP).unwrap();
        let names: Vec<&str> = d
            .hierarchies
            .iter()
            .map(|h| h.controllers.as_str())
            .collect();
        assert_eq!(names, ["memory", "cpu,cpuacct", "pids", "devices"]);
        let cg = d.open("c1");
        let mounts = cg.inner_mounts();
        assert_eq!(mounts[1].target, "cpu,cpuacct");
        assert_eq!(mounts[1].aliases, ["cpu", "cpuacct"]);
        assert!(mounts[0].aliases.is_empty());
    }

    #[test]
    fn update_to_unlimited_writes_max_and_minus_one() {
        let t = fixture();
        let d = V1Driver::from_proc_cgroup(t.path(), PROC_CGROUP).unwrap();
        let cg = d.create("c1", &limits(), Devices::Default).unwrap();
        cg.update(&Resources {
            cpu_quota_us: Some(Resources::UNLIMITED),
            pids_limit: Some(Resources::UNLIMITED),
            ..Resources::default()
        })
        .unwrap();
        let at = |rel: &str| read(t.path().join(rel));
        assert_eq!(at("cpu,cpuacct/rbox/c1/cpu.cfs_quota_us"), "-1");
        assert_eq!(at("pids/rbox/c1/pids.max"), "max");
        assert_eq!(at("memory/rbox/c1/memory.limit_in_bytes"), "67108864");
    }

    #[test]
    fn a_missing_controller_is_named_with_its_purpose() {
        let t = fixture();
        let text = PROC_CGROUP.replace("9:devices:/\n", "");
        let err = V1Driver::from_proc_cgroup(t.path(), &text).unwrap_err();
        match err {
            CgroupError::MissingController {
                controller, why, ..
            } => {
                assert_eq!(controller, "devices");
                assert!(why.contains("device access"), "{why}");
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn create_writes_each_limit_in_its_hierarchy() {
        let t = fixture();
        let d = V1Driver::from_proc_cgroup(t.path(), PROC_CGROUP).unwrap();
        let cg = d.create("c1", &limits(), Devices::Default).unwrap();
        let at = |rel: &str| t.path().join(rel);
        assert_eq!(read(at("memory/rbox/c1/memory.limit_in_bytes")), "67108864");
        assert_eq!(read(at("cpu,cpuacct/rbox/c1/cpu.cfs_period_us")), "100000");
        assert_eq!(read(at("cpu,cpuacct/rbox/c1/cpu.cfs_quota_us")), "50000");
        assert_eq!(read(at("cpu,cpuacct/rbox/c1/cpu.shares")), "512");
        assert_eq!(read(at("pids/rbox/c1/pids.max")), "100");
        // Deny everything, then allow the list one rule per write (a
        // regular file keeps only the last of them).
        assert_eq!(read(at("devices/rbox/c1/devices.deny")), "a");
        let last = super::super::devices::v1_allow_rules(&[]).pop().unwrap();
        assert_eq!(read(at("devices/rbox/c1/devices.allow")), last);
        assert!(
            !at("freezer/rbox").exists(),
            "a hierarchy we do not use was touched"
        );
        assert_eq!(cg.paths().len(), 4);
        assert_eq!(d.list(), ["c1"]);
    }

    #[test]
    fn privileged_containers_keep_the_parents_device_list() {
        let t = fixture();
        let d = V1Driver::from_proc_cgroup(t.path(), PROC_CGROUP).unwrap();
        d.create("c1", &Resources::default(), Devices::All).unwrap();
        assert!(!t.path().join("devices/rbox/c1/devices.deny").exists());
        assert!(!t
            .path()
            .join("memory/rbox/c1/memory.limit_in_bytes")
            .exists());
    }

    #[test]
    fn a_failed_create_leaves_no_group_behind() {
        let t = fixture();
        let d = V1Driver::from_proc_cgroup(t.path(), PROC_CGROUP).unwrap();
        // The pids hierarchy's parent is a file: mkdir below it fails.
        fs::write(t.path().join("pids/rbox"), "").unwrap();
        let err = d.create("c1", &limits(), Devices::Default).unwrap_err();
        assert!(err.to_string().contains("pids/rbox"), "{err}");
        assert!(!t.path().join("memory/rbox/c1").exists());
        assert!(!t.path().join("cpu,cpuacct/rbox/c1").exists());
    }

    #[test]
    fn oom_kills_and_members_are_read_from_the_groups_files() {
        let t = fixture();
        let d = V1Driver::from_proc_cgroup(t.path(), PROC_CGROUP).unwrap();
        let cg = d.create("c1", &Resources::default(), Devices::All).unwrap();
        assert_eq!(cg.oom_kills(), 0);
        fs::write(
            t.path().join("memory/rbox/c1/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        assert_eq!(cg.oom_kills(), 3);
        fs::write(t.path().join("memory/rbox/c1/cgroup.procs"), "7\n5\n").unwrap();
        fs::write(t.path().join("pids/rbox/c1/cgroup.procs"), "5\n9\n").unwrap();
        assert_eq!(cg.procs(), [5, 7, 9]);
    }
}

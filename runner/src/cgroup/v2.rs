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
}

#[derive(Debug)]
pub struct V2Cgroup {
    path: PathBuf,
}

const CONTROLLERS: [&str; 3] = ["memory", "cpu", "pids"];

impl V2Driver {
    pub fn new(root: PathBuf) -> V2Driver {
        V2Driver { root }
    }

    /// Make sure `dir` delegates our controllers to its children. Reads
    /// first so the common case is one read per level.
    fn enable_controllers(dir: &Path, wanted: &[&'static str], why: &'static str) -> Result<()> {
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
        let parent = self.root.join(PARENT);
        let wanted: Vec<&'static str> = CONTROLLERS.to_vec();
        Self::enable_controllers(&self.root, &wanted, "container limits")?;
        match std::fs::create_dir(&parent) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("create", &parent)(e)),
        }
        Self::enable_controllers(&parent, &wanted, "container limits")?;
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

    pub fn open(&self, id: &str) -> V2Cgroup {
        V2Cgroup {
            path: self.root.join(PARENT).join(id),
        }
    }

    pub fn list(&self) -> Vec<String> {
        list_dirs(&self.root.join(PARENT))
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
        if let Some(q) = res.cpu_quota_us {
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
            write_file(&self.path.join("pids.max"), &p.to_string())?;
        }
        Ok(())
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

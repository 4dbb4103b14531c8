//! The machine header printed above every table: what a number was
//! measured on.

use std::path::Path;

#[derive(Debug, Clone)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_gib: u64,
    pub kernel: String,
    pub cgroups: String,
    pub os: String,
    /// 1/5/15-minute load averages when the run started: other work on a
    /// 2-core machine shows up in every number.
    pub load: String,
}

impl Machine {
    pub fn probe() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: u64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let os = std::fs::read_to_string("/etc/os-release")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|s| s.trim_matches('"').to_string())
            .unwrap_or_else(|| "unknown".into());
        Machine {
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            cpu,
            memory_gib: (mem_kib + (1 << 19)) >> 20,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "unknown".into()),
            cgroups: cgroup_mode(),
            os,
            load: std::fs::read_to_string("/proc/loadavg")
                .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
        }
    }

    /// One markdown paragraph.
    pub fn markdown(&self) -> String {
        format!(
            "Machine: {} cores ({}), {} GiB RAM, {}, kernel {}, cgroups {}; load average at start {}.",
            self.cores, self.cpu, self.memory_gib, self.os, self.kernel, self.cgroups, self.load
        )
    }
}

/// `v2 (unified)`, `hybrid (v1 controllers + empty cgroup2 at …/unified)` or `v1`.
pub fn cgroup_mode() -> String {
    const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
    let magic = |p: &str| {
        nix::sys::statfs::statfs(Path::new(p))
            // The magic's C type differs between architectures.
            .map(|s| {
                #[allow(clippy::unnecessary_cast)]
                let m = s.filesystem_type().0 as i64;
                m
            })
            .ok()
    };
    if magic("/sys/fs/cgroup") == Some(CGROUP2_SUPER_MAGIC) {
        "v2 (unified)".into()
    } else if magic("/sys/fs/cgroup/unified") == Some(CGROUP2_SUPER_MAGIC) {
        "hybrid (v1 controllers, empty cgroup2 at /sys/fs/cgroup/unified)".into()
    } else {
        "v1".into()
    }
}

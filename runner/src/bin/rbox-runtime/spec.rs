//! `spec [--bundle B]`: a default config.json, the shape `runc spec`
//! writes (busybox-ready: `sh` in a read-only `rootfs`).

use std::path::PathBuf;

use runner::ocispec::{state::OCI_VERSION, OciError};
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to write config.json.
    #[arg(short = 'b', long, default_value = ".")]
    pub bundle: PathBuf,
    /// Refused: rootless containers are not supported yet.
    #[arg(long)]
    pub rootless: bool,
}

pub fn default_spec() -> serde_json::Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let safe = |extra: &[&str]| {
        let mut o = vec!["nosuid", "noexec", "nodev"];
        o.extend_from_slice(extra);
        json!(o)
    };
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps, "effective": caps, "permitted": caps, "ambient": caps
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "rbox",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": safe(&["mode=1777", "size=65536k"])},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": safe(&[])},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": safe(&["ro"])},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": safe(&["relatime", "ro"])}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}
            ],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

pub fn run(a: &Args) -> Result<(), OciError> {
    if a.rootless {
        return Err(OciError::Other(
            "spec --rootless is not supported by rbox-runtime yet".into(),
        ));
    }
    let path = a.bundle.join("config.json");
    if path.exists() {
        return Err(OciError::Other(format!(
            "{} exists; remove it first",
            path.display()
        )));
    }
    let text = serde_json::to_string_pretty(&default_spec()).expect("json");
    std::fs::write(&path, text + "\n").map_err(|source| OciError::Io {
        what: "write",
        path,
        source,
    })
}

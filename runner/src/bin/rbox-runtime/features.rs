//! `features`: the runtime-spec features document for this slice.

use runner::native::security::Cap;
use runner::ocispec::{seccomp, OciError};
use serde_json::json;

pub fn run() -> Result<(), OciError> {
    let caps: Vec<&str> = Cap::ALL.iter().map(|c| c.name()).collect();
    let flags: Vec<&str> = seccomp::FLAGS.iter().map(|(n, _)| *n).collect();
    let v = json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": runner::ocispec::hooks::KINDS,
        "mountOptions": [
            "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec",
            "relatime", "strictatime", "noatime", "nodiratime",
            "private", "rprivate", "bind", "rbind"
        ],
        "linux": {
            "namespaces": ["pid", "mount", "ipc", "uts", "network", "cgroup", "user"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": seccomp::ACTIONS,
                "operators": seccomp::OPERATORS,
                "archs": seccomp::ARCHES,
                "knownFlags": flags,
                "supportedFlags": flags
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {"io.github.rbox.runtime.slice": "first"}
    });
    println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    Ok(())
}

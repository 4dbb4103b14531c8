//! What the OCI peers read: a runtime-spec bundle (config.json beside a
//! rootfs) for crun and runc, and an image layout (oci-layout, index.json,
//! blobs/sha256/…) for umoci and buildah, made from the same layer tars
//! every other contender unpacks.

use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::{io_err, Result};

/// A config.json as `runc spec` would write it for a non-interactive
/// container, with a network namespace (only `lo`, as rrun's default) and
/// a cgroup under our own parent `rbox-bench`.
pub fn runtime_config(rootfs: &Path, args: &[&str], cgroups_path: &str) -> serde_json::Value {
    let caps = json!([
        "CAP_AUDIT_WRITE",
        "CAP_KILL",
        "CAP_NET_BIND_SERVICE",
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_FSETID",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETPCAP",
        "CAP_NET_RAW",
        "CAP_SYS_CHROOT",
        "CAP_MKNOD",
        "CAP_SETFCAP"
    ]);
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": rootfs, "readonly": true},
        "hostname": "rbox-bench",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// Write `dir/config.json` for a bundle whose rootfs is `rootfs`.
pub fn write_bundle(dir: &Path, rootfs: &Path, args: &[&str], cgroups_path: &str) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    let cfg = dir.join("config.json");
    let text = serde_json::to_string_pretty(&runtime_config(rootfs, args, cgroups_path))
        .expect("static JSON");
    std::fs::write(&cfg, text).map_err(io_err("write", &cfg))
}

/// One layer for an image layout: its compressed blob, media type, and the
/// uncompressed tar (for the diff id).
pub struct LayoutLayer {
    pub blob: PathBuf,
    pub media_type: &'static str,
    pub uncompressed: PathBuf,
}

fn sha256_file(p: &Path) -> Result<(String, u64)> {
    let mut f = std::fs::File::open(p).map_err(io_err("open", p))?;
    let mut h = Sha256::new();
    let n = std::io::copy(&mut f, &mut h).map_err(io_err("read", p))?;
    Ok((format!("{:x}", h.finalize()), n))
}

fn put_blob(blobs: &Path, bytes: &[u8]) -> Result<(String, u64)> {
    let hex = format!("{:x}", Sha256::digest(bytes));
    let p = blobs.join(&hex);
    std::fs::write(&p, bytes).map_err(io_err("write", &p))?;
    Ok((hex, bytes.len() as u64))
}

/// An OCI image layout at `dir` with one image tagged `tag`. Layer blobs are
/// hard-linked (or copied across filesystems).
pub fn write_image_layout(dir: &Path, tag: &str, layers: &[LayoutLayer]) -> Result<()> {
    crate::tools::clean_dir(dir)?;
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(io_err("create directory", &blobs))?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(io_err("write", dir))?;
    let mut descs = Vec::new();
    let mut diff_ids = Vec::new();
    for l in layers {
        let (hex, size) = sha256_file(&l.blob)?;
        let (diff, _) = sha256_file(&l.uncompressed)?;
        let dest = blobs.join(&hex);
        if !dest.exists() && std::fs::hard_link(&l.blob, &dest).is_err() {
            std::fs::copy(&l.blob, &dest).map_err(io_err("copy", &dest))?;
        }
        descs.push(
            json!({"mediaType": l.media_type, "digest": format!("sha256:{hex}"), "size": size}),
        );
        diff_ids.push(format!("sha256:{diff}"));
    }
    let config = json!({
        "architecture": engine::image::host_architecture(),
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}
    });
    let (chex, csize) = put_blob(&blobs, config.to_string().as_bytes())?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{chex}"), "size": csize},
        "layers": descs
    });
    let (mhex, msize) = put_blob(&blobs, manifest.to_string().as_bytes())?;
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{mhex}"), "size": msize,
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }]
    });
    let ip = dir.join("index.json");
    std::fs::write(&ip, index.to_string()).map_err(io_err("write", &ip))
}

//! Escapes through privileged syscalls and kernel tunables, tried for real
//! by a static probe inside a container started by the rrun binary:
//! mount, umount, pivot_root, unshare, kexec, modules, keyctl, and writes
//! to /proc/sys and /sys. Every one must be refused.

mod common;
mod escape_common;

use common::*;
use escape_common::*;

/// errnos that mean "refused by the runtime": seccomp and capability
/// checks (EPERM/EACCES), read-only mounts (EROFS). Anything else (ok,
/// EINVAL, EFAULT, ENOENT) means the kernel got far enough to look at the
/// arguments, or the probe did not test what it names.
const REFUSED: &[&str] = &["EPERM", "EACCES", "EROFS"];

const EXPECTED: &[&str] = &[
    "mount",
    "remount_root_rw",
    "umount_proc",
    "umount_masked",
    "pivot_root",
    "unshare_user",
    "unshare_mnt",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "keyctl_join",
    "add_key",
    "open_by_handle_at",
    "write_proc_sys",
    "write_core_pattern",
    "write_proc_sys_vm",
    "write_sys_thp",
    "write_sys_thp_defrag",
    "mkdir_sys",
];

fn probe_image() -> &'static str {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        image_with(
            "escape-probe",
            &[("probe", Entry::Copy(probe_binary(), 0o755))],
            &[],
        )
    });
    "escape-probe"
}

#[test]
fn every_privileged_syscall_and_kernel_write_is_refused() {
    for host_file in [
        "/proc/sys/kernel/core_pattern",
        "/sys/kernel/mm/transparent_hugepage/enabled",
        "/sys/kernel/mm/transparent_hugepage/defrag",
    ] {
        assert!(
            std::path::Path::new(host_file).exists(),
            "{host_file} must exist on the host for this test (a kernel without it tests nothing)"
        );
    }
    let image = probe_image();
    for user in ["0", "1000"] {
        let o = rrun(&["run", "--rm", "-u", user, image, "/probe"]);
        assert_eq!(code(&o), 0, "probe failed as uid {user}: {}", stderr(&o));
        let out = stdout(&o);
        let got = results(&out);
        let names: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, EXPECTED, "probe output changed:\n{out}");
        let escaped: Vec<String> = got
            .iter()
            .filter(|(_, v)| !REFUSED.contains(&v.as_str()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert!(
            escaped.is_empty(),
            "as uid {user} these were not refused: {escaped:?}\nfull probe output:\n{out}"
        );
    }
}

/// The same probe tells success from refusal: with --privileged the
/// container may mount, and keyctl reaches the kernel.
#[test]
fn the_probe_sees_success_where_the_runtime_allows_it() {
    let image = probe_image();
    let o = rrun(&["run", "--rm", "--privileged", image, "/probe", "control"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("mount=ok"), "privileged mount refused:\n{out}");
    assert!(
        out.contains("keyctl_join=ok"),
        "privileged keyctl refused:\n{out}"
    );
    // And the default profile refuses the same two calls.
    let o = rrun(&["run", "--rm", image, "/probe", "control"]);
    assert_eq!(
        stdout(&o),
        "mount=EPERM\nkeyctl_join=EPERM\n",
        "{}",
        stderr(&o)
    );
}

/// busybox's own applets, as a user would try them.
#[test]
fn busybox_mount_unshare_and_sysctl_fail_inside() {
    let o = sh(
        &[],
        "mount -t tmpfs t /mnt && echo mount-ok; \
         umount /proc && echo umount-ok; \
         unshare -U true && echo unshare-ok; \
         unshare -m true && echo unshare-m-ok; \
         mkdir -p /n && pivot_root / /n && echo pivot-ok; \
         sysctl -w kernel.core_pattern=core && echo sysctl-ok; \
         echo 1 > /proc/sys/vm/drop_caches && echo drop-ok; \
         insmod /nothing.ko && echo insmod-ok; \
         echo done",
    );
    assert_eq!(stdout(&o), "done\n", "an applet escaped: {}", stderr(&o));
}

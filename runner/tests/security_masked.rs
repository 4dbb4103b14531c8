//! Masked and read-only paths, for real: a child in a private mount
//! namespace mounts a fresh /proc, masks, and execs busybox to look.

mod security_common;

use std::os::unix::fs::FileTypeExt;
use std::time::Duration;

use nix::mount::{mount, MsFlags};
use runner::native::security::{mask_paths, SecurityError};
use security_common::*;

fn fresh_proc() {
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .expect("mount a fresh /proc");
}

const LOOK: &str = r#"
for f in /proc/keys /proc/timer_list /proc/kcore; do
  [ -e $f ] && echo "$f type=$(stat -c '%F %t:%T' $f) bytes=$(head -c 64 $f | wc -c)"
done
echo "acpi entries=$(ls -A /proc/acpi | wc -l)"
echo "firmware entries=$(ls -A /sys/firmware | wc -l)"
touch /sys/firmware/x 2>/dev/null && echo firmware-writable=yes || echo firmware-writable=no
echo 1 2>&1 > /proc/sys/kernel/hostname | cat
(echo x > /proc/sys/kernel/hostname) 2>&1 | grep -q 'Read-only' && echo sys=ro || echo sys=rw
awk '{print "mount", $5, $6}' /proc/self/mountinfo
echo "hostname-readable=$(cat /proc/sys/kernel/hostname | wc -c)"
"#;

#[test]
fn masked_paths_read_nothing_and_proc_sys_is_read_only() {
    require_root_and_busybox();
    let host_keys = std::fs::metadata("/proc/keys")
        .expect("/proc/keys must exist on the host for this test (CONFIG_KEYS)");
    assert!(!host_keys.file_type().is_char_device());
    assert!(
        std::path::Path::new("/sys/firmware").exists(),
        "/sys/firmware must exist on the host for this test"
    );
    let child = spawn(|| {
        private_mount_ns();
        fresh_proc();
        mask_paths(false).expect("mask_paths");
        exec_busybox(&["sh", "-c", LOOK])
    });
    let (st, out) = child.finish(Duration::from_secs(20));
    assert_eq!(code(st), 0, "{out}");
    for f in ["/proc/keys", "/proc/timer_list"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(f))
            .unwrap_or_else(|| panic!("{f} missing:\n{out}"));
        assert!(
            line.contains("character special file 1:3"),
            "{f} is not /dev/null: {line}"
        );
        assert!(line.ends_with("bytes=0"), "{f} still has content: {line}");
    }
    if let Some(line) = out.lines().find(|l| l.starts_with("/proc/kcore")) {
        assert!(line.ends_with("bytes=0"), "{line}");
    }
    assert!(out.contains("acpi entries=0"), "{out}");
    assert!(out.contains("firmware entries=0"), "{out}");
    assert!(out.contains("firmware-writable=no"), "{out}");
    assert!(
        out.contains("sys=ro"),
        "/proc/sys must be read-only:\n{out}"
    );
    // Every read-only path this kernel has is a read-only mount of its own.
    let mut checked = 0;
    for p in [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ] {
        if !std::path::Path::new(p).exists() {
            continue; // e.g. no CONFIG_MAGIC_SYSRQ
        }
        let opts = out
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("mount {p} ")))
            .next_back()
            .unwrap_or_else(|| panic!("{p} is not a mount point in the container:\n{out}"));
        assert!(
            opts.split(',').any(|o| o == "ro"),
            "{p} mounted {opts}, not ro"
        );
        checked += 1;
    }
    assert!(
        checked >= 2,
        "too few read-only paths exist to test:\n{out}"
    );
    assert!(
        !out.contains("hostname-readable=0"),
        "/proc/sys must stay readable:\n{out}"
    );

    // Nothing leaked to the host's mounts.
    let after = std::fs::metadata("/proc/keys").unwrap();
    assert!(
        !after.file_type().is_char_device(),
        "host /proc/keys got masked"
    );
    assert!(
        std::fs::read_dir("/sys/firmware").unwrap().next().is_some(),
        "host /sys/firmware got masked"
    );
}

/// The control: the same look without masking sees content and a writable
/// /proc/sys (checked without writing: only the error text is compared).
#[test]
fn without_masking_the_paths_are_visible() {
    require_root_and_busybox();
    let child = spawn(|| {
        private_mount_ns();
        fresh_proc();
        exec_busybox(&["sh", "-c", "stat -c '%F' /proc/timer_list; echo timer_bytes=$(head -c 64 /proc/timer_list | wc -c); echo firmware entries=$(ls -A /sys/firmware | wc -l)"])
    });
    let (st, out) = child.finish(Duration::from_secs(20));
    assert_eq!(code(st), 0, "{out}");
    assert!(out.contains("regular"), "{out}");
    assert!(out.contains("timer_bytes=64"), "{out}");
    assert!(!out.contains("firmware entries=0"), "{out}");
}

/// CVE-2025-31133: a /dev/null that is a symlink (here to a writable /proc
/// file) or a plain file must never become a bind source.
#[test]
fn a_fake_dev_null_is_refused() {
    require_root_and_busybox();
    for fake in ["symlink", "file"] {
        let child = spawn(move || {
            private_mount_ns();
            mount(
                Some("tmpfs"),
                "/dev",
                Some("tmpfs"),
                MsFlags::empty(),
                None::<&str>,
            )
            .expect("tmpfs on /dev");
            if fake == "symlink" {
                std::os::unix::fs::symlink("/proc/sys/kernel/core_pattern", "/dev/null").unwrap();
            } else {
                std::fs::write("/dev/null", b"").unwrap();
            }
            fresh_proc();
            match mask_paths(false) {
                Err(SecurityError::DevNull(why)) => {
                    say(&format!("refused: {why}\n"));
                    0
                }
                other => {
                    say(&format!("not refused: {other:?}\n"));
                    1
                }
            }
        });
        let (st, out) = child.finish(Duration::from_secs(20));
        assert_eq!(code(st), 0, "fake /dev/null ({fake}) accepted:\n{out}");
    }
}

#[test]
fn privileged_masks_nothing() {
    require_root_and_busybox();
    let child = spawn(|| {
        private_mount_ns();
        fresh_proc();
        mask_paths(true).expect("mask_paths(privileged)");
        exec_busybox(&[
            "sh",
            "-c",
            "stat -c '%F' /proc/keys; echo firmware entries=$(ls -A /sys/firmware | wc -l)",
        ])
    });
    let (st, out) = child.finish(Duration::from_secs(20));
    assert_eq!(code(st), 0, "{out}");
    assert!(out.contains("regular"), "{out}");
    assert!(!out.contains("firmware entries=0"), "{out}");
}

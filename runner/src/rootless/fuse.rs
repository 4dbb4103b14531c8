//! fuse-overlayfs (Debian's `fuse-overlayfs`) as a rootless container's
//! root filesystem where the kernel refuses overlayfs in a user namespace
//! (kernels before 5.11, or distributions that turn it off).
//!
//! Which overlay: `RBOX_OVERLAY` in rrun's or rbuild's environment says
//! `kernel`, `fuse`, or `auto` (unset: auto). Auto asks the kernel first
//! with the container's own lowers, upper and work dir: a superblock is
//! made in rrun's user namespace (`rootfs::probe_overlay`), never attached,
//! and dropped; EPERM or EINVAL there (the kernel's refusals of an
//! unprivileged overlay) switch to fuse-overlayfs with a one-line note.
//!
//! fuse-overlayfs mounts the container's overlay on its `merged` dir in
//! rrun's mount namespace before the container's process is cloned; that
//! process then binds it as its root (`RootfsPlan::lowers` emptied, the
//! bundle's way). It runs in the foreground as rrun's child and dies
//! with it (PR_SET_PDEATHSIG); [`FuseOverlay`] unmounts it when dropped,
//! after the container ends, and reaps it. `allow_other`: the container's
//! processes run as other ids than the mounter (the kernel, not
//! fusermount, checks it for a mount made by a user namespace's root).

use std::ffi::CStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::native::rootfs::RootfsPlan;

/// The environment variable choosing the overlay.
pub const ENV: &str = "RBOX_OVERLAY";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    Auto,
    Kernel,
    Fuse,
}

/// `RBOX_OVERLAY`'s value, checked.
pub fn choice(value: Option<&str>) -> Result<Choice, String> {
    match value {
        None | Some("" | "auto") => Ok(Choice::Auto),
        Some("kernel") => Ok(Choice::Kernel),
        Some("fuse") => Ok(Choice::Fuse),
        Some(v) => Err(format!(
            "{ENV}={v:?}: expected auto (the default), kernel or fuse"
        )),
    }
}

/// A mounted fuse-overlayfs; unmounted and reaped when dropped.
pub struct FuseOverlay {
    child: Child,
    merged: PathBuf,
}

/// How long fuse-overlayfs may take to mount, and to exit once unmounted.
const MOUNT_TIMEOUT: Duration = Duration::from_secs(10);
const EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Mount the overlay of `plan` with fuse-overlayfs where `RBOX_OVERLAY`
/// or the kernel's refusal says so (then `plan` binds it as it is);
/// `tool` prefixes the note.
pub fn mount_if_needed(plan: &mut RootfsPlan, tool: &str) -> Result<Option<FuseOverlay>, String> {
    if plan.lowers.is_empty() {
        return Ok(None);
    }
    match choice(std::env::var(ENV).ok().as_deref())? {
        Choice::Kernel => return Ok(None),
        Choice::Fuse => {}
        Choice::Auto => match crate::native::rootfs::probe_overlay(plan) {
            Ok(()) => return Ok(None),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EPERM | libc::EINVAL | libc::ENOSYS)
                ) =>
            {
                eprintln!(
                    "{tool}: note: the kernel refused overlayfs in the user namespace ({e}); using fuse-overlayfs"
                );
            }
            // Anything else: the container's own mount says what.
            Err(_) => return Ok(None),
        },
    }
    let m = mount(plan)?;
    plan.lowers.clear();
    Ok(Some(m))
}

fn path_of(c: &CStr) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(c.to_bytes()))
}

/// fuse-overlayfs's `-o` value for `plan`. Its option parser splits at
/// ',' and the lowers at ':': paths holding either are refused.
pub fn options(plan: &RootfsPlan) -> Result<String, String> {
    let check = |c: &CStr| {
        let b = c.to_bytes();
        if b.iter().any(|&x| x == b',' || x == b':') {
            Err(format!(
                "fuse-overlayfs cannot take the path {:?}: it holds ',' or ':' (move the store)",
                path_of(c)
            ))
        } else {
            Ok(path_of(c).display().to_string())
        }
    };
    let lowers = plan
        .lowers
        .iter()
        .map(|l| check(l))
        .collect::<Result<Vec<_>, _>>()?
        .join(":");
    Ok(format!(
        "lowerdir={lowers},upperdir={},workdir={},allow_other",
        check(&plan.upper)?,
        check(&plan.work)?
    ))
}

fn mount(plan: &RootfsPlan) -> Result<FuseOverlay, String> {
    let bin = super::enter::find_helper("fuse-overlayfs").ok_or(
        "the overlay needs fuse-overlayfs (install Debian's fuse-overlayfs package): not found in PATH, /usr/bin or /bin",
    )?;
    if !Path::new("/dev/fuse").exists() {
        return Err("fuse-overlayfs needs /dev/fuse (modprobe fuse)".into());
    }
    let merged = path_of(&plan.merged).to_path_buf();
    let opts = options(plan)?;
    // Beside the upper dir: the container's (merged may be shared by
    // every container, each in its own mount namespace).
    let upper = path_of(&plan.upper);
    let log = upper.with_file_name("fuse-overlayfs.log");
    let err = std::fs::File::create(&log).map_err(|e| format!("create {}: {e}", log.display()))?;
    let mut cmd = Command::new(&bin);
    cmd.arg("-f")
        .arg("-o")
        .arg(&opts)
        .arg(&merged)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err);
    // SAFETY: prctl only, between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| format!("start {}: {e}", bin.display()))?;
    let mut m = FuseOverlay { child, merged };
    let deadline = Instant::now() + MOUNT_TIMEOUT;
    loop {
        if is_fuse_mount(&m.merged) {
            let _ = std::fs::remove_file(&log);
            return Ok(m);
        }
        if let Ok(Some(status)) = m.child.try_wait() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            return Err(format!(
                "fuse-overlayfs failed ({status}): {}",
                text.trim().lines().last().unwrap_or("no message")
            ));
        }
        if Instant::now() > deadline {
            let _ = std::fs::remove_file(&log);
            drop(m);
            return Err(format!(
                "fuse-overlayfs did not mount within {MOUNT_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether `dir` is a fuse-overlayfs mount point in our mount namespace.
pub fn is_fuse_mount(dir: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    fuse_mount_in(&info, dir)
}

/// Whether `mountinfo`'s text has a fuse mount at `dir`.
pub fn fuse_mount_in(mountinfo: &str, dir: &Path) -> bool {
    let want = dir.as_os_str().as_bytes();
    mountinfo.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(dash) = f.iter().position(|x| *x == "-") else {
            return false;
        };
        f.get(4).map(|p| unescape(p)) == Some(want.to_vec())
            && f.get(dash + 1).is_some_and(|t| t.starts_with("fuse"))
    })
}

/// mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

impl Drop for FuseOverlay {
    fn drop(&mut self) {
        // Detached: the container's own mount namespace may still hold a
        // copy for a moment; fuse-overlayfs exits once the last goes.
        let _ = nix::mount::umount2(&self.merged, nix::mount::MntFlags::MNT_DETACH);
        let deadline = Instant::now() + EXIT_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(lowers: &[&str]) -> RootfsPlan {
        RootfsPlan {
            lowers: lowers.iter().map(crate::sys::cstring).collect(),
            upper: crate::sys::cstring("/s/c/upper"),
            work: crate::sys::cstring("/s/c/work"),
            merged: crate::sys::cstring("/s/c/merged"),
            readonly: false,
            volatile: false,
            steps: Vec::new(),
        }
    }

    #[test]
    fn the_choice_is_auto_kernel_or_fuse_and_nothing_else() {
        assert_eq!(choice(None), Ok(Choice::Auto));
        assert_eq!(choice(Some("fuse")), Ok(Choice::Fuse));
        assert_eq!(choice(Some("kernel")), Ok(Choice::Kernel));
        let e = choice(Some("fusee")).unwrap_err();
        assert!(
            e.contains("RBOX_OVERLAY=\"fusee\"") && e.contains("auto"),
            "{e}"
        );
    }

    #[test]
    fn options_name_every_lower_top_first_and_refuse_separators() {
        assert_eq!(
            options(&plan(&["/l/a", "/l/b"])).unwrap(),
            "lowerdir=/l/a:/l/b,upperdir=/s/c/upper,workdir=/s/c/work,allow_other"
        );
        let e = options(&plan(&["/l/a,x"])).unwrap_err();
        assert!(e.contains("',' or ':'"), "{e}");
    }

    #[test]
    fn mountinfo_lines_are_matched_by_point_and_type() {
        let info = "36 25 0:31 / /s/c/merged rw,nosuid - fuse.fuse-overlayfs fuse-overlayfs rw\n\
                    37 25 0:32 / /s/c/other\\040dir rw - fuse.fuse-overlayfs x rw\n\
                    38 25 0:33 / /s/d/merged rw - overlay overlay rw\n";
        assert!(fuse_mount_in(info, Path::new("/s/c/merged")));
        assert!(fuse_mount_in(info, Path::new("/s/c/other dir")));
        assert!(!fuse_mount_in(info, Path::new("/s/d/merged")));
        assert!(!fuse_mount_in(info, Path::new("/s/c")));
    }
}

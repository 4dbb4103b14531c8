//! `--userns=keep-id` (Podman's meaning): the user's uid and gid are the
//! same ids inside the container, the rest of the subordinate range
//! around them, and the command runs as that uid (unless `-u`).
//!
//! rrun's own namespace maps 0 to the user and 1..N to the subordinate
//! ids (`enter`), and the user's layers are unpacked there. A keep-id
//! container gets a user namespace nested in that one (`ChildPlan::userns`)
//! whose map, relative to rrun's ids, is
//!
//! ```text
//! container 0 .. U-1  ->  rrun 1 .. U       (subordinate ids)
//! container U         ->  rrun 0            (the user)
//! container U+1 .. N-1 -> rrun U+1 .. N-1   (subordinate ids)
//! ```
//!
//! Seen through it, a layer file of image uid i (rrun's id i) would show
//! as another id (image root as U). The kernel could show it right with an
//! idmapped mount, but only to whoever controls the filesystem's
//! superblock, which a user never does for the host's disk. So, as Podman
//! does when the kernel cannot idmap its overlay's layers, the container's
//! layers are copied once with each owner moved by that map
//! (`<container>/keepid/N`), and are removed with the container. The
//! cost is the image's size on disk and a copy at the first start.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::idmap::{self, Extent};
use crate::native::spawn::{ChildPlan, UserNsPlan};

/// The directory of the copies, in the container's directory (next to
/// its upper dir).
pub const DIR: &str = "keepid";

/// Why keep-id cannot be used by this process, if it cannot.
pub fn unavailable() -> Option<&'static str> {
    if !super::active() {
        return Some("keep-id is only supported for rootless rbox (run by a user other than root): root's containers see the host's ids already, and there is no user to keep");
    }
    if super::single_id() {
        return Some("keep-id needs subordinate ids (this user has none in /etc/subuid and /etc/subgid): without them the container has no id but the user's");
    }
    None
}

/// The nested namespace's map (container id -> rrun's id) for the user
/// who is rrun's id 0 and `own` on the host, with rrun's ids 0..count.
pub fn nested_map(own: u32, count: u32) -> Vec<Extent> {
    let mut m = Vec::new();
    let below = own.min(count.saturating_sub(1));
    if below > 0 {
        m.push(Extent {
            inside: 0,
            outside: 1,
            count: below,
        });
    }
    m.push(Extent {
        inside: own,
        outside: 0,
        count: 1,
    });
    if let Some(rest) = count.checked_sub(own + 1).filter(|&n| n > 0) {
        m.push(Extent {
            inside: own + 1,
            outside: own + 1,
            count: rest,
        });
    }
    m
}

/// A map's text for /proc/PID/uid_map.
fn map_text(m: &[Extent]) -> Vec<u8> {
    m.iter()
        .map(|e| format!("{} {} {}\n", e.inside, e.outside, e.count))
        .collect::<String>()
        .into_bytes()
}

/// How many ids rrun's namespace has (0..N, as `enter` maps them).
fn own_count(file: &str) -> Result<u32, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("read {file}: {e}"))?;
    let map = idmap::parse_proc_map(&text);
    let mut n = 0u32;
    while let Some(e) = map.iter().find(|e| e.inside == n) {
        n = n.saturating_add(e.count);
    }
    Ok(n)
}

/// Give `plan` the keep-id user namespace and the copies of `lowers`
/// (made in `container_dir`, reused by a later start).
pub fn apply(
    plan: &mut ChildPlan,
    lowers: &[PathBuf],
    upper: &Path,
    container_dir: &Path,
) -> Result<(), String> {
    if let Some(why) = unavailable() {
        return Err(why.to_string());
    }
    let (uid, gid) = (
        super::host_uid().unwrap_or(u32::MAX),
        super::host_gid().unwrap_or(u32::MAX),
    );
    let uids = nested_map(uid, own_count("/proc/self/uid_map")?);
    let gids = nested_map(gid, own_count("/proc/self/gid_map")?);
    let dir = container_dir.join(DIR);
    if !dir.is_dir() {
        // Nothing half-made is used: a leftover of a killed copy goes.
        let tmp = container_dir.join(format!("{DIR}.tmp"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| format!("remove {}: {e}", tmp.display()))?;
        }
        std::fs::create_dir(&tmp).map_err(|e| format!("create {}: {e}", tmp.display()))?;
        for (i, lower) in lowers.iter().enumerate() {
            let mut copy = Copy {
                uids: &uids,
                gids: &gids,
                links: HashMap::new(),
            };
            copy.tree(lower, &tmp.join(i.to_string()))
                .map_err(|e| format!("copy the layer {} for keep-id: {e}", lower.display()))?;
        }
        std::fs::rename(&tmp, &dir).map_err(|e| format!("rename {}: {e}", tmp.display()))?;
    }
    plan.rootfs.lowers = (0..lowers.len())
        .map(|i| crate::sys::cstring(dir.join(i.to_string())))
        .collect();
    // The container's / shows the upper dir's owner: the image's root.
    let root_owner = (from(&uids, 0), from(&gids, 0));
    if let (Some(u), Some(g)) = root_owner {
        std::os::unix::fs::lchown(upper, Some(u), Some(g))
            .map_err(|e| format!("chown {}: {e}", upper.display()))?;
    }
    add_passwd_entry(plan, lowers, uid, gid);
    plan.userns = Some(UserNsPlan::New {
        uid_map: map_text(&uids),
        gid_map: map_text(&gids),
    });
    Ok(())
}

/// The user's name and home directory, from the host's passwd
/// database, for keep-id's passwd entry and `HOME` (Podman's).
pub fn host_user() -> Option<(String, String)> {
    let uid = super::host_uid()?;
    let u = nix::unistd::User::from_uid(uid.into()).ok().flatten()?;
    Some((u.name, u.dir.to_string_lossy().into_owned()))
}

/// The image's passwd text with an entry for the user, if it has none
/// for `uid` (None: it has one, or the name is not fit for the file).
pub fn passwd_with_user(image: &str, uid: u32, gid: u32, name: &str, home: &str) -> Option<String> {
    let has = image
        .lines()
        .any(|l| l.split(':').nth(2) == Some(uid.to_string().as_str()));
    let fit = |s: &str| !s.is_empty() && !s.contains([':', '\n']);
    if has || !fit(name) || !fit(home) {
        return None;
    }
    let mut out = image.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("{name}:*:{uid}:{gid}:{name}:{home}:/bin/sh\n"));
    Some(out)
}

/// Bind a passwd with the user's entry over the image's /etc/passwd
/// (a file of the container's own tmpfs, as its hosts file; the image's
/// is never written), where the image has none for the user.
fn add_passwd_entry(plan: &mut ChildPlan, lowers: &[PathBuf], uid: u32, gid: u32) {
    let (Some(etc), Some((name, home))) = (plan.etc_files.as_mut(), host_user()) else {
        return;
    };
    let image = crate::user::read_from_layers(lowers, "etc/passwd").unwrap_or_default();
    let Some(text) = passwd_with_user(&image, uid, gid, &name, &home) else {
        return;
    };
    etc.files
        .push((crate::sys::cstring("passwd"), text.into_bytes()));
    let dir = Path::new(std::ffi::OsStr::from_bytes(etc.dir.to_bytes()));
    plan.rootfs.steps.push(crate::native::rootfs::Step::Bind {
        source: crate::sys::cstring(dir.join("passwd")),
        target: crate::sys::cstring("etc/passwd"),
        dir: false,
        readonly: false,
        attrs: 0,
        recursive: true,
    });
}

/// rrun's id that container id `id` is.
fn from(map: &[Extent], id: u32) -> Option<u32> {
    idmap::to_host(map, id)
}

/// One layer's copy: entries made anew, owners moved by the maps (an
/// image id i becomes the rrun id that is container id i), hard links
/// kept, symlinks never followed.
struct Copy<'a> {
    uids: &'a [Extent],
    gids: &'a [Extent],
    /// (dev, ino) of a multiply linked source file -> its first copy.
    links: HashMap<(u64, u64), PathBuf>,
}

impl Copy<'_> {
    fn tree(&mut self, src: &Path, dst: &Path) -> io::Result<()> {
        let meta = std::fs::symlink_metadata(src)?;
        let ft = meta.file_type();
        if !ft.is_dir() && meta.nlink() > 1 {
            if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                return std::fs::hard_link(first, dst);
            }
        }
        if ft.is_dir() {
            std::fs::create_dir(dst)?;
            for entry in std::fs::read_dir(src)? {
                let entry = entry?;
                self.tree(&entry.path(), &dst.join(entry.file_name()))?;
            }
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
        } else if ft.is_file() {
            std::fs::copy(src, dst)?;
        } else if meta.rdev() == 0 && meta.mode() & libc::S_IFMT == libc::S_IFCHR {
            // An overlay whiteout (0/0), which a user namespace may make.
            nix::sys::stat::mknod(
                dst,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                0,
            )?;
        } else {
            // Fifos and sockets; device nodes are never unpacked rootless.
            nix::unistd::mkfifo(dst, nix::sys::stat::Mode::empty()).map_err(|_| {
                io::Error::other(format!("{}: a special file, not copied", src.display()))
            })?;
        }
        copy_xattrs(src, dst)?;
        let owner = |map: &[Extent], id: u32, what: &str| {
            from(map, id).ok_or_else(|| {
                io::Error::other(format!(
                    "{}: {what} {id} has no id in the keep-id namespace (the subordinate range is smaller than the user's id)",
                    src.display()
                ))
            })
        };
        std::os::unix::fs::lchown(
            dst,
            Some(owner(self.uids, meta.uid(), "uid")?),
            Some(owner(self.gids, meta.gid(), "gid")?),
        )?;
        if !ft.is_symlink() {
            // After chown, which clears set-id bits.
            std::fs::set_permissions(dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
        }
        let times = [
            nix::sys::time::TimeSpec::new(meta.atime(), meta.atime_nsec()),
            nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
        ];
        nix::sys::stat::utimensat(
            None,
            dst,
            &times[0],
            &times[1],
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )?;
        if !ft.is_dir() && meta.nlink() > 1 {
            self.links
                .insert((meta.dev(), meta.ino()), dst.to_path_buf());
        }
        Ok(())
    }
}

/// Copy the extended attributes a user namespace can read and set
/// (`user.*`, overlay's markers among them; `security.capability` when
/// the kernel lets it through).
fn copy_xattrs(src: &Path, dst: &Path) -> io::Result<()> {
    let s = CString::new(src.as_os_str().as_bytes())?;
    let d = CString::new(dst.as_os_str().as_bytes())?;
    // SAFETY: a valid C string; a null buffer asks for the size.
    let n = unsafe { libc::llistxattr(s.as_ptr(), std::ptr::null_mut(), 0) };
    if n <= 0 {
        return Ok(());
    }
    let mut names = vec![0u8; n as usize];
    // SAFETY: the buffer is `names.len()` bytes.
    let n = unsafe { libc::llistxattr(s.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    names.truncate(n as usize);
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name)?;
        let mut value = vec![0u8; 4096];
        // SAFETY: valid C strings and a buffer of `value.len()` bytes.
        let len = unsafe {
            libc::lgetxattr(
                s.as_ptr(),
                cname.as_ptr(),
                value.as_mut_ptr().cast(),
                value.len(),
            )
        };
        if len < 0 {
            continue;
        }
        // SAFETY: as above; `len` bytes of `value` are the attribute.
        let r = unsafe {
            libc::lsetxattr(
                d.as_ptr(),
                cname.as_ptr(),
                value.as_ptr().cast(),
                len as usize,
                0,
            )
        };
        if r != 0 && name.starts_with(b"user.") {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_keeps_their_id_and_the_range_goes_around_it() {
        // rrun's ids: 0 the user (host 1000), 1..65536 subordinate.
        let m = nested_map(1000, 65537);
        assert_eq!(from(&m, 1000), Some(0));
        assert_eq!(from(&m, 0), Some(1));
        assert_eq!(from(&m, 999), Some(1000));
        assert_eq!(from(&m, 1001), Some(1001));
        assert_eq!(from(&m, 65536), Some(65536));
        assert_eq!(from(&m, 65537), None);
        assert_eq!(
            map_text(&m),
            b"0 1 1000\n1000 0 1\n1001 1001 64536\n".to_vec()
        );
        // A range smaller than the user's id: the ids below that fit.
        let small = nested_map(1000, 11);
        assert_eq!(map_text(&small), b"0 1 10\n1000 0 1\n".to_vec());
        // The user is uid 0 on no host that runs rootless; still sound.
        assert_eq!(map_text(&nested_map(0, 5)), b"0 0 1\n1 1 4\n".to_vec());
    }

    #[test]
    fn the_user_gets_a_passwd_entry_unless_the_image_has_their_uid() {
        let img = "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh";
        assert_eq!(
            passwd_with_user(img, 1001, 1001, "al", "/home/al").unwrap(),
            format!("{img}\nal:*:1001:1001:al:/home/al:/bin/sh\n")
        );
        assert_eq!(passwd_with_user(img, 1000, 1000, "al", "/home/al"), None);
        assert_eq!(passwd_with_user(img, 1001, 1001, "a:l", "/home/al"), None);
        assert_eq!(
            passwd_with_user("", 5, 5, "al", "/h").unwrap(),
            "al:*:5:5:al:/h:/bin/sh\n"
        );
    }
}

//! A running container of the default network that `rrun network
//! connect` puts on its first user-defined network gets that network's
//! names at once, without a restart, as Docker's embedded DNS serves a
//! container from the moment it has a user-defined network: its
//! /etc/hosts becomes the network's hosts file of it (see `hosts`, kept
//! current as members come and go) and its /etc/resolv.conf one naming
//! the network's resolver (which answers for all its networks' members
//! and forwards the rest, see `resolver`), both mounted read-only over
//! the container's own in its mount namespace, as a container started
//! on the network has them. `unfollow` (disconnect) puts the host's
//! servers back in that file; the hosts file is emptied of the network's
//! members when the container leaves it (`hosts::leave`). A container
//! still on another user network follows that one instead (rrun's
//! `network disconnect`), before the files it leaves are unlinked: the
//! kernel refuses a mount over an unlinked file.
//!
//! The mounts are made by a child process that enters the container's
//! mount namespace (its root then is the container's root, so that the
//! container's symlinks resolve inside it) and attaches mounts cloned on
//! the host (`open_tree`), so that no host path is looked up in there.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::resolv::{self, DnsConfig};
use super::{hosts, Network};
use crate::sys;

/// The resolv.conf a following container has from `net`.
pub fn resolv_path(net: &Network, container: &str) -> PathBuf {
    net.state_dir().join("resolv").join(container)
}

fn write_in_place(p: &Path, text: &str) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(p)?
        .write_all(text.as_bytes())
}

/// Mount `net`'s hosts file of `container` (listed on `net` already, see
/// `hosts::join`; with `extra`, its `--add-host` lines) and a resolv.conf
/// naming `net`'s resolver, with the container's `--dns-search` and
/// `--dns-option`, over /etc/hosts and /etc/resolv.conf of the running
/// container whose first process is `pid`. `leaving`: the network it
/// followed until now, whose mounts are taken off first (they sit on
/// files that are unlinked when it leaves that network, and the kernel
/// detaches whatever is mounted on an unlinked file: a mount stacked on
/// them would vanish with them).
pub fn follow(
    net: &Network,
    container: &str,
    pid: i32,
    dns: &DnsConfig,
    extra: &str,
    leaving: Option<&Network>,
) -> io::Result<()> {
    hosts::set_extra(net, container, extra)?;
    let rp = resolv_path(net, container);
    if let Some(dir) = rp.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let text = resolv::apply(&resolv::for_bridge(), dns, Some(net.gateway));
    write_in_place(&rp, &text)?;
    let old = |p: PathBuf| fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let (old_hosts, old_resolv) = match leaving {
        Some(l) => (
            old(hosts::hosts_path(l, container)),
            old(resolv_path(l, container)),
        ),
        None => (None, None),
    };
    let made = mount_over(
        pid,
        &[
            (&hosts::hosts_path(net, container), c"/etc/hosts", old_hosts),
            (&rp, c"/etc/resolv.conf", old_resolv),
        ],
    );
    if made.is_err() {
        let _ = fs::remove_file(&rp);
    }
    made
}

/// Whether `container` has its names from `net` (it followed it).
pub fn follows(net: &Network, container: &str) -> bool {
    resolv_path(net, container).exists()
}

/// `container` leaves `net` (disconnect): its resolv.conf names the
/// host's servers again (the mount stays, holding the file's inode).
pub fn unfollow(net: &Network, container: &str, dns: &DnsConfig) {
    let rp = resolv_path(net, container);
    if rp.exists() {
        let _ = write_in_place(&rp, &resolv::apply(&resolv::for_bridge(), dns, None));
        let _ = fs::remove_file(&rp);
    }
}

/// A host file, the path in the container it goes over, and the
/// (device, inode) of the file mounted there now that it replaces.
type Bind<'a> = (&'a Path, &'a std::ffi::CStr, Option<(u64, u64)>);

/// In a child that enters the mount namespace of `pid`, attach a
/// read-only bind of each host file over its target, first detaching
/// the mount there if it is of the file whose (device, inode) is given.
fn mount_over(pid: i32, binds: &[Bind<'_>]) -> io::Result<()> {
    let mut trees: Vec<OwnedFd> = Vec::new();
    for (src, _, _) in binds {
        let tree = sys::open_tree_clone_with(&sys::cstring(src), false)?;
        sys::mount_setattr(tree.as_fd(), sys::MOUNT_ATTR_RDONLY, false)?;
        trees.push(tree);
    }
    let mnt = File::open(format!("/proc/{pid}/ns/mnt"))?;
    let targets: Vec<CString> = binds.iter().map(|(_, t, _)| CString::from(*t)).collect();
    // SAFETY: the child makes raw system calls only and leaves with _exit.
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Child => {
            // SAFETY: setns, stat, umount2, move_mount and _exit on fds,
            // C strings and a stack buffer of ours; nothing that
            // allocates or takes a lock.
            unsafe {
                if libc::setns(mnt.as_raw_fd(), libc::CLONE_NEWNS) != 0 {
                    libc::_exit(100);
                }
                for (target, (_, _, old)) in targets.iter().zip(binds) {
                    let Some((dev, ino)) = *old else { continue };
                    let mut st: libc::stat = std::mem::zeroed();
                    if libc::stat(target.as_ptr(), &mut st) == 0
                        && st.st_dev == dev
                        && st.st_ino == ino
                    {
                        libc::umount2(target.as_ptr(), libc::MNT_DETACH);
                    }
                }
                for (i, (tree, target)) in trees.iter().zip(&targets).enumerate() {
                    if sys::move_mount_path(tree.as_fd(), target).is_err() {
                        libc::_exit(101 + i as i32);
                    }
                }
                libc::_exit(0);
            }
        }
        nix::unistd::ForkResult::Parent { child } => {
            let status = nix::sys::wait::waitpid(child, None).map_err(io::Error::from)?;
            match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
                nix::sys::wait::WaitStatus::Exited(_, 100) => Err(io::Error::other(format!(
                    "enter the mount namespace of process {pid}"
                ))),
                nix::sys::wait::WaitStatus::Exited(_, n) if n > 100 => {
                    let t = targets
                        .get((n - 101) as usize)
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    Err(io::Error::other(format!(
                        "mount over {t} in the container (process {pid})"
                    )))
                }
                other => Err(io::Error::other(format!(
                    "the process mounting in the container: {other:?}"
                ))),
            }
        }
    }
}

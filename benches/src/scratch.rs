//! The filesystem that unpack and snapshot targets are written to.
//!
//! Never this machine's root: it is ext4 without a journal, where
//! delete-and-recreate of many inodes gets slower run after run (ext4's
//! recently-deleted inode check), so the fifth run of the same unpack is
//! twice as slow as the first. A journaled ext4 in a loop image or a tmpfs
//! stays stable; which one was used is printed with every table.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::tools::{run_quiet, run_stdout};
use crate::{io_err, BenchError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScratchKind {
    /// ext4 with a journal, in a sparse loop image under the cache dir.
    Ext4Loop,
    Tmpfs,
}

impl ScratchKind {
    pub fn parse(s: &str) -> Option<ScratchKind> {
        match s {
            "ext4" => Some(ScratchKind::Ext4Loop),
            "tmpfs" => Some(ScratchKind::Tmpfs),
            _ => None,
        }
    }

    /// From `RBOX_BENCH_FS` (ext4 | tmpfs), ext4 by default.
    pub fn from_env() -> ScratchKind {
        std::env::var("RBOX_BENCH_FS")
            .ok()
            .and_then(|s| ScratchKind::parse(&s))
            .unwrap_or(ScratchKind::Ext4Loop)
    }
}

const EXT4_IMAGE_BYTES: u64 = 32 << 30;

/// A mounted scratch filesystem; unmounted on drop if this process mounted it.
pub struct Scratch {
    pub kind: ScratchKind,
    pub mountpoint: PathBuf,
    mounted_here: bool,
}

impl Scratch {
    pub fn mount(cache: &Path, kind: ScratchKind) -> Result<Scratch> {
        let mountpoint = cache.join(match kind {
            ScratchKind::Ext4Loop => "mnt-ext4",
            ScratchKind::Tmpfs => "mnt-tmpfs",
        });
        std::fs::create_dir_all(&mountpoint).map_err(io_err("create directory", &mountpoint))?;
        if is_mountpoint(&mountpoint) {
            return Ok(Scratch {
                kind,
                mountpoint,
                mounted_here: false,
            });
        }
        match kind {
            ScratchKind::Tmpfs => {
                run_quiet(
                    Command::new("mount")
                        .args(["-t", "tmpfs", "-o", "size=16g,mode=755", "rbox-bench"])
                        .arg(&mountpoint),
                )?;
            }
            ScratchKind::Ext4Loop => {
                let image = cache.join("scratch-ext4.img");
                if !image.exists() {
                    let tmp = cache.join("scratch-ext4.img.tmp");
                    let f = std::fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
                    f.set_len(EXT4_IMAGE_BYTES)
                        .map_err(io_err("truncate", &tmp))?;
                    // Initialise inode tables and journal now, not in a
                    // background thread during the timed runs.
                    run_quiet(
                        Command::new("mkfs.ext4")
                            .args([
                                "-q",
                                "-F",
                                "-E",
                                "lazy_itable_init=0,lazy_journal_init=0",
                                "-L",
                                "rbox-bench",
                            ])
                            .arg(&tmp),
                    )?;
                    std::fs::rename(&tmp, &image).map_err(io_err("rename", &image))?;
                }
                run_quiet(
                    Command::new("mount")
                        .args(["-o", "loop"])
                        .arg(&image)
                        .arg(&mountpoint),
                )?;
            }
        }
        Ok(Scratch {
            kind,
            mountpoint,
            mounted_here: true,
        })
    }

    /// For table headers: what the targets were written to.
    pub fn describe(&self) -> String {
        match self.kind {
            ScratchKind::Ext4Loop => format!(
                "journaled ext4 (data=ordered) in a sparse loop image, mounted at {}",
                self.mountpoint.display()
            ),
            ScratchKind::Tmpfs => format!("tmpfs at {}", self.mountpoint.display()),
        }
    }

    /// A fresh empty directory on the scratch filesystem.
    pub fn fresh_dir(&self, name: &str) -> Result<PathBuf> {
        let d = self.mountpoint.join(name);
        crate::tools::clean_dir(&d)?;
        std::fs::create_dir_all(&d).map_err(io_err("create directory", &d))?;
        Ok(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.mounted_here {
            crate::tools::unmount_under(&self.mountpoint);
        }
    }
}

fn is_mountpoint(p: &Path) -> bool {
    run_stdout(
        Command::new("findmnt")
            .arg("-n")
            .arg("-o")
            .arg("TARGET")
            .arg("--mountpoint")
            .arg(p),
    )
    .map(|s| !s.trim().is_empty())
    .unwrap_or(false)
}

/// Fail early with what is missing when the scratch filesystem cannot be had.
pub fn check_tools(kind: ScratchKind) -> Result<()> {
    let needed: &[&str] = match kind {
        ScratchKind::Ext4Loop => &["mount", "mkfs.ext4", "findmnt"],
        ScratchKind::Tmpfs => &["mount", "findmnt"],
    };
    for t in needed {
        if crate::tools::which(t).is_none() {
            return Err(BenchError::Missing(format!(
                "{t} is not installed (apt-get install e2fsprogs util-linux mount)"
            )));
        }
    }
    Ok(())
}

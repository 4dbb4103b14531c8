//! Small file-system primitives the store's invariants rest on.

use std::ffi::CStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

/// Bytes of disk the regular files under `dir` take (allocated blocks,
/// hard links counted once; symlinks and special files not followed).
/// Unreadable parts count as empty: this is for reports such as `system
/// df` and `container prune`, never for a decision.
pub fn disk_usage(dir: &Path) -> u64 {
    use std::collections::HashSet;
    use std::os::unix::fs::MetadataExt;
    fn walk(dir: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
        let Ok(rd) = fs::read_dir(dir) else {
            return 0;
        };
        let mut total = 0;
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                total += walk(&e.path(), seen);
            } else if m.is_file() && seen.insert((m.dev(), m.ino())) {
                total += m.blocks() * 512;
            }
        }
        total
    }
    walk(dir, &mut HashSet::new())
}

/// fsync a directory, so that a rename into it survives a crash.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// syncfs(2) of the filesystem holding `path`: everything written to it so
/// far reaches the disk (one call instead of an fsync per file).
pub fn syncfs(path: &Path) -> io::Result<()> {
    let f = File::open(path)?;
    // SAFETY: syncfs takes an open fd, which `f` keeps open for the call.
    if unsafe { libc::syncfs(f.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A file being written whose dirty pages are sent to the disk as it
/// grows (sync_file_range(SYNC_FILE_RANGE_WRITE) every [`Self::STEP`]
/// bytes, which starts writeback and returns), so the fsync at its end has
/// little left to wait for: a layer blob's writeback overlaps its unpack
/// instead of following it.
pub struct EagerWriteback {
    file: File,
    written: u64,
    kicked: u64,
}

impl EagerWriteback {
    pub const STEP: u64 = 8 << 20;

    pub fn new(file: File) -> Self {
        EagerWriteback {
            file,
            written: 0,
            kicked: 0,
        }
    }

    pub fn into_inner(self) -> File {
        self.file
    }
}

impl Write for EagerWriteback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.kicked >= Self::STEP {
            // SAFETY: an fd we own for the call; the range lies within
            // what was written. Advisory: a failure only means the fsync
            // does more of the work.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.kicked as libc::off64_t,
                    (self.written - self.kicked) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
            self.kicked = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// [`write_atomic`] without the fsyncs: readers see the old file or the
/// new one, and after a crash possibly an empty one. Only for records
/// whose loss or emptiness is harmless (a cache of facts that readers
/// check, such as the sha256 index).
pub fn write_replace(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_dir.join(unique_name("write"));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        drop(f);
        fs::rename(&tmp, dest)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Write `bytes` to `dest` so that readers see either the old file or the
/// whole new one: write a temp file in `tmp_dir` (same filesystem), fsync,
/// rename, fsync the parent.
pub fn write_atomic(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = tmp_dir.join(unique_name("write"));
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, dest)?;
        if let Some(parent) = dest.parent() {
            fsync_dir(parent)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A name unique within this machine: pid, a per-process counter and the time.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// Remove a tree, treating "already gone" as success.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The start time of a process in clock ticks since boot (field 22 of
/// /proc/PID/stat), used to tell a live process from a reused pid.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and ')': skip past the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split(' ').nth(19)?.parse().ok()
}

/// `pid`'s start time (as [`process_start_time`]) while it runs: `None`
/// once it has exited, even as a zombie its parent has not reaped yet (an
/// orphan's new parent may be an init that reaps only now and then).
pub fn running_process_start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut after = stat[stat.rfind(')')? + 2..].split(' ');
    match after.next()? {
        "Z" | "X" | "x" => None,
        _ => after.nth(18)?.parse().ok(),
    }
}

/// How many EAGAIN answers `openat2` takes before giving up.
const OPENAT2_EAGAIN_TRIES: u32 = 1024;

/// openat2(2) with `resolve` flags (RESOLVE_BENEATH, RESOLVE_IN_ROOT,
/// RESOLVE_NO_SYMLINKS, …); O_CLOEXEC is always added. The one wrapper the
/// unpacker and the runner both resolve paths with.
pub fn openat2(dir: BorrowedFd<'_>, path: &CStr, flags: i32, resolve: u64) -> io::Result<OwnedFd> {
    // SAFETY: open_how is plain integers; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.resolve = resolve;
    // EAGAIN: a concurrent rename raced a `..` lookup and the kernel asks
    // for a retry. Bounded: a container renaming in a loop, or a `..`
    // lookup on a detached mount (6.18 answers EAGAIN there every time),
    // must end in an error, not a hang.
    let mut again = 0u32;
    loop {
        // SAFETY: `path` is NUL-terminated, `how` is a valid open_how whose
        // size we pass; the kernel returns a new fd or -1.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just gave us this fd; we own it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EAGAIN) {
            again += 1;
            if again >= OPENAT2_EAGAIN_TRIES {
                return Err(io::Error::new(
                    e.kind(),
                    format!("{e} ({again} tries: the path's `..` lookups kept racing a rename)"),
                ));
            }
        } else if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child that has exited but is not reaped yet is no longer running,
    /// though /proc still shows it with its start time.
    #[test]
    fn a_zombie_is_not_running() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = process_start_time(pid).unwrap();
        let t = std::time::Instant::now();
        while running_process_start_time(pid).is_some() {
            assert!(t.elapsed().as_secs() < 10, "true never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(process_start_time(pid), Some(start), "reaped too early");
        child.wait().unwrap();
        assert_eq!(process_start_time(pid), None);
        let me = std::process::id();
        assert_eq!(running_process_start_time(me), process_start_time(me));
        assert!(running_process_start_time(me).is_some());
    }

    /// Across several writeback steps (and a write straddling one) the
    /// file holds exactly what was written.
    #[test]
    fn eager_writeback_keeps_every_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let mut w = EagerWriteback::new(File::create(&path).unwrap());
        let mut expect = Vec::new();
        let chunk: Vec<u8> = (0..3_000_001u32).map(|i| (i % 251) as u8).collect();
        for _ in 0..7 {
            w.write_all(&chunk).unwrap();
            expect.extend_from_slice(&chunk);
        }
        assert!(
            w.kicked > 0 && w.kicked <= w.written,
            "no writeback was started"
        );
        w.into_inner().sync_all().unwrap();
        assert_eq!(fs::read(&path).unwrap(), expect);
    }

    #[test]
    fn write_replace_replaces_whole_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = dir.path().join("tmp");
        fs::create_dir(&tmp).unwrap();
        let dest = dir.path().join("entry");
        write_replace(&tmp, &dest, b"first\n").unwrap();
        write_replace(&tmp, &dest, b"second\n").unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"second\n");
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
        // A destination that cannot be written: an error, no temp left.
        assert!(write_replace(&tmp, &dir.path().join("no/such/dir"), b"x").is_err());
        assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
    }
}

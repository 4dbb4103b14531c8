//! Sealing in place: the effect of re-executing from the read-only clone
//! without a second execve (no dynamic loader, relocations or page faults
//! all over again: about 0.7 ms of CPU per container start).
//!
//! Every mapping of the running binary is replaced in this same process:
//! a mapping whose pages all still are the file's (text, rodata) is mapped
//! again from the clone, `MAP_FIXED` over the old one, at the same address,
//! offset and protection — the kernel swaps it in one step, so the code
//! doing it never runs from an unmapped page; a mapping with private pages
//! (data, RELRO after relocation, bss' first page) is copied into fresh
//! anonymous memory that `mremap` then moves over it. Then
//! `PR_SET_MM_MAP` makes the clone `/proc/self/exe`; the kernel
//! refuses (EBUSY) while any mapping still refers to the host's file, and
//! we check once more that every mapping of the binary and the new
//! `/proc/self/exe` sit on the read-only mount. Any failure leaves a
//! process that still works (each replaced mapping holds the same bytes),
//! and the caller re-executes as before.
//!
//! Taken only where it is known to be equivalent: root in the initial user
//! namespace (its exe_fd needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN
//! there), one thread (no
//! other thread may run in, or write to, a mapping being replaced),
//! dumpable, and a bind clone (a memfd copy is open for writing, which
//! the kernel refuses as exe_file). Descriptors are no concern: the exec
//! would close only close-on-exec ones, and the process has opened none
//! that outlive this call (the callers seal before anything else), while
//! those it inherited survived its own execve, so also the re-exec.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, MetadataExt};

const PR_SET_MM: libc::c_int = 35;
const PR_SET_MM_MAP: libc::c_ulong = 14;

/// struct prctl_mm_map of <linux/prctl.h>.
#[repr(C)]
#[derive(Debug, Default)]
struct PrctlMmMap {
    start_code: u64,
    end_code: u64,
    start_data: u64,
    end_data: u64,
    start_brk: u64,
    brk: u64,
    start_stack: u64,
    arg_start: u64,
    arg_end: u64,
    env_start: u64,
    env_end: u64,
    auxv: u64,
    auxv_size: u32,
    exe_fd: u32,
}

/// Whether this process may be sealed in place (see the module doc); the
/// reason why not otherwise.
pub(super) fn eligible() -> Result<(), String> {
    if engine::rootless::active() || !engine::rootless::initial_user_namespace() {
        return Err("not in the initial user namespace".into());
    }
    // SAFETY: PR_GET_DUMPABLE takes no pointer.
    if unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) } != 1 {
        return Err("not dumpable".into());
    }
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("read /proc/self/status: {e}"))?;
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .map(str::trim);
    if threads != Some("1") {
        return Err(format!("threads: {}", threads.unwrap_or("unknown")));
    }
    Ok(())
}

/// One line of /proc/self/maps that maps the binary.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    start: usize,
    end: usize,
    prot: libc::c_int,
    shared: bool,
    offset: u64,
}

/// Seal this process in place from `clone` (the O_PATH descriptor of the
/// read-only bind clone). On error the process runs on unharmed, from
/// whatever mix of host file and clone it got to.
pub(super) fn seal(clone: &OwnedFd) -> io::Result<()> {
    let host = std::fs::metadata("/proc/self/exe")?;
    // A descriptor that can be mapped and named exe_file (the kernel takes
    // no O_PATH one), opened through the clone's mount.
    let file = std::fs::File::open(format!("/proc/self/fd/{}", clone.as_raw_fd()))?;
    let meta = file.metadata()?;
    if (meta.dev(), meta.ino()) != (host.dev(), host.ino()) {
        return Err(io::Error::other("the clone is another file"));
    }
    let maps = binary_mappings(host.dev(), host.ino())?;
    if !maps.iter().any(|m| m.prot & libc::PROT_EXEC != 0) {
        // Its device or inode reads differently in maps (an overlay):
        // nothing could be checked, let the exec do it.
        return Err(io::Error::other(
            "no executable mapping of the binary found",
        ));
    }
    if let Some(m) = maps
        .iter()
        .find(|m| m.shared || m.prot & libc::PROT_READ == 0)
    {
        return Err(io::Error::other(format!(
            "cannot replace mapping {:x}-{:x}",
            m.start, m.end
        )));
    }
    // Decide every mapping before the first is touched: reading pagemap
    // allocates, which must not happen between a copy of the data
    // (the allocator's state may live there) and its move.
    let mut pagemap = std::fs::File::open("/proc/self/pagemap")?;
    let mut plan = Vec::with_capacity(maps.len());
    for m in &maps {
        let copy = m.prot & libc::PROT_WRITE != 0 || has_private_pages(&mut pagemap, m)?;
        plan.push((*m, copy));
    }
    drop(pagemap);
    // No signal handler may write to data between its copy and its move.
    let all = nix::sys::signal::SigSet::all();
    let old = all.thread_swap_mask(nix::sys::signal::SigmaskHow::SIG_BLOCK)?;
    let replaced = plan.iter().try_for_each(|(m, copy)| {
        if *copy {
            copy_over(m)
        } else {
            map_again(m, &file)
        }
    });
    old.thread_set_mask()?;
    replaced?;
    set_exe_file(&file)?;
    check_sealed(host.dev(), host.ino())
}

/// Make `file` /proc/self/exe. `PR_SET_MM_MAP` rather than
/// `PR_SET_MM_EXE_FILE`: the latter wants CAP_SYS_RESOURCE, which a
/// confined root may lack, the former CAP_CHECKPOINT_RESTORE or
/// CAP_SYS_ADMIN. It sets the other fields too: to the values they have
/// (/proc/self/stat, brk(0)); a zero auxv_size keeps the auxiliary vector.
fn set_exe_file(file: &std::fs::File) -> io::Result<()> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields from the third (state) on: the name before may hold anything.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| io::Error::other("unexpected /proc/self/stat"))?;
    let fields: Vec<&str> = after.split_ascii_whitespace().collect();
    let field = |n: usize| -> io::Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other(format!("/proc/self/stat has no field {n}")))
    };
    // SAFETY: brk(0) changes nothing and returns the current break.
    let brk = unsafe { libc::syscall(libc::SYS_brk, 0 as libc::c_ulong) } as u64;
    let map = PrctlMmMap {
        start_code: field(26)?,
        end_code: field(27)?,
        start_stack: field(28)?,
        start_data: field(45)?,
        end_data: field(46)?,
        start_brk: field(47)?,
        brk,
        arg_start: field(48)?,
        arg_end: field(49)?,
        env_start: field(50)?,
        env_end: field(51)?,
        auxv: 0,
        auxv_size: 0,
        exe_fd: file.as_raw_fd() as u32,
    };
    // SAFETY: PR_SET_MM_MAP reads a struct prctl_mm_map of the size given;
    // `map` is one, alive for the call. Every field but exe_fd holds the
    // value the kernel has now, so only exe_file changes.
    let r = unsafe {
        libc::prctl(
            PR_SET_MM,
            PR_SET_MM_MAP,
            &map as *const PrctlMmMap as libc::c_ulong,
            std::mem::size_of::<PrctlMmMap>() as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r != 0 {
        return Err(io::Error::other(format!(
            "PR_SET_MM_MAP (exe_fd): {}",
            io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// The mappings of the file with this device and inode, from
/// /proc/self/maps.
fn binary_mappings(dev: u64, ino: u64) -> io::Result<Vec<Mapping>> {
    let mut text = String::new();
    std::fs::File::open("/proc/self/maps")?.read_to_string(&mut text)?;
    let want_dev = (libc::major(dev), libc::minor(dev));
    let mut out = Vec::new();
    for line in text.lines() {
        let bad = || io::Error::other(format!("unexpected line in /proc/self/maps: {line}"));
        let mut f = line.split_ascii_whitespace();
        let (Some(range), Some(perms), Some(offset), Some(device), Some(inode)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            return Err(bad());
        };
        if inode.parse::<u64>().map_err(|_| bad())? != ino {
            continue;
        }
        let (maj, min) = device.split_once(':').ok_or_else(bad)?;
        let maj = u32::from_str_radix(maj, 16).map_err(|_| bad())?;
        let min = u32::from_str_radix(min, 16).map_err(|_| bad())?;
        if (maj, min) != want_dev {
            continue;
        }
        let (start, end) = range.split_once('-').ok_or_else(bad)?;
        let p = perms.as_bytes();
        if p.len() < 4 {
            return Err(bad());
        }
        let mut prot = 0;
        for (b, bit) in [
            (b'r', libc::PROT_READ),
            (b'w', libc::PROT_WRITE),
            (b'x', libc::PROT_EXEC),
        ] {
            if p[..3].contains(&b) {
                prot |= bit;
            }
        }
        out.push(Mapping {
            start: usize::from_str_radix(start, 16).map_err(|_| bad())?,
            end: usize::from_str_radix(end, 16).map_err(|_| bad())?,
            prot,
            shared: p[3] == b's',
            offset: u64::from_str_radix(offset, 16).map_err(|_| bad())?,
        });
    }
    Ok(out)
}

/// Whether any page of the mapping is no longer the file's: written
/// (copy-on-write) or swapped out, per /proc/self/pagemap.
fn has_private_pages(pagemap: &mut std::fs::File, m: &Mapping) -> io::Result<bool> {
    const PRESENT: u64 = 1 << 63;
    const SWAPPED: u64 = 1 << 62;
    const FILE: u64 = 1 << 61;
    let page = page_size();
    let pages = (m.end - m.start) / page;
    let mut buf = vec![0u8; pages * 8];
    pagemap.read_exact_at(&mut buf, (m.start / page * 8) as u64)?;
    Ok(buf.chunks_exact(8).any(|c| {
        let e = u64::from_ne_bytes(c.try_into().unwrap_or_default());
        e & SWAPPED != 0 || (e & PRESENT != 0 && e & FILE == 0)
    }))
}

fn page_size() -> usize {
    // SAFETY: sysconf with an integer argument.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

/// Map the same part of the clone over the mapping, in one step.
fn map_again(m: &Mapping, file: &std::fs::File) -> io::Result<()> {
    // SAFETY: MAP_FIXED replaces exactly the range of a mapping of the
    // same file at the same offset and protection whose pages are all the
    // file's (has_private_pages): every byte at these addresses reads the
    // same before and after, and the kernel replaces the range under its
    // mmap lock, so no instruction is fetched from an unmapped page even
    // when this code runs from it. One thread: no one else is in it.
    let p = unsafe {
        libc::mmap(
            m.start as *mut libc::c_void,
            m.end - m.start,
            m.prot,
            libc::MAP_PRIVATE | libc::MAP_FIXED,
            file.as_raw_fd(),
            m.offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED || p as usize != m.start {
        return Err(io::Error::other(format!(
            "map {:x}-{:x} from the clone: {}",
            m.start,
            m.end,
            io::Error::last_os_error()
        )));
    }
    Ok(())
}

/// Copy the mapping into anonymous memory and move that over it. Nothing
/// between the copy and the move may write memory other than the stack
/// (no allocation, no formatting): a write to the old pages in between
/// would be lost.
fn copy_over(m: &Mapping) -> io::Result<()> {
    let len = m.end - m.start;
    // SAFETY: a fresh private anonymous mapping at an address of the
    // kernel's choice; it overlaps nothing of ours.
    let new = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if new == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both ranges are mapped and readable (binary_mappings keeps
    // only readable ones), `new` writable, and they are distinct mappings.
    unsafe { std::ptr::copy_nonoverlapping(m.start as *const u8, new as *mut u8, len) };
    // SAFETY: mprotect and mremap of the mapping made above; mremap moves
    // its pages over [start, end) in one step under the mmap lock,
    // replacing the old mapping whose bytes they copy. One thread: nothing
    // else reads or writes the range meanwhile.
    let moved = unsafe {
        if libc::mprotect(new, len, m.prot) != 0 {
            let e = io::Error::last_os_error();
            libc::munmap(new, len);
            return Err(e);
        }
        libc::mremap(
            new,
            len,
            len,
            libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED,
            m.start as *mut libc::c_void,
        )
    };
    if moved == libc::MAP_FAILED || moved as usize != m.start {
        let e = io::Error::last_os_error();
        // SAFETY: on failure `new` is still our mapping of len bytes.
        unsafe { libc::munmap(new, len) };
        return Err(e);
    }
    Ok(())
}

/// Every mapping of the binary, and /proc/self/exe, on the read-only mount
/// (the host file and the clone share device and inode: their mounts tell
/// them apart).
fn check_sealed(dev: u64, ino: u64) -> io::Result<()> {
    for m in binary_mappings(dev, ino)? {
        let f = std::fs::File::open(format!("/proc/self/map_files/{:x}-{:x}", m.start, m.end))?;
        if !read_only_mount(&f)? {
            return Err(io::Error::other(format!(
                "mapping {:x}-{:x} is still the host's file",
                m.start, m.end
            )));
        }
    }
    let exe = std::fs::File::open("/proc/self/exe")?;
    if !read_only_mount(&exe)? {
        return Err(io::Error::other("/proc/self/exe is still the host's file"));
    }
    Ok(())
}

fn read_only_mount(f: &std::fs::File) -> io::Result<bool> {
    let st = nix::sys::statvfs::fstatvfs(f).map_err(io::Error::from)?;
    Ok(st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

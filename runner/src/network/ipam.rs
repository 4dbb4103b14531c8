//! Address management for one network: a directory with one lease file
//! per address in use, named by the address, and a `lock` file whose
//! flock serialises allocation and whose content is the address given out
//! last (addresses are handed out in turn, as Docker and CNI's host-local
//! do, so a just-freed address is not reused while its old neighbour
//! entries may linger).
//!
//! A lease names its holder: the container's first process (pid, start
//! time) and the boot. When that process is gone, so is the container's
//! network namespace, and the lease is free: a killed rrun's leases are
//! taken back by the next allocation that meets them, with no reaper.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no free address left in {0}: every address has a running container")]
    Exhausted(Subnet),
    #[error("address {addr} is not one for a container in {subnet} (not its network, gateway or broadcast address)")]
    NotForContainers { addr: Ipv4Addr, subnet: Subnet },
    #[error("address {addr} is already in use by container {by}")]
    Taken { addr: Ipv4Addr, by: String },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> IpamError + 'a {
    move |source| IpamError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// An IPv4 subnet; the first host address is the gateway (the bridge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl std::str::FromStr for Subnet {
    type Err = String;

    /// `10.87.0.0/16`: a network address (no host bits) with a prefix of
    /// 8 to 30 bits.
    fn from_str(s: &str) -> Result<Subnet, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected ADDRESS/PREFIX, e.g. 10.87.0.0/16"))?;
        let network: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("{s:?}: {a:?} is not an IPv4 address"))?;
        let prefix: u8 = p
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("{s:?}: the prefix must be a number from 8 to 30"))?;
        let subnet = Subnet { network, prefix };
        if u32::from(network) & !subnet.mask() != 0 {
            return Err(format!(
                "{s:?}: host bits are set (did you mean {}/{prefix}?)",
                Ipv4Addr::from(u32::from(network) & subnet.mask())
            ));
        }
        Ok(subnet)
    }
}

impl Subnet {
    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix as u32)
    }

    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Container addresses: after the gateway, before the broadcast address.
    fn hosts(&self) -> (u32, u32) {
        let net = u32::from(self.network);
        (net + 2, (net | !self.mask()) - 1)
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.network)
    }
}

/// Who holds a lease: a container's first process in this boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub container: String,
    pub pid: i32,
    pub start_time: u64,
    pub boot: String,
}

impl Holder {
    /// The holder for the running process `pid`; `None` if it is gone.
    pub fn of(container: &str, pid: i32) -> Option<Holder> {
        Some(Holder {
            container: container.to_string(),
            pid,
            start_time: engine::fsutil::process_start_time(pid as u32)?,
            boot: boot_id(),
        })
    }

    pub(crate) fn line(&self) -> String {
        format!(
            "{} {} {} {}\n",
            self.container, self.pid, self.start_time, self.boot
        )
    }

    pub(crate) fn parse(s: &str) -> Option<Holder> {
        let mut it = s.split_whitespace();
        Some(Holder {
            container: it.next()?.to_string(),
            pid: it.next()?.parse().ok()?,
            start_time: it.next()?.parse().ok()?,
            boot: it.next()?.to_string(),
        })
    }

    /// Still running: a zombie counts as gone, since its namespaces (the
    /// network namespace with the address) went when it exited, and an
    /// orphan's zombie may wait a while for its new parent to reap it.
    pub fn alive(&self) -> bool {
        self.boot == boot_id()
            && matches!(process_state(self.pid), Some((state, start))
                if start == self.start_time && state != 'Z' && state != 'X')
    }
}

/// The state letter and start time of `pid`, from /proc/<pid>/stat.
fn process_state(pid: i32) -> Option<(char, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and ')'.
    let mut fields = stat[stat.rfind(')')? + 2..].split(' ');
    let state = fields.next()?.chars().next()?;
    Some((state, fields.nth(18)?.parse().ok()?))
}

fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The leases of one network.
#[derive(Debug, Clone)]
pub struct Ipam {
    dir: PathBuf,
    subnet: Subnet,
    /// An address never given out (a gateway other than the first host).
    skip: Option<Ipv4Addr>,
}

/// The exclusive lock of a network's state, held while it lives.
pub struct Locked {
    /// Closed before `_no_inherit` is released (fields drop in order).
    file: File,
    _no_inherit: std::sync::RwLockReadGuard<'static, ()>,
}

impl Locked {
    /// The address given out last.
    fn last(&mut self) -> Option<u32> {
        let mut s = String::new();
        self.file.seek(SeekFrom::Start(0)).ok()?;
        self.file.read_to_string(&mut s).ok()?;
        s.trim().parse::<Ipv4Addr>().ok().map(u32::from)
    }

    fn set_last(&mut self, a: Ipv4Addr) {
        let _ = self.file.set_len(0);
        let _ = self.file.seek(SeekFrom::Start(0));
        // One write (writeln! on a File makes one per piece).
        let _ = self.file.write_all(format!("{a}\n").as_bytes());
    }
}

impl Ipam {
    pub fn new(dir: PathBuf, subnet: Subnet) -> Ipam {
        Ipam {
            dir,
            subnet,
            skip: None,
        }
    }

    /// Never give out `a` (the gateway, wherever it is in the subnet).
    pub fn skipping(mut self, a: Ipv4Addr) -> Ipam {
        self.skip = Some(a);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Take the network's lock (created with its directory, root only).
    pub fn lock(&self) -> Result<Locked, IpamError> {
        // Before the file is opened: no child may be cloned holding it.
        let no_inherit = crate::sys::hold_no_inherit();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io_err("create", &self.dir))?;
        let path = self.dir.join("lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io_err("open", &path))?;
        loop {
            // SAFETY: flock on a descriptor we own; no memory is passed.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(io_err("lock", &path)(e));
            }
        }
        Ok(Locked {
            file,
            _no_inherit: no_inherit,
        })
    }

    /// A free address for `holder`, under the lock the caller holds.
    pub fn lease(&self, lock: &mut Locked, holder: &Holder) -> Result<Ipv4Addr, IpamError> {
        let (first, last) = self.subnet.hosts();
        let start = match lock.last() {
            Some(l) if l >= first && l < last => l + 1,
            _ => first,
        };
        let count = last - first + 1;
        for i in 0..count {
            let a = Ipv4Addr::from(first + (start - first + i) % count);
            if Some(a) == self.skip {
                continue;
            }
            let path = self.dir.join(a.to_string());
            let taken = match fs::read_to_string(&path) {
                Ok(s) => Holder::parse(&s).map(|h| h.alive()).unwrap_or(false),
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => return Err(io_err("read lease", &path)(e)),
            };
            if taken {
                continue;
            }
            // Under the lock: nobody else writes leases now.
            fs::write(&path, holder.line()).map_err(io_err("write lease", &path))?;
            lock.set_last(a);
            return Ok(a);
        }
        Err(IpamError::Exhausted(self.subnet))
    }

    /// `addr` for `holder` (`--ip`), if it is a container address of the
    /// subnet no running container holds; under the lock the caller holds.
    pub fn lease_addr(
        &self,
        _lock: &mut Locked,
        holder: &Holder,
        addr: Ipv4Addr,
    ) -> Result<Ipv4Addr, IpamError> {
        let (first, last) = self.subnet.hosts();
        let a = u32::from(addr);
        if !(first..=last).contains(&a) || Some(addr) == self.skip {
            return Err(IpamError::NotForContainers {
                addr,
                subnet: self.subnet,
            });
        }
        let path = self.dir.join(addr.to_string());
        match fs::read_to_string(&path) {
            Ok(s) => {
                if let Some(h) = Holder::parse(&s).filter(|h| h.alive()) {
                    return Err(IpamError::Taken {
                        addr,
                        by: h.container,
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read lease", &path)(e)),
        }
        fs::write(&path, holder.line()).map_err(io_err("write lease", &path))?;
        Ok(addr)
    }

    /// Give `addr` back if `container` still holds it (no lock needed: only
    /// the holder removes its own lease, and allocation only overwrites a
    /// lease whose holder is dead).
    pub fn release(&self, addr: Ipv4Addr, container: &str) {
        let path = self.dir.join(addr.to_string());
        if let Ok(s) = fs::read_to_string(&path) {
            if Holder::parse(&s).map(|h| h.container == container) == Some(true) {
                let _ = fs::remove_file(&path);
            }
        }
    }

    /// Remove the leases whose holders are gone (a killed rrun's), under
    /// the lock the caller holds. One small read per lease, like the
    /// container reaper's one state file per container.
    pub fn reap(&self, _lock: &mut Locked) {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return;
        };
        for e in rd.flatten() {
            if e.file_name()
                .to_str()
                .and_then(|n| n.parse::<Ipv4Addr>().ok())
                .is_none()
            {
                continue;
            }
            let alive = fs::read_to_string(e.path())
                .ok()
                .and_then(|s| Holder::parse(&s))
                .map(|h| h.alive())
                .unwrap_or(false);
            if !alive {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    /// The leases whose holders still run.
    pub fn in_use(&self) -> Vec<(Ipv4Addr, Holder)> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let a: Ipv4Addr = e.file_name().to_str()?.parse().ok()?;
                let h = Holder::parse(&fs::read_to_string(e.path()).ok()?)?;
                h.alive().then_some((a, h))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_and_reject_nonsense() {
        let s: Subnet = "10.87.0.0/16".parse().unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 87, 0, 1));
        assert_eq!(
            s.hosts(),
            (
                u32::from(Ipv4Addr::new(10, 87, 0, 2)),
                u32::from(Ipv4Addr::new(10, 87, 255, 254))
            )
        );
        assert!(s.contains(Ipv4Addr::new(10, 87, 3, 4)));
        assert!(!s.contains(Ipv4Addr::new(10, 88, 0, 1)));
        for bad in [
            "10.87.0.1/16",
            "10.87.0.0",
            "10.87.0.0/31",
            "x/16",
            "10.87.0.0/7",
        ] {
            assert!(bad.parse::<Subnet>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn addresses_go_out_in_turn_and_dead_holders_lose_them() {
        let dir = tempfile::tempdir().unwrap();
        let ipam = Ipam::new(dir.path().join("net"), "192.0.2.0/29".parse().unwrap());
        let me = Holder::of("me", std::process::id() as i32).unwrap();
        let mut lock = ipam.lock().unwrap();
        let got: Vec<Ipv4Addr> = (0..5)
            .map(|_| ipam.lease(&mut lock, &me).unwrap())
            .collect();
        assert_eq!(
            got,
            (2..=6)
                .map(|i| Ipv4Addr::new(192, 0, 2, i))
                .collect::<Vec<_>>()
        );
        assert!(matches!(
            ipam.lease(&mut lock, &me),
            Err(IpamError::Exhausted(_))
        ));
        // Released: free again; the next goes on from the last one given.
        ipam.release(Ipv4Addr::new(192, 0, 2, 3), "me");
        ipam.release(Ipv4Addr::new(192, 0, 2, 4), "someone else");
        assert_eq!(
            ipam.lease(&mut lock, &me).unwrap(),
            Ipv4Addr::new(192, 0, 2, 3)
        );
        // A lease of a process that is gone (a killed rrun's) is taken back.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        let dead = Holder::of("dead", pid).unwrap_or(Holder {
            container: "dead".into(),
            pid,
            start_time: 1,
            boot: boot_id(),
        });
        child.wait().unwrap();
        fs::write(dir.path().join("net/192.0.2.5"), dead.line()).unwrap();
        assert_eq!(
            ipam.lease(&mut lock, &me).unwrap(),
            Ipv4Addr::new(192, 0, 2, 5)
        );
        assert_eq!(ipam.in_use().len(), 5);
    }
}

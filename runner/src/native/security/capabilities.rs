//! Linux capabilities: names, Docker's default set, `--cap-add/--cap-drop`
//! resolution, and the syscalls that bound and set them.
//!
//! We call `capset(2)` and `prctl(2)` directly: the sets are three 64-bit
//! masks and a loop over the bounding set, too little to justify a crate.

use std::fmt;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum CapError {
    /// A `--cap-add/--cap-drop` name no kernel knows.
    #[error("unknown capability {0:?} (names are like CHOWN or CAP_CHOWN; see capabilities(7))")]
    Unknown(String),
    #[error("dropping {cap} from the bounding set failed: {source} (the runtime needs CAP_SETPCAP here)")]
    BoundingDrop { cap: Cap, source: nix::Error },
    #[error("capset(2) to {what} failed: {source}")]
    Capset { what: String, source: nix::Error },
    #[error("clearing the ambient capability set failed: {0}")]
    Ambient(nix::Error),
}

macro_rules! caps {
    ($($variant:ident = $num:literal, $name:literal;)*) => {
        /// One capability, numbered as in `<linux/capability.h>`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Cap { $($variant = $num,)* }

        impl Cap {
            /// Every capability this code knows, in kernel order.
            pub const ALL: &'static [Cap] = &[$(Cap::$variant,)*];

            /// The kernel's name, with the `CAP_` prefix.
            pub fn name(self) -> &'static str {
                match self { $(Cap::$variant => $name,)* }
            }
        }
    };
}

caps! {
    Chown = 0, "CAP_CHOWN";
    DacOverride = 1, "CAP_DAC_OVERRIDE";
    DacReadSearch = 2, "CAP_DAC_READ_SEARCH";
    Fowner = 3, "CAP_FOWNER";
    Fsetid = 4, "CAP_FSETID";
    Kill = 5, "CAP_KILL";
    Setgid = 6, "CAP_SETGID";
    Setuid = 7, "CAP_SETUID";
    Setpcap = 8, "CAP_SETPCAP";
    LinuxImmutable = 9, "CAP_LINUX_IMMUTABLE";
    NetBindService = 10, "CAP_NET_BIND_SERVICE";
    NetBroadcast = 11, "CAP_NET_BROADCAST";
    NetAdmin = 12, "CAP_NET_ADMIN";
    NetRaw = 13, "CAP_NET_RAW";
    IpcLock = 14, "CAP_IPC_LOCK";
    IpcOwner = 15, "CAP_IPC_OWNER";
    SysModule = 16, "CAP_SYS_MODULE";
    SysRawio = 17, "CAP_SYS_RAWIO";
    SysChroot = 18, "CAP_SYS_CHROOT";
    SysPtrace = 19, "CAP_SYS_PTRACE";
    SysPacct = 20, "CAP_SYS_PACCT";
    SysAdmin = 21, "CAP_SYS_ADMIN";
    SysBoot = 22, "CAP_SYS_BOOT";
    SysNice = 23, "CAP_SYS_NICE";
    SysResource = 24, "CAP_SYS_RESOURCE";
    SysTime = 25, "CAP_SYS_TIME";
    SysTtyConfig = 26, "CAP_SYS_TTY_CONFIG";
    Mknod = 27, "CAP_MKNOD";
    Lease = 28, "CAP_LEASE";
    AuditWrite = 29, "CAP_AUDIT_WRITE";
    AuditControl = 30, "CAP_AUDIT_CONTROL";
    Setfcap = 31, "CAP_SETFCAP";
    MacOverride = 32, "CAP_MAC_OVERRIDE";
    MacAdmin = 33, "CAP_MAC_ADMIN";
    Syslog = 34, "CAP_SYSLOG";
    WakeAlarm = 35, "CAP_WAKE_ALARM";
    BlockSuspend = 36, "CAP_BLOCK_SUSPEND";
    AuditRead = 37, "CAP_AUDIT_READ";
    Perfmon = 38, "CAP_PERFMON";
    Bpf = 39, "CAP_BPF";
    CheckpointRestore = 40, "CAP_CHECKPOINT_RESTORE";
}

/// Docker's default set (moby `oci/caps/defaults.go`): what a container's
/// root keeps unless `--cap-add/--cap-drop/--privileged` say otherwise.
pub const DEFAULT_CAPS: [Cap; 14] = [
    Cap::Chown,
    Cap::DacOverride,
    Cap::Fsetid,
    Cap::Fowner,
    Cap::Mknod,
    Cap::NetRaw,
    Cap::Setgid,
    Cap::Setuid,
    Cap::Setfcap,
    Cap::Setpcap,
    Cap::NetBindService,
    Cap::SysChroot,
    Cap::Kill,
    Cap::AuditWrite,
];

impl Cap {
    /// Parses `chown`, `CHOWN` or `CAP_CHOWN` (Docker accepts all three).
    pub fn parse(name: &str) -> Result<Cap, CapError> {
        let upper = name.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        Cap::ALL
            .iter()
            .copied()
            .find(|c| &c.name()[4..] == bare)
            .ok_or_else(|| CapError::Unknown(name.to_string()))
    }

    pub fn bit(self) -> u64 {
        1u64 << (self as u8)
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of capabilities as the kernel's 64-bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSet(pub u64);

impl CapSet {
    pub fn of(caps: &[Cap]) -> CapSet {
        CapSet(caps.iter().fold(0, |m, c| m | c.bit()))
    }
    pub fn all() -> CapSet {
        CapSet::of(Cap::ALL)
    }
    pub fn contains(self, cap: Cap) -> bool {
        self.0 & cap.bit() != 0
    }

    /// The capabilities in this process's bounding set: what a privileged
    /// container can be given here (a runtime asked for more fails in
    /// capset, as on hosts that are themselves containers).
    pub fn bounding() -> CapSet {
        CapSet::of(
            &Cap::ALL
                .iter()
                .copied()
                // SAFETY: PR_CAPBSET_READ takes an integer and touches no memory.
                .filter(|c| unsafe { libc::prctl(libc::PR_CAPBSET_READ, *c as u8 as libc::c_ulong, 0, 0, 0) } == 1)
                .collect::<Vec<_>>(),
        )
    }
}

/// Parses a list of names (as in `SecuritySpec::capabilities`), rejecting
/// unknown ones and `ALL`, which only `resolve` understands.
pub fn parse_list(names: &[String]) -> Result<Vec<Cap>, CapError> {
    let mut caps = Vec::with_capacity(names.len());
    for n in names {
        let c = Cap::parse(n)?;
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    Ok(caps)
}

/// Docker's `--cap-add`/`--cap-drop` arithmetic (moby `TweakCapabilities`):
/// `--cap-add ALL` starts from every capability minus the drops;
/// `--cap-drop ALL` keeps only the adds; otherwise the default 14 minus the
/// drops plus the adds. Names are validated with or without `CAP_`.
pub fn resolve(add: &[String], drop: &[String]) -> Result<Vec<Cap>, CapError> {
    let is_all = |s: &String| s.trim().eq_ignore_ascii_case("ALL");
    let adds = parse_list(
        &add.iter()
            .filter(|s| !is_all(s))
            .cloned()
            .collect::<Vec<_>>(),
    )?;
    let drops = parse_list(
        &drop
            .iter()
            .filter(|s| !is_all(s))
            .cloned()
            .collect::<Vec<_>>(),
    )?;
    let mut caps: Vec<Cap> = if add.iter().any(is_all) {
        Cap::ALL
            .iter()
            .copied()
            .filter(|c| !drops.contains(c))
            .collect()
    } else if drop.iter().any(is_all) {
        adds
    } else {
        let mut v: Vec<Cap> = DEFAULT_CAPS
            .iter()
            .copied()
            .filter(|c| !drops.contains(c))
            .collect();
        v.extend(adds);
        v
    };
    caps.sort();
    caps.dedup();
    Ok(caps)
}

/// Drops every capability not in `keep` from the bounding set, including
/// numbers newer than this code knows (the loop ends where the kernel says
/// EINVAL). Needs CAP_SETPCAP in the effective set, so it runs before
/// setuid. Allocation-free: safe in a freshly cloned child.
pub fn drop_bounding(keep: CapSet) -> Result<(), CapError> {
    for n in 0u8..64 {
        // SAFETY: PR_CAPBSET_READ takes an integer and touches no memory.
        let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, n as libc::c_ulong, 0, 0, 0) };
        if present < 0 {
            break; // EINVAL: past the kernel's last capability
        }
        if present == 0 || keep.0 & (1u64 << n) != 0 {
            continue;
        }
        // SAFETY: as above, an integer argument only.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) };
        if r < 0 {
            let cap = Cap::ALL
                .get(n as usize)
                .copied()
                .unwrap_or(Cap::CheckpointRestore);
            return Err(CapError::BoundingDrop {
                cap,
                source: nix::Error::last(),
            });
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Sets this thread's effective, permitted and inheritable sets.
pub fn set_process_caps(
    effective: CapSet,
    permitted: CapSet,
    inheritable: CapSet,
) -> Result<(), CapError> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let lo = |s: CapSet| s.0 as u32;
    let hi = |s: CapSet| (s.0 >> 32) as u32;
    let data = [
        CapData {
            effective: lo(effective),
            permitted: lo(permitted),
            inheritable: lo(inheritable),
        },
        CapData {
            effective: hi(effective),
            permitted: hi(permitted),
            inheritable: hi(inheritable),
        },
    ];
    // SAFETY: capset reads one header and two data structs of the v3 ABI,
    // both live for the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if r < 0 {
        return Err(CapError::Capset {
            what: format!("effective={:#x} permitted={:#x}", effective.0, permitted.0),
            source: nix::Error::last(),
        });
    }
    Ok(())
}

/// This thread's permitted set (capget), to bound what we ask capset for:
/// a runtime started with fewer capabilities cannot grant more.
pub fn current_permitted() -> Result<CapSet, CapError> {
    let mut hdr = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget writes two v3 data structs into `data`, which has room.
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut hdr as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if r < 0 {
        return Err(CapError::Capset {
            what: "read the current sets (capget)".into(),
            source: nix::Error::last(),
        });
    }
    Ok(CapSet(
        data[0].permitted as u64 | (data[1].permitted as u64) << 32,
    ))
}

/// Empties the ambient set, so no capability is passed through execve
/// except by the rules for root.
pub fn clear_ambient() -> Result<(), CapError> {
    // SAFETY: integer arguments only.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if r < 0 {
        return Err(CapError::Ambient(nix::Error::last()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn names_parse_with_and_without_prefix() {
        assert_eq!(Cap::parse("CAP_SYS_ADMIN").unwrap(), Cap::SysAdmin);
        assert_eq!(Cap::parse("sys_admin").unwrap(), Cap::SysAdmin);
        assert_eq!(Cap::parse("cap_net_raw").unwrap(), Cap::NetRaw);
        assert!(matches!(
            Cap::parse("SYS_GODMODE"),
            Err(CapError::Unknown(_))
        ));
        assert!(Cap::parse("ALL").is_err());
        for (i, c) in Cap::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i, "{c} out of kernel order");
        }
    }

    #[test]
    fn resolve_follows_docker() {
        let mut def = DEFAULT_CAPS.to_vec();
        def.sort();
        assert_eq!(resolve(&[], &[]).unwrap(), def);
        let r = resolve(&s(&["SYS_ADMIN"]), &s(&["net_raw"])).unwrap();
        assert!(r.contains(&Cap::SysAdmin) && !r.contains(&Cap::NetRaw));
        assert_eq!(r.len(), 14);
        assert_eq!(
            resolve(&s(&["CHOWN"]), &s(&["ALL"])).unwrap(),
            vec![Cap::Chown]
        );
        let r = resolve(&s(&["all"]), &s(&["CAP_SYS_ADMIN"])).unwrap();
        assert_eq!(r.len(), Cap::ALL.len() - 1);
        assert!(resolve(&s(&["bogus"]), &[]).is_err());
        assert!(resolve(&[], &s(&["CAP_BOGUS"])).is_err());
    }
}

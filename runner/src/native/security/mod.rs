//! Docker's security defaults for the container process: capabilities,
//! no_new_privs, the seccomp filter, masked and read-only paths.
//!
//! # Call order (in the container child)
//!
//! ```text
//! parent, before clone:  let plan = SecurityPlan::new(&spec.security, spec.user.uid)?;
//! child:  mounts, pivot_root, /proc /sys /dev
//!         security::mask_paths(spec.security.privileged)?   // needs CAP_SYS_ADMIN
//!         plan.apply_before_setuid()?   // bounding set; seccomp too if !no_new_privileges
//!         setgroups / setgid / setuid   // by the runner core
//!         plan.apply_after_setuid()?    // capset, ambient, no_new_privs, seccomp
//!         execve (or init::run for --init)  // nothing in between
//! ```
//!
//! Why this order: dropping from the bounding set needs CAP_SETPCAP, so it
//! comes while we are still full root; setuid needs CAP_SETUID/SETGID in the
//! effective set, so the final `capset` comes after it. Loading a seccomp
//! filter needs no_new_privs or CAP_SYS_ADMIN: with no_new_privs we load it
//! last, so only `execve` runs under it; without, it must be loaded while
//! we still hold CAP_SYS_ADMIN (runc does the same), so what runs after it
//! (setgroups/setgid/setuid, capset, prctl, execve) is on its allow list.
//!
//! Capabilities follow moby's `SetCapabilities`: uid 0 gets the list in
//! the bounding, permitted and effective sets; any other uid gets it in the
//! bounding set only (empty permitted/effective, as execve would leave a
//! non-root user). The inheritable set is always empty (CVE-2022-24769)
//! and so is the ambient set.

pub mod bpf;
pub mod capabilities;
pub mod masked;
pub mod seccomp;
pub mod syscalls;

use engine::runtime::SecuritySpec;
use thiserror::Error;

pub use capabilities::{Cap, CapError, CapSet};
pub use masked::mask_paths;
pub use seccomp::SeccompProgram;

#[derive(Debug, Error)]
pub enum SecurityError {
    #[error(transparent)]
    Capabilities(#[from] CapError),
    #[error("setting no_new_privs failed: {0}")]
    NoNewPrivs(nix::Error),
    #[error("loading the seccomp filter failed: {0} (the kernel needs CONFIG_SECCOMP_FILTER, and no_new_privs or CAP_SYS_ADMIN)")]
    SeccompLoad(nix::Error),
    #[error("loading linux.seccomp failed: {0} (the kernel needs CONFIG_SECCOMP_FILTER and every flag the profile sets)")]
    OciSeccompLoad(nix::Error),
    #[error("{what} {uid}:{gid}: {source}")]
    Ids {
        what: &'static str,
        uid: u32,
        gid: u32,
        source: std::io::Error,
    },
    #[error("no default seccomp filter for {0}; run with --security-opt seccomp=unconfined")]
    SeccompUnsupportedArch(&'static str),
    #[error("cannot open {path} to mask it: {source}")]
    MaskOpen { path: String, source: nix::Error },
    #[error("masking {path}: {what} failed: {source}")]
    Mask {
        path: String,
        what: &'static str,
        source: nix::Error,
    },
    #[error("refusing to mask paths with the container's /dev/null: {0} (the runner must create /dev/null before masking)")]
    DevNull(&'static str),
}

/// Everything decided and allocated before the clone, so the child only
/// makes syscalls.
#[derive(Debug, Clone)]
pub struct SecurityPlan {
    /// The bounding set (and, for uid 0, permitted and effective).
    pub caps: CapSet,
    /// Whether the process runs as uid 0 after setuid.
    pub root: bool,
    pub no_new_privs: bool,
    pub seccomp: Option<SeccompProgram>,
    pub privileged: bool,
    /// An OCI bundle's five sets, used as given instead of the Docker
    /// scheme above (`caps` is then the bounding set).
    pub oci: Option<OciCaps>,
    /// An OCI bundle's `linux.seccomp`, compiled by libseccomp: loaded
    /// before setuid without no_new_privs, else last (see `enter`).
    pub oci_seccomp: Option<crate::ocispec::seccomp::Filter>,
}

/// Where `SecurityPlan::enter` failed: before or after the caller's
/// `ready` step (after it, create's caller has been told the container
/// is ready, so the failure goes to the container's stderr).
#[derive(Debug)]
pub enum EnterError {
    BeforeReady(SecurityError),
    AfterReady(SecurityError),
}

/// `process.capabilities` of an OCI runtime-spec config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OciCaps {
    pub bounding: CapSet,
    pub effective: CapSet,
    pub permitted: CapSet,
    pub inheritable: CapSet,
    pub ambient: CapSet,
}

impl SecurityPlan {
    /// For an OCI bundle: its capability sets and no_new_privs; its
    /// seccomp filter, if any, with `with_oci_seccomp`.
    pub fn oci(caps: OciCaps, no_new_privs: bool, uid: u32) -> SecurityPlan {
        SecurityPlan {
            caps: caps.bounding,
            root: uid == 0,
            no_new_privs,
            seccomp: None,
            privileged: false,
            oci: Some(caps),
            oci_seccomp: None,
        }
    }

    /// An OCI bundle's compiled `linux.seccomp`.
    pub fn with_oci_seccomp(mut self, f: Option<crate::ocispec::seccomp::Filter>) -> SecurityPlan {
        self.oci_seccomp = f;
        self
    }

    /// The security of a process entering an OCI container, from full
    /// root to just before its execve: the one order that create's first
    /// process follows, and that `exec` must follow too.
    ///
    /// 1. the bounding set (and keep-caps for a non-root user);
    /// 2. without noNewPrivileges, the `linux.seccomp` filter: loading
    ///    needs CAP_SYS_ADMIN then, so it comes while we still have it
    ///    (runc's order); what runs after it must be allowed by the
    ///    profile (`seccomp::NEEDED_AFTER_LOAD`, checked at create);
    /// 3. setgroups, setresgid, setresuid (`groups`, `gid`, `uid`);
    /// 4. the capability sets, the ambient set, no_new_privs;
    /// 5. `ready`: the caller's last steps (create: report ready, then
    ///    wait at the exec fifo until `start`);
    /// 6. with noNewPrivileges, the `linux.seccomp` filter, as late as
    ///    possible so that only execve runs under it.
    pub fn enter(
        &self,
        groups: &[u32],
        gid: u32,
        uid: u32,
        ready: impl FnOnce(),
    ) -> Result<(), EnterError> {
        self.apply_before_setuid()
            .map_err(EnterError::BeforeReady)?;
        crate::sys::set_ids_this_thread(groups, gid, uid).map_err(|(what, source)| {
            EnterError::BeforeReady(SecurityError::Ids {
                what,
                uid,
                gid,
                source,
            })
        })?;
        self.apply_after_setuid().map_err(EnterError::BeforeReady)?;
        ready();
        if let (Some(f), true) = (&self.oci_seccomp, self.no_new_privs) {
            f.load()
                .map_err(|e| EnterError::AfterReady(SecurityError::OciSeccompLoad(e)))?;
        }
        Ok(())
    }

    /// `uid` is the user the command runs as. Unknown capability names in
    /// `spec.capabilities` are refused here, before anything starts.
    pub fn new(spec: &SecuritySpec, uid: u32) -> Result<SecurityPlan, SecurityError> {
        let caps = if spec.privileged {
            CapSet::all()
        } else {
            match &spec.capabilities {
                Some(names) => CapSet::of(&capabilities::parse_list(names)?),
                None => CapSet::of(&capabilities::DEFAULT_CAPS),
            }
        };
        let seccomp = if spec.seccomp && !spec.privileged {
            Some(SeccompProgram::default_filter(caps)?)
        } else {
            None
        };
        Ok(SecurityPlan {
            caps,
            root: uid == 0,
            no_new_privs: spec.no_new_privileges,
            seccomp,
            privileged: spec.privileged,
            oci: None,
            oci_seccomp: None,
        })
    }

    /// In the child, still full root, before setgroups/setgid/setuid.
    pub fn apply_before_setuid(&self) -> Result<(), SecurityError> {
        if let Some(oci) = &self.oci {
            capabilities::drop_bounding(oci.bounding)?;
            if !self.root && oci.permitted.0 != 0 {
                // Keep the permitted set across setuid to a non-root uid;
                // the final capset then trims it to what was asked.
                // SAFETY: integer arguments only.
                unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1 as libc::c_ulong, 0, 0, 0) };
            }
            if let (Some(f), false) = (&self.oci_seccomp, self.no_new_privs) {
                f.load().map_err(SecurityError::OciSeccompLoad)?;
            }
            return Ok(());
        }
        if !self.privileged {
            capabilities::drop_bounding(self.caps)?;
        }
        if let (Some(filter), false) = (&self.seccomp, self.no_new_privs) {
            filter.load()?;
        }
        Ok(())
    }

    /// In the child, after setuid, immediately before execve.
    pub fn apply_after_setuid(&self) -> Result<(), SecurityError> {
        if let Some(oci) = &self.oci {
            let held = capabilities::current_permitted()?.0;
            let permitted = CapSet(oci.permitted.0 & held);
            let effective = CapSet(oci.effective.0 & permitted.0);
            capabilities::set_process_caps(effective, permitted, oci.inheritable)?;
            capabilities::clear_ambient()?;
            // The kernel keeps an ambient capability only if it is both
            // permitted and inheritable (runc and crun skip the others too).
            let ambient = oci.ambient.0 & permitted.0 & oci.inheritable.0;
            for cap in Cap::ALL.iter().filter(|c| ambient & c.bit() != 0) {
                // SAFETY: integer arguments only.
                let r = unsafe {
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                        *cap as u8 as libc::c_ulong,
                        0,
                        0,
                    )
                };
                if r < 0 {
                    return Err(CapError::Ambient(nix::Error::last()).into());
                }
            }
            if self.no_new_privs {
                set_no_new_privs()?;
            }
            return Ok(());
        }
        // Capabilities rrun itself lacks (say, a host that withholds one)
        // cannot be granted; they are left out rather than failing the run,
        // as they are already absent from the bounding set.
        let held = if self.root {
            CapSet(self.caps.0 & capabilities::current_permitted()?.0)
        } else {
            CapSet(0)
        };
        capabilities::set_process_caps(held, held, CapSet(0))?;
        capabilities::clear_ambient()?;
        if self.no_new_privs {
            set_no_new_privs()?;
            if let Some(filter) = &self.seccomp {
                filter.load()?;
            }
        }
        Ok(())
    }
}

/// Both halves for a process that stays root (no setuid in between): the
/// shape the runner uses when the user is uid 0. For other users, use
/// `SecurityPlan` and call the halves around setuid.
pub fn apply(spec: &SecuritySpec) -> Result<(), SecurityError> {
    let plan = SecurityPlan::new(spec, nix::unistd::geteuid().as_raw())?;
    plan.apply_before_setuid()?;
    plan.apply_after_setuid()
}

/// PR_SET_NO_NEW_PRIVS: execve can no longer grant privileges (setuid
/// bits, file capabilities); inherited by every descendant.
pub fn set_no_new_privs() -> Result<(), SecurityError> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) };
    if r < 0 {
        return Err(SecurityError::NoNewPrivs(nix::Error::last()));
    }
    Ok(())
}

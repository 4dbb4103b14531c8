//! The seam to the security module (capabilities, no_new_privs, seccomp,
//! masked paths), the tty and the --init reaper, which are written beside
//! this crate's core. Until they are wired in here, these are
//! pass-throughs; the call sites in `spawn` are final.

use engine::runtime::SecuritySpec;

/// Decided in the parent before the clone (allocations happen here).
#[derive(Debug, Clone)]
pub struct SecurityPlan {
    #[allow(dead_code)]
    spec: SecuritySpec,
}

pub fn security_plan(spec: &SecuritySpec, _uid: u32) -> Result<SecurityPlan, String> {
    Ok(SecurityPlan { spec: spec.clone() })
}

impl SecurityPlan {
    /// In the child, as root, before setgroups/setgid/setuid.
    pub fn before_setuid(&self) -> Result<(), String> {
        Ok(())
    }

    /// In the child, after setuid; the last thing before execve.
    pub fn after_setuid(&self) -> Result<(), String> {
        Ok(())
    }
}

/// In the child after pivot_root, with /proc, /sys and /dev mounted.
pub fn mask_paths(_privileged: bool) -> Result<(), String> {
    Ok(())
}

/// Whether `-t` can be honoured.
pub fn tty_available() -> bool {
    false
}

/// Whether `--init` can be honoured.
pub fn init_available() -> bool {
    false
}

/// Become the --init reaper as PID 1, running `argv` as its child. Never returns.
pub fn run_init(_argv: &[std::ffi::CString], _envp: &[std::ffi::CString]) -> ! {
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(125) }
}

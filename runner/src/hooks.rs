//! The seam to the security module (capabilities, no_new_privs, seccomp,
//! masked paths) and the --init reaper, kept as one small adapter so the
//! child code in `spawn` and `exec` calls them with plain `String` errors.

use engine::runtime::SecuritySpec;

/// Decided in the parent before the clone (allocations happen here).
#[derive(Debug, Clone)]
pub struct SecurityPlan(crate::security::SecurityPlan);

pub fn security_plan(spec: &SecuritySpec, uid: u32) -> Result<SecurityPlan, String> {
    crate::security::SecurityPlan::new(spec, uid)
        .map(SecurityPlan)
        .map_err(|e| e.to_string())
}

impl SecurityPlan {
    /// A plan decided elsewhere (an OCI bundle's capability sets).
    pub fn from_plan(plan: crate::security::SecurityPlan) -> SecurityPlan {
        SecurityPlan(plan)
    }

    /// In the child, as root, before setgroups/setgid/setuid.
    pub fn before_setuid(&self) -> Result<(), String> {
        self.0.apply_before_setuid().map_err(|e| e.to_string())
    }

    /// In the child, after setuid; the last thing before execve.
    pub fn after_setuid(&self) -> Result<(), String> {
        self.0.apply_after_setuid().map_err(|e| e.to_string())
    }
}

/// In the child after pivot_root, with /proc, /sys and /dev mounted.
pub fn mask_paths(privileged: bool) -> Result<(), String> {
    crate::security::mask_paths(privileged).map_err(|e| e.to_string())
}

/// Become the --init reaper as PID 1, running `argv` as its child. Never returns.
pub fn run_init(argv: &[std::ffi::CString], envp: &[std::ffi::CString]) -> ! {
    crate::init::run(argv, envp)
}

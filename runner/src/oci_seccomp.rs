//! rbox's default seccomp filter as an OCI runtime-spec profile, for
//! `config.json` (`linux.seccomp`), so crun and runc refuse what the native
//! runner refuses. The tables are security::seccomp's own; only the shape
//! differs: a deny list on top of `SCMP_ACT_ALLOW`, for the same two ABIs.
//!
//! "Any of these flag bits set" has no single libseccomp comparison, so
//! `clone` and `unshare` get one rule per namespace bit (rules for one
//! syscall are OR'd; the comparisons inside one rule are AND'd).

use serde_json::{json, Value};

use crate::security::seccomp::{
    AF_VSOCK, CLONE_NS_FLAGS, DENIED, SAFE_PERSONALITIES, UNSHARE_NS_FLAGS,
};

/// libseccomp's names of the ABIs the native filter covers (its x86_64 and
/// i386 blocks). x32 is left out on purpose: a syscall of an ABI outside
/// the list meets the runtime's bad-arch action, as the native filter
/// refuses every x32 number.
fn architectures() -> Option<[&'static str; 2]> {
    if cfg!(target_arch = "x86_64") {
        Some(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
    } else {
        None
    }
}

fn errno_rule(names: &[&str], errno: i32, args: Vec<Value>) -> Value {
    let mut rule = json!({"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": errno});
    if !args.is_empty() {
        rule["args"] = Value::Array(args);
    }
    rule
}

fn bits(mask: u32) -> impl Iterator<Item = u32> {
    (0..32).map(|b| 1u32 << b).filter(move |b| mask & b != 0)
}

/// The profile, or `None` on an architecture the native filter does not
/// cover either (the caller refuses to run without a filter there).
pub fn default_profile() -> Option<Value> {
    let arches = architectures()?;
    let eperm = libc::EPERM;
    let denied: Vec<&str> = DENIED.iter().map(|d| d.0).collect();
    let mut syscalls = vec![
        errno_rule(&denied, eperm, Vec::new()),
        // ENOSYS, so libc falls back to clone(2), whose flags are visible.
        errno_rule(&["clone3"], libc::ENOSYS, Vec::new()),
        errno_rule(
            &["socket"],
            eperm,
            vec![json!({"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_EQ"})],
        ),
        // Refused unless one of Docker's allowed personalities: an AND of
        // "not equal" over the same argument.
        errno_rule(
            &["personality"],
            eperm,
            SAFE_PERSONALITIES
                .iter()
                .map(|p| json!({"index": 0, "value": p, "op": "SCMP_CMP_NE"}))
                .collect(),
        ),
    ];
    for (name, mask) in [("clone", CLONE_NS_FLAGS), ("unshare", UNSHARE_NS_FLAGS)] {
        for bit in bits(mask) {
            syscalls.push(errno_rule(
                &[name],
                eperm,
                vec![
                    json!({"index": 0, "value": bit, "valueTwo": bit, "op": "SCMP_CMP_MASKED_EQ"}),
                ],
            ));
        }
    }
    Some(json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": arches,
        "syscalls": syscalls,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_denies_the_native_list_and_every_namespace_bit() {
        let p = default_profile().expect("x86_64");
        let rules = p["syscalls"].as_array().unwrap();
        let names = rules[0]["names"].as_array().unwrap();
        assert_eq!(names.len(), DENIED.len());
        for n in ["mount", "umount2", "keyctl", "bpf", "setns", "kexec_load"] {
            assert!(names.iter().any(|v| v == n), "{n} missing");
        }
        assert_eq!(rules[0]["errnoRet"], libc::EPERM);
        let unshare: Vec<u64> = rules
            .iter()
            .filter(|r| r["names"][0] == "unshare")
            .map(|r| r["args"][0]["value"].as_u64().unwrap())
            .collect();
        assert!(unshare.contains(&(libc::CLONE_NEWUSER as u64)));
        assert_eq!(
            unshare.iter().fold(0, |a, b| a | b),
            UNSHARE_NS_FLAGS as u64
        );
    }
}

//! rbox's default seccomp filter as an OCI runtime-spec profile, for
//! `config.json` (`linux.seccomp`), so crun and runc refuse what the native
//! runner refuses. The policy is security::seccomp's own (the allow list,
//! the capability-conditional calls and the argument conditions); only
//! the shape differs: rules of a libseccomp profile on top of
//! `SCMP_ACT_ERRNO` (EPERM), for the same two ABIs.
//!
//! Rules for one syscall are OR'd by the runtimes, and the comparisons
//! inside one rule AND'd, so "any family but 38 and 40" is three rules
//! (below 38, 39, above 40) and "one of Docker's personalities" five, as
//! in Docker's own profile.

use serde_json::{json, Value};

use crate::native::security::capabilities::{Cap, CapSet};
use crate::native::security::seccomp::{
    ALLOWED, ALLOWED_NATIVE, BY_CAP, CLONE_NS_FLAGS, REFUSED_FAMILIES, SAFE_PERSONALITIES,
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

fn allow(names: &[&str], args: Vec<Value>) -> Value {
    let mut rule = json!({"names": names, "action": "SCMP_ACT_ALLOW"});
    if !args.is_empty() {
        rule["args"] = Value::Array(args);
    }
    rule
}

fn arg0(op: &str, value: u32) -> Vec<Value> {
    vec![json!({"index": 0, "value": value, "op": op})]
}

/// The profile for a container whose bounding set is `caps`, or `None` on
/// an architecture the native filter does not cover either (the caller
/// refuses to run without a filter there).
pub fn default_profile(caps: CapSet) -> Option<Value> {
    let arches = architectures()?;
    let mut names: Vec<&str> = ALLOWED.iter().chain(ALLOWED_NATIVE).copied().collect();
    for (cap, extra) in BY_CAP {
        if caps.contains(*cap) {
            names.extend(extra.iter().copied());
        }
    }
    names.sort_unstable();
    names.dedup();
    let mut syscalls = vec![allow(&names, Vec::new())];
    if !caps.contains(Cap::SysAdmin) {
        syscalls.push(allow(
            &["clone"],
            vec![json!({"index": 0, "value": CLONE_NS_FLAGS, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"})],
        ));
        // ENOSYS, so libc falls back to clone(2), whose flags are visible.
        syscalls.push(
            json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}),
        );
    }
    // Any family but the refused ones, which must be two apart (38, 40).
    let [lo, hi] = [REFUSED_FAMILIES[0], REFUSED_FAMILIES[1]];
    debug_assert_eq!(lo + 2, hi);
    syscalls.push(allow(&["socket"], arg0("SCMP_CMP_LT", lo)));
    syscalls.push(allow(&["socket"], arg0("SCMP_CMP_EQ", lo + 1)));
    syscalls.push(allow(&["socket"], arg0("SCMP_CMP_GT", hi)));
    for &p in SAFE_PERSONALITIES {
        syscalls.push(allow(&["personality"], arg0("SCMP_CMP_EQ", p)));
    }
    Some(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": arches,
        "syscalls": syscalls,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::security::capabilities::DEFAULT_CAPS;

    fn names_of(p: &Value) -> Vec<String> {
        p["syscalls"][0]["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn profile_is_the_allow_list() {
        let p = default_profile(CapSet::of(&DEFAULT_CAPS)).expect("x86_64");
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(p["defaultErrnoRet"], libc::EPERM);
        let names = names_of(&p);
        for n in ["read", "execve", "futex", "arch_prctl", "chroot", "ptrace"] {
            assert!(names.iter().any(|v| v == n), "{n} missing");
        }
        for n in [
            "mount",
            "umount2",
            "keyctl",
            "bpf",
            "setns",
            "kexec_load",
            "unshare",
            "clone",
            "socket",
        ] {
            assert!(!names.iter().any(|v| v == n), "{n} allowed unconditionally");
        }
        let rules = p["syscalls"].as_array().unwrap();
        let clone: Vec<&Value> = rules.iter().filter(|r| r["names"][0] == "clone").collect();
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0]["args"][0]["value"], CLONE_NS_FLAGS);
        assert_eq!(clone[0]["args"][0]["valueTwo"], 0);
        let clone3 = rules.iter().find(|r| r["names"][0] == "clone3").unwrap();
        assert_eq!(clone3["errnoRet"], libc::ENOSYS);
    }

    #[test]
    fn sys_admin_opens_mount_and_namespaces() {
        let caps = CapSet(CapSet::of(&DEFAULT_CAPS).0 | CapSet::of(&[Cap::SysAdmin]).0);
        let p = default_profile(caps).unwrap();
        let names = names_of(&p);
        for n in ["mount", "setns", "unshare", "clone", "clone3"] {
            assert!(names.iter().any(|v| v == n), "{n} missing");
        }
        let rules = p["syscalls"].as_array().unwrap();
        assert!(!rules.iter().any(|r| r["action"] == "SCMP_ACT_ERRNO"));
    }

    /// The socket and personality rules, evaluated as libseccomp would (a
    /// rule matches: allowed), allow exactly what the native filter does.
    #[test]
    fn argument_rules_allow_what_the_native_filter_allows() {
        let p = default_profile(CapSet::of(&DEFAULT_CAPS)).unwrap();
        let rules = p["syscalls"].as_array().unwrap();
        let allowed = |name: &str, x: u64| {
            rules.iter().filter(|r| r["names"][0] == name).any(|r| {
                let a = &r["args"][0];
                let v = a["value"].as_u64().unwrap();
                match a["op"].as_str().unwrap() {
                    "SCMP_CMP_LT" => x < v,
                    "SCMP_CMP_EQ" => x == v,
                    "SCMP_CMP_GT" => x > v,
                    op => panic!("unexpected {op}"),
                }
            })
        };
        for f in 0..64u64 {
            assert_eq!(
                allowed("socket", f),
                !REFUSED_FAMILIES.contains(&(f as u32)),
                "AF {f}"
            );
        }
        for x in [
            0u64,
            1,
            7,
            8,
            9,
            0x20000,
            0x20008,
            0x40000,
            0xffff_fffe,
            0xffff_ffff,
        ] {
            assert_eq!(
                allowed("personality", x),
                SAFE_PERSONALITIES.contains(&(x as u32)),
                "personality {x:#x}"
            );
        }
    }
}

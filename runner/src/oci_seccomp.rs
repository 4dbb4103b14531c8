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

/// `personality` is refused unless its argument is one of Docker's
/// allowed values (0, 8, 0x20000, 0x20008, 0xffffffff). "Not one of
/// these" needs several comparisons of one argument, which the runtimes
/// OR (runc and crun add each as a rule of its own), so it is spelt as a
/// union of single masked comparisons instead, on the low 32 bits as the
/// native filter reads them:
/// - bit 31 clear and any bit but 3 and 17 set (1..7, 0x10, ...);
/// - bit 31 set and any other bit clear (all but 0xffffffff).
///
/// What is left is bit 31 clear with only bits 3 and 17: 0, 8, 0x20000,
/// 0x20008; and 0xffffffff. The test below checks this against the table.
fn personality_conditions() -> Vec<Value> {
    const TOP: u32 = 1 << 31;
    let allowed_bits = SAFE_PERSONALITIES
        .iter()
        .filter(|p| **p & TOP == 0)
        .fold(0, |a, p| a | p);
    let masked = |mask: u32, value: u32| json!({"index": 0, "value": mask, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ"});
    let low = bits(!(allowed_bits | TOP)).map(|b| masked(b | TOP, b));
    let high = bits(!TOP).map(|b| masked(b | TOP, TOP));
    low.chain(high).collect()
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
    ];
    for args in personality_conditions() {
        syscalls.push(errno_rule(&["personality"], eperm, vec![args]));
    }
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

    /// The personality rules, evaluated as libseccomp would (any rule
    /// matches: refused), decide like the native table for values around
    /// every allowed one and every single and double bit.
    #[test]
    fn personality_rules_refuse_exactly_what_the_native_table_does() {
        let rules = personality_conditions();
        let refused = |x: u32| {
            rules.iter().any(|c| {
                let (m, v) = (
                    c["value"].as_u64().unwrap(),
                    c["valueTwo"].as_u64().unwrap(),
                );
                (x as u64) & m == v
            })
        };
        let mut values: Vec<u32> = Vec::new();
        for &p in SAFE_PERSONALITIES {
            values.extend([p, p.wrapping_add(1), p.wrapping_sub(1)]);
        }
        for a in 0..32 {
            for b in 0..32 {
                values.extend([1u32 << a | 1u32 << b, !(1u32 << a | 1u32 << b)]);
            }
        }
        for x in values {
            assert_eq!(
                refused(x),
                !SAFE_PERSONALITIES.contains(&x),
                "personality({x:#x})"
            );
        }
    }
}

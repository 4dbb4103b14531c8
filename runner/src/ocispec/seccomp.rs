//! `linux.seccomp` of a config.json, compiled with libseccomp (the
//! library runc, crun and youki use) into a BPF program in the parent,
//! before the clone; the container's process only loads it with one
//! seccomp(2) call (`Filter::load`), so it allocates nothing there.
//!
//! What libseccomp does for us: the per-architecture syscall numbers of
//! every architecture listed (and the native one), the architecture
//! checks, argument comparisons on 64-bit values, and the layout of the
//! program. What is checked here: every field by its JSON path, so a
//! bad profile is refused with the path of what is wrong
//! (`linux.seccomp.syscalls[3].args[0].op: unknown operator "X"`).
//!
//! As runc does: syscall names libseccomp does not know on this machine
//! are skipped (a profile lists calls of newer kernels and other
//! architectures), and so are rules whose action is the default one
//! (libseccomp refuses those). Several conditions on the same argument of
//! one rule become one rule per condition (libseccomp cannot AND two
//! comparisons of one argument; runc ORs them the same way).
//!
//! Not supported, and refused by name: `SCMP_ACT_NOTIFY`, `listenerPath`
//! and `listenerMetadata` (a user-space agent answering syscalls), and the
//! `SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV` flag that only matters to it.

use std::collections::BTreeMap;
use std::io::{Read, Seek};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompOperator};
use serde_json::Value;

use super::{invalid, unsupported, Result};

const FIELD: &str = "linux.seccomp";

/// The flags of `linux.seccomp.flags` rbox-runtime passes to seccomp(2).
pub const FLAGS: &[(&str, libc::c_uint)] = &[
    (
        "SECCOMP_FILTER_FLAG_TSYNC",
        libc::SECCOMP_FILTER_FLAG_TSYNC as libc::c_uint,
    ),
    (
        "SECCOMP_FILTER_FLAG_LOG",
        libc::SECCOMP_FILTER_FLAG_LOG as libc::c_uint,
    ),
    (
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as libc::c_uint,
    ),
];

/// The actions rbox-runtime supports (all but SCMP_ACT_NOTIFY).
pub const ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_LOG",
];

/// The argument operators (all of the runtime-spec's).
pub const OPERATORS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// The architectures libseccomp knows (`SCMP_ARCH_*`).
pub const ARCHES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
];

/// What the runtime itself calls after loading a filter without
/// `noNewPrivileges` (loaded then while it still holds CAP_SYS_ADMIN,
/// before dropping to the user): the ids, the capability sets, the
/// signal reset, the ready report and the start gate, then execve.
/// runc makes the same calls after its load; a profile that refuses one
/// unconditionally is refused at create rather than failing half-way.
pub const NEEDED_AFTER_LOAD: &[&str] = &[
    "setgroups",
    "setresgid",
    "setresuid",
    "capget",
    "capset",
    "prctl",
    "umask",
    "rt_sigaction",
    "rt_sigprocmask",
    "write",
    "close",
    "read",
    "execve",
];

/// A compiled profile: the BPF program libseccomp made and the flags
/// for seccomp(2). Loaded in the container's process by `load`.
#[derive(Clone)]
pub struct Filter {
    insns: Vec<libc::sock_filter>,
    flags: libc::c_uint,
    /// Names skipped because libseccomp does not know them here, as
    /// `syscalls[i]: name` (reported at debug level).
    pub skipped: Vec<String>,
    /// Rules added to the filter.
    pub rules: usize,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seccomp::Filter({} instructions, {} rules, flags {:#x})",
            self.insns.len(),
            self.rules,
            self.flags
        )
    }
}

impl Filter {
    /// The filter as JSON (`seccomp_cache`): flags, rules, skipped names
    /// and the instructions as `[code, jt, jf, k]`.
    pub(crate) fn to_json(&self) -> Value {
        serde_json::json!({
            "flags": self.flags,
            "rules": self.rules,
            "skipped": self.skipped,
            "insns": self.insns.iter().map(|i| [i.code as u32, i.jt as u32, i.jf as u32, i.k]).collect::<Vec<_>>(),
        })
    }

    /// `to_json`'s output back; `None` if it is not one (an empty or
    /// oversized program, a field out of range).
    pub(crate) fn from_json(v: &Value) -> Option<Filter> {
        let insns = v["insns"]
            .as_array()?
            .iter()
            .map(|i| {
                let n = |k: usize| i.get(k).and_then(Value::as_u64);
                Some(libc::sock_filter {
                    code: u16::try_from(n(0)?).ok()?,
                    jt: u8::try_from(n(1)?).ok()?,
                    jf: u8::try_from(n(2)?).ok()?,
                    k: u32::try_from(n(3)?).ok()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        if insns.is_empty() || insns.len() > u16::MAX as usize {
            return None;
        }
        Some(Filter {
            insns,
            flags: u32::try_from(v["flags"].as_u64()?).ok()?,
            skipped: v["skipped"]
                .as_array()?
                .iter()
                .map(|s| s.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()?,
            rules: usize::try_from(v["rules"].as_u64()?).ok()?,
        })
    }

    /// The number of BPF instructions.
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// seccomp(SECCOMP_SET_MODE_FILTER) with the profile's flags: needs
    /// no_new_privs or CAP_SYS_ADMIN. No allocation (safe in a cloned
    /// child).
    pub fn load(&self) -> std::result::Result<(), nix::Error> {
        let prog = libc::sock_fprog {
            len: self.insns.len() as libc::c_ushort,
            filter: self.insns.as_ptr() as *mut libc::sock_filter,
        };
        // SAFETY: the kernel reads `prog` and the instructions it points
        // to during the call only; both outlive it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                self.flags,
                &prog as *const libc::sock_fprog,
            )
        };
        if r < 0 {
            return Err(nix::Error::last());
        }
        Ok(())
    }
}

fn path(base: &str, key: &str) -> String {
    format!("{base}.{key}")
}

fn as_str<'a>(v: &'a Value, p: &str) -> Result<&'a str> {
    v.as_str().ok_or_else(|| invalid(p, "must be a string"))
}

fn as_u64(v: &Value, p: &str) -> Result<u64> {
    v.as_u64()
        .ok_or_else(|| invalid(p, "must be a non-negative integer"))
}

fn as_array<'a>(v: Option<&'a Value>, p: &str) -> Result<&'a [Value]> {
    match v {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(a)) => Ok(a),
        Some(_) => Err(invalid(p, "must be a list")),
    }
}

fn errno_ret(v: Option<&Value>, p: &str) -> Result<Option<u32>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let n = as_u64(v, p)?;
            u32::try_from(n)
                .ok()
                .filter(|n| *n <= 4095)
                .map(Some)
                .ok_or_else(|| invalid(p, format!("{n}: an errno is at most 4095")))
        }
    }
}

/// An action by name, with its errno (or trace message) if it takes one.
fn action(v: Option<&Value>, errno: Option<u32>, p: &str, errno_field: &str) -> Result<ScmpAction> {
    let v = v.ok_or_else(|| invalid(p, "required"))?;
    let name = as_str(v, p)?;
    let a = LinuxSeccompAction::from_str(name)
        .map_err(|_| invalid(p, format!("unknown action {name:?}")))?;
    let eperm = libc::EPERM as u32;
    let act = match a {
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno.unwrap_or(eperm) as i32),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno.unwrap_or(eperm) as u16),
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(unsupported(
                p,
                "SCMP_ACT_NOTIFY: handing syscalls to a seccomp agent (listenerPath)",
            ))
        }
    };
    if errno.is_some() && !matches!(act, ScmpAction::Errno(_) | ScmpAction::Trace(_)) {
        return Err(invalid(
            errno_field,
            format!(
                "set, but the action is {name} (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one)"
            ),
        ));
    }
    Ok(act)
}

fn operator(v: Option<&Value>, mask: u64, p: &str) -> Result<ScmpCompareOp> {
    let v = v.ok_or_else(|| invalid(p, "required"))?;
    let name = as_str(v, p)?;
    let op = LinuxSeccompOperator::from_str(name)
        .map_err(|_| invalid(p, format!("unknown operator {name:?}")))?;
    Ok(match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(mask),
    })
}

fn lib_err(p: &str, what: &str) -> impl FnOnce(libseccomp::error::SeccompError) -> super::OciError {
    let p = p.to_string();
    let what = what.to_string();
    move |e| invalid(p, format!("{what}: {e}"))
}

/// How the profile treats a syscall the runtime needs after loading.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Conditional,
    Refused,
}

fn allowing(a: ScmpAction) -> bool {
    matches!(a, ScmpAction::Allow | ScmpAction::Log)
}

/// Compile `linux.seccomp` (its raw JSON, so errors carry paths).
/// `no_new_privs`: `process.noNewPrivileges`, which decides when the
/// filter is loaded (see `security::SecurityPlan`), and so which of the
/// runtime's own calls the profile must allow.
pub fn compile(v: &Value, no_new_privs: bool) -> Result<Filter> {
    if !v.is_object() {
        return Err(invalid(FIELD, "must be an object"));
    }
    for key in ["listenerPath", "listenerMetadata"] {
        if v.get(key).is_some_and(|x| !x.is_null() && x != "") {
            return Err(unsupported(
                path(FIELD, key),
                "a seccomp agent (SCMP_ACT_NOTIFY)",
            ));
        }
    }
    let default_errno = errno_ret(v.get("defaultErrnoRet"), &path(FIELD, "defaultErrnoRet"))?;
    let default = action(
        v.get("defaultAction"),
        default_errno,
        &path(FIELD, "defaultAction"),
        &path(FIELD, "defaultErrnoRet"),
    )?;
    let mut ctx =
        ScmpFilterContext::new(default).map_err(lib_err(FIELD, "create a libseccomp filter"))?;
    let arch_field = path(FIELD, "architectures");
    for (i, a) in as_array(v.get("architectures"), &arch_field)?
        .iter()
        .enumerate()
    {
        let p = format!("{arch_field}[{i}]");
        let name = as_str(a, &p)?;
        let arch = ScmpArch::from_str(name)
            .ok()
            .filter(|a| *a != ScmpArch::Native)
            .ok_or_else(|| invalid(&p, format!("unknown architecture {name:?}")))?;
        ctx.add_arch(arch)
            .map_err(lib_err(&p, &format!("add architecture {name}")))?;
    }
    let flag_field = path(FIELD, "flags");
    let mut flags: libc::c_uint = 0;
    for (i, f) in as_array(v.get("flags"), &flag_field)?.iter().enumerate() {
        let p = format!("{flag_field}[{i}]");
        let name = as_str(f, &p)?;
        if name == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" {
            return Err(unsupported(
                p,
                format!("{name}: it only concerns a seccomp agent (SCMP_ACT_NOTIFY)"),
            ));
        }
        let (_, bit) = FLAGS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| invalid(&p, format!("unknown flag {name:?}")))?;
        // The same as libseccomp's attribute, which also checks that this
        // kernel and libseccomp know the flag.
        let set = if *bit == FLAGS[0].1 {
            ctx.set_ctl_tsync(true).map(|_| ())
        } else if *bit == FLAGS[1].1 {
            ctx.set_ctl_log(true).map(|_| ())
        } else {
            ctx.set_ctl_ssb(true).map(|_| ())
        };
        set.map_err(lib_err(&p, &format!("{name} on this kernel")))?;
        flags |= bit;
    }
    let entries = as_array(v.get("syscalls"), &path(FIELD, "syscalls"))?;
    let names_total: usize = entries
        .iter()
        .map(|e| {
            e.get("names")
                .and_then(|n| n.as_array())
                .map_or(0, |n| n.len())
        })
        .sum();
    if names_total > 32 {
        // A binary tree by syscall number instead of a linear list (runc
        // does the same past 32 calls): Docker's profile of ~370 calls is
        // then a few comparisons deep for any syscall.
        if let Err(e) = ctx.set_ctl_optimize(2) {
            super::debug(&format!("{FIELD}: libseccomp's binary tree: {e}"));
        }
    }
    // The runtime's own calls after a load without no_new_privs.
    let mut needed: BTreeMap<&str, Verdict> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut rules = 0;
    let sys_field = path(FIELD, "syscalls");
    for (i, s) in entries.iter().enumerate() {
        let base = format!("{sys_field}[{i}]");
        if !s.is_object() {
            return Err(invalid(&base, "must be an object"));
        }
        let errno = errno_ret(s.get("errnoRet"), &path(&base, "errnoRet"))?;
        let act = action(
            s.get("action"),
            errno,
            &path(&base, "action"),
            &path(&base, "errnoRet"),
        )?;
        let names_field = path(&base, "names");
        let names = as_array(s.get("names"), &names_field)?;
        if names.is_empty() {
            return Err(invalid(names_field, "must list at least one syscall"));
        }
        let args_field = path(&base, "args");
        let mut conds = Vec::new();
        let mut indexes = Vec::new();
        for (j, a) in as_array(s.get("args"), &args_field)?.iter().enumerate() {
            let ap = format!("{args_field}[{j}]");
            if !a.is_object() {
                return Err(invalid(&ap, "must be an object"));
            }
            let index = as_u64(
                a.get("index")
                    .ok_or_else(|| invalid(path(&ap, "index"), "required"))?,
                &path(&ap, "index"),
            )?;
            if index > 5 {
                return Err(invalid(
                    path(&ap, "index"),
                    format!("{index}: a syscall has arguments 0 to 5"),
                ));
            }
            let value = as_u64(
                a.get("value")
                    .ok_or_else(|| invalid(path(&ap, "value"), "required"))?,
                &path(&ap, "value"),
            )?;
            let two = match a.get("valueTwo") {
                None | Some(Value::Null) => 0,
                Some(x) => as_u64(x, &path(&ap, "valueTwo"))?,
            };
            // MASKED_EQ: (arg & value) == valueTwo; the others compare
            // with value.
            let op = operator(a.get("op"), value, &path(&ap, "op"))?;
            let datum = if matches!(op, ScmpCompareOp::MaskedEqual(_)) {
                two
            } else {
                value
            };
            conds.push(ScmpArgCompare::new(index as u32, op, datum));
            indexes.push(index);
        }
        let same_arg_twice = (1..indexes.len()).any(|k| indexes[..k].contains(&indexes[k]));
        for (k, n) in names.iter().enumerate() {
            let np = format!("{names_field}[{k}]");
            let name = as_str(n, &np)?;
            if let Some(&needed_name) = NEEDED_AFTER_LOAD.iter().find(|x| **x == name) {
                let verdict = if !conds.is_empty() {
                    Verdict::Conditional
                } else if allowing(act) {
                    Verdict::Allowed
                } else {
                    Verdict::Refused
                };
                let e = needed.entry(needed_name).or_insert(verdict);
                if *e == Verdict::Refused || verdict == Verdict::Allowed {
                    *e = verdict;
                }
            }
            let Ok(call) = ScmpSyscall::from_name(name) else {
                super::debug(&format!(
                    "{np}: {name:?} is unknown to libseccomp on this machine: skipped"
                ));
                skipped.push(format!("{base}: {name}"));
                continue;
            };
            if act == default {
                // libseccomp refuses a rule that does what the default does.
                continue;
            }
            if conds.is_empty() {
                ctx.add_rule(act, call)
                    .map_err(lib_err(&np, &format!("add a rule for {name}")))?;
                rules += 1;
            } else if same_arg_twice {
                for c in &conds {
                    ctx.add_rule_conditional(act, call, std::slice::from_ref(c))
                        .map_err(lib_err(&np, &format!("add a rule for {name}")))?;
                    rules += 1;
                }
            } else {
                ctx.add_rule_conditional(act, call, &conds)
                    .map_err(lib_err(&np, &format!("add a rule for {name}")))?;
                rules += 1;
            }
        }
    }
    if !no_new_privs {
        let refused: Vec<&str> = NEEDED_AFTER_LOAD
            .iter()
            .copied()
            .filter(|n| match needed.get(n) {
                Some(v) => *v == Verdict::Refused,
                None => !allowing(default),
            })
            .collect();
        if !refused.is_empty() {
            return Err(invalid(
                FIELD,
                format!(
                    "the profile refuses {}, which rbox-runtime calls after loading it when \
                     process.noNewPrivileges is false (the filter is then loaded while the \
                     process still holds CAP_SYS_ADMIN, before it drops to its user); allow \
                     them or set process.noNewPrivileges",
                    refused.join(", ")
                ),
            ));
        }
    }
    let insns = export(&ctx)?;
    Ok(Filter {
        insns,
        flags,
        skipped,
        rules,
    })
}

/// libseccomp's program as instructions, through a memfd (the
/// in-memory export needs libseccomp 2.6; Debian 12 has 2.5).
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>> {
    let other =
        |what: &str, e: std::io::Error| super::OciError::Other(format!("{FIELD}: {what}: {e}"));
    // SAFETY: a NUL-terminated name; the descriptor is owned below.
    let fd = unsafe { libc::memfd_create(c"rbox-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(other("memfd_create", std::io::Error::last_os_error()));
    }
    // SAFETY: fd was just created and is ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    ctx.export_bpf(fd.as_fd())
        .map_err(lib_err(FIELD, "export the BPF program"))?;
    let mut f = std::fs::File::from(fd);
    f.rewind().map_err(|e| other("rewind the BPF program", e))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)
        .map_err(|e| other("read the BPF program", e))?;
    let size = std::mem::size_of::<libc::sock_filter>();
    if bytes.len() % size != 0 || bytes.is_empty() || bytes.len() / size > u16::MAX as usize {
        return Err(super::OciError::Other(format!(
            "{FIELD}: libseccomp made a program of {} bytes",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(size)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> String {
        compile(&v, true).unwrap_err().to_string()
    }

    fn has_k(f: &Filter, k: u32) -> bool {
        f.insns.iter().any(|i| i.k == k)
    }

    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const AUDIT_ARCH_I386: u32 = 0x4000_0003;
    const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

    #[test]
    fn errors_name_the_path() {
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "op": "X"}]}]}));
        assert_eq!(
            e,
            "linux.seccomp.syscalls[1].args[0].op: unknown operator \"X\""
        );
        let e = err(json!({"defaultAction": "SCMP_ACT_NOPE"}));
        assert_eq!(
            e,
            "linux.seccomp.defaultAction: unknown action \"SCMP_ACT_NOPE\""
        );
        let e = err(json!({"syscalls": []}));
        assert_eq!(e, "linux.seccomp.defaultAction: required");
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]}));
        assert_eq!(
            e,
            "linux.seccomp.architectures[1]: unknown architecture \"SCMP_ARCH_VAX\""
        );
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_FAST"]}));
        assert_eq!(
            e,
            "linux.seccomp.flags[1]: unknown flag \"SECCOMP_FILTER_FLAG_FAST\""
        );
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}));
        assert!(
            e.starts_with("linux.seccomp.flags[0]: not supported"),
            "{e}"
        );
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
        assert!(
            e.starts_with("linux.seccomp.syscalls[0].action: not supported")
                && e.contains("SCMP_ACT_NOTIFY"),
            "{e}"
        );
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"}));
        assert!(
            e.starts_with("linux.seccomp.listenerPath: not supported"),
            "{e}"
        );
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}]}));
        assert!(
            e.starts_with("linux.seccomp.syscalls[0].errnoRet: set, but"),
            "{e}"
        );
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
        assert!(
            e.starts_with("linux.seccomp.syscalls[0].args[0].index: 6"),
            "{e}"
        );
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": [], "action": "SCMP_ACT_ERRNO"}]}));
        assert!(
            e.starts_with("linux.seccomp.syscalls[0].names: must list"),
            "{e}"
        );
        let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", 3], "action": "SCMP_ACT_ERRNO"}]}));
        assert_eq!(e, "linux.seccomp.syscalls[0].names[1]: must be a string");
    }

    #[test]
    fn unknown_names_and_default_action_rules_are_skipped() {
        let f = compile(
            &json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["read", "write", "no_such_call_rbox"], "action": "SCMP_ACT_ALLOW"},
                // The default (ERRNO with EPERM) again: skipped.
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                // ERRNO with another errno: a rule of its own.
                {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]}),
            true,
        )
        .unwrap();
        assert_eq!(f.skipped, ["linux.seccomp.syscalls[0]: no_such_call_rbox"]);
        assert_eq!(f.rules, 3);
        // SECCOMP_RET_ERRNO | 38 and | EPERM are both in the program.
        assert!(has_k(&f, 0x0005_0000 | 38));
        assert!(has_k(&f, 0x0005_0000 | libc::EPERM as u32));
    }

    #[test]
    fn every_listed_architecture_is_in_the_program() {
        let base = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_KILL_PROCESS"}]});
        let native = compile(&base, true).unwrap();
        assert!(has_k(&native, AUDIT_ARCH_X86_64));
        assert!(!has_k(&native, AUDIT_ARCH_I386));
        let mut multi = base.clone();
        multi["architectures"] = json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"]);
        let multi = compile(&multi, true).unwrap();
        assert!(has_k(&multi, AUDIT_ARCH_X86_64));
        assert!(has_k(&multi, AUDIT_ARCH_I386));
        assert!(has_k(&multi, AUDIT_ARCH_AARCH64));
        assert!(multi.len() > native.len());
    }

    #[test]
    fn conditions_flags_and_actions_compile() {
        let f = compile(
            &json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                "syscalls": [
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                           "op": "SCMP_CMP_MASKED_EQ"}]},
                // Two conditions on one argument: one rule each (OR).
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                          {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"},
                          {"index": 1, "value": 3, "op": "SCMP_CMP_LT"}]},
                {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
                {"names": ["kill"], "action": "SCMP_ACT_LOG"},
                {"names": ["tkill"], "action": "SCMP_ACT_TRAP"},
                {"names": ["reboot"], "action": "SCMP_ACT_KILL"},
                {"names": NEEDED_AFTER_LOAD, "action": "SCMP_ACT_ALLOW"}]}),
            false,
        )
        .unwrap();
        assert_eq!(
            f.flags,
            (libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW) as u32
        );
        assert_eq!(f.rules, 1 + 2 + 1 + 4 + NEEDED_AFTER_LOAD.len());
        assert!(has_k(&f, 2114060288), "the clone mask");
        assert!(has_k(&f, 0x7ff0_0000 | 7), "SECCOMP_RET_TRACE | 7");
        assert!(has_k(&f, 0x7ffc_0000), "SECCOMP_RET_LOG");
    }

    #[test]
    fn without_no_new_privs_the_runtimes_own_calls_must_be_allowed() {
        let deny_all = json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]});
        // With noNewPrivileges only execve runs under it: taken.
        assert!(compile(&deny_all, true).is_ok());
        let e = compile(&deny_all, false).unwrap_err().to_string();
        assert!(
            e.starts_with("linux.seccomp: the profile refuses setgroups, setresgid, setresuid,")
                && !e.contains(" read,")
                && e.contains("process.noNewPrivileges"),
            "{e}"
        );
        let e = compile(
            &json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["capset"], "action": "SCMP_ACT_ERRNO"}]}),
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("linux.seccomp: the profile refuses capset, which"),
            "{e}"
        );
    }
}

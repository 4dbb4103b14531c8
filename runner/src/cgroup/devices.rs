//! Which device nodes a container may use, as Docker allows them: any node
//! may be created (mknod), but only the usual harmless character devices
//! opened. Without this, CAP_MKNOD (one of Docker's default 14) lets a
//! container make a node for the host's disk or console in its rootfs and
//! read or write it. `--privileged` lifts the restriction, as in Docker.
//!
//! v1: the `devices` controller's exception lists, written per container.
//! v2: a `BPF_PROG_TYPE_CGROUP_DEVICE` program attached to the container's
//! group (cgroup2 has no device files; this is what runc and crun do too).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::{io_err, write_file, Result};

/// What the container may open.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Devices {
    /// Docker's default list (below).
    #[default]
    Default,
    /// Every device (`--privileged`).
    All,
    /// Docker's default list and these (`--device`).
    Plus(Vec<ExtraDevice>),
}

/// A character device a container may use beyond the default list
/// (`--device`), with Docker's access letters: `r`, `w`, `m`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExtraDevice {
    pub major: u32,
    pub minor: u32,
    pub access: String,
}

impl Devices {
    fn extra(&self) -> &[ExtraDevice] {
        match self {
            Devices::Plus(v) => v,
            _ => &[],
        }
    }
}

/// Character devices usable for read and write: (major, minor; None = any).
pub const ALLOWED_CHAR: [(u32, Option<u32>); 9] = [
    (1, Some(3)), // null
    (1, Some(5)), // zero
    (1, Some(7)), // full
    (1, Some(8)), // random
    (1, Some(9)), // urandom
    (5, Some(0)), // tty
    (5, Some(1)), // console
    (5, Some(2)), // ptmx
    (136, None),  // pts/N
];

/// v1: the `devices.allow` lines after `a` was written to `devices.deny`.
pub fn v1_allow_rules(extra: &[ExtraDevice]) -> Vec<String> {
    let mut rules = vec!["c *:* m".to_string(), "b *:* m".to_string()];
    for (major, minor) in ALLOWED_CHAR {
        let minor = minor.map_or("*".to_string(), |m| m.to_string());
        rules.push(format!("c {major}:{minor} rwm"));
    }
    for d in extra {
        rules.push(format!("c {}:{} {}", d.major, d.minor, d.access));
    }
    rules
}

/// The same policy as OCI runtime-spec `linux.resources.devices` rules,
/// for `--runtime crun|runc`: deny everything, then allow mknod of any
/// node and the list above; or allow everything (`--privileged`).
pub fn oci_rules(devices: Devices) -> serde_json::Value {
    use serde_json::json;
    if devices == Devices::All {
        return json!([{"allow": true, "access": "rwm"}]);
    }
    let mut rules = vec![
        json!({"allow": false, "access": "rwm"}),
        json!({"allow": true, "type": "c", "access": "m"}),
        json!({"allow": true, "type": "b", "access": "m"}),
    ];
    for (major, minor) in ALLOWED_CHAR {
        let mut r = json!({"allow": true, "type": "c", "major": major, "access": "rwm"});
        if let Some(m) = minor {
            r["minor"] = json!(m);
        }
        rules.push(r);
    }
    for d in devices.extra() {
        rules.push(json!({"allow": true, "type": "c", "major": d.major, "minor": d.minor, "access": d.access}));
    }
    serde_json::Value::Array(rules)
}

/// v1: restrict the group at `dir` (in the devices hierarchy) to the
/// default list. One rule per write: the kernel parses one per call.
pub fn apply_v1(dir: &Path, devices: Devices) -> Result<()> {
    if devices == Devices::All {
        // A new group inherits its parent's list: ours allows everything.
        return Ok(());
    }
    write_file(&dir.join("devices.deny"), "a")?;
    let allow = dir.join("devices.allow");
    for rule in v1_allow_rules(devices.extra()) {
        write_file(&allow, &rule)?;
    }
    Ok(())
}

/// v2: load the device program and attach it to the group at `dir`. The
/// attachment lives as long as the group; our descriptors go at once.
pub fn apply_v2(dir: &Path, devices: Devices) -> Result<()> {
    if devices == Devices::All {
        return Ok(());
    }
    let group = std::fs::File::open(dir).map_err(io_err("open", dir))?;
    let prog =
        load(&program(devices.extra())).map_err(io_err("load the device filter (bpf) for", dir))?;
    attach(group.as_raw_fd(), prog.as_raw_fd())
        .map_err(io_err("attach the device filter (bpf) to", dir))
}

/// One eBPF instruction, as `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const AND_K: u8 = 0x57; // dst &= imm (64-bit)
const RSH_K: u8 = 0x77; // dst >>= imm
const MOV_K: u8 = 0xb7; // dst = imm
const MOV_X: u8 = 0xbf; // dst = src
const JEQ_K: u8 = 0x15; // if dst == imm goto +off
const JNE_K: u8 = 0x55; // if dst != imm goto +off
const JA: u8 = 0x05; // goto +off
const EXIT: u8 = 0x95;

/// `struct bpf_cgroup_dev_ctx`: access_type = access << 16 | type.
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// The filter: returns 1 (allow) for a mknod of any device, for the
/// character devices of `ALLOWED_CHAR`, and for the `extra` ones with
/// their access, 0 (EPERM) for everything else.
pub fn program(extra: &[ExtraDevice]) -> Vec<Insn> {
    // Jumps are emitted to labels and patched at the end.
    #[derive(Clone, Copy)]
    enum Label {
        Allow,
        Deny,
        Next,
    }
    let mut p: Vec<Insn> = Vec::new();
    let mut fixups: Vec<(usize, Label, usize)> = Vec::new(); // (insn, label, rule)
    let (ctx, access, kind, major, minor) = (1, 2, 3, 4, 5);
    p.push(insn(LDX_W, access, ctx, 0, 0));
    p.push(insn(MOV_X, kind, access, 0, 0));
    p.push(insn(AND_K, kind, 0, 0, 0xffff));
    p.push(insn(RSH_K, access, 0, 0, 16));
    p.push(insn(LDX_W, major, ctx, 4, 0));
    p.push(insn(LDX_W, minor, ctx, 8, 0));
    fixups.push((p.len(), Label::Allow, 0));
    p.push(insn(JEQ_K, access, 0, 0, ACC_MKNOD));
    fixups.push((p.len(), Label::Deny, 0));
    p.push(insn(JNE_K, kind, 0, 0, DEV_CHAR));
    let mut rule_starts = Vec::new();
    for (i, (maj, min)) in ALLOWED_CHAR.iter().enumerate() {
        rule_starts.push(p.len());
        fixups.push((p.len(), Label::Next, i));
        p.push(insn(JNE_K, major, 0, 0, *maj as i32));
        if let Some(min) = min {
            fixups.push((p.len(), Label::Next, i));
            p.push(insn(JNE_K, minor, 0, 0, *min as i32));
        }
        fixups.push((p.len(), Label::Allow, 0));
        p.push(insn(JA, 0, 0, 0, 0));
    }
    for (j, d) in extra.iter().enumerate() {
        let i = ALLOWED_CHAR.len() + j;
        let mut bits = ACC_MKNOD;
        for (c, b) in [('r', 2), ('w', 4)] {
            if d.access.contains(c) {
                bits |= b;
            }
        }
        rule_starts.push(p.len());
        fixups.push((p.len(), Label::Next, i));
        p.push(insn(JNE_K, major, 0, 0, d.major as i32));
        fixups.push((p.len(), Label::Next, i));
        p.push(insn(JNE_K, minor, 0, 0, d.minor as i32));
        // Any access asked beyond the rule's: next rule (then deny).
        p.push(insn(MOV_X, 0, access, 0, 0));
        p.push(insn(AND_K, 0, 0, 0, !bits & 7));
        fixups.push((p.len(), Label::Next, i));
        p.push(insn(JNE_K, 0, 0, 0, 0));
        fixups.push((p.len(), Label::Allow, 0));
        p.push(insn(JA, 0, 0, 0, 0));
    }
    let deny = p.len();
    rule_starts.push(deny);
    p.push(insn(MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    let allow = p.len();
    p.push(insn(MOV_K, 0, 0, 0, 1));
    p.push(insn(EXIT, 0, 0, 0, 0));
    for (at, label, rule) in fixups {
        let target = match label {
            Label::Allow => allow,
            Label::Deny => deny,
            Label::Next => rule_starts[rule + 1],
        };
        p[at].off = (target - at - 1) as i16;
    }
    p
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
/// Programs of the group's ancestors run too, and all must allow.
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The head of `union bpf_attr` for BPF_PROG_LOAD; the kernel zero-fills
/// the fields after the size we pass.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: attr is a live, properly sized #[repr(C)] bpf_attr prefix.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn load(prog: &[Insn]) -> io::Result<OwnedFd> {
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: c"Apache-2.0".as_ptr() as u64,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    attr.prog_name[..6].copy_from_slice(b"rbox_d");
    match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: BPF_PROG_LOAD returned a new descriptor that we own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
        Err(e)
            if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::EACCES) =>
        {
            // Ask the verifier why (only on this failure path).
            let mut log = vec![0u8; 4096];
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
            let _ = bpf(BPF_PROG_LOAD, &mut attr);
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let why = String::from_utf8_lossy(&log[..end]);
            Err(io::Error::new(
                e.kind(),
                format!("{e}; verifier: {}", why.trim()),
            ))
        }
        Err(e) => Err(e),
    }
}

fn attach(group: RawFd, prog: RawFd) -> io::Result<()> {
    let mut attr = ProgAttachAttr {
        target_fd: group as u32,
        attach_bpf_fd: prog as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the instructions `program` emits, so the
    /// filter's decisions are checked here without a kernel.
    fn run(p: &[Insn], access: u32, kind: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | kind, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            match i.code {
                LDX_W => {
                    assert_eq!(src, 1, "loads only from the context");
                    r[dst] = ctx[(i.off / 4) as usize] as u64;
                }
                AND_K => r[dst] &= i.imm as u64,
                RSH_K => r[dst] >>= i.imm,
                MOV_K => r[dst] = i.imm as u64,
                MOV_X => r[dst] = r[src],
                JEQ_K if r[dst] == i.imm as u64 => pc += i.off as usize,
                JNE_K if r[dst] != i.imm as u64 => pc += i.off as usize,
                JEQ_K | JNE_K => {}
                JA => pc += i.off as usize,
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn the_filter_allows_dockers_list_and_mknod_only() {
        let p = program(&[]);
        let (read_write, mknod) = (2 | 4, 1);
        let (blk, chr) = (1, 2);
        for (maj, min) in [
            (1, 3),
            (1, 5),
            (1, 7),
            (1, 8),
            (1, 9),
            (5, 0),
            (5, 1),
            (5, 2),
        ] {
            assert_eq!(run(&p, read_write, chr, maj, min), 1, "c {maj}:{min}");
        }
        assert_eq!(run(&p, 2, chr, 136, 7), 1, "a pts");
        for (maj, min) in [
            (1, 1),
            (1, 11),
            (4, 0),
            (10, 229),
            (10, 200),
            (5, 3),
            (137, 0),
        ] {
            assert_eq!(run(&p, read_write, chr, maj, min), 0, "c {maj}:{min}");
        }
        assert_eq!(run(&p, 2, blk, 254, 0), 0, "a disk");
        assert_eq!(run(&p, 2, blk, 1, 3), 0, "block 1:3 is not null");
        assert_eq!(run(&p, mknod, blk, 254, 0), 1, "mknod is allowed");
        assert_eq!(run(&p, mknod | 2, chr, 4, 0), 0, "mknod with read");
    }

    #[test]
    fn extra_devices_are_allowed_with_their_access_only() {
        let extra = [
            ExtraDevice {
                major: 10,
                minor: 200,
                access: "rwm".into(),
            },
            ExtraDevice {
                major: 4,
                minor: 0,
                access: "r".into(),
            },
        ];
        let p = program(&extra);
        let (r, w, chr) = (2, 4, 2);
        assert_eq!(run(&p, r | w, chr, 10, 200), 1, "--device rwm");
        assert_eq!(run(&p, r, chr, 4, 0), 1, "--device r: read");
        assert_eq!(run(&p, w, chr, 4, 0), 0, "--device r: no write");
        assert_eq!(run(&p, r | w, chr, 4, 0), 0, "--device r: no read-write");
        assert_eq!(run(&p, r, chr, 10, 201), 0, "another minor");
        assert_eq!(run(&p, r, 1, 10, 200), 0, "a block device of those numbers");
        assert_eq!(run(&p, r | w, chr, 1, 3), 1, "the default list stays");
        assert_eq!(run(&p, r, chr, 1, 1), 0, "and nothing else");
        let v1 = v1_allow_rules(&extra);
        assert!(v1.contains(&"c 10:200 rwm".to_string()) && v1.contains(&"c 4:0 r".to_string()));
    }

    #[test]
    fn v1_rules_are_dockers() {
        let r = v1_allow_rules(&[]);
        assert_eq!(r[0], "c *:* m");
        assert!(r.contains(&"c 136:* rwm".to_string()));
        assert!(r.contains(&"c 1:3 rwm".to_string()));
        assert_eq!(r.len(), 2 + ALLOWED_CHAR.len());
    }

    #[test]
    fn oci_rules_say_what_the_v1_lists_say() {
        let r = oci_rules(Devices::Default);
        let r = r.as_array().unwrap();
        assert_eq!(r[0], serde_json::json!({"allow": false, "access": "rwm"}));
        assert_eq!(
            r[1],
            serde_json::json!({"allow": true, "type": "c", "access": "m"})
        );
        assert_eq!(r.len(), v1_allow_rules(&[]).len() + 1);
        assert!(r.contains(
            &serde_json::json!({"allow": true, "type": "c", "major": 136, "access": "rwm"})
        ));
        assert!(r.contains(&serde_json::json!({"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"})));
        let all = oci_rules(Devices::All);
        assert_eq!(all, serde_json::json!([{"allow": true, "access": "rwm"}]));
    }
}

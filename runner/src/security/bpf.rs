//! A tiny classic-BPF writer for a seccomp *deny list*: each rule names a
//! syscall number, an optional test on one argument, and the errno to
//! return; everything else is allowed. Kept separate from the table so the
//! jump arithmetic is in one place and unit-tested against an interpreter.

/// One seccomp-BPF instruction, laid out as `struct sock_filter`.
pub type Insn = libc::sock_filter;

// Opcodes (linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20; // BPF_LD(0x00) | BPF_W(0x00) | BPF_ABS(0x20)
const JMP_JA: u16 = 0x05; // BPF_JMP(0x05) | BPF_JA(0x00)
const JMP_JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JSET_K: u16 = 0x05 | 0x40; // BPF_JMP | BPF_JSET | BPF_K
const RET_K: u16 = 0x06; // BPF_RET | BPF_K

pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;

pub fn ret_errno(errno: i32) -> u32 {
    RET_ERRNO | (errno as u32 & 0xffff)
}

// Offsets in `struct seccomp_data`.
pub const OFF_NR: u32 = 0;
pub const OFF_ARCH: u32 = 4;
/// Low 32 bits of argument `i` (little-endian hosts).
pub fn off_arg_lo(i: u8) -> u32 {
    16 + 8 * i as u32
}

fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}
fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

/// What, beyond the syscall number, makes a rule match.
#[derive(Debug, Clone, Copy)]
pub enum ArgTest {
    /// Always (the number alone).
    None,
    /// The low 32 bits of the argument have any bit of the mask set.
    AnyBits { arg: u8, mask: u32 },
    /// The low 32 bits of the argument equal the value.
    Equals { arg: u8, value: u32 },
    /// The low 32 bits of the argument are none of the values.
    NotIn { arg: u8, values: &'static [u32] },
}

#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub nr: u32,
    pub test: ArgTest,
    /// The full seccomp return value when the rule matches.
    pub action: u32,
}

/// Emits the rules of one architecture, assuming the accumulator holds the
/// syscall number on entry; ends with "allow". Every rule is a small block
/// whose jumps stay inside it, so no offset can overflow the 8-bit fields.
pub fn emit_rules(out: &mut Vec<Insn>, rules: &[Rule]) {
    for r in rules {
        match r.test {
            ArgTest::None => {
                out.push(jump(JMP_JEQ_K, r.nr, 0, 1));
                out.push(stmt(RET_K, r.action));
            }
            ArgTest::AnyBits { arg, mask } => {
                out.push(jump(JMP_JEQ_K, r.nr, 0, 4));
                out.push(stmt(LD_W_ABS, off_arg_lo(arg)));
                out.push(jump(JMP_JSET_K, mask, 0, 1));
                out.push(stmt(RET_K, r.action));
                // The accumulator now holds the argument, not the number:
                // this syscall is decided here.
                out.push(stmt(RET_K, RET_ALLOW));
            }
            ArgTest::Equals { arg, value } => {
                out.push(jump(JMP_JEQ_K, r.nr, 0, 4));
                out.push(stmt(LD_W_ABS, off_arg_lo(arg)));
                out.push(jump(JMP_JEQ_K, value, 0, 1));
                out.push(stmt(RET_K, r.action));
                out.push(stmt(RET_K, RET_ALLOW));
            }
            ArgTest::NotIn { arg, values } => {
                let n = values.len();
                assert!(n < 250, "NotIn list too long for 8-bit jumps");
                out.push(jump(JMP_JEQ_K, r.nr, 0, (n + 3) as u8));
                out.push(stmt(LD_W_ABS, off_arg_lo(arg)));
                for (i, v) in values.iter().enumerate() {
                    // On a match, skip the rest of the list and the deny.
                    out.push(jump(JMP_JEQ_K, *v, (n - i) as u8, 0));
                }
                out.push(stmt(RET_K, r.action));
                out.push(stmt(RET_K, RET_ALLOW));
            }
        }
    }
    out.push(stmt(RET_K, RET_ALLOW));
}

/// One architecture's part of the program.
pub struct ArchBlock<'a> {
    pub audit_arch: u32,
    /// Syscall numbers with any of these bits set get `reject_bits_action`
    /// (x32's marker bit on x86_64).
    pub reject_bits: u32,
    pub reject_bits_action: u32,
    pub rules: &'a [Rule],
}

/// The whole program: dispatch on `seccomp_data.arch`, one block per
/// architecture, and an unknown architecture kills the process (it cannot
/// happen for a binary the kernel accepted, so it means an ABI we did not
/// write rules for).
pub fn program(blocks: &[ArchBlock<'_>]) -> Vec<Insn> {
    let mut out = vec![stmt(LD_W_ABS, OFF_ARCH)];
    for b in blocks {
        let mut body = vec![stmt(LD_W_ABS, OFF_NR)];
        if b.reject_bits != 0 {
            body.push(jump(JMP_JSET_K, b.reject_bits, 0, 1));
            body.push(stmt(RET_K, b.reject_bits_action));
        }
        emit_rules(&mut body, b.rules);
        // jeq arch → fall into `ja 1` skip... laid out as:
        //   jeq ARCH, jt=1, jf=0 ; ja over-body ; body...
        out.push(jump(JMP_JEQ_K, b.audit_arch, 1, 0));
        out.push(stmt(JMP_JA, body.len() as u32));
        out.extend(body);
    }
    out.push(stmt(RET_K, RET_KILL_PROCESS));
    out
}

/// A reference interpreter for the subset we emit; used by unit tests to
/// check the jump arithmetic without a kernel.
pub fn interpret(prog: &[Insn], arch: u32, nr: u32, args_lo: [u32; 6]) -> u32 {
    let load = |off: u32| -> u32 {
        match off {
            OFF_NR => nr,
            OFF_ARCH => arch,
            o if (16..64).contains(&o) && (o - 16) % 8 == 0 => args_lo[((o - 16) / 8) as usize],
            o => panic!("load of unsupported offset {o}"),
        }
    };
    let (mut pc, mut a) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => a = load(i.k),
            JMP_JA => pc += i.k as usize,
            JMP_JEQ_K => pc += if a == i.k { i.jt } else { i.jf } as usize,
            JMP_JSET_K => pc += if a & i.k != 0 { i.jt } else { i.jf } as usize,
            RET_K => return i.k,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

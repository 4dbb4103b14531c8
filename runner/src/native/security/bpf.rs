//! A tiny classic-BPF writer for a seccomp filter: each rule names a
//! syscall number, an optional test on one argument, and what to return
//! when the rule matches (a rule whose test fails allows the call); a
//! number no rule names gets the block's default action (EPERM for rbox's
//! allow list). Kept separate from the policy so the jump arithmetic is in
//! one place and unit-tested against an interpreter.

/// One seccomp-BPF instruction, laid out as `struct sock_filter`.
pub type Insn = libc::sock_filter;

// Opcodes (linux/bpf_common.h).
const LD_W_ABS: u16 = 0x20; // BPF_LD(0x00) | BPF_W(0x00) | BPF_ABS(0x20)
const JMP_JA: u16 = 0x05; // BPF_JMP(0x05) | BPF_JA(0x00)
const JMP_JEQ_K: u16 = 0x05 | 0x10; // BPF_JMP | BPF_JEQ | BPF_K
const JMP_JGT_K: u16 = 0x05 | 0x20; // BPF_JMP | BPF_JGT | BPF_K
const JMP_JGE_K: u16 = 0x05 | 0x30; // BPF_JMP | BPF_JGE | BPF_K
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
    /// The low 32 bits of the argument are one of the values.
    AnyOf { arg: u8, values: &'static [u32] },
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

/// Items per leaf of the search tree: short enough to scan linearly.
const LEAF: usize = 4;

/// A rule, or a run of consecutive syscall numbers refused alike.
#[derive(Debug, Clone, Copy)]
enum Item {
    Range { lo: u32, hi: u32, action: u32 },
    Rule(Rule),
}

impl Item {
    fn lo(&self) -> u32 {
        match self {
            Item::Range { lo, .. } => *lo,
            Item::Rule(r) => r.nr,
        }
    }
}

/// Emits the rules of one architecture, assuming the accumulator holds the
/// syscall number on entry; numbers no rule names get `default`. Numbers
/// decided alike and adjacent become one range, and the items are laid
/// out as a binary search tree on the number.
/// Why a tree: a syscall walks about log2(items) comparisons instead of
/// up to one per rule, and at load time the kernel runs the program for
/// every syscall number of both ABIs (to fill its cache of calls allowed
/// whatever their arguments), so the load costs in proportion too.
pub fn emit_rules(out: &mut Vec<Insn>, rules: &[Rule], default: u32) {
    let mut sorted = rules.to_vec();
    sorted.sort_by_key(|r| r.nr);
    for w in sorted.windows(2) {
        assert_ne!(w[0].nr, w[1].nr, "two rules for syscall {}", w[0].nr);
    }
    let mut items: Vec<Item> = Vec::new();
    for r in sorted {
        match (items.last_mut(), r.test) {
            (Some(Item::Range { hi, action, .. }), ArgTest::None)
                if *hi + 1 == r.nr && *action == r.action =>
            {
                *hi = r.nr;
            }
            (_, ArgTest::None) => items.push(Item::Range {
                lo: r.nr,
                hi: r.nr,
                action: r.action,
            }),
            _ => items.push(Item::Rule(r)),
        }
    }
    emit_tree(out, &items, default);
}

fn emit_tree(out: &mut Vec<Insn>, items: &[Item], default: u32) {
    if items.len() <= LEAF {
        emit_leaf(out, items, default);
        return;
    }
    let mid = items.len() / 2;
    let mut left = Vec::new();
    emit_tree(&mut left, &items[..mid], default);
    // nr >= items[mid].lo: go right, over the `ja` and the left subtree,
    // which a 32-bit `ja` can always jump (jt/jf are only 8 bits).
    out.push(jump(JMP_JGE_K, items[mid].lo(), 0, 1));
    out.push(stmt(JMP_JA, left.len() as u32));
    out.extend(left);
    emit_tree(out, &items[mid..], default);
}

/// A linear scan of a few items; each block's jumps stay inside it, and
/// the leaf ends with the default action (no item named the number).
fn emit_leaf(out: &mut Vec<Insn>, items: &[Item], default: u32) {
    for item in items {
        let r = match *item {
            Item::Range { lo, hi, action } if lo == hi => {
                out.push(jump(JMP_JEQ_K, lo, 0, 1));
                out.push(stmt(RET_K, action));
                continue;
            }
            Item::Range { lo, hi, action } => {
                // Below lo or above hi: on to the next item.
                out.push(jump(JMP_JGE_K, lo, 0, 2));
                out.push(jump(JMP_JGT_K, hi, 1, 0));
                out.push(stmt(RET_K, action));
                continue;
            }
            Item::Rule(r) => r,
        };
        match r.test {
            ArgTest::None => unreachable!("plain rules are ranges"),
            ArgTest::AnyBits { arg, mask } => {
                out.push(jump(JMP_JEQ_K, r.nr, 0, 4));
                out.push(stmt(LD_W_ABS, off_arg_lo(arg)));
                out.push(jump(JMP_JSET_K, mask, 0, 1));
                out.push(stmt(RET_K, r.action));
                // The accumulator now holds the argument, not the number:
                // this syscall is decided here.
                out.push(stmt(RET_K, RET_ALLOW));
            }
            ArgTest::AnyOf { arg, values } => {
                let n = values.len();
                assert!(n < 250, "AnyOf list too long for 8-bit jumps");
                out.push(jump(JMP_JEQ_K, r.nr, 0, (n + 3) as u8));
                out.push(stmt(LD_W_ABS, off_arg_lo(arg)));
                for (i, v) in values.iter().enumerate() {
                    // On a match, skip the rest of the list and the allow.
                    out.push(jump(JMP_JEQ_K, *v, (n - i) as u8, 0));
                }
                out.push(stmt(RET_K, RET_ALLOW));
                out.push(stmt(RET_K, r.action));
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
    out.push(stmt(RET_K, default));
}

/// One architecture's part of the program.
pub struct ArchBlock<'a> {
    pub audit_arch: u32,
    /// Syscall numbers with any of these bits set get `reject_bits_action`
    /// (x32's marker bit on x86_64).
    pub reject_bits: u32,
    pub reject_bits_action: u32,
    pub rules: &'a [Rule],
    /// For numbers no rule names.
    pub default: u32,
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
        emit_rules(&mut body, b.rules, b.default);
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
            JMP_JGE_K => pc += if a >= i.k { i.jt } else { i.jf } as usize,
            JMP_JGT_K => pc += if a > i.k { i.jt } else { i.jf } as usize,
            JMP_JSET_K => pc += if a & i.k != 0 { i.jt } else { i.jf } as usize,
            RET_K => return i.k,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

/// What a rule list decides, computed directly (the tests' reference).
pub fn reference(rules: &[Rule], default: u32, nr: u32, args_lo: [u32; 6]) -> u32 {
    let Some(r) = rules.iter().find(|r| r.nr == nr) else {
        return default;
    };
    let matched = match r.test {
        ArgTest::None => true,
        ArgTest::AnyBits { arg, mask } => args_lo[arg as usize] & mask != 0,
        ArgTest::AnyOf { arg, values } => values.contains(&args_lo[arg as usize]),
        ArgTest::NotIn { arg, values } => !values.contains(&args_lo[arg as usize]),
    };
    if matched {
        r.action
    } else {
        RET_ALLOW
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tree decides exactly as the flat rule list for every number
    /// around every rule, with arguments that hit and miss each test.
    #[test]
    fn tree_matches_the_reference() {
        const VALUES: &[u32] = &[3, 9];
        for count in [0usize, 1, 3, 4, 5, 8, 17, 64, 300] {
            let rules: Vec<Rule> = (0..count)
                .map(|i| Rule {
                    // Runs of adjacent numbers (ranges) and gaps.
                    nr: (i as u32) + (i as u32 / 4) * 3 + 2,
                    test: match i % 7 {
                        1 => ArgTest::AnyBits { arg: 0, mask: 0x10 },
                        3 => ArgTest::AnyOf {
                            arg: 1,
                            values: &[5, 7],
                        },
                        5 => ArgTest::NotIn {
                            arg: 2,
                            values: VALUES,
                        },
                        _ => ArgTest::None,
                    },
                    action: match (i / 6) % 3 {
                        0 => ret_errno(38),
                        1 => ret_errno(1),
                        _ => RET_ALLOW,
                    },
                })
                .rev() // unsorted input
                .collect();
            for default in [RET_ALLOW, ret_errno(1)] {
                let prog = program(&[ArchBlock {
                    audit_arch: 7,
                    reject_bits: 0,
                    reject_bits_action: 0,
                    rules: &rules,
                    default,
                }]);
                for nr in 0..(count as u32 * 2 + 10) {
                    for args in [
                        [0; 6],
                        [0x10, 5, 3, 0, 0, 0],
                        [0x11, 6, 4, 0, 0, 0],
                        [0, 7, 9, 0, 0, 0],
                    ] {
                        assert_eq!(
                            interpret(&prog, 7, nr, args),
                            reference(&rules, default, nr, args),
                            "count {count} nr {nr} args {args:?} default {default:#x}"
                        );
                    }
                }
            }
        }
    }
}

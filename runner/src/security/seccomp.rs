//! The default seccomp filter: what Docker's default profile refuses,
//! written as a deny list (EPERM, as Docker returns), with `clone3`
//! answering ENOSYS so libc falls back to `clone`, whose flags we can see.
//!
//! Why our own BPF rather than seccompiler or libseccomp: seccompiler has one
//! match action per filter (we need EPERM and ENOSYS) and only the native
//! ABI (an x86_64 process can still make i386 syscalls through `int 0x80`,
//! and a deny list that ignores that ABI is bypassed by it); libseccomp needs
//! a C library and headers at build time, and allocates where we load the
//! filter (a freshly cloned child). The program here is built before the
//! clone and only handed to the kernel in the child.
//!
//! Differences from Docker's allow list, on purpose: `unshare` is refused
//! only with namespace flags (Docker refuses it whole without
//! CAP_SYS_ADMIN); syscalls newer than this table are allowed (Docker's
//! allow list refuses them). 32-bit `socketcall(socket, AF_VSOCK)` is not
//! seen (its arguments are behind a pointer).

use super::bpf::{self, ArchBlock, ArgTest, Insn, Rule};

/// A compiled filter, ready to load.
#[derive(Clone)]
pub struct SeccompProgram {
    insns: Vec<Insn>,
}

impl std::fmt::Debug for SeccompProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SeccompProgram({} instructions)", self.insns.len())
    }
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: Docker's mask
/// for `clone` (CLONE_NEWTIME shares its bit with the exit signal there).
pub(crate) const CLONE_NS_FLAGS: u32 = 0x7e02_0000;
/// The same plus CLONE_NEWTIME (0x80), for `unshare`.
pub(crate) const UNSHARE_NS_FLAGS: u32 = CLONE_NS_FLAGS | 0x80;
/// PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32 and the query
/// value: Docker's allowed personalities (ADDR_NO_RANDOMIZE is not).
pub(crate) const SAFE_PERSONALITIES: &[u32] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];
pub(crate) const AF_VSOCK: u32 = 40;

/// Syscalls refused outright, with their numbers on x86_64 and i386
/// (`None`: the ABI has no such call). Numbers from the kernel's
/// `unistd_64.h`/`unistd_32.h`; `open_tree_attr` (6.15) is 467 on both.
pub(crate) const DENIED: &[(&str, Option<u32>, Option<u32>)] = &[
    // mounting, old and new API
    ("mount", Some(165), Some(21)),
    ("umount", None, Some(22)),
    ("umount2", Some(166), Some(52)),
    ("pivot_root", Some(155), Some(217)),
    ("open_tree", Some(428), Some(428)),
    ("move_mount", Some(429), Some(429)),
    ("fsopen", Some(430), Some(430)),
    ("fsconfig", Some(431), Some(431)),
    ("fsmount", Some(432), Some(432)),
    ("fspick", Some(433), Some(433)),
    ("mount_setattr", Some(442), Some(442)),
    ("open_tree_attr", Some(467), Some(467)),
    // kernel code and reboot
    ("kexec_load", Some(246), Some(283)),
    ("kexec_file_load", Some(320), None),
    ("init_module", Some(175), Some(128)),
    ("finit_module", Some(313), Some(350)),
    ("delete_module", Some(176), Some(129)),
    ("create_module", Some(174), Some(127)),
    ("get_kernel_syms", Some(177), Some(130)),
    ("query_module", Some(178), Some(167)),
    ("reboot", Some(169), Some(88)),
    // keyrings are not namespaced
    ("keyctl", Some(250), Some(288)),
    ("add_key", Some(248), Some(286)),
    ("request_key", Some(249), Some(287)),
    // kernel introspection and tracing
    ("bpf", Some(321), Some(357)),
    ("perf_event_open", Some(298), Some(336)),
    ("lookup_dcookie", Some(212), Some(253)),
    ("syslog", Some(103), Some(103)),
    ("fanotify_init", Some(300), Some(338)),
    ("userfaultfd", Some(323), Some(374)),
    // namespaces
    ("setns", Some(308), Some(346)),
    // host resources
    ("swapon", Some(167), Some(87)),
    ("swapoff", Some(168), Some(115)),
    ("acct", Some(163), Some(51)),
    ("quotactl", Some(179), Some(131)),
    ("quotactl_fd", Some(443), Some(443)),
    ("vhangup", Some(153), Some(111)),
    // the clock is not namespaced
    ("settimeofday", Some(164), Some(79)),
    ("stime", None, Some(25)),
    ("clock_settime", Some(227), Some(264)),
    ("clock_settime64", None, Some(404)),
    ("clock_adjtime", Some(305), Some(343)),
    ("clock_adjtime64", None, Some(405)),
    // file handles bypass the mount tree (the "shocker" breakout)
    ("open_by_handle_at", Some(304), Some(342)),
    ("name_to_handle_at", Some(303), Some(341)),
    // raw I/O and obsolete calls
    ("iopl", Some(172), Some(110)),
    ("ioperm", Some(173), Some(101)),
    ("uselib", Some(134), Some(86)),
    ("nfsservctl", Some(180), Some(169)),
    ("vm86", None, Some(166)),
    ("vm86old", None, Some(113)),
    ("_sysctl", Some(156), Some(149)),
    ("sysfs", Some(139), Some(135)),
    ("ustat", Some(136), Some(62)),
    // io_uring bypasses seccomp for the operations it performs (Docker 25+)
    ("io_uring_setup", Some(425), Some(425)),
    ("io_uring_enter", Some(426), Some(426)),
    ("io_uring_register", Some(427), Some(427)),
];

fn rules_for(i386: bool) -> Vec<Rule> {
    let eperm = bpf::ret_errno(libc::EPERM);
    let pick = |x86_64: u32, x86: u32| if i386 { x86 } else { x86_64 };
    let mut rules: Vec<Rule> = DENIED
        .iter()
        .filter_map(|&(_, a, b)| if i386 { b } else { a })
        .map(|nr| Rule {
            nr,
            test: ArgTest::None,
            action: eperm,
        })
        .collect();
    rules.push(Rule {
        nr: pick(435, 435), // clone3: flags are behind a pointer
        test: ArgTest::None,
        action: bpf::ret_errno(libc::ENOSYS),
    });
    rules.push(Rule {
        nr: pick(56, 120), // clone: flags are argument 0 on both ABIs
        test: ArgTest::AnyBits {
            arg: 0,
            mask: CLONE_NS_FLAGS,
        },
        action: eperm,
    });
    rules.push(Rule {
        nr: pick(272, 310), // unshare
        test: ArgTest::AnyBits {
            arg: 0,
            mask: UNSHARE_NS_FLAGS,
        },
        action: eperm,
    });
    rules.push(Rule {
        nr: pick(135, 136), // personality
        test: ArgTest::NotIn {
            arg: 0,
            values: SAFE_PERSONALITIES,
        },
        action: eperm,
    });
    rules.push(Rule {
        nr: pick(41, 359), // socket
        test: ArgTest::Equals {
            arg: 0,
            value: AF_VSOCK,
        },
        action: eperm,
    });
    rules
}

impl SeccompProgram {
    /// The default filter for this machine's architecture.
    pub fn default_filter() -> Result<SeccompProgram, super::SecurityError> {
        if !cfg!(target_arch = "x86_64") {
            return Err(super::SecurityError::SeccompUnsupportedArch(
                std::env::consts::ARCH,
            ));
        }
        let native = rules_for(false);
        let compat = rules_for(true);
        let insns = bpf::program(&[
            ArchBlock {
                audit_arch: AUDIT_ARCH_X86_64,
                // x32 is off in most kernels; where it is on, its numbers
                // would dodge the table, so they are all refused.
                reject_bits: X32_SYSCALL_BIT,
                reject_bits_action: bpf::ret_errno(libc::ENOSYS),
                rules: &native,
            },
            ArchBlock {
                audit_arch: AUDIT_ARCH_I386,
                reject_bits: 0,
                reject_bits_action: 0,
                rules: &compat,
            },
        ]);
        Ok(SeccompProgram { insns })
    }

    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }

    /// Evaluates the program for one syscall, as the kernel would (tests).
    pub fn evaluate(&self, i386: bool, nr: u32, args_lo: [u32; 6]) -> u32 {
        let arch = if i386 {
            AUDIT_ARCH_I386
        } else {
            AUDIT_ARCH_X86_64
        };
        bpf::interpret(&self.insns, arch, nr, args_lo)
    }

    /// Loads the filter into this thread. Needs no_new_privs or
    /// CAP_SYS_ADMIN. No allocation: safe right before execve.
    pub fn load(&self) -> Result<(), super::SecurityError> {
        let prog = libc::sock_fprog {
            len: self.insns.len() as libc::c_ushort,
            filter: self.insns.as_ptr() as *mut Insn,
        };
        // SAFETY: seccomp(SECCOMP_SET_MODE_FILTER) reads `prog` and the
        // instructions it points to during the call only; both outlive it.
        let r = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0 as libc::c_uint,
                &prog as *const libc::sock_fprog,
            )
        };
        if r < 0 {
            return Err(super::SecurityError::SeccompLoad(nix::Error::last()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOW: u32 = bpf::RET_ALLOW;

    #[test]
    fn table_decides_like_docker() {
        let p = SeccompProgram::default_filter().unwrap();
        let eperm = bpf::ret_errno(libc::EPERM);
        let enosys = bpf::ret_errno(libc::ENOSYS);
        let z = [0u32; 6];
        assert_eq!(p.evaluate(false, libc::SYS_mount as u32, z), eperm);
        assert_eq!(p.evaluate(false, libc::SYS_keyctl as u32, z), eperm);
        assert_eq!(p.evaluate(false, libc::SYS_read as u32, z), ALLOW);
        assert_eq!(p.evaluate(false, libc::SYS_execve as u32, z), ALLOW);
        assert_eq!(p.evaluate(false, libc::SYS_clone3 as u32, z), enosys);
        // clone: a thread (no namespace flags) passes, a new userns not.
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u32;
        assert_eq!(
            p.evaluate(false, libc::SYS_clone as u32, [thread, 0, 0, 0, 0, 0]),
            ALLOW
        );
        let userns = libc::CLONE_NEWUSER as u32 | libc::SIGCHLD as u32;
        assert_eq!(
            p.evaluate(false, libc::SYS_clone as u32, [userns, 0, 0, 0, 0, 0]),
            eperm
        );
        assert_eq!(
            p.evaluate(
                false,
                libc::SYS_unshare as u32,
                [libc::CLONE_FS as u32, 0, 0, 0, 0, 0]
            ),
            ALLOW
        );
        assert_eq!(
            p.evaluate(false, libc::SYS_unshare as u32, [0x80, 0, 0, 0, 0, 0]),
            eperm
        );
        assert_eq!(
            p.evaluate(false, libc::SYS_personality as u32, [0x0, 0, 0, 0, 0, 0]),
            ALLOW
        );
        assert_eq!(
            p.evaluate(
                false,
                libc::SYS_personality as u32,
                [0xffff_ffff, 0, 0, 0, 0, 0]
            ),
            ALLOW
        );
        assert_eq!(
            p.evaluate(
                false,
                libc::SYS_personality as u32,
                [0x0040000, 0, 0, 0, 0, 0]
            ),
            eperm
        );
        assert_eq!(
            p.evaluate(false, libc::SYS_socket as u32, [40, 1, 0, 0, 0, 0]),
            eperm
        );
        assert_eq!(
            p.evaluate(false, libc::SYS_socket as u32, [2, 1, 0, 0, 0, 0]),
            ALLOW
        );
        // x32 numbers and the i386 ABI cannot dodge the table.
        assert_eq!(
            p.evaluate(false, X32_SYSCALL_BIT | libc::SYS_mount as u32, z),
            enosys
        );
        assert_eq!(p.evaluate(true, 21, z), eperm, "i386 mount");
        assert_eq!(p.evaluate(true, 3, z), ALLOW, "i386 read");
        assert_eq!(
            p.evaluate(true, 120, [libc::CLONE_NEWNS as u32, 0, 0, 0, 0, 0]),
            eperm
        );
        assert_eq!(
            bpf::interpret(p.instructions(), 0x1234, 0, z),
            bpf::RET_KILL_PROCESS
        );
    }

    /// The compiled filter decides as the rule tables say, for every number
    /// of both ABIs, with arguments that hit and miss each argument test.
    #[test]
    fn program_matches_the_tables_everywhere() {
        let p = SeccompProgram::default_filter().unwrap();
        let arg_sets = [
            [0u32; 6],
            [0x7e02_0000, 0, 0, 0, 0, 0],
            [0x80, 0, 0, 0, 0, 0],
            [40, 0, 0, 0, 0, 0],
            [0x20008, 0, 0, 0, 0, 0],
            [0x0040000, 0, 0, 0, 0, 0],
        ];
        for i386 in [false, true] {
            let rules = rules_for(i386);
            for nr in 0..600 {
                for args in arg_sets {
                    assert_eq!(
                        p.evaluate(i386, nr, args),
                        bpf::reference(&rules, nr, args),
                        "i386={i386} nr={nr} args={args:x?}"
                    );
                }
            }
        }
    }

    #[test]
    fn native_numbers_match_libc() {
        let by_name = |n: &str| DENIED.iter().find(|d| d.0 == n).unwrap().1.unwrap() as i64;
        assert_eq!(by_name("mount"), libc::SYS_mount);
        assert_eq!(by_name("umount2"), libc::SYS_umount2);
        assert_eq!(by_name("keyctl"), libc::SYS_keyctl);
        assert_eq!(by_name("bpf"), libc::SYS_bpf);
        assert_eq!(by_name("setns"), libc::SYS_setns);
        assert_eq!(by_name("fsopen"), libc::SYS_fsopen);
        assert_eq!(by_name("open_by_handle_at"), libc::SYS_open_by_handle_at);
        assert_eq!(by_name("io_uring_setup"), libc::SYS_io_uring_setup);
        assert_eq!(by_name("kexec_file_load"), libc::SYS_kexec_file_load);
        assert_eq!(by_name("userfaultfd"), libc::SYS_userfaultfd);
    }

    /// Cross-checks both tables against the kernel headers when they are
    /// installed (linux-libc-dev), so a typo in a number cannot hide.
    #[test]
    fn numbers_match_kernel_headers() {
        let dir = "/usr/include/x86_64-linux-gnu/asm";
        let (Ok(h64), Ok(h32)) = (
            std::fs::read_to_string(format!("{dir}/unistd_64.h")),
            std::fs::read_to_string(format!("{dir}/unistd_32.h")),
        ) else {
            panic!("kernel headers missing: install linux-libc-dev to check the syscall table");
        };
        let find = |h: &str, name: &str| -> Option<u32> {
            h.lines().find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some("#define") && w.next() == Some(&format!("__NR_{name}")))
                    .then(|| w.next().and_then(|n| n.parse().ok()))
                    .flatten()
            })
        };
        for &(name, a, b) in DENIED {
            if name == "open_tree_attr" {
                continue; // newer than Debian 12's headers
            }
            assert_eq!(find(&h64, name), a, "x86_64 number of {name}");
            assert_eq!(find(&h32, name), b, "i386 number of {name}");
        }
    }
}

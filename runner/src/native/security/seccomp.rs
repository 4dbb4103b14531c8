//! The default seccomp filter: Docker's default profile as an *allow
//! list*. A syscall the list does not name (one nobody reviewed, or one
//! newer than the list) is refused with EPERM, as Docker's `defaultAction`
//! (`SCMP_ACT_ERRNO`, errno 1) refuses it.
//!
//! The policy is data in this file: the calls every container may make
//! (`ALLOWED`), those allowed only with a capability (`BY_CAP`: mount and
//! friends with CAP_SYS_ADMIN, ptrace's relatives with CAP_SYS_PTRACE …),
//! and a few calls decided otherwise:
//! - `clone` without CAP_SYS_ADMIN: refused when the flags ask for a new
//!   namespace; `clone3` answers ENOSYS (its flags are behind a pointer),
//!   so libc falls back to `clone`;
//! - `socket`: every family but AF_ALG (38) and AF_VSOCK (40);
//! - `personality`: only Docker's values (0, 8, 0x20000, 0x20008 and the
//!   query 0xffffffff; not ADDR_NO_RANDOMIZE).
//!
//! ABIs: on x86_64 the filter covers the native ABI and i386 (`int 0x80`),
//! each with its own numbers (security::syscalls), as Docker does. x32
//! calls (the 0x40000000 bit) answer ENOSYS, where Docker allows them:
//! x32 is off in most kernels, and where it is on, its numbers would need
//! a third table nobody uses. Any other audit arch kills the process.
//! Known gap, shared with Docker: i386's `socketcall(SYS_SOCKET, …)` is
//! allowed, and its family is behind a pointer the filter cannot read.
//!
//! Why our own BPF (security::bpf) rather than a compiler: seccompiler has
//! one match action per filter (we need allow, EPERM and ENOSYS), one ABI
//! per filter (it kills i386 processes) and emits a linear list, which the
//! kernel walks on every call with an argument test and at load time for
//! every number; libseccomp needs a C library at build and link time (the
//! static rrun) and Debian 12's 2.5.4 predates a dozen of these names. The
//! program here is built before the clone and only handed to the kernel in
//! the child, without allocating.

use super::bpf::{self, ArchBlock, ArgTest, Insn, Rule};
use super::capabilities::{Cap, CapSet};
use super::syscalls::{number, numbers_of, pick, Numbers};

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
/// PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32 and the query
/// value: Docker's allowed personalities (ADDR_NO_RANDOMIZE is not).
pub(crate) const SAFE_PERSONALITIES: &[u32] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];
/// AF_ALG (kernel crypto sockets) and AF_VSOCK (host sockets of a VM).
pub(crate) const REFUSED_FAMILIES: &[u32] = &[38, 40];

/// What every container may call, whatever its capabilities: Docker's
/// unconditional list (names with no x86 number left out), plus
/// `process_vm_readv/writev` and `ptrace`, which Docker allows on kernels
/// 4.8 and later (older ones let ptrace bypass seccomp; rbox needs newer).
pub(crate) const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "modify_ldt",
];

/// Allowed on the native ABI only (Docker: amd64 and x32, not x86).
pub(crate) const ALLOWED_NATIVE: &[&str] = &["arch_prctl"];

/// `ALLOWED`'s numbers, looked up when rrun is compiled (a misspelt name
/// fails the build).
const ALLOWED_NUMBERS: [Numbers; ALLOWED.len()] = numbers_of(ALLOWED);

/// Calls allowed only when the container holds the capability (in its
/// bounding set), as Docker's profile `includes.caps`.
pub(crate) const BY_CAP: &[(Cap, &[&str])] = &[
    (Cap::DacReadSearch, &["open_by_handle_at"]),
    (
        Cap::SysAdmin,
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    (Cap::SysBoot, &["reboot"]),
    (Cap::SysChroot, &["chroot"]),
    (
        Cap::SysModule,
        &["delete_module", "init_module", "finit_module"],
    ),
    (Cap::SysPacct, &["acct"]),
    (
        Cap::SysPtrace,
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    (Cap::SysRawio, &["iopl", "ioperm"]),
    (
        Cap::SysTime,
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    (Cap::SysTtyConfig, &["vhangup"]),
    (
        Cap::SysNice,
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (Cap::Syslog, &["syslog"]),
    (Cap::Bpf, &["bpf"]),
    (Cap::Perfmon, &["perf_event_open"]),
];

/// The rules of one ABI for a container holding `caps`.
pub(crate) fn rules_for(i386: bool, caps: CapSet) -> Vec<Rule> {
    let eperm = bpf::ret_errno(libc::EPERM);
    let allow = |nr| Rule {
        nr,
        test: ArgTest::None,
        action: bpf::RET_ALLOW,
    };
    let mut rules: Vec<Rule> = ALLOWED_NUMBERS
        .iter()
        .filter_map(|n| pick(*n, i386))
        .map(allow)
        .collect();
    let mut add = |name: &str, test: ArgTest, action: u32| {
        if let Some(nr) = number(name, i386) {
            rules.push(Rule { nr, test, action });
        }
    };
    if !i386 {
        for name in ALLOWED_NATIVE {
            add(name, ArgTest::None, bpf::RET_ALLOW);
        }
    }
    if !caps.contains(Cap::SysAdmin) {
        add(
            "clone",
            ArgTest::AnyBits {
                arg: 0, // the flags, argument 0 on both ABIs
                mask: CLONE_NS_FLAGS,
            },
            eperm,
        );
        add("clone3", ArgTest::None, bpf::ret_errno(libc::ENOSYS));
    }
    add(
        "socket",
        ArgTest::AnyOf {
            arg: 0,
            values: REFUSED_FAMILIES,
        },
        eperm,
    );
    add(
        "personality",
        ArgTest::NotIn {
            arg: 0,
            values: SAFE_PERSONALITIES,
        },
        eperm,
    );
    for (cap, names) in BY_CAP {
        if caps.contains(*cap) {
            for name in *names {
                add(name, ArgTest::None, bpf::RET_ALLOW);
            }
        }
    }
    // A later rule for the same number replaces an earlier one (the sort
    // is stable).
    rules.sort_by_key(|r| r.nr);
    let mut out: Vec<Rule> = Vec::with_capacity(rules.len());
    for r in rules {
        match out.last_mut() {
            Some(last) if last.nr == r.nr => *last = r,
            _ => out.push(r),
        }
    }
    out
}

impl SeccompProgram {
    /// The default filter for this machine's architecture, for a container
    /// whose bounding set is `caps`.
    pub fn default_filter(caps: CapSet) -> Result<SeccompProgram, super::SecurityError> {
        if !cfg!(target_arch = "x86_64") {
            return Err(super::SecurityError::SeccompUnsupportedArch(
                std::env::consts::ARCH,
            ));
        }
        let eperm = bpf::ret_errno(libc::EPERM);
        let native = rules_for(false, caps);
        let compat = rules_for(true, caps);
        let insns = bpf::program(&[
            ArchBlock {
                audit_arch: AUDIT_ARCH_X86_64,
                reject_bits: X32_SYSCALL_BIT,
                reject_bits_action: bpf::ret_errno(libc::ENOSYS),
                rules: &native,
                default: eperm,
            },
            ArchBlock {
                audit_arch: AUDIT_ARCH_I386,
                reject_bits: 0,
                reject_bits_action: 0,
                rules: &compat,
                default: eperm,
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

    fn default_caps() -> CapSet {
        CapSet::of(&super::super::capabilities::DEFAULT_CAPS)
    }

    fn nr(name: &str) -> u32 {
        number(name, false).unwrap()
    }

    #[test]
    fn unlisted_and_unknown_numbers_are_refused() {
        let p = SeccompProgram::default_filter(default_caps()).unwrap();
        let eperm = bpf::ret_errno(libc::EPERM);
        let z = [0u32; 6];
        for (name, call) in [
            ("mount", libc::SYS_mount),
            ("keyctl", libc::SYS_keyctl),
            ("kexec_load", libc::SYS_kexec_load),
            ("open_by_handle_at", libc::SYS_open_by_handle_at),
            ("userfaultfd", libc::SYS_userfaultfd),
            ("bpf", libc::SYS_bpf),
            ("io_uring_setup", libc::SYS_io_uring_setup),
            ("setns", libc::SYS_setns),
            ("unshare", libc::SYS_unshare),
            ("pivot_root", libc::SYS_pivot_root),
        ] {
            assert_eq!(p.evaluate(false, call as u32, z), eperm, "{name}");
        }
        // Numbers no kernel had when the list was written, up to the x32 bit.
        for n in [471, 500, 511, 548, 1000, 0xffff, X32_SYSCALL_BIT - 1] {
            assert_eq!(p.evaluate(false, n, z), eperm, "native {n}");
            assert_eq!(p.evaluate(true, n, z), eperm, "i386 {n}");
        }
        assert_eq!(p.evaluate(true, 21, z), eperm, "i386 mount");
        assert_eq!(p.evaluate(true, 384, z), eperm, "i386 arch_prctl");
        assert_eq!(
            p.evaluate(false, X32_SYSCALL_BIT | libc::SYS_read as u32, z),
            bpf::ret_errno(libc::ENOSYS),
            "x32 read"
        );
        assert_eq!(
            bpf::interpret(p.instructions(), 0x1234, 0, z),
            bpf::RET_KILL_PROCESS
        );
    }

    #[test]
    fn everyday_calls_pass_and_arguments_decide_like_docker() {
        let p = SeccompProgram::default_filter(default_caps()).unwrap();
        let eperm = bpf::ret_errno(libc::EPERM);
        let z = [0u32; 6];
        let one = |a: u32| [a, 0, 0, 0, 0, 0];
        for name in [
            "read",
            "write",
            "openat",
            "execve",
            "futex",
            "epoll_pwait2",
            "rseq",
            "arch_prctl",
            "chroot",
            "statx",
            "clock_nanosleep",
            "mseal",
            "setuid",
            "capset",
            "prctl",
        ] {
            assert_eq!(p.evaluate(false, nr(name), z), ALLOW, "{name}");
        }
        assert_eq!(p.evaluate(true, 3, z), ALLOW, "i386 read");
        assert_eq!(p.evaluate(true, 102, z), ALLOW, "i386 socketcall");
        assert_eq!(
            p.evaluate(false, nr("clone3"), z),
            bpf::ret_errno(libc::ENOSYS)
        );
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u32;
        assert_eq!(p.evaluate(false, nr("clone"), one(thread)), ALLOW);
        assert_eq!(p.evaluate(true, 120, one(thread)), ALLOW, "i386 clone");
        for ns in [libc::CLONE_NEWUSER, libc::CLONE_NEWNS, libc::CLONE_NEWNET] {
            let flags = ns as u32 | libc::SIGCHLD as u32;
            assert_eq!(p.evaluate(false, nr("clone"), one(flags)), eperm);
            assert_eq!(p.evaluate(true, 120, one(flags)), eperm);
        }
        for (family, want) in [
            (1, ALLOW),
            (2, ALLOW),
            (38, eperm),
            (39, ALLOW),
            (40, eperm),
            (41, ALLOW),
        ] {
            assert_eq!(
                p.evaluate(false, nr("socket"), one(family)),
                want,
                "AF {family}"
            );
        }
        for (pers, want) in [
            (0, ALLOW),
            (8, ALLOW),
            (0x20000, ALLOW),
            (0x20008, ALLOW),
            (0xffff_ffff, ALLOW),
            (0x0040000, eperm), // ADDR_NO_RANDOMIZE
            (1, eperm),
        ] {
            assert_eq!(
                p.evaluate(false, nr("personality"), one(pers)),
                want,
                "{pers:#x}"
            );
        }
    }

    #[test]
    fn capabilities_open_their_calls() {
        let eperm = bpf::ret_errno(libc::EPERM);
        let z = [0u32; 6];
        let with = |cap: Cap| {
            let caps = CapSet(default_caps().0 | CapSet::of(&[cap]).0);
            SeccompProgram::default_filter(caps).unwrap()
        };
        let base = SeccompProgram::default_filter(default_caps()).unwrap();
        let admin = with(Cap::SysAdmin);
        for name in [
            "mount",
            "umount2",
            "setns",
            "unshare",
            "clone3",
            "sethostname",
        ] {
            assert_eq!(
                base.evaluate(false, nr(name), z),
                if name == "clone3" {
                    bpf::ret_errno(libc::ENOSYS)
                } else {
                    eperm
                },
                "{name} without CAP_SYS_ADMIN"
            );
            assert_eq!(
                admin.evaluate(false, nr(name), z),
                ALLOW,
                "{name} with CAP_SYS_ADMIN"
            );
        }
        let userns = [libc::CLONE_NEWUSER as u32, 0, 0, 0, 0, 0];
        assert_eq!(admin.evaluate(false, nr("clone"), userns), ALLOW);
        assert_eq!(admin.evaluate(false, libc::SYS_kexec_load as u32, z), eperm);
        let ptrace = with(Cap::SysPtrace);
        assert_eq!(ptrace.evaluate(false, nr("kcmp"), z), ALLOW);
        assert_eq!(base.evaluate(false, nr("kcmp"), z), eperm);
        assert_eq!(
            with(Cap::DacReadSearch).evaluate(false, nr("open_by_handle_at"), z),
            ALLOW
        );
        assert_eq!(
            with(Cap::SysTime).evaluate(false, nr("settimeofday"), z),
            ALLOW
        );
        assert_eq!(base.evaluate(false, nr("settimeofday"), z), eperm);
        // chroot needs CAP_SYS_CHROOT, one of Docker's defaults.
        assert_eq!(
            SeccompProgram::default_filter(CapSet(0))
                .unwrap()
                .evaluate(false, nr("chroot"), z),
            eperm
        );
    }

    /// The compiled filter decides as the rule tables say, for every number
    /// of both ABIs, with arguments that hit and miss each argument test,
    /// for the default capabilities, none, and all.
    #[test]
    fn program_matches_the_tables_everywhere() {
        let arg_sets = [
            [0u32; 6],
            [0x7e02_0000, 0, 0, 0, 0, 0],
            [0x80, 0, 0, 0, 0, 0],
            [38, 0, 0, 0, 0, 0],
            [40, 0, 0, 0, 0, 0],
            [0x20008, 0, 0, 0, 0, 0],
            [0x0040000, 0, 0, 0, 0, 0],
        ];
        let eperm = bpf::ret_errno(libc::EPERM);
        for caps in [default_caps(), CapSet(0), CapSet::all()] {
            let p = SeccompProgram::default_filter(caps).unwrap();
            for i386 in [false, true] {
                let rules = rules_for(i386, caps);
                for nr in 0..1100 {
                    for args in arg_sets {
                        assert_eq!(
                            p.evaluate(i386, nr, args),
                            bpf::reference(&rules, eperm, nr, args),
                            "i386={i386} nr={nr} args={args:x?}"
                        );
                    }
                }
            }
        }
    }
}

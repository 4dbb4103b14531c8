//! Syscall numbers on x86_64 and i386 for every name the default seccomp
//! policy mentions (security::seccomp). Data only: from the kernel's
//! `arch/x86/entry/syscalls/syscall_{64,32}.tbl`, checked against the
//! installed `unistd_64.h`/`unistd_32.h` by a test below; numbers newer
//! than those headers (451 and up) are checked against libc where it
//! knows them. `None`: the ABI has no such call (i386 reaches the socket
//! calls through `socketcall`, x86_64 has no `*32` variants).

/// `(name, x86_64, i386)`, sorted by name.
pub(crate) const SYSCALLS: &[(&str, Option<u32>, Option<u32>)] = &[
    ("_llseek", None, Some(140)),
    ("_newselect", None, Some(142)),
    ("accept", Some(43), None),
    ("accept4", Some(288), Some(364)),
    ("access", Some(21), Some(33)),
    ("acct", Some(163), Some(51)),
    ("adjtimex", Some(159), Some(124)),
    ("alarm", Some(37), Some(27)),
    ("arch_prctl", Some(158), Some(384)),
    ("bind", Some(49), Some(361)),
    ("bpf", Some(321), Some(357)),
    ("brk", Some(12), Some(45)),
    ("cachestat", Some(451), Some(451)),
    ("capget", Some(125), Some(184)),
    ("capset", Some(126), Some(185)),
    ("chdir", Some(80), Some(12)),
    ("chmod", Some(90), Some(15)),
    ("chown", Some(92), Some(182)),
    ("chown32", None, Some(212)),
    ("chroot", Some(161), Some(61)),
    ("clock_adjtime", Some(305), Some(343)),
    ("clock_adjtime64", None, Some(405)),
    ("clock_getres", Some(229), Some(266)),
    ("clock_getres_time64", None, Some(406)),
    ("clock_gettime", Some(228), Some(265)),
    ("clock_gettime64", None, Some(403)),
    ("clock_nanosleep", Some(230), Some(267)),
    ("clock_nanosleep_time64", None, Some(407)),
    ("clock_settime", Some(227), Some(264)),
    ("clock_settime64", None, Some(404)),
    ("clone", Some(56), Some(120)),
    ("clone3", Some(435), Some(435)),
    ("close", Some(3), Some(6)),
    ("close_range", Some(436), Some(436)),
    ("connect", Some(42), Some(362)),
    ("copy_file_range", Some(326), Some(377)),
    ("creat", Some(85), Some(8)),
    ("delete_module", Some(176), Some(129)),
    ("dup", Some(32), Some(41)),
    ("dup2", Some(33), Some(63)),
    ("dup3", Some(292), Some(330)),
    ("epoll_create", Some(213), Some(254)),
    ("epoll_create1", Some(291), Some(329)),
    ("epoll_ctl", Some(233), Some(255)),
    ("epoll_ctl_old", Some(214), None),
    ("epoll_pwait", Some(281), Some(319)),
    ("epoll_pwait2", Some(441), Some(441)),
    ("epoll_wait", Some(232), Some(256)),
    ("epoll_wait_old", Some(215), None),
    ("eventfd", Some(284), Some(323)),
    ("eventfd2", Some(290), Some(328)),
    ("execve", Some(59), Some(11)),
    ("execveat", Some(322), Some(358)),
    ("exit", Some(60), Some(1)),
    ("exit_group", Some(231), Some(252)),
    ("faccessat", Some(269), Some(307)),
    ("faccessat2", Some(439), Some(439)),
    ("fadvise64", Some(221), Some(250)),
    ("fadvise64_64", None, Some(272)),
    ("fallocate", Some(285), Some(324)),
    ("fanotify_init", Some(300), Some(338)),
    ("fanotify_mark", Some(301), Some(339)),
    ("fchdir", Some(81), Some(133)),
    ("fchmod", Some(91), Some(94)),
    ("fchmodat", Some(268), Some(306)),
    ("fchmodat2", Some(452), Some(452)),
    ("fchown", Some(93), Some(95)),
    ("fchown32", None, Some(207)),
    ("fchownat", Some(260), Some(298)),
    ("fcntl", Some(72), Some(55)),
    ("fcntl64", None, Some(221)),
    ("fdatasync", Some(75), Some(148)),
    ("fgetxattr", Some(193), Some(231)),
    ("finit_module", Some(313), Some(350)),
    ("flistxattr", Some(196), Some(234)),
    ("flock", Some(73), Some(143)),
    ("fork", Some(57), Some(2)),
    ("fremovexattr", Some(199), Some(237)),
    ("fsconfig", Some(431), Some(431)),
    ("fsetxattr", Some(190), Some(228)),
    ("fsmount", Some(432), Some(432)),
    ("fsopen", Some(430), Some(430)),
    ("fspick", Some(433), Some(433)),
    ("fstat", Some(5), Some(108)),
    ("fstat64", None, Some(197)),
    ("fstatat64", None, Some(300)),
    ("fstatfs", Some(138), Some(100)),
    ("fstatfs64", None, Some(269)),
    ("fsync", Some(74), Some(118)),
    ("ftruncate", Some(77), Some(93)),
    ("ftruncate64", None, Some(194)),
    ("futex", Some(202), Some(240)),
    ("futex_requeue", Some(456), Some(456)),
    ("futex_time64", None, Some(422)),
    ("futex_wait", Some(455), Some(455)),
    ("futex_waitv", Some(449), Some(449)),
    ("futex_wake", Some(454), Some(454)),
    ("futimesat", Some(261), Some(299)),
    ("get_mempolicy", Some(239), Some(275)),
    ("get_robust_list", Some(274), Some(312)),
    ("get_thread_area", Some(211), Some(244)),
    ("getcpu", Some(309), Some(318)),
    ("getcwd", Some(79), Some(183)),
    ("getdents", Some(78), Some(141)),
    ("getdents64", Some(217), Some(220)),
    ("getegid", Some(108), Some(50)),
    ("getegid32", None, Some(202)),
    ("geteuid", Some(107), Some(49)),
    ("geteuid32", None, Some(201)),
    ("getgid", Some(104), Some(47)),
    ("getgid32", None, Some(200)),
    ("getgroups", Some(115), Some(80)),
    ("getgroups32", None, Some(205)),
    ("getitimer", Some(36), Some(105)),
    ("getpeername", Some(52), Some(368)),
    ("getpgid", Some(121), Some(132)),
    ("getpgrp", Some(111), Some(65)),
    ("getpid", Some(39), Some(20)),
    ("getppid", Some(110), Some(64)),
    ("getpriority", Some(140), Some(96)),
    ("getrandom", Some(318), Some(355)),
    ("getresgid", Some(120), Some(171)),
    ("getresgid32", None, Some(211)),
    ("getresuid", Some(118), Some(165)),
    ("getresuid32", None, Some(209)),
    ("getrlimit", Some(97), Some(76)),
    ("getrusage", Some(98), Some(77)),
    ("getsid", Some(124), Some(147)),
    ("getsockname", Some(51), Some(367)),
    ("getsockopt", Some(55), Some(365)),
    ("gettid", Some(186), Some(224)),
    ("gettimeofday", Some(96), Some(78)),
    ("getuid", Some(102), Some(24)),
    ("getuid32", None, Some(199)),
    ("getxattr", Some(191), Some(229)),
    ("getxattrat", Some(464), Some(464)),
    ("init_module", Some(175), Some(128)),
    ("inotify_add_watch", Some(254), Some(292)),
    ("inotify_init", Some(253), Some(291)),
    ("inotify_init1", Some(294), Some(332)),
    ("inotify_rm_watch", Some(255), Some(293)),
    ("io_cancel", Some(210), Some(249)),
    ("io_destroy", Some(207), Some(246)),
    ("io_getevents", Some(208), Some(247)),
    ("io_pgetevents", Some(333), Some(385)),
    ("io_pgetevents_time64", None, Some(416)),
    ("io_setup", Some(206), Some(245)),
    ("io_submit", Some(209), Some(248)),
    ("ioctl", Some(16), Some(54)),
    ("ioperm", Some(173), Some(101)),
    ("iopl", Some(172), Some(110)),
    ("ioprio_get", Some(252), Some(290)),
    ("ioprio_set", Some(251), Some(289)),
    ("ipc", None, Some(117)),
    ("kcmp", Some(312), Some(349)),
    ("kill", Some(62), Some(37)),
    ("landlock_add_rule", Some(445), Some(445)),
    ("landlock_create_ruleset", Some(444), Some(444)),
    ("landlock_restrict_self", Some(446), Some(446)),
    ("lchown", Some(94), Some(16)),
    ("lchown32", None, Some(198)),
    ("lgetxattr", Some(192), Some(230)),
    ("link", Some(86), Some(9)),
    ("linkat", Some(265), Some(303)),
    ("listen", Some(50), Some(363)),
    ("listmount", Some(458), Some(458)),
    ("listxattr", Some(194), Some(232)),
    ("listxattrat", Some(465), Some(465)),
    ("llistxattr", Some(195), Some(233)),
    ("lookup_dcookie", Some(212), Some(253)),
    ("lremovexattr", Some(198), Some(236)),
    ("lseek", Some(8), Some(19)),
    ("lsetxattr", Some(189), Some(227)),
    ("lsm_get_self_attr", Some(459), Some(459)),
    ("lsm_list_modules", Some(461), Some(461)),
    ("lsm_set_self_attr", Some(460), Some(460)),
    ("lstat", Some(6), Some(107)),
    ("lstat64", None, Some(196)),
    ("madvise", Some(28), Some(219)),
    ("map_shadow_stack", Some(453), None),
    ("mbind", Some(237), Some(274)),
    ("membarrier", Some(324), Some(375)),
    ("memfd_create", Some(319), Some(356)),
    ("memfd_secret", Some(447), Some(447)),
    ("mincore", Some(27), Some(218)),
    ("mkdir", Some(83), Some(39)),
    ("mkdirat", Some(258), Some(296)),
    ("mknod", Some(133), Some(14)),
    ("mknodat", Some(259), Some(297)),
    ("mlock", Some(149), Some(150)),
    ("mlock2", Some(325), Some(376)),
    ("mlockall", Some(151), Some(152)),
    ("mmap", Some(9), Some(90)),
    ("mmap2", None, Some(192)),
    ("modify_ldt", Some(154), Some(123)),
    ("mount", Some(165), Some(21)),
    ("mount_setattr", Some(442), Some(442)),
    ("move_mount", Some(429), Some(429)),
    ("mprotect", Some(10), Some(125)),
    ("mq_getsetattr", Some(245), Some(282)),
    ("mq_notify", Some(244), Some(281)),
    ("mq_open", Some(240), Some(277)),
    ("mq_timedreceive", Some(243), Some(280)),
    ("mq_timedreceive_time64", None, Some(419)),
    ("mq_timedsend", Some(242), Some(279)),
    ("mq_timedsend_time64", None, Some(418)),
    ("mq_unlink", Some(241), Some(278)),
    ("mremap", Some(25), Some(163)),
    ("mseal", Some(462), Some(462)),
    ("msgctl", Some(71), Some(402)),
    ("msgget", Some(68), Some(399)),
    ("msgrcv", Some(70), Some(401)),
    ("msgsnd", Some(69), Some(400)),
    ("msync", Some(26), Some(144)),
    ("munlock", Some(150), Some(151)),
    ("munlockall", Some(152), Some(153)),
    ("munmap", Some(11), Some(91)),
    ("name_to_handle_at", Some(303), Some(341)),
    ("nanosleep", Some(35), Some(162)),
    ("newfstatat", Some(262), None),
    ("open", Some(2), Some(5)),
    ("open_by_handle_at", Some(304), Some(342)),
    ("open_tree", Some(428), Some(428)),
    ("openat", Some(257), Some(295)),
    ("openat2", Some(437), Some(437)),
    ("pause", Some(34), Some(29)),
    ("perf_event_open", Some(298), Some(336)),
    ("personality", Some(135), Some(136)),
    ("pidfd_getfd", Some(438), Some(438)),
    ("pidfd_open", Some(434), Some(434)),
    ("pidfd_send_signal", Some(424), Some(424)),
    ("pipe", Some(22), Some(42)),
    ("pipe2", Some(293), Some(331)),
    ("pkey_alloc", Some(330), Some(381)),
    ("pkey_free", Some(331), Some(382)),
    ("pkey_mprotect", Some(329), Some(380)),
    ("poll", Some(7), Some(168)),
    ("ppoll", Some(271), Some(309)),
    ("ppoll_time64", None, Some(414)),
    ("prctl", Some(157), Some(172)),
    ("pread64", Some(17), Some(180)),
    ("preadv", Some(295), Some(333)),
    ("preadv2", Some(327), Some(378)),
    ("prlimit64", Some(302), Some(340)),
    ("process_madvise", Some(440), Some(440)),
    ("process_mrelease", Some(448), Some(448)),
    ("process_vm_readv", Some(310), Some(347)),
    ("process_vm_writev", Some(311), Some(348)),
    ("pselect6", Some(270), Some(308)),
    ("pselect6_time64", None, Some(413)),
    ("ptrace", Some(101), Some(26)),
    ("pwrite64", Some(18), Some(181)),
    ("pwritev", Some(296), Some(334)),
    ("pwritev2", Some(328), Some(379)),
    ("quotactl", Some(179), Some(131)),
    ("quotactl_fd", Some(443), Some(443)),
    ("read", Some(0), Some(3)),
    ("readahead", Some(187), Some(225)),
    ("readlink", Some(89), Some(85)),
    ("readlinkat", Some(267), Some(305)),
    ("readv", Some(19), Some(145)),
    ("reboot", Some(169), Some(88)),
    ("recvfrom", Some(45), Some(371)),
    ("recvmmsg", Some(299), Some(337)),
    ("recvmmsg_time64", None, Some(417)),
    ("recvmsg", Some(47), Some(372)),
    ("remap_file_pages", Some(216), Some(257)),
    ("removexattr", Some(197), Some(235)),
    ("removexattrat", Some(466), Some(466)),
    ("rename", Some(82), Some(38)),
    ("renameat", Some(264), Some(302)),
    ("renameat2", Some(316), Some(353)),
    ("restart_syscall", Some(219), Some(0)),
    ("rmdir", Some(84), Some(40)),
    ("rseq", Some(334), Some(386)),
    ("rt_sigaction", Some(13), Some(174)),
    ("rt_sigpending", Some(127), Some(176)),
    ("rt_sigprocmask", Some(14), Some(175)),
    ("rt_sigqueueinfo", Some(129), Some(178)),
    ("rt_sigreturn", Some(15), Some(173)),
    ("rt_sigsuspend", Some(130), Some(179)),
    ("rt_sigtimedwait", Some(128), Some(177)),
    ("rt_sigtimedwait_time64", None, Some(421)),
    ("rt_tgsigqueueinfo", Some(297), Some(335)),
    ("sched_get_priority_max", Some(146), Some(159)),
    ("sched_get_priority_min", Some(147), Some(160)),
    ("sched_getaffinity", Some(204), Some(242)),
    ("sched_getattr", Some(315), Some(352)),
    ("sched_getparam", Some(143), Some(155)),
    ("sched_getscheduler", Some(145), Some(157)),
    ("sched_rr_get_interval", Some(148), Some(161)),
    ("sched_rr_get_interval_time64", None, Some(423)),
    ("sched_setaffinity", Some(203), Some(241)),
    ("sched_setattr", Some(314), Some(351)),
    ("sched_setparam", Some(142), Some(154)),
    ("sched_setscheduler", Some(144), Some(156)),
    ("sched_yield", Some(24), Some(158)),
    ("seccomp", Some(317), Some(354)),
    ("select", Some(23), Some(82)),
    ("semctl", Some(66), Some(394)),
    ("semget", Some(64), Some(393)),
    ("semop", Some(65), None),
    ("semtimedop", Some(220), None),
    ("semtimedop_time64", None, Some(420)),
    ("sendfile", Some(40), Some(187)),
    ("sendfile64", None, Some(239)),
    ("sendmmsg", Some(307), Some(345)),
    ("sendmsg", Some(46), Some(370)),
    ("sendto", Some(44), Some(369)),
    ("set_mempolicy", Some(238), Some(276)),
    ("set_mempolicy_home_node", Some(450), Some(450)),
    ("set_robust_list", Some(273), Some(311)),
    ("set_thread_area", Some(205), Some(243)),
    ("set_tid_address", Some(218), Some(258)),
    ("setdomainname", Some(171), Some(121)),
    ("setfsgid", Some(123), Some(139)),
    ("setfsgid32", None, Some(216)),
    ("setfsuid", Some(122), Some(138)),
    ("setfsuid32", None, Some(215)),
    ("setgid", Some(106), Some(46)),
    ("setgid32", None, Some(214)),
    ("setgroups", Some(116), Some(81)),
    ("setgroups32", None, Some(206)),
    ("sethostname", Some(170), Some(74)),
    ("setitimer", Some(38), Some(104)),
    ("setns", Some(308), Some(346)),
    ("setpgid", Some(109), Some(57)),
    ("setpriority", Some(141), Some(97)),
    ("setregid", Some(114), Some(71)),
    ("setregid32", None, Some(204)),
    ("setresgid", Some(119), Some(170)),
    ("setresgid32", None, Some(210)),
    ("setresuid", Some(117), Some(164)),
    ("setresuid32", None, Some(208)),
    ("setreuid", Some(113), Some(70)),
    ("setreuid32", None, Some(203)),
    ("setrlimit", Some(160), Some(75)),
    ("setsid", Some(112), Some(66)),
    ("setsockopt", Some(54), Some(366)),
    ("settimeofday", Some(164), Some(79)),
    ("setuid", Some(105), Some(23)),
    ("setuid32", None, Some(213)),
    ("setxattr", Some(188), Some(226)),
    ("setxattrat", Some(463), Some(463)),
    ("shmat", Some(30), Some(397)),
    ("shmctl", Some(31), Some(396)),
    ("shmdt", Some(67), Some(398)),
    ("shmget", Some(29), Some(395)),
    ("shutdown", Some(48), Some(373)),
    ("sigaltstack", Some(131), Some(186)),
    ("signalfd", Some(282), Some(321)),
    ("signalfd4", Some(289), Some(327)),
    ("sigprocmask", None, Some(126)),
    ("sigreturn", None, Some(119)),
    ("socket", Some(41), Some(359)),
    ("socketcall", None, Some(102)),
    ("socketpair", Some(53), Some(360)),
    ("splice", Some(275), Some(313)),
    ("stat", Some(4), Some(106)),
    ("stat64", None, Some(195)),
    ("statfs", Some(137), Some(99)),
    ("statfs64", None, Some(268)),
    ("statmount", Some(457), Some(457)),
    ("statx", Some(332), Some(383)),
    ("stime", None, Some(25)),
    ("symlink", Some(88), Some(83)),
    ("symlinkat", Some(266), Some(304)),
    ("sync", Some(162), Some(36)),
    ("sync_file_range", Some(277), Some(314)),
    ("syncfs", Some(306), Some(344)),
    ("sysinfo", Some(99), Some(116)),
    ("syslog", Some(103), Some(103)),
    ("tee", Some(276), Some(315)),
    ("tgkill", Some(234), Some(270)),
    ("time", Some(201), Some(13)),
    ("timer_create", Some(222), Some(259)),
    ("timer_delete", Some(226), Some(263)),
    ("timer_getoverrun", Some(225), Some(262)),
    ("timer_gettime", Some(224), Some(261)),
    ("timer_gettime64", None, Some(408)),
    ("timer_settime", Some(223), Some(260)),
    ("timer_settime64", None, Some(409)),
    ("timerfd_create", Some(283), Some(322)),
    ("timerfd_gettime", Some(287), Some(326)),
    ("timerfd_gettime64", None, Some(410)),
    ("timerfd_settime", Some(286), Some(325)),
    ("timerfd_settime64", None, Some(411)),
    ("times", Some(100), Some(43)),
    ("tkill", Some(200), Some(238)),
    ("truncate", Some(76), Some(92)),
    ("truncate64", None, Some(193)),
    ("ugetrlimit", None, Some(191)),
    ("umask", Some(95), Some(60)),
    ("umount", None, Some(22)),
    ("umount2", Some(166), Some(52)),
    ("uname", Some(63), Some(122)),
    ("unlink", Some(87), Some(10)),
    ("unlinkat", Some(263), Some(301)),
    ("unshare", Some(272), Some(310)),
    ("uretprobe", Some(335), None),
    ("utime", Some(132), Some(30)),
    ("utimensat", Some(280), Some(320)),
    ("utimensat_time64", None, Some(412)),
    ("utimes", Some(235), Some(271)),
    ("vfork", Some(58), Some(190)),
    ("vhangup", Some(153), Some(111)),
    ("vmsplice", Some(278), Some(316)),
    ("wait4", Some(61), Some(114)),
    ("waitid", Some(247), Some(284)),
    ("waitpid", None, Some(7)),
    ("write", Some(1), Some(4)),
    ("writev", Some(20), Some(146)),
];

/// `(x86_64, i386)` numbers of a syscall, `None` where the ABI has none.
pub(crate) type Numbers = (Option<u32>, Option<u32>);

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The numbers of `name`. In a `const` the lookup happens at compile
/// time, and a name missing from the table (a typo in the policy) fails
/// the build; at run time it panics.
pub(crate) const fn numbers(name: &str) -> Numbers {
    let mut i = 0;
    while i < SYSCALLS.len() {
        if same(SYSCALLS[i].0, name) {
            return (SYSCALLS[i].1, SYSCALLS[i].2);
        }
        i += 1;
    }
    panic!("a syscall name of the policy is not in the table")
}

/// The numbers of each name, in order (for a `const` table).
pub(crate) const fn numbers_of<const N: usize>(names: &[&str]) -> [Numbers; N] {
    assert!(names.len() == N);
    let mut out = [(None, None); N];
    let mut i = 0;
    while i < N {
        out[i] = numbers(names[i]);
        i += 1;
    }
    out
}

/// The number of `name` on one ABI, `None` when that ABI has no such call.
pub(crate) fn number(name: &str, i386: bool) -> Option<u32> {
    pick(numbers(name), i386)
}

pub(crate) fn pick(n: Numbers, i386: bool) -> Option<u32> {
    if i386 {
        n.1
    } else {
        n.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_and_unique() {
        for w in SYSCALLS.windows(2) {
            assert!(w[0].0 < w[1].0, "{} before {}", w[0].0, w[1].0);
        }
    }

    #[test]
    fn numbers_match_libc() {
        let check = [
            ("read", libc::SYS_read),
            ("clone", libc::SYS_clone),
            ("clone3", libc::SYS_clone3),
            ("mount", libc::SYS_mount),
            ("socket", libc::SYS_socket),
            ("personality", libc::SYS_personality),
            ("open_by_handle_at", libc::SYS_open_by_handle_at),
            ("futex_waitv", libc::SYS_futex_waitv),
            ("fchmodat2", libc::SYS_fchmodat2),
            ("mseal", libc::SYS_mseal),
        ];
        for (name, nr) in check {
            assert_eq!(number(name, false), Some(nr as u32), "{name}");
        }
    }

    /// Cross-checks the table against the kernel headers (linux-libc-dev),
    /// so a typo in a number cannot hide. Names newer than the headers
    /// are skipped here.
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
        let newest = |h: &str| {
            h.lines()
                .filter_map(|l| l.split_whitespace().nth(2)?.parse::<u32>().ok())
                .max()
                .unwrap()
        };
        let (max64, max32) = (newest(&h64), newest(&h32));
        let mut checked = 0;
        for &(name, a, b) in SYSCALLS {
            // uretprobe (6.11) took a free number below the headers' newest.
            if a.is_some_and(|n| n > max64) || b.is_some_and(|n| n > max32) || name == "uretprobe" {
                continue;
            }
            assert_eq!(find(&h64, name), a, "x86_64 number of {name}");
            assert_eq!(find(&h32, name), b, "i386 number of {name}");
            checked += 1;
        }
        assert!(checked > 350, "only {checked} names checked");
    }
}

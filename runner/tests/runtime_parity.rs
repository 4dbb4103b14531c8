//! The same bundle through rbox-runtime, runc and crun gives the same
//! observable results: a table of behaviours (`CASES`), each run with
//! `RUNTIME run` by all three and checked against the answer written in
//! the row, so the test fails when any one of them differs (not only when
//! they differ from each other). README.md's "rbox-runtime" section lists
//! the same rows.
//!
//! crun refuses a hybrid cgroup host (v1 controllers beside an empty
//! cgroup2 mount at /sys/fs/cgroup/unified, as this project's dev machine
//! has); there it runs in a private mount namespace with that mount
//! removed, which is what it would see on a v1-only host. On the pure v2
//! guest of scripts/vm/ it runs as is.

mod bundle_common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use bundle_common::{bundle, err, out, require_root, Bundle, RUNTIME};
use serde_json::{json, Value};

/// One behaviour: a shell script run as the container's command in a
/// bundle changed by `tweak`; every runtime must print `stdout` and exit
/// with `code`.
struct Case {
    name: &'static str,
    script: &'static str,
    tweak: fn(&mut Value, &Path),
    stdout: &'static str,
    code: i32,
    /// Where a peer's answer is known to differ (runtime, its stdout),
    /// and why in a comment: its answer is checked too, so a change in
    /// the peer shows up.
    peers: &'static [(&'static str, &'static str)],
}

fn none(_: &mut Value, _: &Path) {}

/// A memory and a pids limit (the script reads them back on v1 or v2).
fn limits(c: &mut Value, _: &Path) {
    c["linux"]["resources"]["memory"] = json!({"limit": 33554432});
    c["linux"]["resources"]["pids"] = json!({"limit": 20});
}

const CASES: &[Case] = &[
    Case {
        name: "exit status of the command",
        script: "exit 7",
        tweak: none,
        stdout: "",
        code: 7,
        peers: &[],
    },
    Case {
        name: "killed by a signal: 128+N (SIGSYS from a seccomp kill rule)",
        script: "exec mkdir /dev/shm/d",
        tweak: |c, _| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]
            });
        },
        stdout: "",
        code: 159,
        peers: &[],
    },
    Case {
        name: "pid 1 in a new pid namespace",
        script: "echo $$ $PPID; cat /proc/1/comm",
        tweak: none,
        stdout: "1 0\ncat\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "argv passed as given",
        script: "printf '%s|' \"$@\"; echo",
        tweak: |c, _| {
            let a = c["process"]["args"].as_array_mut().unwrap();
            a.extend([json!("x0"), json!("a b"), json!(""), json!("$HOME")]);
        },
        stdout: "a b||$HOME|\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "hostname and domainname",
        script: "hostname; cat /proc/sys/kernel/domainname",
        tweak: |c, _| {
            c["hostname"] = json!("parity");
            c["domainname"] = json!("example.org");
        },
        stdout: "parity\nexample.org\n",
        code: 0,
        // runc 1.1 does not set domainname (runc 1.2 does).
        peers: &[("runc", "parity\n(none)\n")],
    },
    Case {
        name: "cwd and env",
        script: "pwd; echo \"$FOO\"; echo \"$PATH\"",
        tweak: |c, _| {
            c["process"]["cwd"] = json!("/etc");
            c["process"]["env"] = json!(["PATH=/bin:/usr/bin", "FOO=bar baz"]);
        },
        stdout: "/etc\nbar baz\n/bin:/usr/bin\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "uid, gid and additional gids",
        script: "id -u; id -g; id -G",
        tweak: |c, _| {
            c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [10, 20]});
        },
        stdout: "1000\n1000\n1000 10 20\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "the five capability sets (runc spec's three capabilities)",
        script: "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status",
        tweak: none,
        stdout: "CapInh:\t0000000000000000\nCapPrm:\t0000000020000420\n\
                 CapEff:\t0000000020000420\nCapBnd:\t0000000020000420\n\
                 CapAmb:\t0000000000000000\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "capabilities of a non-root user are dropped at execve",
        script: "grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status",
        tweak: |c, _| c["process"]["user"] = json!({"uid": 1000, "gid": 1000}),
        stdout: "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n\
                 CapBnd:\t0000000020000420\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "rlimits, soft and hard",
        script: "ulimit -n; ulimit -Hn",
        tweak: |c, _| {
            c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
        },
        stdout: "256\n512\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "noNewPrivileges",
        script: "grep NoNewPrivs /proc/self/status",
        tweak: none,
        stdout: "NoNewPrivs:\t1\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "oomScoreAdj",
        script: "cat /proc/self/oom_score_adj",
        tweak: |c, _| c["process"]["oomScoreAdj"] = json!(500),
        stdout: "500\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "umask 0022",
        script: "umask",
        tweak: none,
        stdout: "0022\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "maskedPaths read as empty",
        script: "wc -c < /proc/timer_list; ls /proc/acpi | wc -l; ls /sys/firmware | wc -l",
        tweak: none,
        stdout: "0\n0\n0\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "readonlyPaths refuse writes",
        script: "echo 1 > /proc/sys/kernel/shmmax 2>/dev/null || echo refused",
        tweak: none,
        stdout: "refused\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "readonly root, writable tmpfs mount with its mode",
        script: "touch /x 2>/dev/null || echo ro; stat -c %a /scratch; \
                 touch /scratch/y && echo rw",
        tweak: |c, _| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                "options": ["nosuid", "nodev", "mode=1777", "size=1m"]
            }));
        },
        stdout: "ro\n1777\nrw\n",
        code: 0,
        // runc 1.1 leaves the mode of the directory it makes on a
        // read-only root (Docker and crun apply mode=).
        peers: &[("runc", "ro\n755\nrw\n")],
    },
    Case {
        name: "read-only bind mount of a host directory",
        script: "cat /data/f; touch /data/g 2>/dev/null || echo ro",
        tweak: |c, host| {
            let d = host.join("data");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("f"), "hello\n").unwrap();
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/data", "type": "bind", "source": d,
                "options": ["rbind", "ro"]
            }));
        },
        stdout: "hello\nro\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "namespaced sysctl",
        script: "cat /proc/sys/kernel/msgmax",
        tweak: |c, _| c["linux"]["sysctl"] = json!({"kernel.msgmax": "4096"}),
        stdout: "4096\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "default device nodes",
        script: "for d in null zero full random urandom tty; do \
                 [ -c /dev/$d ] && echo $d; done; echo x > /dev/null && echo w",
        tweak: none,
        stdout: "null\nzero\nfull\nrandom\nurandom\ntty\nw\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "memory and pids limits in the container's cgroup",
        script: "cat /sys/fs/cgroup/memory.max 2>/dev/null || \
                 cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
                 cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
        tweak: limits,
        stdout: "33554432\n20\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "seccomp: an errno rule on an allow default",
        script: "mkdir /dev/shm/d 2>&1 | grep -o 'Operation not permitted'; \
                 [ -d /dev/shm/d ] || echo absent",
        tweak: |c, _| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
            });
        },
        stdout: "Operation not permitted\nabsent\n",
        code: 0,
        peers: &[],
    },
    Case {
        name: "seccomp: SCMP_ACT_KILL_PROCESS kills only the offender",
        script: "mkdir /dev/shm/d; echo \"survived $?\"",
        tweak: |c, _| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]
            });
        },
        // sh runs mkdir in a child, which dies by SIGSYS; sh goes on.
        stdout: "survived 159\n",
        code: 0,
        peers: &[],
    },
];

/// How to run each runtime: its path, and whether it needs the hybrid
/// host's empty cgroup2 mount hidden (crun).
fn runtimes() -> Vec<(&'static str, &'static str)> {
    vec![
        ("rbox-runtime", RUNTIME),
        ("runc", "/usr/sbin/runc"),
        ("crun", "/usr/bin/crun"),
    ]
}

fn run_in(name: &str, path: &str, b: &Bundle, id: &str) -> Output {
    let root = b.root.join(name);
    let hybrid = Path::new("/sys/fs/cgroup/unified").exists();
    let mut c = if name == "crun" && hybrid {
        let mut c = Command::new("unshare");
        c.args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("umount /sys/fs/cgroup/unified && exec \"$0\" \"$@\"")
            .arg(path);
        c
    } else {
        Command::new(path)
    };
    c.arg("--root")
        .arg(root)
        .args(["run", "--bundle", &b.bundle_arg(), id])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn every_behaviour_is_the_same_through_rbox_runtime_runc_and_crun() {
    require_root();
    let mut failures = Vec::new();
    for (i, case) in CASES.iter().enumerate() {
        let host = tempfile::tempdir().unwrap();
        let b = bundle(&["sh", "-c", case.script], |c| (case.tweak)(c, host.path()));
        for (name, path) in runtimes() {
            let id = format!("parity-{i}-{}", std::process::id());
            let o = run_in(name, path, &b, &id);
            let code = o.status.code().unwrap_or(-1);
            let want = case
                .peers
                .iter()
                .find(|(peer, _)| *peer == name)
                .map_or(case.stdout, |(_, s)| s);
            if out(&o) != want || code != case.code {
                failures.push(format!(
                    "{name}: {}: exit {code} (want {}), stdout {:?} (want {:?}), stderr {:?}",
                    case.name,
                    case.code,
                    out(&o),
                    want,
                    err(&o)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} checks differ:\n{}",
        failures.len(),
        CASES.len() * runtimes().len(),
        failures.join("\n")
    );
}

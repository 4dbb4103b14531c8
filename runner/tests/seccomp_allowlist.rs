//! The default seccomp filter is an allow list, for real, through the rrun
//! binary: calls it does not name (real ones Docker refuses, and numbers
//! newer than the list) fail with EPERM, while real workloads run under
//! it: busybox, the host's Debian userland (bash, coreutils, python3,
//! perl) bound read-only, and a static threaded Rust program (clone3 →
//! ENOSYS → clone, futex, epoll, eventfd, std io). `seccomp=unconfined`
//! and `--privileged` lift it.

mod common;
mod escape_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use escape_common::*;

const WORKLOAD_SRC: &str = include_str!("seccomp_common/workload.rs");

/// Syscalls probed with zero arguments: two numbers past the newest this
/// list knows (6.18 ends at 470), then kexec_load, userfaultfd,
/// open_by_handle_at and io_uring_setup, which Docker's profile refuses.
const PROBED: &[&str] = &["471", "1000", "246", "323", "304", "425"];

/// The workload, static (the busybox image has no libc).
fn workload_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = store_root().join("seccomp-workload");
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("workload.rs");
        std::fs::write(&src, WORKLOAD_SRC).unwrap();
        let out = dir.join("workload");
        let o = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
            .args([
                "--edition",
                "2021",
                "-C",
                "target-feature=+crt-static",
                "-o",
            ])
            .arg(&out)
            .arg(&src)
            .output()
            .expect("run rustc to build the static workload");
        assert!(
            o.status.success(),
            "rustc failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out
    })
}

fn image() -> &'static str {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        image_with(
            "seccomp-probe",
            &[
                ("probe", Entry::Copy(probe_binary(), 0o755)),
                ("workload", Entry::Copy(workload_binary(), 0o755)),
            ],
            &[],
        )
    });
    "seccomp-probe"
}

fn probe(extra: &[&str]) -> Vec<(String, String)> {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image(), "/probe", "nr"]);
    args.extend_from_slice(PROBED);
    let o = rrun(&args);
    assert_eq!(code(&o), 0, "{extra:?}: {}", stderr(&o));
    let got = results(&stdout(&o));
    assert_eq!(got.len(), PROBED.len(), "{extra:?}: {}", stdout(&o));
    got
}

#[test]
fn unlisted_and_unknown_syscalls_fail_with_eperm() {
    for (name, result) in probe(&[]) {
        assert_eq!(result, "EPERM", "{name} under the default filter");
    }
    // As a non-root user too (the filter is loaded before setuid).
    for (name, result) in probe(&["-u", "1000"]) {
        assert_eq!(result, "EPERM", "{name} as uid 1000");
    }
}

/// The control: unconfined and privileged containers reach the kernel,
/// which does not know the two new numbers.
#[test]
fn unconfined_and_privileged_lift_the_filter() {
    for extra in [
        &["--security-opt", "seccomp=unconfined"][..],
        &["--privileged"][..],
    ] {
        let got = probe(extra);
        assert_eq!(got[0], ("nr_471".into(), "ENOSYS".into()), "{extra:?}");
        assert_eq!(got[1], ("nr_1000".into(), "ENOSYS".into()), "{extra:?}");
        let o = rrun(
            &[
                &["run", "--rm"][..],
                extra,
                &["busybox", "grep", "^Seccomp:", "/proc/self/status"],
            ]
            .concat(),
        );
        assert_eq!(stdout(&o), "Seccomp:\t0\n", "{extra:?}: {}", stderr(&o));
    }
}

/// crun and runc load the same allow list from config.json. runc, on
/// purpose, answers ENOSYS for numbers newer than any its libseccomp
/// knows (its "-ENOSYS stub", so libc falls back), not the default action.
#[test]
fn oci_runtimes_refuse_what_the_list_does_not_name() {
    for rt in ["crun", "runc"] {
        for (name, result) in probe(&["--runtime", rt]) {
            let unknown = name == "nr_471" || name == "nr_1000";
            let want = if rt == "runc" && unknown {
                "ENOSYS"
            } else {
                "EPERM"
            };
            assert_eq!(result, want, "{name} under {rt}");
        }
    }
}

#[test]
fn busybox_workloads_run_under_the_filter() {
    let script = "set -e; \
        seq 1 200 | awk '{s+=$1} END {print s}'; \
        echo c b a | tr ' ' '\\n' | sort | tr '\\n' ,; echo; \
        mkdir -p /tmp/d/e && echo hi > /tmp/d/e/f && tar -C /tmp -cf /tmp/t.tar d && tar -tf /tmp/t.tar | wc -l; \
        sleep 0.1 & wait $!; echo waited; \
        (exit 3) || echo sub=$?; \
        ps -o pid,comm | grep -c sh >/dev/null && echo ps-ok; \
        find /etc -name passwd; \
        id -u; date +%Y >/dev/null && echo date-ok; \
        chroot / true && echo chroot-ok";
    let o = sh(&[], script);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o),
        "20100\na,b,c,\n3\nwaited\nsub=3\nps-ok\n/etc/passwd\n0\ndate-ok\nchroot-ok\n"
    );
}

/// The host's /usr (a Debian userland), bound read-only with /lib and
/// /lib64 beside it, runs bash, coreutils, python3 and perl: threads,
/// subprocesses, sockets of the allowed families, AF_VSOCK and AF_ALG
/// refused with EPERM.
#[test]
fn a_debian_userland_runs_under_the_filter() {
    for tool in [
        "/usr/bin/bash",
        "/usr/bin/python3",
        "/usr/bin/perl",
        "/usr/lib64",
    ] {
        assert!(
            Path::new(tool).exists(),
            "{tool} missing on the host: apt-get install bash python3 perl"
        );
    }
    let run = |extra: &[&str], args: &[&str]| {
        let mut a = vec![
            "run",
            "--rm",
            "-v",
            "/usr:/usr:ro",
            "-v",
            "/usr/lib:/lib:ro",
            "-v",
            "/usr/lib64:/lib64:ro",
        ];
        a.extend_from_slice(extra);
        a.push("busybox");
        a.extend_from_slice(args);
        let o = rrun(&a);
        assert_eq!(code(&o), 0, "{args:?}: {}\n{}", stdout(&o), stderr(&o));
        stdout(&o)
    };
    let out = run(
        &[],
        &[
            "/usr/bin/bash",
            "-c",
            "echo $((6*7)); printf 'b\\na\\n' | /usr/bin/sort | /usr/bin/tr '\\n' ,; echo; \
             /usr/bin/ls /usr/bin/ls; /usr/bin/tar -C /usr/share/doc/bash -cf - . | /usr/bin/tar -tf - >/dev/null && echo tar-ok",
        ],
    );
    assert_eq!(out, "42\na,b,\n/usr/bin/ls\ntar-ok\n");
    let py = "import threading, subprocess, socket, hashlib, json\n\
              r = []\n\
              t = threading.Thread(target=lambda: r.append(hashlib.sha256(b'x').hexdigest()[:8]))\n\
              t.start(); t.join()\n\
              print(r[0], subprocess.run(['/usr/bin/true']).returncode)\n\
              a, b = socket.socketpair(); a.send(b'ping'); print(b.recv(4).decode())\n\
              s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', 0)); print('inet ok')\n\
              for fam, typ in ((40, socket.SOCK_STREAM), (38, socket.SOCK_SEQPACKET)):\n\
              \x20   try:\n\
              \x20       socket.socket(fam, typ); print(fam, 'ok')\n\
              \x20   except OSError as e:\n\
              \x20       print(fam, e.errno)\n";
    let out = run(&[], &["/usr/bin/python3", "-c", py]);
    assert_eq!(out, "2d711642 0\nping\ninet ok\n40 1\n38 1\n");
    // The control: unfiltered, neither family answers EPERM.
    let out = run(
        &["--security-opt", "seccomp=unconfined"],
        &["/usr/bin/python3", "-c", py],
    );
    assert!(!out.contains("40 1\n") && !out.contains("38 1\n"), "{out}");
    let out = run(
        &[],
        &[
            "/usr/bin/perl",
            "-e",
            "my $p = fork(); if (!$p) { exit 3 } waitpid($p, 0); print 'perl ', $? >> 8, \"\\n\"",
        ],
    );
    assert_eq!(out, "perl 3\n");
}

#[test]
fn a_static_threaded_program_runs_under_the_filter() {
    let expect = |clone3: i32| {
        format!(
            "clone3={clone3}\nthreads=17982000\nfutex=ok\nepoll=1 data=7 eventfd=5\n\
             io=hello entries=1\nchild=3\nsleep=true\n"
        )
    };
    let o = rrun(&["run", "--rm", image(), "/workload"]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    // clone3 says ENOSYS, and threads still start (glibc falls back to clone).
    assert_eq!(stdout(&o), expect(libc::ENOSYS));
    let o = rrun(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        image(),
        "/workload",
    ]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o), expect(libc::EINVAL));
}

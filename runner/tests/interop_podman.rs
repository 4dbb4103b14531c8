//! rbox-runtime behind a real Podman (4.3, Debian's package, with conmon):
//! `podman --runtime rbox-runtime` with a private containers.conf and
//! storage.conf (a fresh store, run root, tmp dir and events log in a temp
//! dir each time; cgroupfs; no network). Each step runs in a private mount
//! namespace with a tmpfs over /var/lib/containers, where Podman keeps its
//! blob-info cache whatever storage.conf says, and over /run/rbox-runtime;
//! a step is one shell script so that a detached container's overlay mount
//! and its stop/rm share that namespace. containers.conf leaves static_dir
//! at its default (under graphroot): set apart, conmon's exit command
//! (`podman container cleanup --root ... --runroot ...`) never reached the
//! runtime and each `run --rm` waited out Podman's 20 s conmon timeout.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const RUNTIME: &str = env!("CARGO_BIN_EXE_rbox-runtime");
const IMAGE: &str = "docker.io/library/busybox:latest";

struct Podman {
    tmp: tempfile::TempDir,
    made: Vec<&'static str>,
}

/// Covered by a tmpfs in every step's mount namespace: Podman's blob-info
/// cache, and rbox-runtime's default state root (Podman passes no --root).
const PRIVATE: [&str; 2] = ["/var/lib/containers", "/run/rbox-runtime"];

/// One test at a time: a mount point made here and removed by one test
/// would take the other's tmpfs with it.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Podman {
    fn new() -> Podman {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(
            d.join("containers.conf"),
            format!(
                "[containers]\n\
                 default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
                 netns = \"none\"\n\
                 [engine]\n\
                 cgroup_manager = \"cgroupfs\"\n\
                 events_logger = \"file\"\n\
                 events_logfile_path = \"{d}/events.log\"\n\
                 tmp_dir = \"{d}/tmp\"\n\
                 volume_path = \"{d}/volumes\"\n",
                d = d.display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("storage.conf"),
            format!(
                "[storage]\ndriver = \"overlay\"\ngraphroot = \"{d}/graph\"\nrunroot = \"{d}/run\"\n",
                d = d.display()
            ),
        )
        .unwrap();
        // The tmpfs mounts need mount points on the host; made (and
        // removed at the end) only where there are none.
        let mut made = Vec::new();
        for dir in PRIVATE {
            if !Path::new(dir).exists() {
                std::fs::create_dir_all(dir).unwrap();
                made.push(dir);
            }
        }
        Podman { tmp, made }
    }

    /// `script` in sh, with `$P` = `podman --runtime rbox-runtime`.
    fn sh(&self, script: &str) -> Output {
        let d = self.tmp.path();
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "for d in {}; do mount -t tmpfs -o mode=0700 tmpfs $d || exit 99; done\n\
                 P=\"podman --runtime {RUNTIME}\"\n{script}",
                PRIVATE.join(" ")
            ))
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

impl Drop for Podman {
    /// Remove every container (in a namespace of their own, as they were
    /// made), the store (`podman system reset` unmounts its layers), the
    /// cgroups Podman made for cgroupfs, and the mount points made here.
    fn drop(&mut self) {
        let _ = self.sh("$P rm -af -t 0; $P system reset -f");
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(h.path().join("libpod_parent/conmon"));
            let _ = std::fs::remove_dir(h.path().join("libpod_parent"));
        }
        for dir in &self.made {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn graph(p: &Podman) -> PathBuf {
    p.tmp.path().join("graph")
}

#[test]
fn podman_runs_busybox_with_rbox_runtime() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::require_root_and_kernel();
    for bin in ["podman", "conmon", "unshare"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {bin}")])
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success(),
            "{bin} is missing: bash scripts/install-deps.sh"
        );
    }
    let p = Podman::new();
    let tar = common::busybox_oci_tar(p.tmp.path(), IMAGE);
    let o = p.sh(&format!("$P load -q -i {}", tar.display()));
    assert!(o.status.success(), "load: {}{}", out(&o), err(&o));
    assert!(graph(&p).exists());

    // With podman's default seccomp profile (rbox-runtime loads it).
    const RUN: &str = "$P run --rm";
    let o = p.sh(&format!("{RUN} {IMAGE} echo hello"));
    assert!(o.status.success(), "run echo: {}", err(&o));
    assert_eq!(out(&o), "hello\n");
    let o = p.sh(&format!(
        "{RUN} {IMAGE} sh -c 'echo out; echo err >&2; exit 7'"
    ));
    assert_eq!(o.status.code(), Some(7), "{}", err(&o));
    assert_eq!(out(&o), "out\n");
    assert!(err(&o).contains("err\n"), "{}", err(&o));

    // Podman's spec: env, workdir, containers.conf's ulimits, its umask.
    let o = p.sh(&format!(
        "{RUN} -e FOO=bar -w /bin {IMAGE} sh -c 'echo $FOO; pwd; ulimit -n; ulimit -u; umask'"
    ));
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "bar\n/bin\n20000\n32768\n0022\n");

    // Detached: ps shows it, stop (sleep as pid 1 ignores TERM: Podman
    // falls back to KILL), rm.
    let o = p.sh(&format!(
        "$P run -d --name bg {IMAGE} sleep 1000 >/dev/null || exit 10\n\
         $P ps --format '{{{{.Names}}}} {{{{.Status}}}}' || exit 11\n\
         $P stop -t 1 bg >/dev/null || exit 12\n\
         $P ps -a --format '{{{{.Names}}}} {{{{.Status}}}}' || exit 13\n\
         $P rm bg >/dev/null || exit 14\n\
         $P ps -aq"
    ));
    assert!(o.status.success(), "{}\n{}", out(&o), err(&o));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("bg Up"), "{}", out(&o));
    assert!(lines[1].starts_with("bg Exited (137)"), "{}", out(&o));
    assert_eq!(lines.len(), 2, "{}", out(&o));

    // Podman's default seccomp profile is applied: personality(2) with
    // ADDR_NO_RANDOMIZE (busybox `linux64 -R`) is not on its list and
    // gets the profile's defaultErrnoRet, 38 (ENOSYS), while the rest
    // runs; unconfined, the same passes.
    let probe = "sh -c 'echo in; linux64 -R true 2>&1; echo rc=$?'";
    let o = p.sh(&format!("$P run --rm {IMAGE} {probe}"));
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.starts_with("in\n")
            && text.contains("personality(0x40000): Function not implemented")
            && text.ends_with("rc=1\n"),
        "podman's profile not applied: {text}"
    );
    let o = p.sh(&format!(
        "$P run --rm --security-opt seccomp=unconfined {IMAGE} {probe}"
    ));
    assert_eq!(out(&o), "in\nrc=0\n", "{}", err(&o));

    // -it: the container's pty is the command's stdio, sized as podman's
    // own terminal (a pty from `script`, 30x100).
    // `script` reads its stdin (/dev/null) to EOF and types a NUL into
    // the pty, which the terminal echoes as "^@" wherever it lands; once
    // in a full run (not in four alone) nothing at all came back, that
    // EOF racing the client's start: a run with no output is tried again,
    // twice at most.
    let mut tries = 0;
    let (o, text) = loop {
        tries += 1;
        let o = p.sh(&format!(
            "script -qec \"stty rows 30 cols 100; $P run -it --rm {IMAGE} \
               sh -c 'tty; stty size; echo on-tty; exit 3'\" /dev/null"
        ));
        let text = out(&o).replace('\r', "").replace("^@", "");
        if !text.trim().is_empty() || tries == 3 {
            break (o, text);
        }
    };
    assert!(
        text.contains("/dev/pts/0\n30 100\non-tty\n"),
        "podman run -it: {text:?} {}",
        err(&o)
    );
    assert_eq!(o.status.code(), Some(3), "{text:?}");
}

#[test]
fn podman_exec_pause_limits_and_stop_with_rbox_runtime() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::require_root_and_kernel();
    let p = Podman::new();
    let tar = common::busybox_oci_tar(p.tmp.path(), IMAGE);
    let o = p.sh(&format!("$P load -q -i {}", tar.display()));
    assert!(o.status.success(), "load: {}{}", out(&o), err(&o));
    // One script: the detached container's overlay lives in this mount
    // namespace. The counter is read from the host side of its /proc.
    let o = p.sh(&format!(
        "$P run -d --name bg -m 64m --pids-limit 50 {IMAGE} \
           sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.02; done' >/dev/null || exit 10\n\
         PID=$($P inspect -f '{{{{.State.Pid}}}}' bg) || exit 11\n\
         $P exec bg sh -c 'echo exec $FOO $(id -u)' || exit 12\n\
         $P exec -e FOO=bar -u 1000 bg sh -c 'echo exec $FOO $(id -u); exit 3'\n\
         echo \"status $?\"\n\
         $P exec bg sh -c 'linux64 -R true 2>/dev/null; echo exec seccomp $?'\n\
         if [ -e /sys/fs/cgroup/cgroup.controllers ]; then\n\
           G=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/$PID/cgroup); M=$G/memory.max; N=$G/pids.max\n\
         else\n\
           M=/sys/fs/cgroup/memory$(sed -n 's/^[0-9]*:memory://p' /proc/$PID/cgroup)/memory.limit_in_bytes\n\
           N=/sys/fs/cgroup/pids$(sed -n 's/^[0-9]*:pids://p' /proc/$PID/cgroup)/pids.max\n\
         fi\n\
         echo \"memory $(cat $M) pids $(cat $N)\"\n\
         sleep 0.2\n\
         $P pause bg >/dev/null || exit 13\n\
         $P ps -a --format '{{{{.Names}}}} {{{{.Status}}}}' || exit 17\n\
         a=$(cat /proc/$PID/root/tmp/n); sleep 0.3; b=$(cat /proc/$PID/root/tmp/n)\n\
         [ \"$a\" = \"$b\" ] && echo frozen\n\
         $P unpause bg >/dev/null || exit 14\n\
         i=0; while [ $i -lt 100 ]; do c=$(cat /proc/$PID/root/tmp/n); [ \"$c\" -gt \"$b\" ] && break; sleep 0.1; i=$((i+1)); done\n\
         [ \"$c\" -gt \"$b\" ] && echo thawed\n\
         $P stop -t 1 bg >/dev/null || exit 15\n\
         $P ps -a --format '{{{{.Names}}}} {{{{.Status}}}}'\n\
         $P rm bg >/dev/null || exit 16"
    ));
    assert!(
        o.status.success(),
        "{:?}\n{}\n{}",
        o.status,
        out(&o),
        err(&o)
    );
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        &lines[..5],
        [
            "exec 0",
            "exec bar 1000",
            "status 3",
            // The container's profile (Podman's default) holds for exec'd
            // processes too: personality(ADDR_NO_RANDOMIZE) refused.
            "exec seccomp 1",
            &format!("memory {} pids 50", 64 << 20),
        ],
        "{text}\n{}",
        err(&o)
    );
    assert!(lines[5].starts_with("bg Paused"), "{text}");
    assert_eq!(lines[6], "frozen", "{text}");
    assert_eq!(lines[7], "thawed", "{text}");
    assert!(lines[8].starts_with("bg Exited (137)"), "{text}");
}

#[test]
fn podman_uidmap_runs_the_container_as_host_100000_with_rbox_runtime() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    common::require_root_and_kernel();
    let p = Podman::new();
    let tar = common::busybox_oci_tar(p.tmp.path(), IMAGE);
    let o = p.sh(&format!("$P load -q -i {}", tar.display()));
    assert!(o.status.success(), "load: {}{}", out(&o), err(&o));
    // Podman prepares the rootfs for the map (its store chowns a copy of
    // the layers); rbox-runtime makes the user namespace and writes it.
    // `podman rm` right after `stop` may race Podman's own clean-up of the
    // container's shm mount ("unlinkat .../userdata/shm: device or resource
    // busy", podman issue #11594, seen with --uidmap and crun too): it is
    // tried again a few times. That failed rm may already have dropped
    // the container from Podman's records (every later rm then says "no
    // such container"): gone is gone. A container never removed still
    // fails.
    const MAP: &str = "--uidmap 0:100000:65536 --gidmap 0:100000:65536";
    let o = p.sh(&format!(
        "$P run --rm --security-opt seccomp=unconfined {MAP} {IMAGE} \
           sh -c 'id -u; cat /proc/self/uid_map; touch /tmp/f && stat -c %u /tmp/f' || exit 10\n\
         $P run -d --name u --security-opt seccomp=unconfined {MAP} {IMAGE} sleep 1000 >/dev/null || exit 11\n\
         PID=$($P inspect -f '{{{{.State.Pid}}}}' u) || exit 12\n\
         grep '^Uid:' /proc/$PID/status\n\
         $P exec u id -u || exit 13\n\
         $P stop -t 1 u >/dev/null || exit 14\n\
         for i in 1 2 3 4 5; do $P rm u >/dev/null && exit 0; \
           $P container exists u || exit 0; sleep 1; done; exit 15"
    ));
    assert!(
        o.status.success(),
        "{:?}\n{}\n{}",
        o.status,
        out(&o),
        err(&o)
    );
    let text = out(&o);
    let words: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        words,
        [
            vec!["0"],
            vec!["0", "100000", "65536"],
            vec!["0"],
            vec!["Uid:", "100000", "100000", "100000", "100000"],
            vec!["0"],
        ],
        "{text}\n{}",
        err(&o)
    );
}

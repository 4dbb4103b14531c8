//! rbox-runtime behind a real containerd (1.6, Debian's package): a
//! private daemon (its own root, state, sockets and config, the CRI plugin
//! off) in a private mount namespace with a tmpfs over /run/containerd
//! (containerd writes its fifos and shim sockets there whatever its root
//! says), the busybox fixture imported with `ctr image import`, and
//! `ctr run --runc-binary rbox-runtime`. ctr runs in the daemon's mount
//! namespace too: it makes the stdio fifos the shim opens. A system
//! containerd, if any, is never touched.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RUNTIME: &str = env!("CARGO_BIN_EXE_rbox-runtime");
/// containerd's namespace, and so the parent of every task's group
/// (`/NAMESPACE/ID`): one per test process, so that two runs on one host (two
/// worktrees, say) never share a cgroup path.
fn ns() -> String {
    format!("rbox-test-{}", std::process::id())
}

const IMAGE: &str = "docker.io/library/busybox:latest";

/// One private containerd at a time: each test's daemon mounts its tmpfs
/// over /run/containerd, whose mount point the host shares.
static ONE_DAEMON: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Containerd {
    tmp: tempfile::TempDir,
    child: Child,
    made_run_dir: bool,
}

impl Containerd {
    fn sock(&self) -> PathBuf {
        self.tmp.path().join("containerd.sock")
    }

    fn start() -> Containerd {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let cfg = d.join("config.toml");
        let toml = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
             [debug]\n  address = \"{d}/debug.sock\"\n",
            root = d.join("root").display(),
            state = d.join("state").display(),
            d = d.display(),
        );
        std::fs::write(&cfg, toml).unwrap();
        // The tmpfs needs a mount point on the host; made (and removed
        // at the end) only when there is none.
        let run = Path::new("/run/containerd");
        let made_run_dir = !run.exists();
        if made_run_dir {
            std::fs::create_dir_all(run).unwrap();
        }
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        // unshare execs sh, which execs containerd: one pid throughout.
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs -o mode=0711 tmpfs /run/containerd && exec containerd --config \"$0\"")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn unshare/containerd");
        let mut c = Containerd {
            tmp,
            child,
            made_run_dir,
        };
        let t0 = Instant::now();
        loop {
            if c.ctr(&["version"]).status.success() {
                break;
            }
            if let Ok(Some(st)) = c.child.try_wait() {
                panic!("containerd exited ({st}) before serving:\n{}", c.log());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "containerd did not serve within 30s:\n{}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.tmp.path().join("containerd.log")).unwrap_or_default()
    }

    /// `ctr -a SOCK -n rbox-test-PID ARGS`, in containerd's mount namespace.
    fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("-t")
            .arg(self.child.id().to_string())
            .arg("-m")
            .arg("ctr")
            .arg("-a")
            .arg(self.sock())
            .arg("-n")
            .arg(ns())
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_cmd(args).output().unwrap()
    }

    fn run(&self, extra: &[&str], id: &str, cmd: &[&str]) -> Output {
        let mut a = vec!["run", "--rm", "--runc-binary", RUNTIME];
        a.extend_from_slice(extra);
        a.push(IMAGE);
        a.push(id);
        a.extend_from_slice(cmd);
        self.ctr(&a)
    }
}

impl Drop for Containerd {
    /// Kill and delete whatever task is left (so every shim exits), stop
    /// containerd (its mount namespace, overlay snapshots included, goes
    /// with it), then remove the namespace's groups and the files.
    fn drop(&mut self) {
        let ls = self.ctr(&["task", "ls", "-q"]);
        for id in String::from_utf8_lossy(&ls.stdout).split_whitespace() {
            let _ = self.ctr(&["task", "kill", "-s", "KILL", id]);
            let _ = self.ctr(&["task", "rm", "-f", id]);
        }
        let ls = self.ctr(&["container", "ls", "-q"]);
        for id in String::from_utf8_lossy(&ls.stdout).split_whitespace() {
            let _ = self.ctr(&["container", "rm", id]);
        }
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) {
            if t0.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for h in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(h.path().join(ns()));
        }
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(ns()));
        if self.made_run_dir {
            let _ = std::fs::remove_dir("/run/containerd");
        }
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn ctr_runs_busybox_with_rbox_runtime() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    common::require_root_and_kernel();
    for bin in [
        "containerd",
        "ctr",
        "containerd-shim-runc-v2",
        "unshare",
        "nsenter",
    ] {
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
    let ctd = Containerd::start();
    let tar = common::busybox_oci_tar(ctd.tmp.path(), IMAGE);
    let o = ctd.ctr(&["image", "import", tar.to_str().unwrap()]);
    assert!(o.status.success(), "import: {}{}", out(&o), err(&o));
    let o = ctd.ctr(&["image", "ls", "-q"]);
    assert!(out(&o).lines().any(|l| l == IMAGE), "image ls: {}", out(&o));

    // Output and exit status through the shim.
    let o = ctd.run(&[], "hello", &["echo", "hello"]);
    assert!(o.status.success(), "run echo: {}\n{}", err(&o), ctd.log());
    assert_eq!(out(&o), "hello\n");
    let o = ctd.run(
        &[],
        "seven",
        &["sh", "-c", "echo out; echo err >&2; exit 7"],
    );
    assert_eq!(o.status.code(), Some(7), "{}", err(&o));
    assert_eq!(out(&o), "out\n");
    assert!(err(&o).contains("err\n"), "{}", err(&o));

    // What ctr's spec carries from its flags: env, cwd, the user.
    let o = ctd.run(
        &["--env", "FOO=bar", "--cwd", "/bin"],
        "env",
        &["sh", "-c", "echo $FOO; pwd; id -u"],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "bar\n/bin\n0\n");

    // A detached task: listed, its pids, a memory limit at containerd's
    // cgroupsPath (/NAMESPACE/ID), killed, deleted.
    let o = ctd.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        RUNTIME,
        "--memory-limit",
        "67108864",
        IMAGE,
        "bg",
        "sleep",
        "1000",
    ]);
    assert!(o.status.success(), "run -d: {}", err(&o));
    let o = ctd.ctr(&["task", "ls"]);
    let line = out(&o)
        .lines()
        .find(|l| l.starts_with("bg "))
        .unwrap_or_default()
        .to_string();
    assert!(line.contains("RUNNING"), "task ls: {}", out(&o));
    let pid = line.split_whitespace().nth(1).unwrap().to_string();
    let o = ctd.ctr(&["task", "ps", "bg"]);
    assert!(
        out(&o)
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&pid)),
        "task ps: {} {}",
        out(&o),
        err(&o)
    );
    let limit = if common::cgroup_v2() {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{}/bg/memory.max", ns()))
    } else {
        std::fs::read_to_string(format!(
            "/sys/fs/cgroup/memory/{}/bg/memory.limit_in_bytes",
            ns()
        ))
    };
    assert_eq!(limit.unwrap().trim(), "67108864");
    let o = ctd.ctr(&["task", "kill", "-s", "KILL", "bg"]);
    assert!(o.status.success(), "kill: {}", err(&o));
    let t0 = Instant::now();
    loop {
        let o = ctd.ctr(&["task", "ls"]);
        if out(&o)
            .lines()
            .any(|l| l.starts_with("bg ") && l.contains("STOPPED"))
        {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "not stopped: {}",
            out(&o)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let o = ctd.ctr(&["task", "rm", "bg"]);
    assert!(o.status.success(), "task rm: {}", err(&o));
    let o = ctd.ctr(&["container", "rm", "bg"]);
    assert!(o.status.success(), "container rm: {}", err(&o));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .map(|c| !c.starts_with("sleep"))
                .unwrap_or(true),
        "the task's process outlived delete"
    );

    // ctr --seccomp adds containerd's default profile: the command runs
    // and the profile is applied (personality(2) with ADDR_NO_RANDOMIZE,
    // busybox `linux64 -R`, is not on its list: EPERM); without it, the
    // same command passes.
    let probe = ["sh", "-c", "echo in; linux64 -R true 2>&1; echo rc=$?"];
    let o = ctd.run(&["--seccomp"], "sec", &probe);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.starts_with("in\n")
            && text.contains("personality(0x40000): Operation not permitted")
            && text.ends_with("rc=1\n"),
        "containerd's profile not applied: {text}"
    );
    let o = ctd.run(&[], "nosec", &probe);
    assert_eq!(out(&o), "in\nrc=0\n", "{}", err(&o));
    let o = ctd.ctr(&["container", "ls", "-q"]);
    assert_eq!(out(&o), "", "containers left: {}", out(&o));
}

/// `ctr task ls`'s status column for `id`.
fn task_status(ctd: &Containerd, id: &str) -> String {
    let o = ctd.ctr(&["task", "ls"]);
    out(&o)
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or_default()
        .to_string()
}

fn counter_at(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/root/tmp/n"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < Duration::from_secs(10), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn ctr_task_exec_pause_resume_and_an_oom_kill_with_rbox_runtime() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    common::require_root_and_kernel();
    let ctd = Containerd::start();
    let tar = common::busybox_oci_tar(ctd.tmp.path(), IMAGE);
    let o = ctd.ctr(&["image", "import", tar.to_str().unwrap()]);
    assert!(o.status.success(), "import: {}{}", out(&o), err(&o));

    // A task whose loop counts in /tmp/n.
    let o = ctd.ctr(&[
        "run",
        "-d",
        "--runc-binary",
        RUNTIME,
        IMAGE,
        "loop",
        "sh",
        "-c",
        "i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.02; done",
    ]);
    assert!(o.status.success(), "run -d: {}\n{}", err(&o), ctd.log());
    let o = ctd.ctr(&["task", "ls"]);
    let pid = out(&o)
        .lines()
        .find(|l| l.starts_with("loop "))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_default()
        .to_string();
    wait_for("the loop counts", || counter_at(&pid) > 2);

    // ctr task exec: the shim runs `exec --detach --pid-file --process`
    // and waits for the process itself.
    let o = ctd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "x1",
        "loop",
        "sh",
        "-c",
        "echo in $(cat /proc/1/cmdline | tr '\\0' ' '); exit 5",
    ]);
    assert_eq!(o.status.code(), Some(5), "exec: {}\n{}", err(&o), ctd.log());
    assert!(out(&o).starts_with("in sh -c i=0"), "{}", out(&o));

    // Pause: PAUSED, the loop stops; resume: RUNNING, it counts again.
    let o = ctd.ctr(&["task", "pause", "loop"]);
    assert!(o.status.success(), "pause: {}", err(&o));
    assert_eq!(task_status(&ctd, "loop"), "PAUSED");
    let n = counter_at(&pid);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(counter_at(&pid), n, "counted while paused");
    let o = ctd.ctr(&["task", "resume", "loop"]);
    assert!(o.status.success(), "resume: {}", err(&o));
    assert_eq!(task_status(&ctd, "loop"), "RUNNING");
    wait_for("the loop counts again", || counter_at(&pid) > n + 2);
    let o = ctd.ctr(&["task", "kill", "-s", "KILL", "loop"]);
    assert!(o.status.success(), "kill: {}", err(&o));
    wait_for("the task stops", || task_status(&ctd, "loop") == "STOPPED");
    assert!(ctd.ctr(&["task", "rm", "loop"]).status.success());
    assert!(ctd.ctr(&["container", "rm", "loop"]).status.success());

    // Past its memory limit: the kernel's OOM killer, exit 137.
    let o = ctd.run(
        &["--memory-limit", "33554432"],
        "oom",
        &["sh", "-c", "a=x; while true; do a=$a$a; done"],
    );
    assert_eq!(o.status.code(), Some(137), "{}\n{}", err(&o), ctd.log());

    // `ctr run -t`: the shim asks for a console socket; the command's
    // stdio is the container's pty, whose size follows ctr's terminal
    // (`script` gives ctr a pty of its own, 30x100). ctr sends the size
    // as a resize after start (through the pty master rbox-runtime
    // passed the shim), so the command waits for it, as with runc.
    let ctr = format!(
        "stty rows 30 cols 100; nsenter -t {} -m ctr -a {} -n {} run --rm -t --runc-binary {RUNTIME} \
         {IMAGE} tty1 sh -c 'tty; i=0; while [ \"$(stty size 2>/dev/null)\" != \"30 100\" ] && [ $i -lt 100 ]; \
         do sleep 0.1; i=$((i+1)); done; stty size; echo on-tty; exit 3'",
        ctd.child.id(),
        ctd.sock().display(),
        ns()
    );
    let o = Command::new("script")
        .args(["-qec", &ctr, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // `script` reads its stdin (/dev/null) to EOF and types a NUL into
    // the pty, which the terminal echoes as "^@" wherever it lands.
    let text = out(&o).replace('\r', "").replace("^@", "");
    assert!(
        text.contains("/dev/pts/0\n30 100\non-tty\n"),
        "ctr run -t: {text:?} {}\n{}",
        err(&o),
        ctd.log()
    );
    assert_eq!(o.status.code(), Some(3), "{text:?}");
}

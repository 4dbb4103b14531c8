//! rbox-runtime behind a real Docker (20.10, Debian's docker.io): a
//! private dockerd (its own data root, exec root, pid file, socket and
//! daemon.json registering rbox-runtime under "runtimes"; no bridge, no
//! iptables, cgroupfs under a parent group of its own) with the containerd
//! it manages itself, both in a private mount namespace with tmpfs over
//! /run/containerd, /run/docker and /etc/docker (where they write whatever
//! their flags say), so nothing of this machine's is touched. The busybox
//! fixture goes in as a docker-archive (`rbuild save`'s format) through
//! `docker load`; containers run with `docker run --runtime rbox`.
//!
//! The docker client is always /usr/bin/docker, by absolute path.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const RUNTIME: &str = env!("CARGO_BIN_EXE_rbox-runtime");
const DOCKER: &str = "/usr/bin/docker";
/// Debian's docker.io puts the daemon in /usr/sbin.
const DOCKERD: &str = "/usr/sbin/dockerd";
const IMAGE: &str = "rbox-test/busybox:latest";

/// Parent of every container's group: one per test process.
fn cgroup_parent() -> String {
    format!("rbox-docker-test-{}", std::process::id())
}

struct Dockerd {
    tmp: tempfile::TempDir,
    child: Child,
    /// Its mount namespace: whatever still runs in it at the end is ours.
    mnt_ns: PathBuf,
    made_dirs: Vec<PathBuf>,
}

impl Dockerd {
    fn sock(&self) -> PathBuf {
        self.tmp.path().join("docker.sock")
    }

    fn start() -> Dockerd {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let cfg = d.join("daemon.json");
        let daemon = serde_json::json!({"runtimes": {"rbox": {"path": RUNTIME}}});
        std::fs::write(&cfg, daemon.to_string()).unwrap();
        // The tmpfs need mount points on the host; made (and removed at
        // the end) only when missing.
        let mut made_dirs = Vec::new();
        for p in ["/run/containerd", "/run/docker", "/etc/docker"] {
            if !Path::new(p).exists() {
                std::fs::create_dir_all(p).unwrap();
                made_dirs.push(PathBuf::from(p));
            }
        }
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let arg = |k: &str, v: &Path| format!("--{k}={}", v.display());
        // unshare execs sh, which execs dockerd: one pid throughout.
        let child = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(
                "mount -t tmpfs -o mode=0711 tmpfs /run/containerd && \
                 mount -t tmpfs -o mode=0700 tmpfs /run/docker && \
                 mount -t tmpfs -o mode=0755 tmpfs /etc/docker && exec \"$0\" \"$@\"",
            )
            .arg(DOCKERD)
            .arg(arg("config-file", &cfg))
            .arg(arg("data-root", &d.join("data")))
            .arg(arg("exec-root", &d.join("exec")))
            .arg(arg("pidfile", &d.join("docker.pid")))
            .arg(format!("--host=unix://{}", d.join("docker.sock").display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-forward=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--exec-opt",
                "native.cgroupdriver=cgroupfs",
                "--cgroup-parent",
                &cgroup_parent(),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn unshare/dockerd");
        let mnt_ns = std::fs::read_link(format!("/proc/{}/ns/mnt", child.id())).unwrap_or_default();
        let mut dd = Dockerd {
            tmp,
            child,
            mnt_ns,
            made_dirs,
        };
        let t0 = Instant::now();
        loop {
            if dd.docker(&["version"]).status.success() {
                break;
            }
            if let Ok(Some(st)) = dd.child.try_wait() {
                panic!("dockerd exited ({st}) before serving:\n{}", dd.log());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "dockerd did not serve within 60s:\n{}",
                dd.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        // Read once it serves: unshare has exec'ed by then.
        dd.mnt_ns = std::fs::read_link(format!("/proc/{}/ns/mnt", dd.child.id())).unwrap();
        dd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.tmp.path().join("dockerd.log")).unwrap_or_default()
    }

    fn docker_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DOCKER);
        c.arg("--host")
            .arg(format!("unix://{}", self.sock().display()))
            .args(args)
            .env("DOCKER_CONFIG", self.tmp.path().join("cli"))
            .stdin(Stdio::null());
        c
    }

    fn docker(&self, args: &[&str]) -> Output {
        self.docker_cmd(args).output().unwrap()
    }

    /// `docker run --runtime rbox --rm --network none EXTRA IMAGE CMD`,
    /// with Docker's default seccomp profile unless EXTRA says otherwise.
    fn run(&self, extra: &[&str], cmd: &[&str]) -> Output {
        let mut a = vec!["run", "--runtime", "rbox", "--rm", "--network", "none"];
        a.extend_from_slice(extra);
        a.push(IMAGE);
        a.extend_from_slice(cmd);
        self.docker(&a)
    }

    /// Wait until `f` holds on `docker ps -a`'s line for `name`.
    fn wait_ps(&self, name: &str, what: &str, f: impl Fn(&str) -> bool) {
        let t0 = Instant::now();
        loop {
            let o = self.docker(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
            let line = out(&o)
                .lines()
                .find(|l| l.split_whitespace().next() == Some(name))
                .unwrap_or_default()
                .to_string();
            if f(&line) {
                return;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "{name} never {what}: {}",
                out(&o)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Dockerd {
    /// Remove every container (so every shim exits), stop dockerd (its
    /// containerd, mount namespace and overlay mounts go with it), kill
    /// anything still in that namespace, then remove the groups, mount
    /// points and files.
    fn drop(&mut self) {
        let ls = self.docker(&["ps", "-aq"]);
        for id in out(&ls).split_whitespace() {
            let _ = self.docker(&["rm", "-f", id]);
        }
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t0 = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) {
            if t0.elapsed() > Duration::from_secs(20) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if !self.mnt_ns.as_os_str().is_empty() {
            for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                if std::fs::read_link(e.path().join("ns/mnt")).ok().as_ref() == Some(&self.mnt_ns) {
                    // SAFETY: kill takes integers; a leftover of our daemon.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        let parent = cgroup_parent();
        let mut hierarchies = vec![PathBuf::from("/sys/fs/cgroup")];
        hierarchies.extend(
            std::fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path()),
        );
        for h in hierarchies {
            let p = h.join(&parent);
            for sub in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                if sub.path().is_dir() {
                    let _ = std::fs::remove_dir(sub.path());
                }
            }
            let _ = std::fs::remove_dir(&p);
        }
        for d in &self.made_dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The busybox fixture as a docker-archive (what `rbuild save --format
/// docker-archive` writes), tagged IMAGE.
fn busybox_docker_archive(dir: &Path) -> PathBuf {
    let store = engine::Store::open(common::store_root()).unwrap();
    let r: engine::ImageRef = "busybox".parse().unwrap();
    let digest = store.resolve(&r).unwrap().expect("the busybox fixture");
    let image = store.image_by_digest(&digest).unwrap();
    let ex =
        engine::oci::export::export_image(&store, &image, engine::oci::ExportCompression::Keep)
            .unwrap();
    let p = dir.join("busybox-docker.tar");
    let f = std::fs::File::create(&p).unwrap();
    let w =
        engine::oci::archive::save(&store, &ex, std::io::BufWriter::new(f), Some(IMAGE)).unwrap();
    w.into_inner().map_err(|e| e.into_error()).unwrap();
    p
}

fn require(bins: &[&str]) {
    for bin in bins {
        let found = if bin.starts_with('/') {
            Path::new(bin).exists()
        } else {
            Command::new("sh")
                .args(["-c", &format!("command -v {bin}")])
                .stdout(Stdio::null())
                .status()
                .unwrap()
                .success()
        };
        assert!(found, "{bin} is missing: bash scripts/install-deps.sh");
    }
}

#[test]
fn docker_runs_busybox_with_rbox_runtime() {
    common::require_root_and_kernel();
    // Networking is none or absent, but dockerd still must not see the
    // machine's network: like every root suite, under scripts/in-netns.sh.
    fixtures::netns::require_private_netns();
    require(&[
        DOCKERD,
        DOCKER,
        "containerd",
        "containerd-shim-runc-v2",
        "unshare",
    ]);
    let dd = Dockerd::start();
    let o = dd.docker(&["info", "--format", "{{json .Runtimes}}"]);
    assert!(out(&o).contains("\"rbox\""), "runtimes: {}", out(&o));
    let tar = busybox_docker_archive(dd.tmp.path());
    let o = dd.docker(&["load", "-i", tar.to_str().unwrap()]);
    assert!(o.status.success(), "load: {}{}", out(&o), err(&o));
    assert!(
        out(&o).contains(&format!("Loaded image: {IMAGE}")),
        "{}",
        out(&o)
    );

    // Output, and exit statuses through containerd's shim and dockerd.
    let o = dd.run(&[], &["echo", "hi"]);
    assert!(o.status.success(), "run echo: {}\n{}", err(&o), dd.log());
    assert_eq!(out(&o), "hi\n");
    let o = dd.run(&[], &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(o.status.code(), Some(7), "{}", err(&o));
    assert_eq!(out(&o), "out\n");
    assert!(err(&o).contains("err\n"), "{}", err(&o));
    let o = dd.run(&[], &["true"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    // Docker's default network (this dockerd has no bridge): its hook too.
    let o = dd.docker(&["run", "--runtime", "rbox", "--rm", IMAGE, "echo", "default"]);
    assert_eq!(out(&o), "default\n", "{}", err(&o));

    // What docker's flags put into config.json: env, cwd, user, hostname.
    let o = dd.run(
        &[
            "-e",
            "FOO=bar baz",
            "-w",
            "/etc",
            "-u",
            "1000:1000",
            "-h",
            "dockhost",
        ],
        &["sh", "-c", "echo \"$FOO\"; pwd; id -u; id -g; hostname"],
    );
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o), "bar baz\n/etc\n1000\n1000\ndockhost\n");

    // A terminal (docker run -t: the console socket of the shim).
    let o = dd.run(&["-t"], &["sh", "-c", "tty; echo on-tty"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o).replace('\r', ""), "/dev/pts/0\non-tty\n");

    // Detached: listed, its limit on its group, its prestart hook run,
    // stopped by a signal it traps, removed.
    let o = dd.docker(&[
        "run",
        "-d",
        "--name",
        "bg",
        "--runtime",
        "rbox",
        "--network",
        "none",
        "-m",
        "64m",
        IMAGE,
        "sh",
        "-c",
        "trap 'exit 0' TERM; sleep 1000 & wait",
    ]);
    assert!(o.status.success(), "run -d: {}\n{}", err(&o), dd.log());
    let id = out(&o).trim().to_string();
    dd.wait_ps("bg", "ran", |l| l.contains(" Up "));
    let pid = out(&dd.docker(&["inspect", "-f", "{{.State.Pid}}", "bg"]))
        .trim()
        .to_string();
    let limit = if common::cgroup_v2() {
        std::fs::read_to_string(format!(
            "/sys/fs/cgroup/{}/{id}/memory.max",
            cgroup_parent()
        ))
    } else {
        std::fs::read_to_string(format!(
            "/sys/fs/cgroup/memory/{}/{id}/memory.limit_in_bytes",
            cgroup_parent()
        ))
    };
    assert_eq!(limit.unwrap().trim(), (64u64 << 20).to_string());
    // Docker gives every container a prestart hook, libnetwork-setkey
    // (dockerd re-executed), even with --network none.
    let bundle = dd
        .tmp
        .path()
        .join("exec/containerd/daemon/io.containerd.runtime.v2.task/moby")
        .join(&id);
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let hook = &cfg["hooks"]["prestart"][0];
    assert_eq!(hook["args"][0], "libnetwork-setkey", "{cfg}");
    // It ran: dockerd bound the container's network namespace at its
    // sandbox key, which it does when that hook calls it.
    let key = out(&dd.docker(&["inspect", "-f", "{{.NetworkSettings.SandboxKey}}", "bg"]))
        .trim()
        .to_string();
    assert!(!key.is_empty(), "no sandbox key");
    let bound = std::fs::metadata(format!("/proc/{}/root{key}", dd.child.id()))
        .unwrap_or_else(|e| panic!("{key} in dockerd's namespace: {e}"));
    let ns = std::fs::metadata(format!("/proc/{pid}/ns/net")).unwrap();
    assert_eq!(
        (bound.dev(), bound.ino()),
        (ns.dev(), ns.ino()),
        "{key} is not the container's network namespace"
    );
    // docker exec (the shim's `exec --process --detach`): output, env,
    // exit code; then pause/unpause (the container's cgroup frozen).
    let o = dd.docker(&["exec", "-e", "X=1", "bg", "sh", "-c", "echo ex$X; exit 4"]);
    assert_eq!(o.status.code(), Some(4), "exec: {}", err(&o));
    assert_eq!(out(&o).trim(), "ex1");
    let o = dd.docker(&["pause", "bg"]);
    assert!(o.status.success(), "pause: {}", err(&o));
    dd.wait_ps("bg", "paused", |l| l.contains("(Paused)"));
    let o = dd.docker(&["unpause", "bg"]);
    assert!(o.status.success(), "unpause: {}", err(&o));
    dd.wait_ps("bg", "unpaused", |l| {
        l.contains(" Up ") && !l.contains("Paused")
    });
    let o = dd.docker(&["ps", "--format", "{{.Names}} {{.Command}}"]);
    assert!(
        out(&o).lines().any(|l| l.starts_with("bg ")),
        "ps: {}",
        out(&o)
    );
    let t0 = Instant::now();
    let o = dd.docker(&["stop", "-t", "20", "bg"]);
    assert!(o.status.success(), "stop: {}", err(&o));
    // SIGTERM reached the trap: well before the 20 s SIGKILL.
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    dd.wait_ps("bg", "exited 0", |l| l.contains("Exited (0)"));
    let o = dd.docker(&["rm", "bg"]);
    assert!(o.status.success(), "rm: {}", err(&o));
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .map(|c| !c.starts_with("sh"))
                .unwrap_or(true),
        "the container's process outlived rm"
    );

    // Docker's default seccomp profile is applied (every run above had
    // it): personality(2) with ADDR_NO_RANDOMIZE (busybox `linux64 -R`)
    // is off its list and refused, while the rest runs; unconfined, the
    // same call passes.
    let probe = ["sh", "-c", "echo in; linux64 -R true 2>&1; echo rc=$?"];
    let o = dd.run(&[], &probe);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.starts_with("in\n")
            && text.contains("personality(0x40000)")
            && text.ends_with("rc=1\n"),
        "Docker's profile not applied: {text}"
    );
    let o = dd.run(&["--security-opt", "seccomp=unconfined"], &probe);
    assert_eq!(out(&o), "in\nrc=0\n", "{}", err(&o));
    let o = dd.docker(&["ps", "-aq"]);
    assert_eq!(out(&o), "", "containers left: {}", out(&o));
}

//! rbox-runtime, the runc-compatible OCI runtime, driven through its CLI
//! as containerd's shim or conmon would: real bundles (the busybox fixture
//! as rootfs, config.json from `runc spec`), root, the real kernel. Every
//! config keeps the default spec's new network namespace: nothing here
//! touches the host's network.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

mod bundle_common;
use bundle_common::{bundle, err, out, require_root, Bundle, RUNTIME};

/// A container id unique to this test process (cgroups are host-wide).
fn uniq(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

/// (state letter, parent pid) of a process.
fn stat(pid: i32) -> Option<(char, i32)> {
    let t = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = t[t.rfind(')')? + 1..].split_whitespace().collect();
    Some((f[0].chars().next()?, f[1].parse().ok()?))
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The container's group `rbox/<id>`, under any v1 hierarchy or the v2 root.
fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    cgroup_dirs_at(&format!("rbox/{id}"))
}

/// A group at `rel` below the cgroup root(s): v2's, or every v1 hierarchy.
fn cgroup_dirs_at(rel: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut hierarchies = vec![root.to_path_buf()];
    hierarchies.extend(std::fs::read_dir(root).unwrap().flatten().map(|e| e.path()));
    let mut v = Vec::new();
    for h in hierarchies {
        let p = h.join(rel);
        if p.exists() {
            v.push(p);
        }
    }
    v
}

#[test]
fn run_prints_the_output_and_returns_the_exit_code() {
    let b = bundle(&["sh", "-c", "echo hello from rbox; exit 7"], |_| {});
    let id = &uniq("run-exit");
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), id]);
    assert_eq!(out(&o), "hello from rbox\n", "stderr: {}", err(&o));
    assert_eq!(o.status.code(), Some(7), "stderr: {}", err(&o));
    // run deletes what it created.
    assert!(!b.root.join(id).exists());
    assert!(cgroup_dirs(id).is_empty());
}

#[test]
fn create_start_state_kill_delete() {
    // As containerd's shim: a subreaper, so the container process, once
    // `create` has exited, must be our direct child.
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0);
    let id = &uniq("lifecycle");
    // The group where the bundle says, as containerd's `/default/<id>`.
    let parent = uniq("rbox-runtime-test");
    let group = format!("{parent}/{id}");
    let b = bundle(&["sleep", "1000"], |c| {
        c["linux"]["cgroupsPath"] = json!(format!("/{group}"));
        c["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
        c["linux"]["resources"]["pids"] = json!({"limit": 42});
        c["annotations"] = json!({"org.example.k": "v"});
    });
    let pid_file = b.dir.join("ctr.pid");
    let (ok, e) = b.create(id, &["--pid-file", &pid_file.to_string_lossy()]);
    assert!(ok, "create: {e}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file written")
        .trim()
        .parse()
        .unwrap();
    let s = b.state(id);
    assert_eq!(s["status"], "created", "{s}");
    assert_eq!(s["pid"], pid, "{s}");
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["bundle"], b.bundle_arg());
    assert_eq!(s["annotations"]["org.example.k"], "v", "{s}");
    // Nothing of rbox between us and the container process.
    let (_, ppid) = stat(pid).expect("container process alive");
    assert_eq!(
        ppid,
        std::process::id() as i32,
        "create left a process in between"
    );
    // Not started yet: still rbox-runtime's image, not sleep.
    assert!(!cmdline(pid).starts_with("sleep"), "{}", cmdline(pid));
    // Its limits are on its group.
    let dirs = cgroup_dirs_at(&group);
    assert!(!dirs.is_empty(), "no cgroup at {group}");
    assert!(cgroup_dirs(id).is_empty(), "cgroupsPath not followed");
    let read = |f: &str| {
        dirs.iter()
            .find_map(|d| std::fs::read_to_string(d.join(f)).ok())
            .unwrap_or_default()
    };
    let mem = read("memory.limit_in_bytes") + &read("memory.max");
    assert_eq!(mem.trim(), (64u64 << 20).to_string());
    assert_eq!(read("pids.max").trim(), "42");

    let o = b.rt(&["start", id]);
    assert!(o.status.success(), "start: {}", err(&o));
    wait_until("the command runs", || {
        cmdline(pid).starts_with("sleep 1000")
    });
    assert_eq!(b.state(id)["status"], "running");
    let o = b.rt(&["ps", "--format", "json", id]);
    let pids: Vec<i32> = serde_json::from_slice(&o.stdout).expect("ps --format json");
    assert_eq!(pids, [pid], "{}", err(&o));
    // The state dir is root's only.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(b.root.join(id))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    // A second start is refused.
    assert!(!b.rt(&["start", id]).status.success());
    // Running: delete needs --force.
    let o = b.rt(&["delete", id]);
    assert!(!o.status.success());
    assert!(err(&o).contains("running"), "{}", err(&o));

    let o = b.rt(&["kill", id, "KILL"]);
    assert!(o.status.success(), "kill: {}", err(&o));
    let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    assert!(
        matches!(
            st,
            nix::sys::wait::WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)
        ),
        "{st:?}"
    );
    let s = b.state(id);
    assert_eq!(s["status"], "stopped", "{s}");
    let o = b.rt(&["delete", id]);
    assert!(o.status.success(), "delete: {}", err(&o));
    assert!(!b.root.join(id).exists(), "state left behind");
    assert!(cgroup_dirs_at(&group).is_empty(), "cgroup left behind");
    for d in cgroup_dirs_at(&parent) {
        std::fs::remove_dir(&d).unwrap();
    }
    assert!(!b.rt(&["state", id]).status.success());
}

#[test]
fn kill_takes_names_numbers_and_all_and_delete_force_kills() {
    // PID 1 of a pid namespace gets only the signals it handles (and
    // KILL): trap the ones sent by name.
    let b = bundle(
        &["sh", "-c", "trap 'exit 0' TERM USR1; sleep 1000 & wait"],
        |_| {},
    );
    for (name, sig) in [
        ("kill-name", "TERM"),
        ("kill-sig", "SIGUSR1"),
        ("kill-num", "9"),
    ] {
        let id = &uniq(name);
        let (ok, e) = b.create(id, &[]);
        assert!(ok, "create {id}: {e}");
        assert!(b.rt(&["start", id]).status.success());
        let pid = b.state(id)["pid"].as_i64().unwrap() as i32;
        wait_until("sh runs", || cmdline(pid).starts_with("sh"));
        let mut args = vec!["kill"];
        if sig == "9" {
            args.push("--all");
        }
        args.extend([id, sig]);
        let o = b.rt(&args);
        assert!(o.status.success(), "kill {sig}: {}", err(&o));
        wait_until("the container stops", || b.state(id)["status"] == "stopped");
        // Reap it if we are its subreaper (another test made us one).
        let _ = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        assert!(b.rt(&["delete", id]).status.success());
    }
    assert!(!b.rt(&["kill", &uniq("kill-name"), "NOPE"]).status.success());
    let id = &uniq("force");
    assert!(b.create(id, &[]).0);
    assert!(b.rt(&["start", id]).status.success());
    let o = b.rt(&["delete", "--force", id]);
    assert!(o.status.success(), "delete --force: {}", err(&o));
    assert!(!b.root.join(id).exists());
    assert!(cgroup_dirs(id).is_empty());
}

#[test]
fn unsupported_fields_are_refused_by_name() {
    for (field, set) in [
        (
            "linux.seccomp.listenerPath",
            Box::new(|c: &mut Value| {
                c["linux"]["seccomp"] =
                    json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock"})
            }) as Box<dyn Fn(&mut Value)>,
        ),
        (
            "hooks.onExit",
            Box::new(|c: &mut Value| c["hooks"] = json!({"onExit": [{"path": "/bin/true"}]})),
        ),
        (
            "linux.uidMappings",
            Box::new(|c: &mut Value| {
                c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}])
            }),
        ),
        (
            "process.apparmorProfile",
            Box::new(|c: &mut Value| c["process"]["apparmorProfile"] = json!("docker-default")),
        ),
    ] {
        let b = bundle(&["true"], |c| set(c));
        let log = b.dir.join("log.json");
        let o = b
            .cmd(&["--log", &log.to_string_lossy(), "--log-format", "json"])
            .args(["run", "--bundle", &b.bundle_arg(), "refused"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{field}: {}", err(&o));
        assert!(err(&o).contains(field), "{field} not named: {}", err(&o));
        let line = std::fs::read_to_string(&log).expect("log written");
        let entry: Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();
        assert_eq!(entry["level"], "error");
        assert!(entry["msg"].as_str().unwrap().contains(field), "{entry}");
        assert!(entry["time"].as_str().unwrap().ends_with('Z'), "{entry}");
        assert!(!b.root.join("refused").exists(), "state left by a refusal");
    }
}

/// What a few behaviours look like from inside.
const PROBE: &str = "hostname; id; grep CapEff /proc/self/status; pwd; echo \"$FOO\"; \
                     ulimit -n; test -s /proc/kcore && echo kcore || echo masked; touch /proc/sys/x 2>/dev/null || echo ro-sys";

fn probe_bundle(uid: u32) -> Bundle {
    bundle(&["sh", "-c", PROBE], |c| {
        c["hostname"] = json!("probe-host");
        c["process"]["cwd"] = json!("/etc");
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push(json!("FOO=bar baz"));
        c["process"]["user"] = json!({"uid": uid, "gid": uid, "additionalGids": [10, 20]});
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]);
    })
}

fn run_with(runtime: &str, b: &Bundle, id: &str) -> Output {
    Command::new(runtime)
        .arg("--root")
        .arg(b.root.join(runtime.rsplit('/').next().unwrap()))
        .args(["run", "--bundle", &b.bundle_arg(), id])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn same_output_as_runc_and_crun() {
    for uid in [0, 1000] {
        let b = probe_bundle(uid);
        let ours = run_with(RUNTIME, &b, "probe");
        assert!(ours.status.success(), "rbox-runtime: {}", err(&ours));
        let runc = run_with("/usr/sbin/runc", &b, "probe");
        assert!(runc.status.success(), "runc: {}", err(&runc));
        assert_eq!(out(&ours), out(&runc), "uid {uid}: rbox-runtime vs runc");
        assert!(out(&ours).starts_with("probe-host\n"), "{}", out(&ours));
        assert!(
            out(&ours).contains("\n/etc\nbar baz\n256\nmasked\nro-sys\n"),
            "{}",
            out(&ours)
        );
        let crun = run_with("/usr/bin/crun", &b, "probe");
        if err(&crun).contains("hybrid mode not supported") {
            // crun refuses hosts with v1 controllers beside a cgroup2
            // mount (this CI machine); runc above covers the comparison.
            eprintln!("crun refuses this host's hybrid cgroups: compared with runc only");
        } else {
            assert!(crun.status.success(), "crun: {}", err(&crun));
            assert_eq!(out(&ours), out(&crun), "uid {uid}: rbox-runtime vs crun");
        }
    }
}

#[test]
fn spec_features_and_version() {
    let b = bundle(&["true"], |_| {});
    let fresh = b.dir.join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    let o = b.rt(&["spec", "--bundle", &fresh.to_string_lossy()]);
    assert!(o.status.success(), "spec: {}", err(&o));
    let mut cfg: Value =
        serde_json::from_slice(&std::fs::read(fresh.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["process"]["args"], json!(["sh"]));
    // Refuses to overwrite.
    assert!(!b
        .rt(&["spec", "--bundle", &fresh.to_string_lossy()])
        .status
        .success());
    // What it writes, rbox-runtime runs (here without a terminal).
    cfg["process"]["terminal"] = json!(false);
    cfg["process"]["args"] = json!(["sh", "-c", "echo spec ok; hostname"]);
    std::fs::write(b.dir.join("config.json"), cfg.to_string()).unwrap();
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), "from-spec"]);
    assert_eq!(out(&o), "spec ok\nrbox\n", "{}", err(&o));
    let o = b.rt(&["features"]);
    let f: Value = serde_json::from_slice(&o.stdout).expect("features is JSON");
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&json!("pid")));
    let o = b.rt(&["--version"]);
    assert!(out(&o).starts_with("rbox-runtime "), "{}", out(&o));
    let o = b.rt(&["list", "--format", "json"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(out(&o).trim(), "[]");
    let o = b.rt(&["--systemd-cgroup", "state", "x"]);
    assert!(err(&o).contains("--systemd-cgroup"), "{}", err(&o));
}

/// Receive the one descriptor `create` sends over the console socket.
fn recv_fd(sock: &std::os::unix::net::UnixStream) -> std::os::fd::OwnedFd {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut buf = [0u8; 256];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .expect("recvmsg on the console socket");
    for c in msg.cmsgs().unwrap() {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed this descriptor for us.
            return unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) };
        }
    }
    panic!("no descriptor on the console socket");
}

#[test]
fn terminal_through_the_console_socket() {
    let id = &uniq("tty");
    let b = bundle(&["sh", "-c", "tty; stty size; echo on-tty"], |c| {
        c["process"]["terminal"] = json!(true);
        c["process"]["consoleSize"] = json!({"height": 33, "width": 101});
    });
    let path = b.dir.join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let (ok, e) = b.create(id, &["--console-socket", &path.to_string_lossy()]);
    assert!(ok, "create: {e}");
    let (sock, _) = listener.accept().unwrap();
    let master = std::fs::File::from(recv_fd(&sock));
    assert!(b.rt(&["start", id]).status.success());
    // Read until the slave side is gone (EIO once the container exited).
    let mut text = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match std::io::Read::read(&mut &master, &mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&text).replace('\r', "");
    assert_eq!(text, "/dev/pts/0\n33 101\non-tty\n");
    wait_until("the container stops", || b.state(id)["status"] == "stopped");
    assert!(b.rt(&["delete", id]).status.success());
    // Without a console socket, a terminal is refused before anything starts.
    let (ok, e) = b.create(&uniq("tty2"), &[]);
    assert!(!ok && e.contains("process.terminal"), "{e}");
}

#[test]
fn joins_a_network_namespace_by_path() {
    // A holds a new network namespace (created, waiting for start).
    let a_id = &uniq("ns-holder");
    let a = bundle(&["sleep", "1000"], |_| {});
    let (ok, e) = a.create(a_id, &[]);
    assert!(ok, "create holder: {e}");
    let a_pid = a.state(a_id)["pid"].as_i64().unwrap();
    let ns = format!("/proc/{a_pid}/ns/net");
    let want = std::fs::read_link(&ns).unwrap();
    assert_ne!(
        want,
        std::fs::read_link("/proc/self/ns/net").unwrap(),
        "the holder is in the host's network namespace"
    );
    // B joins it by path, as a CNI-made netns is joined.
    let b = bundle(&["readlink", "/proc/self/ns/net"], |c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = json!(ns);
            }
        }
    });
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq("ns-joiner")]);
    assert_eq!(out(&o).trim(), want.to_string_lossy(), "{}", err(&o));
    // Joining a pid namespace is refused by name.
    let c = bundle(&["true"], |c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "pid" {
                n["path"] = json!(format!("/proc/{a_pid}/ns/pid"));
            }
        }
    });
    let o = c.rt(&["run", "--bundle", &c.bundle_arg(), &uniq("ns-pid")]);
    assert!(!o.status.success());
    assert!(err(&o).contains("linux.namespaces[0].path"), "{}", err(&o));
    assert!(a.rt(&["delete", "--force", a_id]).status.success());
}

#[test]
fn device_rules_within_the_default_are_taken_and_enforced() {
    // containerd's default shape: deny all, mknod of anything, the usual nodes.
    let rules = json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "access": "m"},
        {"allow": true, "type": "b", "access": "m"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 136, "access": "rwm"}
    ]);
    let script = "echo x > /dev/null && echo null-ok; mknod /dev/mem1 c 1 1 && echo made; \
                  head -c1 /dev/mem1 >/dev/null 2>&1 || echo mem-denied";
    let b = bundle(&["sh", "-c", script], |c| {
        c["linux"]["resources"]["devices"] = rules.clone();
        for set in ["bounding", "effective", "permitted"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_MKNOD"));
        }
    });
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq("devices")]);
    assert_eq!(out(&o), "null-ok\nmade\nmem-denied\n", "{}", err(&o));
    // A rule wider than rbox's policy is refused by its index.
    let b = bundle(&["true"], |c| {
        c["linux"]["resources"]["devices"] = json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}
        ]);
    });
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq("devices-wide")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("linux.resources.devices[1]"),
        "{}",
        err(&o)
    );
}

#[test]
fn linux_devices_of_the_default_list_are_made() {
    let b = bundle(
        &[
            "sh",
            "-c",
            "ls -l /dev/console /dev/null | cut -c1-10; echo hi > /dev/null && echo ok",
        ],
        |c| {
            c["linux"]["devices"] = json!([
                {"path": "/dev/console", "type": "c", "major": 5, "minor": 1},
                {"path": "/dev/null", "type": "c", "major": 1, "minor": 3,
                 "fileMode": 438, "uid": 0, "gid": 0}
            ]);
        },
    );
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq("devnodes")]);
    assert_eq!(out(&o), "crw-rw-rw-\ncrw-rw-rw-\nok\n", "{}", err(&o));
    let b = bundle(&["true"], |c| {
        c["linux"]["devices"] =
            json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
    });
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq("devnodes-fuse")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("linux.devices[0]"), "{}", err(&o));
}

#[test]
fn bind_and_rbind_mounts_with_their_options() {
    // A host dir with a tmpfs mounted below it: `bind` takes only the
    // dir, `rbind` the tmpfs too.
    let host = tempfile::tempdir().unwrap();
    let sub = host.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(host.path().join("top.txt"), "top\n").unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &sub,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .unwrap();
    std::fs::write(sub.join("inner.txt"), "inner\n").unwrap();
    let src = host.path().to_string_lossy().into_owned();
    let script = "cat /flat/top.txt; cat /flat/sub/inner.txt 2>/dev/null || echo flat-empty; \
                  cat /deep/sub/inner.txt; touch /deep/x 2>/dev/null || echo deep-ro; \
                  grep ' /deep ' /proc/self/mountinfo | grep -o 'ro,nosuid,nodev,noexec'";
    let b = bundle(&["sh", "-c", script], |c| {
        let m = c["mounts"].as_array_mut().unwrap();
        m.push(
            json!({"destination": "/flat", "type": "bind", "source": src,
                      "options": ["bind", "rw"]}),
        );
        m.push(
            json!({"destination": "/deep", "type": "bind", "source": src,
                      "options": ["rbind", "rprivate", "ro", "nosuid", "nodev", "noexec"]}),
        );
    });
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq("binds")]);
    nix::mount::umount2(&sub, nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert_eq!(
        out(&o),
        "top\nflat-empty\ninner\ndeep-ro\nro,nosuid,nodev,noexec\n",
        "{}",
        err(&o)
    );
    // Propagation other than private is refused by name.
    let b = bundle(&["true"], |c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/x", "type": "bind", "source": "/tmp", "options": ["rbind", "rslave"]}),
        );
    });
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq("binds-slave")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("mounts[") && err(&o).contains("rslave"),
        "{}",
        err(&o)
    );
}

#[test]
fn a_missing_command_fails_after_start_with_127_and_debug_logs_in_text() {
    let b = bundle(&["/no/such/cmd"], |_| {});
    let log = b.dir.join("log.txt");
    let o = b
        .cmd(&["--log", &log.to_string_lossy(), "--debug"])
        .args(["run", "--bundle", &b.bundle_arg(), &uniq("nocmd")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(127), "{}", err(&o));
    assert!(err(&o).contains("/no/such/cmd"), "{}", err(&o));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(" debug: "), "{text}");
}

#[test]
fn namespaced_sysctls_and_oom_score_adj() {
    let host_shmmni = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    let b = bundle(
        &[
            "sh",
            "-c",
            "cat /proc/sys/kernel/shmmni /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj",
        ],
        |c| {
            c["linux"]["sysctl"] = json!({"kernel.shmmni": "1234", "net.ipv4.ip_forward": "1"});
            c["process"]["oomScoreAdj"] = json!(123);
        },
    );
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq("sysctl")]);
    assert_eq!(out(&o), "1234\n1\n123\n", "{}", err(&o));
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
        host_shmmni,
        "the host's value changed"
    );
    // A sysctl that is not namespaced would change the host: refused.
    let b = bundle(&["true"], |c| {
        c["linux"]["sysctl"] = json!({"vm.swappiness": "10"});
    });
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq("sysctl-vm")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains("linux.sysctl.vm.swappiness"),
        "{}",
        err(&o)
    );
}

#[test]
fn umask_0022_is_taken_and_others_are_refused() {
    // Podman's default spec carries process.user.umask 0022 (18).
    let b = bundle(&["sh", "-c", "umask"], |c| {
        c["process"]["user"]["umask"] = json!(18);
    });
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq("umask")]);
    assert_eq!(out(&o), "0022\n", "{}", err(&o));
    let b = bundle(&["true"], |c| {
        c["process"]["user"]["umask"] = json!(0o077);
    });
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq("umask-077")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("process.user.umask"), "{}", err(&o));
}

/// A hook that appends `<label> <its stdin> <its mount namespace>` to
/// `log` (sh and readlink: the host's, or busybox's inside the container).
fn log_hook(label: &str, log: &str) -> Value {
    let script = format!("echo \"{label} $(cat) $(readlink /proc/self/ns/mnt)\" >> {log}");
    json!({"path": "/bin/sh", "args": ["sh", "-c", script],
           "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]})
}

/// A hook running `script` with sh.
fn sh_hook(script: &str) -> Value {
    json!({"path": "/bin/sh", "args": ["sh", "-c", script],
           "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]})
}

/// The log's lines as (label, state, mount namespace).
fn hook_log(path: &Path) -> Vec<(String, Value, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let (label, rest) = l.split_once(' ').unwrap();
            let (state, ns) = rest.rsplit_once(' ').unwrap();
            let v: Value = serde_json::from_str(state).unwrap_or_else(|e| panic!("{l}: {e}"));
            (label.to_string(), v, ns.to_string())
        })
        .collect()
}

#[test]
fn hooks_run_at_their_moments_with_the_state_on_stdin() {
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("log");
    let host = log.to_string_lossy().into_owned();
    let b = bundle(&["sleep", "1000"], |c| {
        c["annotations"] = json!({"org.example.hook": "yes"});
        // startContainer resolves in the container: the log dir is bound there.
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/hooklog",
            "type": "bind", "source": logdir.path(), "options": ["rbind", "rw"]}));
        c["hooks"] = json!({
            "prestart": [log_hook("prestart", &host)],
            "createRuntime": [log_hook("createRuntime", &host)],
            "createContainer": [log_hook("createContainer", &host)],
            "startContainer": [log_hook("startContainer", "/hooklog/log")],
            "poststart": [log_hook("poststart", &host)],
            // A failing poststop is a warning; the next one still runs.
            "poststop": [sh_hook("echo broken >&2; exit 4"), log_hook("poststop", &host)],
        });
    });
    let id = &uniq("hooks");
    let (ok, e) = b.create(id, &[]);
    assert!(ok, "create: {e}");
    let pid = b.state(id)["pid"].as_i64().unwrap();
    let host_ns = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    let ctr_ns = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    assert_ne!(host_ns, ctr_ns);
    let (host_ns, ctr_ns) = (
        host_ns.to_string_lossy().into_owned(),
        ctr_ns.to_string_lossy().into_owned(),
    );
    let labels = |l: &[(String, Value, String)]| -> Vec<String> {
        l.iter().map(|(k, _, _)| k.clone()).collect()
    };
    let l = hook_log(&log);
    assert_eq!(
        labels(&l),
        ["prestart", "createRuntime", "createContainer"],
        "after create"
    );
    let o = b.rt(&["start", id]);
    assert!(o.status.success(), "start: {}", err(&o));
    let l = hook_log(&log);
    assert_eq!(
        labels(&l)[3..],
        ["startContainer", "poststart"],
        "after start"
    );
    // (status, pid, namespace) each saw: the runtime's view of the pid
    // in its namespace, the container's (1) in the container's.
    let want = [
        ("creating", pid, &host_ns),
        ("creating", pid, &host_ns),
        ("creating", 1, &ctr_ns),
        ("created", 1, &ctr_ns),
        ("running", pid, &host_ns),
    ];
    for ((label, s, ns), (status, pid, want_ns)) in l.iter().zip(want) {
        assert_eq!(s["status"], status, "{label}: {s}");
        assert_eq!(s["pid"], pid, "{label}: {s}");
        assert_eq!(ns, want_ns, "{label} ran in the wrong mount namespace");
        assert_eq!(s["id"], id.as_str(), "{label}: {s}");
        assert_eq!(s["bundle"], b.bundle_arg(), "{label}: {s}");
        assert_eq!(s["annotations"]["org.example.hook"], "yes", "{label}: {s}");
        assert!(s["ociVersion"].is_string(), "{label}: {s}");
    }
    // Poststart came after the command was exec'ed.
    assert!(cmdline(pid as i32).starts_with("sleep 1000"));
    assert!(b.rt(&["kill", id, "KILL"]).status.success());
    wait_until("the container stops", || b.state(id)["status"] == "stopped");
    let o = b.rt(&["delete", id]);
    assert!(o.status.success(), "delete: {}", err(&o));
    assert!(
        err(&o).contains("warning: poststop hook /bin/sh failed: exit status 4 (output: broken)"),
        "{}",
        err(&o)
    );
    let l = hook_log(&log);
    assert_eq!(labels(&l).len(), 6, "{l:?}");
    let (label, s, ns) = &l[5];
    assert_eq!(label, "poststop");
    assert_eq!(s["status"], "stopped", "{s}");
    assert_eq!(ns, &host_ns);
    assert!(!b.root.join(id).exists());
    let f: Value = serde_json::from_slice(&b.rt(&["features"]).stdout).unwrap();
    assert_eq!(
        f["hooks"],
        json!([
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop"
        ])
    );
}

#[test]
fn a_failing_create_hook_fails_create_and_leaves_nothing() {
    for kind in ["prestart", "createRuntime", "createContainer"] {
        let logdir = tempfile::tempdir().unwrap();
        let log = logdir.path().join("log");
        let b = bundle(&["true"], |c| {
            c["hooks"] = json!({
                kind: [sh_hook("echo no-network-for-you >&2; exit 3")],
                "poststop": [log_hook("poststop", &log.to_string_lossy())],
            });
        });
        let id = &uniq(&format!("hookfail-{}", kind.to_lowercase()));
        let (ok, e) = b.create(id, &[]);
        assert!(!ok, "{kind}: create succeeded");
        assert!(
            e.contains(&format!("{kind} hook /bin/sh failed: exit status 3")),
            "{kind}: {e}"
        );
        assert!(e.contains("no-network-for-you"), "{kind}: {e}");
        assert!(!b.root.join(id).exists(), "{kind}: state left behind");
        assert!(cgroup_dirs(id).is_empty(), "{kind}: cgroup left behind");
        // The lifecycle went on to destroy: poststop ran.
        let l = hook_log(&log);
        assert_eq!(l.len(), 1, "{kind}: {l:?}");
        assert_eq!(l[0].1["status"], "stopped");
    }
}

#[test]
fn a_hook_past_its_timeout_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pidf = dir.path().join("hook.pid");
    let script = format!("echo $$ > {}; exec sleep 60", pidf.display());
    let b = bundle(&["true"], |c| {
        let mut h = sh_hook(&script);
        h["timeout"] = json!(1);
        c["hooks"] = json!({"createRuntime": [h]});
    });
    let id = &uniq("hook-timeout");
    let t = std::time::Instant::now();
    let (ok, e) = b.create(id, &[]);
    let took = t.elapsed();
    assert!(!ok, "create succeeded");
    assert!(
        e.contains("createRuntime hook /bin/sh did not finish within its timeout of 1 s: killed"),
        "{e}"
    );
    assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    let hook_pid = std::fs::read_to_string(&pidf).unwrap();
    assert!(
        !Path::new(&format!("/proc/{}", hook_pid.trim())).exists(),
        "the hook still runs"
    );
    assert!(!b.root.join(id).exists());
    assert!(cgroup_dirs(id).is_empty());
}

#[test]
fn failing_start_and_poststart_hooks_stop_the_container() {
    // startContainer fails in the container, before its command: the
    // command never runs, the reason is on the container's stderr.
    let b = bundle(&["sh", "-c", "echo command ran"], |c| {
        c["hooks"] = json!({"startContainer": [sh_hook("exit 5")]});
    });
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq("startc-fail")]);
    assert_eq!(o.status.code(), Some(125), "{}", err(&o));
    assert!(!out(&o).contains("command ran"), "{}", out(&o));
    assert!(
        err(&o).contains("startContainer hook /bin/sh failed: exit status 5"),
        "{}",
        err(&o)
    );
    // poststart fails: start fails and the container is stopped.
    let b = bundle(&["sleep", "1000"], |c| {
        c["hooks"] = json!({"poststart": [sh_hook("exit 6")]});
    });
    let id = &uniq("poststart-fail");
    assert!(b.create(id, &[]).0);
    let o = b.rt(&["start", id]);
    assert!(!o.status.success());
    assert!(
        err(&o).contains("poststart hook /bin/sh failed: exit status 6"),
        "{}",
        err(&o)
    );
    wait_until("the container stops", || b.state(id)["status"] == "stopped");
    assert!(b.rt(&["delete", id]).status.success());
}
/// Create and start `id` from `b`; the container's first process's pid
/// once its command runs (our child, as we are a subreaper like
/// containerd's shim: we wait for it at the end).
fn started(b: &Bundle, id: &str) -> i32 {
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0);
    let pid_file = b.dir.join(format!("{id}.pid"));
    let (ok, e) = b.create(id, &["--pid-file", &pid_file.to_string_lossy()]);
    assert!(ok, "create: {e}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let o = b.rt(&["start", id]);
    assert!(o.status.success(), "start: {}", err(&o));
    wait_until("the command runs", || {
        !cmdline(pid).contains("rbox-runtime")
    });
    pid
}

/// Kill, reap and delete a started container.
fn finish(b: &Bundle, id: &str, pid: i32) {
    let o = b.rt(&["kill", id, "KILL"]);
    assert!(o.status.success(), "kill: {}", err(&o));
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    let o = b.rt(&["delete", id]);
    assert!(o.status.success(), "delete: {}", err(&o));
}

fn ns_of(pid: i32, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn status_field(pid: i32, field: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!("{field}:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default()
}

#[test]
fn exec_runs_in_the_container_with_its_output_status_env_cwd_and_user() {
    let b = bundle(&["sleep", "1000"], |_| {});
    let id = &uniq("exec");
    let pid = started(&b, id);
    // Output and exit status; in the container's pid and mount
    // namespaces: its /proc, where its first process is PID 1.
    let o = b.rt(&[
        "exec",
        id,
        "sh",
        "-c",
        "cat /proc/1/cmdline; echo; echo $$ >&2; exit 3",
    ]);
    assert_eq!(out(&o), "sleep\x001000\0\n", "stderr: {}", err(&o));
    let inner: i32 = err(&o).trim().parse().expect("the exec'ed pid inside");
    assert!(
        inner > 1 && inner < 100,
        "pid {inner} is not of the container's namespace"
    );
    assert_eq!(o.status.code(), Some(3));
    // Killed by a signal: 128 + the signal.
    let o = b.rt(&["exec", id, "sh", "-c", "kill -9 $$"]);
    assert_eq!(o.status.code(), Some(137), "{}", err(&o));
    // --env, --cwd, --user, --additional-gids.
    let o = b.rt(&[
        "exec",
        "--env",
        "FOO=bar",
        "-e",
        "BAZ=qux",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1001",
        "--additional-gids",
        "1234",
        id,
        "sh",
        "-c",
        "echo $FOO $BAZ $(pwd) $(id -u) $(id -g) $(id -G); readlink /proc/self/ns/net",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(
        out(&o),
        format!("bar qux /tmp 1000 1001 1001 1234\n{}\n", ns_of(pid, "net")),
    );
    // The same security settings as the first process (capabilities
    // from config.json) unless told otherwise.
    let o = b.rt(&["exec", id, "sh", "-c", "grep CapBnd /proc/self/status"]);
    assert_eq!(
        out(&o).split_whitespace().last().unwrap_or(""),
        status_field(pid, "CapBnd"),
        "{}",
        err(&o)
    );
    let o = b.rt(&[
        "exec",
        "--cap",
        "CAP_SYS_ADMIN",
        id,
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    let eff = u64::from_str_radix(out(&o).split_whitespace().last().unwrap_or("0"), 16).unwrap();
    assert_ne!(
        eff & (1 << 21),
        0,
        "--cap CAP_SYS_ADMIN not effective: {eff:x}"
    );
    let o = b.rt(&[
        "exec",
        "--no-new-privs",
        id,
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert_eq!(out(&o).split_whitespace().last(), Some("1"), "{}", err(&o));
    // A missing command is named.
    let o = b.rt(&["exec", id, "no-such-command"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("executable file not found"), "{}", err(&o));
    finish(&b, id, pid);
}

#[test]
fn exec_takes_a_process_json() {
    let b = bundle(&["sleep", "1000"], |_| {});
    let id = &uniq("exec-process");
    let pid = started(&b, id);
    let p = b.dir.join("process.json");
    std::fs::write(
        &p,
        serde_json::to_vec(&json!({
            "terminal": false,
            "user": {"uid": 65534, "gid": 65534},
            "args": ["sh", "-c", "echo $X; pwd; id -u; grep CapEff /proc/self/status"],
            "env": ["PATH=/usr/bin:/bin", "X=from-json"],
            "cwd": "/etc",
            "capabilities": {"bounding": ["CAP_KILL"], "effective": [], "permitted": []},
            "noNewPrivileges": true,
        }))
        .unwrap(),
    )
    .unwrap();
    let o = b.rt(&["exec", "--process", &p.to_string_lossy(), id]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..3], ["from-json", "/etc", "65534"], "{text}");
    assert!(lines[3].ends_with("0000000000000000"), "{text}");
    // A key rbox does not support is refused by name.
    std::fs::write(
        &p,
        r#"{"args": ["true"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "selinuxLabel": "x"}"#,
    )
    .unwrap();
    let o = b.rt(&["exec", "--process", &p.to_string_lossy(), id]);
    assert!(!o.status.success());
    assert!(err(&o).contains("process.selinuxLabel"), "{}", err(&o));
    finish(&b, id, pid);
}

#[test]
fn exec_detach_leaves_the_process_as_our_child_in_the_containers_pid_ns() {
    // As containerd's shim and conmon: a subreaper.
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0);
    let b = bundle(&["sleep", "1000"], |_| {});
    let id = &uniq("exec-detach");
    let pid = started(&b, id);
    let pid_file = b.dir.join("exec.pid");
    let t = std::time::Instant::now();
    let st = b
        .cmd(&[
            "exec",
            "--detach",
            "--pid-file",
            &pid_file.to_string_lossy(),
            id,
        ])
        .args(["sleep", "999"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    let xpid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file written")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(cmdline(xpid), "sleep 999 ");
    assert_eq!(ns_of(xpid, "pid"), ns_of(pid, "pid"));
    assert_ne!(ns_of(xpid, "pid"), ns_of(std::process::id() as i32, "pid"));
    assert_eq!(ns_of(xpid, "mnt"), ns_of(pid, "mnt"));
    // In the container's cgroup, as the host sees both.
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{xpid}/cgroup")).unwrap(),
        std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap()
    );
    let (_, ppid) = stat(xpid).unwrap();
    assert_eq!(
        ppid,
        std::process::id() as i32,
        "a process stayed in between"
    );
    // ps lists it with the first process.
    let o = b.rt(&["ps", "--format", "json", id]);
    let mut pids: Vec<i32> = serde_json::from_slice(&o.stdout).unwrap();
    pids.sort();
    let mut want = vec![pid, xpid];
    want.sort();
    assert_eq!(pids, want);
    // Killing the first process ends the pid namespace: the exec'ed
    // process dies too, and is ours to reap (the namespace's init is
    // gone only once every member is reaped).
    let o = b.rt(&["kill", id, "KILL"]);
    assert!(o.status.success(), "kill: {}", err(&o));
    let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(xpid), None).unwrap();
    assert!(
        matches!(st, nix::sys::wait::WaitStatus::Signaled(..)),
        "{st:?}"
    );
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    let o = b.rt(&["delete", id]);
    assert!(o.status.success(), "delete: {}", err(&o));
}

#[test]
fn exec_into_a_stopped_container_is_refused() {
    // SAFETY: prctl with integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0);
    let b = bundle(&["true"], |_| {});
    let id = &uniq("exec-stopped");
    let pid_file = b.dir.join("p.pid");
    let (ok, e) = b.create(id, &["--pid-file", &pid_file.to_string_lossy()]);
    assert!(ok, "{e}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(b.rt(&["start", id]).status.success());
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    let o = b.rt(&["exec", id, "true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("is stopped"), "{}", err(&o));
    assert!(b.rt(&["delete", id]).status.success());
}

/// The counter the container's loop writes, read from the host.
fn counter(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/root/dev/shm/n"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn pause_freezes_and_resume_thaws_and_kill_still_kills() {
    let b = bundle(
        &[
            "sh",
            "-c",
            "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/n; sleep 0.02; done",
        ],
        |_| {},
    );
    let id = &uniq("pause");
    let pid = started(&b, id);
    wait_until("the counter runs", || counter(pid) > 2);
    let o = b.rt(&["pause", id]);
    assert!(o.status.success(), "pause: {}", err(&o));
    assert_eq!(b.state(id)["status"], "paused");
    let o = b.rt(&["list", "--format", "json"]);
    assert!(out(&o).contains("\"paused\""), "{}", out(&o));
    let n = counter(pid);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(counter(pid), n, "the counter advanced while paused");
    // exec into it and a second pause are refused, by name.
    let o = b.rt(&["exec", id, "true"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("paused"), "{}", err(&o));
    assert!(!b.rt(&["pause", id]).status.success());
    let o = b.rt(&["resume", id]);
    assert!(o.status.success(), "resume: {}", err(&o));
    assert_eq!(b.state(id)["status"], "running");
    wait_until("the counter advances again", || counter(pid) > n + 2);
    assert!(!b.rt(&["resume", id]).status.success());
    // SIGKILL to a paused container kills it.
    assert!(b.rt(&["pause", id]).status.success());
    let o = b.rt(&["kill", id, "KILL"]);
    assert!(o.status.success(), "kill: {}", err(&o));
    let st = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    assert!(
        matches!(
            st,
            nix::sys::wait::WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGKILL, _)
        ),
        "{st:?}"
    );
    assert!(b.rt(&["delete", id]).status.success());
    assert!(cgroup_dirs(id).is_empty(), "cgroup left behind");
}

#[test]
fn update_changes_the_memory_and_pids_limits() {
    let b = bundle(&["sleep", "1000"], |c| {
        c["linux"]["resources"]["memory"] = json!({"limit": 64 << 20});
    });
    let id = &uniq("update");
    let pid = started(&b, id);
    let read = |f: &str| {
        cgroup_dirs(id)
            .iter()
            .find_map(|d| std::fs::read_to_string(d.join(f)).ok())
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let mem = || read("memory.limit_in_bytes") + &read("memory.max");
    assert_eq!(mem(), (64u64 << 20).to_string());
    // Raised above the old memory+swap limit (v1 orders the writes).
    let o = b.rt(&["update", "--memory", "200m", "--pids-limit", "33", id]);
    assert!(o.status.success(), "update: {}", err(&o));
    assert_eq!(mem(), (200u64 << 20).to_string());
    assert_eq!(read("pids.max"), "33");
    // containerd's way: LinuxResources on stdin.
    let mut c = b.cmd(&["update", "--resources", "-", id]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        br#"{"memory": {"limit": 83886080}, "pids": {"limit": 44}}"#,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "update -r -: {}", err(&o));
    assert_eq!(mem(), "83886080");
    assert_eq!(read("pids.max"), "44");
    // -1 removes the pids limit and the CPU quota, as runc's update:
    // pids.max "max", a CFS quota of -1 (v1) or cpu.max "max ..." (v2).
    let quota = || {
        let q = read("cpu.cfs_quota_us") + &read("cpu.max");
        q.split_whitespace().next().unwrap_or("").to_string()
    };
    let o = b.rt(&["update", "--cpu-quota", "50000", "--pids-limit", "20", id]);
    assert!(o.status.success(), "update: {}", err(&o));
    assert_eq!((read("pids.max"), quota()), ("20".into(), "50000".into()));
    let o = b.rt(&["update", "--cpu-quota", "-1", "--pids-limit", "-1", id]);
    assert!(o.status.success(), "update to unlimited: {}", err(&o));
    let unlimited = if cgroup_dirs(id).iter().any(|d| d.join("cpu.max").exists()) {
        "max"
    } else {
        "-1"
    };
    assert_eq!(
        (read("pids.max"), quota()),
        ("max".into(), unlimited.into())
    );
    // The same in containerd's JSON, after limits set again.
    assert!(b
        .rt(&["update", "--cpu-quota", "50000", "--pids-limit", "20", id])
        .status
        .success());
    let mut c = b.cmd(&["update", "--resources", "-", id]);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    std::io::Write::write_all(
        child.stdin.as_mut().unwrap(),
        br#"{"cpu": {"quota": -1}, "pids": {"limit": -1}}"#,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "update -r - to unlimited: {}", err(&o));
    assert_eq!(
        (read("pids.max"), quota()),
        ("max".into(), unlimited.into())
    );
    // A memory limit cannot be removed: refused by its name.
    let o = b.rt(&["update", "--memory", "-1", id]);
    assert!(!o.status.success());
    assert!(err(&o).contains("--memory -1"), "{}", err(&o));
    assert_eq!(mem(), "83886080");
    finish(&b, id, pid);
    let o = b.rt(&["update", "--memory", "10m", id]);
    assert!(!o.status.success());
}

#[test]
fn events_stats_and_the_oom_event() {
    let b = bundle(&["sleep", "1000"], |_| {});
    let id = &uniq("events");
    let pid = started(&b, id);
    let o = b.rt(&["events", "--stats", id]);
    assert!(o.status.success(), "{}", err(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("one JSON object");
    assert_eq!(v["type"], "stats");
    assert_eq!(v["id"], id.as_str());
    assert!(
        v["data"]["memory"]["usage"]["usage"].as_u64().unwrap_or(0) > 0,
        "{v}"
    );
    assert_eq!(v["data"]["pids"]["current"], 1, "{v}");
    assert!(v["data"]["cpu"]["usage"]["total"].as_u64().is_some(), "{v}");
    finish(&b, id, pid);

    // A container that outgrows its memory limit: an oom event, then the
    // stream ends with the container.
    let b = bundle(
        &["sh", "-c", "sleep 0.5; a=x; while true; do a=$a$a; done"],
        |c| {
            c["linux"]["resources"]["memory"] = json!({"limit": 32 << 20, "swap": 32 << 20});
        },
    );
    let id = &uniq("events-oom");
    let pid = started(&b, id);
    let ev = b
        .cmd(&["events", "--interval", "100ms", id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None).unwrap();
    let o = ev.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", err(&o));
    let events: Vec<Value> = out(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert!(events.iter().any(|e| e["type"] == "stats"), "{}", out(&o));
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "oom" && e["id"] == id.as_str()),
        "{}",
        out(&o)
    );
    assert!(b.rt(&["delete", id]).status.success());
}

#[test]
fn checkpoint_and_restore_are_refused() {
    let b = bundle(&["true"], |_| {});
    for cmd in ["checkpoint", "restore"] {
        let o = b.rt(&[cmd, "--image-path", "/tmp/x", "some-id"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(
            err(&o).contains("not supported by rbox-runtime"),
            "{}",
            err(&o)
        );
    }
}

#[test]
fn exec_with_a_terminal_through_the_console_socket() {
    let b = bundle(&["sleep", "1000"], |_| {});
    let id = &uniq("exec-tty");
    let pid = started(&b, id);
    let path = b.dir.join("exec-console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let child = b
        .cmd(&[
            "exec",
            "--tty",
            "--console-socket",
            &path.to_string_lossy(),
            id,
        ])
        .args(["sh", "-c", "tty; echo on-tty; exit 4"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (sock, _) = listener.accept().unwrap();
    let master = std::fs::File::from(recv_fd(&sock));
    let mut text = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match std::io::Read::read(&mut &master, &mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => text.extend_from_slice(&chunk[..n]),
        }
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", err(&o));
    let text = String::from_utf8_lossy(&text).replace('\r', "");
    assert!(
        text.starts_with("/dev/pts/") && text.ends_with("\non-tty\n"),
        "{text:?}"
    );
    // A terminal needs the socket.
    let o = b.rt(&["exec", "--tty", id, "true"]);
    assert!(!o.status.success());
    assert!(err(&o).contains("--console-socket"), "{}", err(&o));
    finish(&b, id, pid);
}

#[test]
fn exec_preserve_fds_passes_descriptors_from_3_on() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let b = bundle(&["sleep", "1000"], |_| {});
    let id = &uniq("exec-fds");
    let pid = started(&b, id);
    let f = b.dir.join("fd3.txt");
    std::fs::write(&f, "through fd 3\n").unwrap();
    let file = std::fs::File::open(&f).unwrap();
    let raw = file.as_raw_fd();
    let run = |n: &str| {
        let mut c = b.cmd(&["exec", "--preserve-fds", n, id, "sh", "-c", "cat <&3"]);
        // SAFETY: dup2 between descriptors in the forked child, before exec.
        unsafe {
            c.pre_exec(move || {
                // dup2 onto itself would keep close-on-exec.
                let rc = if raw == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(raw, 3)
                };
                if rc < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        c.output().unwrap()
    };
    let o = run("1");
    assert_eq!(out(&o), "through fd 3\n", "{}", err(&o));
    // Without it, nothing beyond stdio reaches the container.
    let o = run("0");
    assert!(!o.status.success(), "{}", out(&o));
    assert_eq!(out(&o), "");
    finish(&b, id, pid);
}

/// `run` of a bundle whose config gets `linux.seccomp` = `profile` (none
/// for `Value::Null`) and `process.noNewPrivileges` = `nnp`.
fn run_seccomp(args: &[&str], profile: &Value, nnp: bool, id: &str) -> Output {
    let b = bundle(args, |c| {
        if !profile.is_null() {
            c["linux"]["seccomp"] = profile.clone();
        }
        c["process"]["noNewPrivileges"] = json!(nnp);
        // mkdir /tmp/x: a writable root (runc spec's is read-only).
        c["root"]["readonly"] = json!(false);
    });
    b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq(id)])
}

#[test]
fn seccomp_errno_rule_on_an_allow_default() {
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]});
    let sh = [
        "sh",
        "-c",
        "echo plain; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; \
         mkdir /tmp/x 2>&1; echo rc=$?",
    ];
    // Both moments of loading: before setuid (CAP_SYS_ADMIN) and last;
    // loading without noNewPrivileges does not set it.
    for nnp in [false, true] {
        let o = run_seccomp(&sh, &profile, nnp, "sc-errno");
        assert_eq!(o.status.code(), Some(0), "nnp {nnp}: {}", err(&o));
        let text = out(&o);
        let head = format!("plain\nNoNewPrivs:\t{}\nSeccomp:\t2\n", nnp as u8);
        assert!(text.starts_with(&head), "nnp {nnp}: {text}");
        assert!(
            text.contains("Function not implemented") && text.ends_with("rc=1\n"),
            "nnp {nnp}: mkdir not refused with ENOSYS: {text}"
        );
    }
    // The same command without the profile makes the directory.
    let o = run_seccomp(&sh, &Value::Null, true, "sc-none");
    assert_eq!(
        out(&o),
        "plain\nNoNewPrivs:\t1\nSeccomp:\t0\nrc=0\n",
        "{}",
        err(&o)
    );
}

/// podman's (and Docker's) unconditional allow list.
fn podman_allow_list() -> Vec<&'static str> {
    include_str!("seccomp_common/podman_allow.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

#[test]
fn seccomp_allow_list_with_an_argument_condition() {
    // Docker's shape: refuse by default (EPERM), allow a list, and allow
    // personality(2) only for PER_LINUX (0) and the query (0xffffffff):
    // busybox `linux64` asks for PER_LINUX, `linux32` for PER_LINUX32 (8).
    let profile = json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": podman_allow_list(), "action": "SCMP_ACT_ALLOW"},
            // podman's entry for x86 (glibc's static start sets %fs with it).
            {"names": ["arch_prctl", "modify_ldt"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 4294967295u64, "op": "SCMP_CMP_EQ"}]}
        ]
    });
    let sh = [
        "sh",
        "-c",
        "linux64 true && echo l64 ok; linux32 true 2>&1; echo rc=$?; \
         mkdir /tmp/d && echo mkdir ok",
    ];
    for nnp in [false, true] {
        let o = run_seccomp(&sh, &profile, nnp, "sc-allow");
        assert_eq!(o.status.code(), Some(0), "nnp {nnp}: {}", err(&o));
        let text = out(&o);
        assert!(
            text.starts_with("l64 ok\n"),
            "nnp {nnp}: {text} {}",
            err(&o)
        );
        assert!(
            text.contains("Operation not permitted") && text.contains("rc=1\n"),
            "nnp {nnp}: personality(PER_LINUX32) not refused: {text}"
        );
        assert!(text.ends_with("mkdir ok\n"), "nnp {nnp}: {text}");
    }
    // Without the profile linux32 works: the refusal above is the filter's.
    let o = run_seccomp(&sh, &Value::Null, true, "sc-allow-none");
    assert_eq!(out(&o), "l64 ok\nrc=0\nmkdir ok\n", "{}", err(&o));
}

#[test]
fn seccomp_kill_process_ends_the_container_by_sigsys() {
    let profile = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}]});
    for nnp in [false, true] {
        let o = run_seccomp(&["mkdir", "/tmp/x"], &profile, nnp, "sc-kill");
        assert_eq!(
            o.status.code(),
            Some(128 + libc::SIGSYS),
            "nnp {nnp}: {}",
            err(&o)
        );
    }
    let o = run_seccomp(&["mkdir", "/tmp/x"], &Value::Null, true, "sc-kill-none");
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
}

#[test]
fn seccomp_profiles_are_checked_by_path_and_features_say_so() {
    for (profile, nnp, want) in [
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "X"}]}]}),
            true,
            "linux.seccomp.syscalls[0].args[0].op: unknown operator \"X\"",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            true,
            "linux.seccomp.syscalls[0].action: not supported by rbox-runtime yet (SCMP_ACT_NOTIFY",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_X"]}),
            true,
            "linux.seccomp.flags[0]: unknown flag \"SECCOMP_FILTER_FLAG_X\"",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]}),
            false,
            "linux.seccomp: the profile refuses setgroups",
        ),
    ] {
        let b = bundle(&["true"], |c| {
            c["linux"]["seccomp"] = profile.clone();
            c["process"]["noNewPrivileges"] = json!(nnp);
        });
        let o = b.rt(&["run", "--bundle", &b.bundle_arg(), "refused"]);
        assert_eq!(o.status.code(), Some(1), "{want}: {}", err(&o));
        assert!(err(&o).contains(want), "{want} not in: {}", err(&o));
        assert!(!b.root.join("refused").exists(), "state left by a refusal");
    }
    let b = bundle(&["true"], |_| {});
    let f: Value = serde_json::from_slice(&b.rt(&["features"]).stdout).unwrap();
    let sc = &f["linux"]["seccomp"];
    assert_eq!(sc["enabled"], json!(true), "{sc}");
    for (key, item) in [
        ("actions", "SCMP_ACT_KILL_PROCESS"),
        ("operators", "SCMP_CMP_MASKED_EQ"),
        ("archs", "SCMP_ARCH_X86_64"),
        ("supportedFlags", "SECCOMP_FILTER_FLAG_LOG"),
    ] {
        assert!(
            sc[key].as_array().unwrap().contains(&json!(item)),
            "{key}: {sc}"
        );
    }
    assert!(!sc["actions"]
        .as_array()
        .unwrap()
        .contains(&json!("SCMP_ACT_NOTIFY")));
}

/// A bundle whose container has a new user namespace mapping its ids
/// 0..65536 to the host's 100000..165536; its rootfs owned by the
/// container's root and the directories above it open to others, as a
/// caller prepares it (runc does not chown a bundle either).
fn userns_bundle(args: &[&str], tweak: impl FnOnce(&mut Value)) -> Bundle {
    use std::os::unix::fs::PermissionsExt;
    let b = bundle(args, |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
        tweak(c);
    });
    let perm = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(b.tmp.path(), perm).unwrap();
    let st = Command::new("chown")
        .args(["-hR", "100000:100000"])
        .arg(b.dir.join("rootfs"))
        .status()
        .unwrap();
    assert!(st.success(), "chown the rootfs");
    b
}

fn map_words(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[test]
fn a_user_namespace_maps_the_containers_root_to_host_100000() {
    require_root();
    // A host dir owned by the container's root, bound in: what the
    // container creates there is the host's uid 100000.
    let shared = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(shared.path(), Some(100000), Some(100000)).unwrap();
    let src = shared.path().to_string_lossy().into_owned();
    let script = "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; touch /shared/f; \
                  echo x > /dev/null && head -c 3 /dev/zero | wc -c; ls /sys/fs/cgroup | grep -c .";
    let b = userns_bundle(&["sh", "-c", script], |c| {
        c["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/shared", "type": "bind", "source": src, "options": ["rbind", "rw"]}),
        );
    });
    let o = b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq("userns")]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..2], ["0", "0"], "{text}");
    let want = vec!["0".to_string(), "100000".into(), "65536".into()];
    assert_eq!(map_words(&lines[2..4].join("\n")), vec![want.clone(), want]);
    assert_eq!(
        lines[4].trim(),
        "3",
        "the /dev nodes (bound, not made) work: {text}"
    );
    assert!(
        lines[5].parse::<u32>().unwrap() > 0,
        "a cgroup tree: {text}"
    );
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(shared.path().join("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (100000, 100000));

    // From outside, the running process is the host's 100000, in a user
    // namespace of its own; `exec` joins it.
    // The process's rlimits and oom_score_adj (the parent and the
    // intermediate set them outside the user namespace; lowering the
    // score or raising a hard limit needs CAP_SYS_RESOURCE, which the
    // development host's root lacks, so the values here are allowed
    // either way).
    let b = userns_bundle(&["sleep", "60"], |c| {
        c["process"]["oomScoreAdj"] = json!(500);
        c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 2048}]);
    });
    let id = &uniq("userns-run");
    let pid = started(&b, id);
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj")).unwrap(),
        "500\n"
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let nofile = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        nofile.split_whitespace().collect::<Vec<_>>()[3..5],
        ["2048", "4096"],
        "{nofile}"
    );
    assert_eq!(
        status_field(pid, "Uid")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["100000"; 4]
    );
    assert_eq!(
        status_field(pid, "Gid")
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["100000"; 4]
    );
    assert_ne!(ns_of(pid, "user"), ns_of(std::process::id() as i32, "user"));
    let o = b.rt(&["exec", id, "sh", "-c", "id -u; cat /proc/self/uid_map"]);
    assert!(o.status.success(), "exec: {}", err(&o));
    let t = out(&o);
    assert_eq!(t.lines().next(), Some("0"), "{t}");
    assert_eq!(
        map_words(t.lines().nth(1).unwrap_or("")),
        vec![vec!["0", "100000", "65536"]]
    );

    // A second container joins the first's user namespace by path.
    let ns = format!("/proc/{pid}/ns/user");
    let j = bundle(&["sh", "-c", "id -u; cat /proc/self/uid_map"], |c| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user", "path": ns}));
    });
    std::fs::set_permissions(
        j.tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let o = j.rt(&["run", "--bundle", &j.bundle_arg(), &uniq("userns-join")]);
    assert!(o.status.success(), "join: {}", err(&o));
    let t = out(&o);
    assert_eq!(t.lines().next(), Some("0"), "{t}");
    assert_eq!(
        map_words(t.lines().nth(1).unwrap_or("")),
        vec![vec!["0", "100000", "65536"]]
    );
    finish(&b, id, pid);
}

#[test]
fn id_maps_without_a_user_namespace_and_bad_maps_are_refused_by_name() {
    require_root();
    for (field, set) in [
        (
            "linux.uidMappings: id maps need a new user namespace",
            Box::new(|c: &mut Value| {
                c["linux"]["uidMappings"] =
                    json!([{"containerID": 0, "hostID": 100000, "size": 65536}])
            }) as Box<dyn Fn(&mut Value)>,
        ),
        (
            "linux.uidMappings: required",
            Box::new(|c: &mut Value| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user"}))
            }),
        ),
        (
            "process.user.uid: 70000 is not mapped",
            Box::new(|c: &mut Value| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user"}));
                let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
                c["linux"]["uidMappings"] = map.clone();
                c["linux"]["gidMappings"] = map;
                c["process"]["user"] = json!({"uid": 70000, "gid": 0});
            }),
        ),
        (
            "mounts[0].uidMappings",
            Box::new(|c: &mut Value| {
                c["mounts"][0]["uidMappings"] =
                    json!([{"containerID": 0, "hostID": 100000, "size": 65536}])
            }),
        ),
    ] {
        let b = bundle(&["true"], |c| set(c));
        let o = b.rt(&["run", "--bundle", &b.bundle_arg(), &uniq("userns-bad")]);
        assert_eq!(o.status.code(), Some(1), "{field}: {}", err(&o));
        assert!(err(&o).contains(field), "{field} not named: {}", err(&o));
        assert!(!b.root.join(uniq("userns-bad")).exists());
    }
}

/// Whether the file a process executes sits on a read-only mount, as
/// rbox-runtime's clone of its binary does (a detached read-only bind
/// mount). Opening it for writing is no test while it runs: the host file
/// and the clone share the inode, so both give ETXTBSY; the CVE-2019-5736
/// handle writes once the binary stops running, and only the read-only
/// mount stops that.
fn exe_on_read_only_mount(pid: i32) -> bool {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    // SAFETY: an all-zero statvfs is a valid value of the plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatvfs fills the struct we pass for a descriptor we hold.
    assert_eq!(unsafe { libc::fstatvfs(f.as_raw_fd(), &mut st) }, 0);
    st.f_flag & libc::ST_RDONLY != 0
}

/// A child of `parent` whose command line contains `what`.
fn child_running(parent: i32, what: &str) -> Option<i32> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .find(|&p| stat(p).is_some_and(|(_, pp)| pp == parent) && cmdline(p).contains(what))
}

/// CVE-2019-5736 against rbox-runtime itself: the processes that enter a
/// container are forks of rbox-runtime — `create`'s first process waits at
/// the start gate inside the container's namespaces, `run` and `exec` wait
/// for theirs — so each must run from the read-only clone of the binary,
/// as rrun's do (runner/tests/exeseal.rs has the full attack against rrun).
#[test]
fn processes_that_enter_a_container_run_from_a_read_only_clone() {
    require_root();
    // The test's own binary is on a writable mount: what the clone avoids.
    assert!(!exe_on_read_only_mount(std::process::id() as i32));
    // create: the first process, waiting before its execve.
    let id = &uniq("exeseal-create");
    let b = bundle(&["sleep", "1000"], |_| {});
    let pid_file = b.dir.join("ctr.pid");
    let (ok, e) = b.create(id, &["--pid-file", &pid_file.to_string_lossy()]);
    assert!(ok, "create: {e}");
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        exe_on_read_only_mount(pid),
        "the created container's process runs the host's rbox-runtime"
    );
    // exec (foreground): the rbox-runtime process that waits for it.
    let o = b.rt(&["start", id]);
    assert!(o.status.success(), "start: {}", err(&o));
    let mut ex = b.cmd(&["exec", id, "sleep", "1000"]).spawn().unwrap();
    let exec_pid = ex.id() as i32;
    wait_until("exec's process runs", || {
        child_running(exec_pid, "sleep").is_some()
    });
    assert!(exe_on_read_only_mount(exec_pid), "exec");
    let _ = b.rt(&["kill", "--all", id, "KILL"]);
    let _ = ex.wait();
    let _ = b.rt(&["delete", "--force", id]);
    // run: the rbox-runtime process that waits for the container.
    let id = &uniq("exeseal-run");
    let mut run = b
        .cmd(&["run", "--bundle", &b.bundle_arg(), id])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let run_pid = run.id() as i32;
    wait_until("run's container runs", || {
        child_running(run_pid, "sleep").is_some()
    });
    assert!(exe_on_read_only_mount(run_pid), "run");
    let _ = b.rt(&["kill", id, "KILL"]);
    let _ = run.wait();
    let _ = b.rt(&["delete", "--force", id]);
}

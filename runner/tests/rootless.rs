//! Rootless rbox, end to end: run as root, each test makes a user of its
//! own (`useradd`, home under the temp dir), gives it subordinate ranges
//! in /etc/subuid and /etc/subgid (or none, for the single-id fallback),
//! and runs rbuild and rrun as that user (setpriv, a clean environment):
//! never as root. The user, its processes, its home and its lines in
//! /etc/sub{u,g}id are removed when the test ends, failed or not.
//!
//!   mkdir -p /tmp/rootless-tmp && chmod 1777 /tmp/rootless-tmp
//!   TMPDIR=/tmp/rootless-tmp scripts/in-netns.sh cargo test -p runner --test rootless -- --test-threads=1

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{code, stderr, stdout};

/// Edits of /etc/subuid and /etc/subgid, one at a time.
static SUBID_FILES: Mutex<()> = Mutex::new(());

const COUNT: u32 = 65536;

/// Held around every edit of /etc/subuid and /etc/subgid, ours and
/// useradd's and userdel's (they replace the files whole): by the
/// threads of this process, and across processes (a test re-run in a
/// network namespace of its own, fixtures::netns::own_netns, edits them
/// too).
fn subid_lock() -> (
    std::sync::MutexGuard<'static, ()>,
    nix::fcntl::Flock<std::fs::File>,
) {
    let g = SUBID_FILES.lock().unwrap_or_else(|e| e.into_inner());
    let path = "/tmp/rbox-test-rootless-subids.lock";
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {path}: {e}"));
    let l = nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
        .unwrap_or_else(|(_, e)| panic!("flock {path}: {e}"));
    (g, l)
}

struct TestUser {
    name: String,
    uid: u32,
    home: PathBuf,
    /// First host id of the subordinate ranges (both files), if given.
    sub_start: Option<u32>,
}

fn run_ok(cmd: &mut Command) -> Output {
    let o = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?}: {}", stderr(&o));
    o
}

/// Drop the lines of `name` from a subid file, then add `extra`.
/// The caller holds `subid_lock`.
fn rewrite_subids(file: &str, name: &str, extra: Option<String>) {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    let prefix = format!("{name}:");
    let mut out: String = text
        .lines()
        .filter(|l| !l.starts_with(&prefix))
        .map(|l| format!("{l}\n"))
        .collect();
    if let Some(l) = extra {
        out.push_str(&l);
        out.push('\n');
    }
    // Whole at once (a new file renamed over it): newuidmap of another
    // test reads it meanwhile, and must never see it half-written.
    let tmp = format!("{file}.rbox-test");
    std::fs::write(&tmp, out).unwrap_or_else(|e| panic!("write {tmp}: {e}"));
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::rename(&tmp, file).unwrap_or_else(|e| panic!("rename {tmp} to {file}: {e}"));
}

impl TestUser {
    /// A new user, with subordinate ranges or (`ranges` false) without.
    fn create(ranges: bool) -> TestUser {
        common::require_root_and_kernel();
        let n: u32 = rand_u32();
        let name = format!("rboxtest{}", n % 1_000_000);
        let home = std::env::temp_dir().join(format!("{name}-home"));
        let _ = std::fs::remove_dir_all(&home);
        let lock = subid_lock();
        run_ok(
            Command::new("useradd")
                .args(["-M", "-s", "/bin/sh", "-d"])
                .arg(&home)
                .arg(&name),
        );
        let uid = nix::unistd::User::from_name(&name)
            .unwrap()
            .expect("the user useradd made")
            .uid
            .as_raw();
        drop(lock);
        // The guard first: whatever fails from here on is cleaned up.
        let mut user = TestUser {
            name,
            uid,
            home,
            sub_start: None,
        };
        std::fs::create_dir_all(&user.home).unwrap();
        std::os::unix::fs::chown(&user.home, Some(uid), Some(uid)).unwrap();
        std::fs::set_permissions(&user.home, std::fs::Permissions::from_mode(0o700)).unwrap();
        // useradd may have given it ranges of its own (SUB_UID_COUNT): ours
        // replace them, far above every id in use.
        let start = ranges.then(|| 1_000_000_000 + (n % 10_000) * COUNT);
        user.sub_start = start;
        let _lock = subid_lock();
        for file in ["/etc/subuid", "/etc/subgid"] {
            rewrite_subids(
                file,
                &user.name,
                start.map(|s| format!("{}:{s}:{COUNT}", user.name)),
            );
        }
        user
    }

    /// `prog args` as this user, in a clean environment, cwd its home.
    fn cmd(&self, prog: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.arg("--reuid")
            .arg(self.uid.to_string())
            .arg("--regid")
            .arg(self.uid.to_string())
            .arg("--init-groups")
            .arg("--")
            .arg(prog)
            .args(args)
            .env_clear()
            .env("HOME", &self.home)
            .env("USER", &self.name)
            .env("LOGNAME", &self.name)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .current_dir(&self.home)
            .stdin(Stdio::null());
        c
    }

    fn rrun(&self, args: &[&str]) -> Output {
        self.cmd(Path::new(common::RRUN), args).output().unwrap()
    }

    fn rbuild(&self, args: &[&str]) -> Output {
        self.cmd(&rbuild_bin(), args).output().unwrap()
    }

    /// The user's store, where rbox puts it by default.
    fn store(&self) -> PathBuf {
        self.home.join(".local/share/rbox")
    }

    /// The busybox fixture, loaded with `rbuild load` into the user's store.
    fn load_busybox(&self) {
        let dir = readable_tempdir();
        let tar = common::busybox_oci_tar(dir.path(), "localhost/busybox:latest");
        std::fs::set_permissions(&tar, std::fs::Permissions::from_mode(0o644)).unwrap();
        let o = self.rbuild(&[
            "load",
            "-q",
            "-t",
            "busybox:latest",
            "-i",
            tar.to_str().unwrap(),
        ]);
        assert_eq!(code(&o), 0, "rbuild load as {}: {}", self.name, stderr(&o));
        let o = self.rbuild(&["images"]);
        assert!(
            stdout(&o).contains("busybox"),
            "{}{}",
            stdout(&o),
            stderr(&o)
        );
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        // Its processes (by pid: only those of its uid or subordinate ids).
        let end = self.sub_start.map(|s| s + COUNT).unwrap_or(0);
        for (pid, uid) in processes() {
            if uid == self.uid || self.sub_start.is_some_and(|s| uid >= s && uid < end) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        let _lock = subid_lock();
        let _ = Command::new("userdel").arg(&self.name).output();
        for file in ["/etc/subuid", "/etc/subgid"] {
            rewrite_subids(file, &self.name, None);
        }
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn rand_u32() -> u32 {
    let mut b = [0u8; 4];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .unwrap();
    u32::from_ne_bytes(b)
}

/// A temp dir other users may read (the default is 0700).
fn readable_tempdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// rbuild, built beside rrun (`cargo build -p builder --bin rbuild`).
fn rbuild_bin() -> PathBuf {
    let p = Path::new(common::RRUN).with_file_name("rbuild");
    assert!(
        p.is_file(),
        "{} is missing: build it first (cargo build -p builder --bin rbuild)",
        p.display()
    );
    p
}

/// (pid, real uid) of every process.
fn processes() -> Vec<(i32, u32)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Some(ids) = status_uids(pid) {
            out.push((pid, ids[0]));
        }
    }
    out
}

/// The four uids of /proc/PID/status (real, effective, saved, fs).
fn status_uids(pid: i32) -> Option<Vec<u32>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("Uid:"))?;
    Some(
        line.split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect(),
    )
}

/// Skip (saying why) where Debian's uidmap is not installed.
fn have_newuidmap() -> bool {
    let found = ["/usr/bin/newuidmap", "/usr/bin/newgidmap"]
        .iter()
        .all(|p| Path::new(p).is_file());
    if !found {
        eprintln!("SKIPPED: newuidmap/newgidmap are missing (apt-get install uidmap; scripts/install-deps.sh does)");
    }
    found
}

#[test]
fn a_user_runs_a_container_as_root_of_its_own_user_namespace() {
    if !have_newuidmap() {
        return;
    }
    let u = TestUser::create(true);
    let start = u.sub_start.unwrap();
    u.load_busybox();
    // The store is the user's, under ~/.local/share/rbox.
    let meta = std::fs::metadata(u.store()).expect("the user's store");
    assert_eq!((meta.uid(), meta.mode() & 0o777), (u.uid, 0o700));

    let o = u.rrun(&["run", "--rm", "busybox", "id", "-u"]);
    assert_eq!((code(&o), stdout(&o).trim()), (0, "0"), "{}", stderr(&o));
    assert!(
        stderr(&o).is_empty(),
        "no warning with ranges: {}",
        stderr(&o)
    );

    let o = u.rrun(&[
        "run",
        "--rm",
        "busybox",
        "cat",
        "/proc/self/uid_map",
        "/proc/self/gid_map",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines: Vec<Vec<u32>> = stdout(&o)
        .lines()
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        lines,
        vec![
            vec![0, u.uid, 1],
            vec![1, start, COUNT],
            vec![0, u.uid, 1],
            vec![1, start, COUNT]
        ],
        "uid_map then gid_map"
    );

    let o = u.rrun(&["run", "--rm", "busybox", "sh", "-c", "exit 7"]);
    assert_eq!(code(&o), 7, "{}", stderr(&o));
}

#[test]
fn volume_files_of_root_inside_belong_to_the_user_outside() {
    if !have_newuidmap() {
        return;
    }
    let u = TestUser::create(true);
    u.load_busybox();
    let vol = u.home.join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::os::unix::fs::chown(&vol, Some(u.uid), Some(u.uid)).unwrap();
    let spec = format!("{}:/data", vol.display());
    let o = u.rrun(&[
        "run",
        "--rm",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "echo hi > /data/f && stat -c %u /data/f",
    ]);
    assert_eq!((code(&o), stdout(&o).trim()), (0, "0"), "{}", stderr(&o));
    let m = std::fs::metadata(vol.join("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (u.uid, u.uid));
}

/// The busybox rootfs plus /home/app/owned of uid and gid 1000.
fn rootfs_with_a_file_of_1000(out: &Path) {
    use fixtures::tarball::{Compression, Meta, TarWriter};
    let mut bytes = Vec::new();
    fixtures::busybox::write_busybox_rootfs(
        &mut bytes,
        Compression::None,
        fixtures::busybox::AppletLinks::Hard,
    )
    .unwrap();
    bytes.truncate(bytes.len() - 1024); // its end-of-archive blocks
    let mut t = TarWriter::new(bytes);
    let app = Meta {
        uid: 1000,
        gid: 1000,
        ..Meta::root(0o755)
    };
    t.dir("home/app", app).unwrap();
    t.file("home/app/owned", Meta { mode: 0o644, ..app }, b"mine\n")
        .unwrap();
    std::fs::write(out, t.finish().unwrap()).unwrap();
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o644)).unwrap();
}

#[test]
fn image_files_of_uid_1000_unpack_into_the_subordinate_range() {
    if !have_newuidmap() {
        return;
    }
    let u = TestUser::create(true);
    let start = u.sub_start.unwrap();
    let dir = readable_tempdir();
    let tar = dir.path().join("rootfs.tar");
    rootfs_with_a_file_of_1000(&tar);
    let o = u.rbuild(&["import", tar.to_str().unwrap(), "owned:1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = u.rrun(&[
        "run",
        "--rm",
        "owned:1",
        "stat",
        "-c",
        "%u:%g",
        "/home/app/owned",
    ]);
    assert_eq!(
        (code(&o), stdout(&o).trim()),
        (0, "1000:1000"),
        "{}",
        stderr(&o)
    );
    // On the host: subordinate id 999 of the range (inside id 1 is START).
    let mut found = Vec::new();
    for layer in std::fs::read_dir(u.store().join("layers"))
        .unwrap()
        .flatten()
    {
        let f = layer.path().join("fs/home/app/owned");
        if let Ok(m) = std::fs::symlink_metadata(&f) {
            found.push((m.uid(), m.gid()));
        }
    }
    assert_eq!(found, vec![(start + 999, start + 999)]);
}

#[test]
fn limits_are_refused_naming_rootless_cgroups() {
    if !have_newuidmap() {
        return;
    }
    let u = TestUser::create(true);
    u.load_busybox();
    for flags in [
        &["-m", "64m"][..],
        &["--cpus", "1"],
        &["--pids-limit", "10"],
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "true"]);
        let o = u.rrun(&args);
        let e = stderr(&o);
        assert_eq!(code(&o), 125, "{flags:?}: {e}");
        assert!(
            e.contains("rootless cgroups") && e.contains(flags[0]),
            "{flags:?}: {e}"
        );
    }
    // Nothing was left: no container directory.
    let left = std::fs::read_dir(u.store().join("containers"))
        .unwrap()
        .count();
    assert_eq!(left, 0);
    // The bridge is root's; none is the rootless default.
    let o = u.rrun(&["run", "--rm", "--network", "bridge", "busybox", "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("--network bridge is not available to rootless rbox"),
        "{}",
        stderr(&o)
    );
    let o = u.rrun(&["run", "--rm", "busybox", "sh", "-c", "ls /sys/class/net"]);
    assert_eq!((code(&o), stdout(&o).trim()), (0, "lo"), "{}", stderr(&o));
    let o = u.rrun(&["run", "--rm", "--network", "host", "busybox", "true"]);
    assert_eq!(code(&o), 0, "--network host: {}", stderr(&o));
}

#[test]
fn no_process_of_the_run_is_root_on_the_host() {
    if !have_newuidmap() {
        return;
    }
    let u = TestUser::create(true);
    u.load_busybox();
    let mut child = u
        .cmd(
            Path::new(common::RRUN),
            &["run", "--rm", "busybox", "sleep", "4321"],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let sleeper = loop {
        let found = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_string_lossy().parse().ok()?;
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (cmd == b"sleep\x004321\x00").then_some(pid)
        });
        if let Some(p) = found {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "the container's sleep never showed up"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // setpriv execs rrun: the child we spawned is rrun itself.
    let rrun_pid = child.id() as i32;
    let container = status_uids(sleeper).expect("the sleep's status");
    let rrun = status_uids(rrun_pid).expect("rrun's status");
    // rrun runs from a read-only bind clone of its binary (exeseal), as
    // root's does: made in the mount namespace rootless rrun owns.
    let exe = format!("/proc/{rrun_pid}/exe");
    assert_eq!(
        std::fs::read_link(&exe).unwrap(),
        Path::new("/"),
        "a detached bind clone"
    );
    let w = std::fs::OpenOptions::new().write(true).open(&exe);
    let errno = w.err().and_then(|e| e.raw_os_error());
    assert!(
        matches!(errno, Some(libc::EROFS | libc::ETXTBSY)),
        "open for writing: {errno:?}"
    );
    // PID 1 of its namespace ignores SIGTERM: root ends it from here.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sleeper),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("rrun did not exit after its container was killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        container,
        vec![u.uid; 4],
        "the container's process, from the host"
    );
    assert_eq!(rrun, vec![u.uid; 4], "rrun, from the host");
    assert_eq!(status.code(), Some(137), "killed by SIGKILL");
}

#[test]
fn without_subordinate_ids_a_single_id_namespace_runs_with_a_warning() {
    // Needs no newuidmap: the process maps itself.
    let u = TestUser::create(false);
    u.load_busybox();
    let o = u.rrun(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out: Vec<Vec<u32>> = stdout(&o)
        .lines()
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(out, vec![vec![0], vec![0, u.uid, 1]]);
    let e = stderr(&o);
    assert!(
        e.contains("warning: rootless with a single-id user namespace")
            && e.contains(&format!("no subordinate ids for {}", u.name)),
        "{e}"
    );
}

/// Debian's docker-registry on a free loopback port of the test's network
/// namespace; killed on drop.
struct Registry {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Registry {
        let bin = Path::new("/usr/bin/docker-registry");
        assert!(bin.is_file(), "docker-registry is missing (apt-get install docker-registry, or scripts/install-deps.sh)");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            child,
            port,
            _dir: dir,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_user_pulls_into_their_own_store_and_runs_it() {
    if !have_newuidmap() {
        return;
    }
    let reg = Registry::start();
    let name = format!("127.0.0.1:{}/rootless/busybox:1", reg.port);
    // Root pushes the fixture from root's store...
    let o = Command::new(rbuild_bin())
        .arg("--root")
        .arg(common::store_root())
        .args(["push", "-q", "busybox", &name])
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "push as root: {}", stderr(&o));
    // ...the user pulls it into theirs and runs it.
    let u = TestUser::create(true);
    let o = u.rbuild(&["pull", "-q", &name]);
    assert_eq!(code(&o), 0, "pull as the user: {}", stderr(&o));
    let o = u.rrun(&["run", "--rm", &name, "sh", "-c", "echo pulled"]);
    assert_eq!(
        (code(&o), stdout(&o).trim()),
        (0, "pulled"),
        "{}",
        stderr(&o)
    );
    assert!(u.store().join("images").read_dir().unwrap().count() > 0);
}

/// A two-layer image in a store of root's at `dir`, saved as an OCI
/// layout tarball: the busybox rootfs with /d/old and /gone, then a layer
/// making /d opaque (with /d/new) and whiting out /gone.
fn layered_oci_tar(dir: &Path) -> PathBuf {
    use fixtures::tarball::{Meta, TarWriter};
    let mut t = TarWriter::new(Vec::new());
    t.dir("d", Meta::root(0o755)).unwrap();
    t.file("d/.wh..wh..opq", Meta::root(0o644), b"").unwrap();
    t.file("d/new", Meta::root(0o644), b"new\n").unwrap();
    t.file(".wh.gone", Meta::root(0o644), b"").unwrap();
    oci_tar_over_busybox(dir, t.finish().unwrap())
}

/// The image of `layered_oci_tar` with `upper` (a tar) as its second layer.
fn oci_tar_over_busybox(dir: &Path, upper: Vec<u8>) -> PathBuf {
    use engine::image::{History, ImageConfig};
    use fixtures::tarball::{Compression, Meta, TarWriter};
    let store = engine::Store::open(&dir.join("store")).unwrap();
    let mut lower = Vec::new();
    fixtures::busybox::write_busybox_rootfs(
        &mut lower,
        Compression::None,
        fixtures::busybox::AppletLinks::Hard,
    )
    .unwrap();
    lower.truncate(lower.len() - 1024);
    let mut t = TarWriter::new(lower);
    t.dir("d", Meta::root(0o755)).unwrap();
    t.file("d/old", Meta::root(0o644), b"old\n").unwrap();
    t.file("gone", Meta::root(0o644), b"gone\n").unwrap();
    let lower = t.finish().unwrap();
    let mut blobs = Vec::new();
    for (name, bytes) in [("lower.tar", lower), ("upper.tar", upper)] {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        blobs.push(engine::layer::import_tarball(&store, &p).unwrap());
    }
    let mut config = ImageConfig::scratch();
    config.config.cmd = Some(vec!["sh".into()]);
    config.config.set_env("PATH", "/usr/bin:/bin");
    config.rootfs.diff_ids = blobs.iter().map(|b| b.diff_id.clone()).collect();
    config.history = (0..2)
        .map(|i| History {
            created: None,
            created_by: Some(format!("layer {i}")),
            comment: None,
            empty_layer: false,
        })
        .collect();
    let digest = store
        .put_image(&config, blobs.iter().map(|b| b.descriptor()).collect())
        .unwrap();
    let image = store.image_by_digest(&digest).unwrap();
    let ex =
        engine::oci::export::export_image(&store, &image, engine::oci::ExportCompression::Gzip)
            .unwrap();
    let p = dir.join("layered.tar");
    let f = std::fs::File::create(&p).unwrap();
    let mut w = engine::oci::layout::save_tar(
        &ex,
        std::io::BufWriter::new(f),
        Some("layered:1"),
        Some("1"),
    )
    .unwrap();
    std::io::Write::flush(&mut w).unwrap();
    drop(w);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    p
}

#[test]
fn opaque_directories_and_whiteouts_of_upper_layers_hide_the_lower_ones() {
    if !have_newuidmap() {
        return;
    }
    let dir = readable_tempdir();
    // Homes (and so the stores) are made in the temp dir: a tmpfs of
    // Linux before 6.6 (the cgroup-v2 guest's) takes no user.* xattrs.
    let probe = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C strings and a one-byte value.
    let set = unsafe {
        libc::lsetxattr(
            probe.as_ptr(),
            c"user.rbox-probe".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    if set != 0 {
        eprintln!(
            "SKIPPED: {} takes no user.* xattrs ({}): rootless overlays there cannot have opaque directories",
            dir.path().display(),
            std::io::Error::last_os_error()
        );
        return;
    }
    let tar = layered_oci_tar(dir.path());
    let u = TestUser::create(true);
    let o = u.rbuild(&["load", "-q", "-t", "layered:1", "-i", tar.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = u.rrun(&[
        "run",
        "--rm",
        "layered:1",
        "sh",
        "-c",
        "ls /d; test -e /gone && echo gone-is-back",
    ]);
    assert_eq!(stdout(&o), "new\n", "{}", stderr(&o));
    // Unpacked in the user namespace: the opaque mark is user.overlay.opaque.
    let mut marked = 0;
    for layer in std::fs::read_dir(u.store().join("layers"))
        .unwrap()
        .flatten()
    {
        let d = std::ffi::CString::new(format!("{}/fs/d", layer.path().display())).unwrap();
        let mut v = [0u8; 8];
        // SAFETY: valid C strings and a buffer of the length given.
        let n = unsafe {
            libc::lgetxattr(
                d.as_ptr(),
                c"user.overlay.opaque".as_ptr(),
                v.as_mut_ptr().cast(),
                v.len(),
            )
        };
        if n == 1 && v[0] == b'y' {
            marked += 1;
        }
    }
    assert_eq!(marked, 1, "one layer's /d is opaque");
}

/// A build context the user can read: a Containerfile and `a.txt`.
fn build_context(containerfile: &str) -> tempfile::TempDir {
    let dir = readable_tempdir();
    for (name, text) in [("Containerfile", containerfile), ("a.txt", "copied\n")] {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    dir
}

/// Every file `rel` in the unpacked layers of the user's store: its host
/// owner.
fn owners_in_layers(store: &Path, rel: &str) -> Vec<(u32, u32)> {
    let mut found = Vec::new();
    for layer in std::fs::read_dir(store.join("layers")).unwrap().flatten() {
        if let Ok(m) = std::fs::symlink_metadata(layer.path().join("fs").join(rel)) {
            found.push((m.uid(), m.gid()));
        }
    }
    found
}

const ROOTLESS_CONTAINERFILE: &str = "FROM busybox
RUN echo gone > /made && mkdir -p /d/sub && echo old > /d/sub/f
RUN rm /made && rm -r /d && mkdir /d && echo new > /d/g
COPY --chown=1000:1000 a.txt /a.txt
RUN stat -c %u:%g /a.txt > /owner && id -u >> /owner && cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /ifaces
";

/// Whether `dir`'s file system takes user.* xattrs (a tmpfs of Linux
/// before 6.6, the cgroup-v2 guest's, does not: rootless overlays there
/// cannot have opaque directories); says SKIPPED when not.
fn user_xattrs_work(dir: &Path) -> bool {
    let probe = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: valid C strings and a one-byte value.
    let set = unsafe {
        libc::lsetxattr(
            probe.as_ptr(),
            c"user.rbox-probe".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    if set != 0 {
        eprintln!(
            "SKIPPED: {} takes no user.* xattrs ({})",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    set == 0
}

/// The layer tars of an image saved to `tar` (gzip), decompressed and
/// listed by the system tar: one listing per layer.
fn saved_layer_listings(tar: &Path, scratch: &Path) -> Vec<(String, Vec<u8>)> {
    let out = scratch.join("saved");
    std::fs::create_dir_all(&out).unwrap();
    run_ok(Command::new("tar").arg("-xf").arg(tar).arg("-C").arg(&out));
    let mut layers = Vec::new();
    for b in std::fs::read_dir(out.join("blobs/sha256"))
        .unwrap()
        .flatten()
    {
        // Configs and manifests are neither: skipped.
        let raw = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "gzip -dc {0} 2>/dev/null || zstd -dcq {0} 2>/dev/null",
                b.path().display()
            ))
            .output()
            .unwrap();
        if !raw.status.success() {
            continue;
        }
        let raw = raw.stdout;
        let listed = Command::new("tar")
            .args(["-t", "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .and_then(|mut c| {
                std::io::Write::write_all(c.stdin.as_mut().unwrap(), &raw)?;
                c.wait_with_output()
            })
            .unwrap();
        if listed.status.success() {
            layers.push((String::from_utf8_lossy(&listed.stdout).into_owned(), raw));
        }
    }
    layers
}

#[test]
fn a_user_builds_with_run_steps_mapped_chown_and_a_shared_cache() {
    if !have_newuidmap() || !user_xattrs_work(&std::env::temp_dir()) {
        return;
    }
    let u = TestUser::create(true);
    let start = u.sub_start.unwrap();
    u.load_busybox();
    let ctx = build_context(ROOTLESS_CONTAINERFILE);
    let c = ctx.path().to_str().unwrap();
    let o = u.rbuild(&["build", "--progress", "plain", "-t", "built:1", c]);
    assert_eq!(code(&o), 0, "rbuild build as {}: {}", u.name, stderr(&o));
    assert!(!stderr(&o).contains("CACHED"), "{}", stderr(&o));

    // The RUN steps' whiteout and opaque directory hide the lower layers'
    // files; the COPY is owned by 1000 inside; RUN ran as root inside with
    // only lo (the rootless default network).
    let o = u.rrun(&[
        "run",
        "--rm",
        "built:1",
        "sh",
        "-c",
        "ls /made 2>&1; ls /d; cat /owner /ifaces /a.txt",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "ls: /made: No such file or directory\ng\n1000:1000\n0\nlo\ncopied\n"
    );
    // On the host, --chown 1000 is subordinate id 999 of the user's range.
    assert_eq!(
        owners_in_layers(&u.store(), "a.txt"),
        vec![(start + 999, start + 999)]
    );

    // The layers say so as any image does (`.wh..wh..opq`, `.wh.made`),
    // without the overlay's own user.overlay.* xattrs.
    let saved = u.home.join("built.tar");
    let o = u.rbuild(&[
        "save",
        "-o",
        saved.to_str().unwrap(),
        "--compression",
        "gzip",
        "built:1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let layers = saved_layer_listings(&saved, ctx.path());
    let opaque: Vec<&String> = layers
        .iter()
        .map(|(l, _)| l)
        .filter(|l| l.contains("d/.wh..wh..opq"))
        .collect();
    assert_eq!(opaque.len(), 1, "{layers:?}");
    assert!(opaque[0].contains(".wh.made"), "{}", opaque[0]);
    for (list, raw) in &layers {
        assert!(!raw.windows(13).any(|w| w == b"user.overlay."), "{list}");
    }

    // The same Containerfile again: every step from the user's cache.
    let o = u.rbuild(&["build", "--progress", "plain", "-t", "built:2", c]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.matches("CACHED").count(), 4, "{err}");
    assert!(!err.contains("DONE"), "{err}");
}

#[test]
fn a_rootless_build_failing_run_says_the_network_is_only_lo() {
    if !have_newuidmap() {
        return;
    }
    let u = TestUser::create(true);
    u.load_busybox();
    let ctx = build_context("FROM busybox\nRUN exit 3\n");
    let o = u.rbuild(&["build", "-q", ctx.path().to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("exit code 3")
            && err.contains("rootless: RUN steps have only lo by default")
            && err.contains("--network host"),
        "{err}"
    );
    // The host's network (here the test's own namespace) is the explicit
    // opt-in, as root's; without it, RUN has a namespace of its own.
    let ours = std::fs::read_link("/proc/self/ns/net").unwrap();
    let ctx = build_context(&format!(
        "FROM busybox\nRUN test \"$(readlink /proc/self/ns/net)\" = '{}'\n",
        ours.display()
    ));
    let o = u.rbuild(&["build", "-q", ctx.path().to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let o = u.rbuild(&[
        "build",
        "-q",
        "--network",
        "host",
        ctx.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn an_images_user_overlay_xattrs_are_not_honored_rootless() {
    if !have_newuidmap() || !user_xattrs_work(&std::env::temp_dir()) {
        return;
    }
    use fixtures::tarball::{Meta, TarWriter};
    let dir = readable_tempdir();
    // No `.wh..wh..opq`: only the xattr an overlay mounted with userxattr
    // reads, which would make /d opaque (and hide /d/old) if unpacked.
    let mut t = TarWriter::new(Vec::new());
    t.pax_xattrs("d", &[("user.overlay.opaque", b"y")]).unwrap();
    t.dir("d", Meta::root(0o755)).unwrap();
    t.file("d/new", Meta::root(0o644), b"new\n").unwrap();
    let tar = oci_tar_over_busybox(dir.path(), t.finish().unwrap());
    let u = TestUser::create(true);
    let o = u.rbuild(&[
        "load",
        "-q",
        "-t",
        "smuggled:1",
        "-i",
        tar.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = u.rrun(&["run", "--rm", "smuggled:1", "ls", "/d"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "new\nold\n"),
        "{}",
        stderr(&o)
    );
}

/// Wait until `cond` holds (10 s at most).
fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_user_execs_signals_stops_and_removes_detached_containers() {
    if !have_newuidmap() {
        return;
    }
    let u = TestUser::create(true);
    u.load_busybox();
    let script = "trap 'echo got-usr1' USR1; trap 'echo got-term; exit 0' TERM; \
                  echo started; while true; do sleep 0.1; done";
    let o = u.rrun(&["run", "-d", "--name", "bg", "busybox", "sh", "-c", script]);
    assert_eq!(code(&o), 0, "run -d: {}", stderr(&o));
    assert_eq!(stdout(&o).trim().len(), 64, "the id: {}", stdout(&o));
    let logs = |u: &TestUser| stdout(&u.rrun(&["logs", "bg"]));
    eventually("the container to start", || logs(&u).contains("started"));

    // exec joins the container: its pid namespace (sh is pid 1 there),
    // as root inside or as another user of the range.
    let o = u.rrun(&[
        "exec",
        "bg",
        "sh",
        "-c",
        "echo from-exec; id -u; cat /proc/1/cmdline | tr '\\0' ' '",
    ]);
    assert_eq!(code(&o), 0, "exec: {}", stderr(&o));
    assert_eq!(stdout(&o), format!("from-exec\n0\nsh -c {script} "));
    let o = u.rrun(&["exec", "-u", "1000", "bg", "id", "-u"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "1000\n"),
        "{}",
        stderr(&o)
    );
    let o = u.rrun(&["exec", "bg", "sh", "-c", "exit 5"]);
    assert_eq!(code(&o), 5, "{}", stderr(&o));

    // kill sends the signal named; stop sends the stop signal (the trap
    // answers and exits 0 long before the 10 s grace ends in SIGKILL).
    let o = u.rrun(&["kill", "-s", "USR1", "bg"]);
    assert_eq!(code(&o), 0, "kill: {}", stderr(&o));
    eventually("the USR1 trap", || logs(&u).contains("got-usr1"));
    let t = Instant::now();
    let o = u.rrun(&["stop", "bg"]);
    assert_eq!(code(&o), 0, "stop: {}", stderr(&o));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(logs(&u).contains("got-term"), "{}", logs(&u));
    let o = u.rrun(&["ps", "-a"]);
    assert!(stdout(&o).contains("Exited (0)"), "{}", stdout(&o));
    let o = u.rrun(&["rm", "bg"]);
    assert_eq!(code(&o), 0, "rm: {}", stderr(&o));

    // rm -f of a running one: killed and gone, processes and all.
    let o = u.rrun(&["run", "-d", "--name", "doomed", "busybox", "sleep", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    let o = u.rrun(&["exec", "doomed", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = u.rrun(&["rm", "-f", "doomed"]);
    assert_eq!(code(&o), 0, "rm -f: {}", stderr(&o));
    assert!(!u.store().join("containers").join(&id).exists());
    let o = u.rrun(&["ps", "-a", "-q"]);
    assert_eq!(stdout(&o), "", "{}", stderr(&o));
    let start = u.sub_start.unwrap();
    eventually("no process of the user left", || {
        !processes()
            .iter()
            .any(|&(_, uid)| uid == u.uid || (uid >= start && uid < start + COUNT))
    });
}

#[test]
fn a_user_follows_logs_and_cannot_address_two_namespaces_at_once() {
    if !have_newuidmap() {
        return;
    }
    let u = TestUser::create(true);
    u.load_busybox();
    let o = u.rrun(&[
        "run",
        "-d",
        "--name",
        "talk",
        "busybox",
        "sh",
        "-c",
        "echo one; sleep 1; echo two",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = u.rrun(&["logs", "-f", "talk"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "one\ntwo\n"),
        "{}",
        stderr(&o)
    );

    for n in ["a", "b"] {
        let o = u.rrun(&["run", "-d", "--name", n, "busybox", "sleep", "1000"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    let o = u.rrun(&["stop", "a", "b"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("name one running container at a time"),
        "{}",
        stderr(&o)
    );
    for n in ["a", "b"] {
        let o = u.rrun(&["rm", "-f", n]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    // Still refused, naming why.
    let o = u.rrun(&["run", "-d", "--name", "c", "busybox", "sleep", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // restart stops it in its namespace and starts it again there.
    let started =
        |u: &TestUser| stdout(&u.rrun(&["exec", "c", "cut", "-d ", "-f22", "/proc/1/stat"]));
    let before = started(&u);
    assert!(!before.trim().is_empty());
    let o = u.rrun(&["restart", "-t", "0", "c"]);
    assert_eq!(code(&o), 0, "restart: {}", stderr(&o));
    let o = u.rrun(&["exec", "c", "cat", "/proc/1/cmdline"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "sleep\u{0}1000\u{0}"),
        "{}",
        stderr(&o)
    );
    assert_ne!(started(&u), before, "a new first process");
    // Started without a limit, it has no cgroup to freeze: refused, why.
    let o = u.rrun(&["pause", "c"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("cannot pause container c: rootless rbox"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn two_rootless_runs_of_one_user_at_once_both_work() {
    if !have_newuidmap() {
        return;
    }
    let u = TestUser::create(true);
    u.load_busybox();
    let spawn = |word: &str| {
        u.cmd(
            Path::new(common::RRUN),
            &[
                "run",
                "--rm",
                "busybox",
                "sh",
                "-c",
                &format!("sleep 0.5; echo {word}"),
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
    };
    let (a, b) = (spawn("first"), spawn("second"));
    for (c, word) in [(a, "first"), (b, "second")] {
        let o = c.wait_with_output().unwrap();
        assert_eq!((code(&o), stdout(&o).trim()), (0, word), "{}", stderr(&o));
    }
    let o = u.rrun(&["ps", "-a", "-q"]);
    assert_eq!(stdout(&o), "", "both removed: {}", stderr(&o));
}

#[test]
fn a_state_naming_another_users_container_leads_nowhere() {
    if !have_newuidmap() {
        return;
    }
    let a = TestUser::create(true);
    let b = TestUser::create(true);
    a.load_busybox();
    b.load_busybox();
    let o = a.rrun(&["run", "-d", "--name", "victim", "busybox", "sleep", "1000"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    // b's own store gets a copy of a's state: the same pid, the same
    // start time, as b could write it.
    let containers = b.store().join("containers");
    let dst = containers.join(&id);
    std::fs::create_dir_all(&dst).unwrap();
    std::fs::copy(
        a.store().join("containers").join(&id).join("state.json"),
        dst.join("state.json"),
    )
    .unwrap();
    for p in [&containers, &dst, &dst.join("state.json")] {
        std::os::unix::fs::chown(p, Some(b.uid), Some(b.uid)).unwrap();
    }
    for args in [
        &["exec", "victim", "touch", "/pwned"][..],
        &["kill", "victim"],
        &["stop", "victim"],
    ] {
        let o = b.rrun(args);
        assert_eq!(code(&o), 125, "{args:?}: {}{}", stdout(&o), stderr(&o));
        assert!(
            stderr(&o).contains("only the user who started the container may reach it"),
            "{args:?}: {}",
            stderr(&o)
        );
    }
    let o = a.rrun(&[
        "exec",
        "victim",
        "sh",
        "-c",
        "test ! -e /pwned && echo untouched",
    ]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "untouched\n"),
        "{}",
        stderr(&o)
    );
    let o = a.rrun(&["rm", "-f", "victim"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

/// Skip (saying why) where Debian's passt (pasta) is not installed.
fn have_pasta() -> bool {
    let found = ["/usr/bin/pasta", "/bin/pasta"]
        .iter()
        .any(|p| Path::new(p).is_file());
    if !found {
        eprintln!(
            "SKIPPED: pasta is missing (apt-get install passt; scripts/install-deps.sh does)"
        );
    }
    found
}

/// `GET path` over HTTP/1.0 to `addr:port`: the body, once the server
/// answers (retried for 20 s while nothing listens yet).
fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).and_then(
            |mut c| {
                c.set_read_timeout(Some(Duration::from_secs(5)))?;
                c.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())?;
                let mut s = String::new();
                c.read_to_string(&mut s)?;
                Ok(s)
            },
        );
        match got {
            Ok(s) if s.starts_with("HTTP/1.0 200") || s.starts_with("HTTP/1.1 200") => {
                // A CGI's headers end with a bare "\n\n".
                let body = s.replace("\r\n", "\n");
                let body = body.split_once("\n\n").map(|(_, b)| b).unwrap_or("");
                // httpd listens on IPv6: "[::ffff:192.0.2.1]".
                return body
                    .trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .trim_start_matches("::ffff:")
                    .to_string();
            }
            Ok(s) if s.starts_with("HTTP/1.") => panic!("GET {addr}{path}: {s}"),
            other => assert!(Instant::now() < deadline, "GET {addr}{path}: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pids holding the TCP socket listening on 127.0.0.1:`port` of
/// this network namespace.
fn listeners_of(port: u16) -> Vec<i32> {
    let tcp = std::fs::read_to_string("/proc/self/net/tcp").unwrap();
    let want = format!("0100007F:{port:04X}");
    let inodes: Vec<String> = tcp
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.len() > 9 && f[1] == want && f[3] == "0A")
        .map(|f| format!("socket:[{}]", f[9]))
        .collect();
    let mut pids = Vec::new();
    for (pid, _) in processes() {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .map(|t| inodes.iter().any(|i| t.as_os_str() == i.as_str()))
                .unwrap_or(false)
        });
        if holds {
            pids.push(pid);
        }
    }
    pids
}

/// Processes of `uid` running pasta (Debian's passt binaries).
fn pastas_of(uid: u32) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|(pid, u)| {
            *u == uid
                && std::fs::read_link(format!("/proc/{pid}/exe"))
                    .map(|e| e.to_string_lossy().contains("/pass"))
                    .unwrap_or(false)
        })
        .map(|(pid, _)| pid)
        .collect()
}

fn free_loopback_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn pasta_networks_a_rootless_container_and_forwards_its_ports() {
    use fixtures::netns::{Outside, OUTSIDE_ADDR};
    if !have_newuidmap() || !have_pasta() {
        return;
    }
    if !fixtures::netns::own_netns("pasta_networks_a_rootless_container_and_forwards_its_ports") {
        return;
    }
    // The test's namespace stands for the host: its way out is a veth to
    // an "internet" namespace (pasta copies the route and address).
    // (The suite's check for a private namespace, which a default route
    // would fail, runs first.)
    let _ = common::store_root();
    let outside = Outside::new();
    run_ok(Command::new("ip").args(["route", "add", "default", "via", "192.0.2.1"]));
    outside.serve(7000);
    let u = TestUser::create(true);
    u.load_busybox();

    // Outbound: the default network; the far end sees the host's address.
    // nc's stdin stays open until the reply is in: Debian 12's pasta
    // (2023-03) at times loses a reply that crosses the client's own FIN
    // (nc on /dev/null half-closes at once), leaving nc waiting forever.
    let o = u.rrun(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "sleep 2 | timeout 20 nc 192.0.2.1 7000",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "hello from outside, you are 192.0.2.254\n",
        "{}",
        stderr(&o)
    );

    // -p: busybox httpd, a CGI saying who connected.
    let (local, public) = (free_loopback_port(), free_loopback_port());
    let script = "mkdir -p /www/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR\\n' > /www/cgi-bin/peer && chmod +x /www/cgi-bin/peer && exec httpd -f -p 80 -h /www";
    let o = u.rrun(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{local}:80"),
        "-p",
        &format!("{public}:80"),
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let from_lo = http_get(([127, 0, 0, 1], local).into(), "/cgi-bin/peer");
    // Spliced into the container's own loopback: the client is 127.0.0.1
    // there too.
    assert_eq!(from_lo.trim(), "127.0.0.1");
    // From another machine: through the tap, the client's own address.
    let from_outside = outside.within(move || {
        http_get(
            ("192.0.2.254".parse::<std::net::Ipv4Addr>().unwrap(), public).into(),
            "/cgi-bin/peer",
        )
    });
    assert_eq!(from_outside.trim(), OUTSIDE_ADDR.to_string());

    // The listening socket is pasta's, a process of the user's.
    let owners = listeners_of(local);
    assert!(!owners.is_empty(), "nothing listens on 127.0.0.1:{local}");
    for pid in &owners {
        let ids = status_uids(*pid).unwrap();
        assert_eq!(ids, vec![u.uid; 4], "process {pid} holding the port");
    }
    assert_eq!(pastas_of(u.uid).len(), 1, "one pasta for the container");

    // Gone with the container.
    let o = u.rrun(&["rm", "-f", "web"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pastas_of(u.uid).is_empty() {
        assert!(Instant::now() < deadline, "pasta outlived its container");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(listeners_of(local).is_empty(), "port {local} still open");
    // A --rm run's pasta too.
    let o = u.rrun(&[
        "run",
        "--rm",
        "-p",
        &format!("127.0.0.1:{local}:80"),
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(pastas_of(u.uid).is_empty(), "pasta outlived a --rm run");
}

#[test]
fn rootless_bridge_only_options_are_refused_naming_pasta() {
    if !have_newuidmap() {
        return;
    }
    let u = TestUser::create(true);
    u.load_busybox();
    let o = u.rrun(&["run", "--rm", "--network", "mynet", "busybox", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("--network mynet is not available to rootless rbox")
            && err.contains("user-defined networks need root")
            && err.contains("--network pasta"),
        "{err}"
    );
    let o = u.rrun(&["run", "--rm", "--network-alias", "web", "busybox", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("only on user-defined networks"),
        "{}",
        stderr(&o)
    );
    let o = u.rrun(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-p",
        "8080:80",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("publishing ports needs --network pasta, not none"),
        "{}",
        stderr(&o)
    );
    assert!(
        std::fs::read_dir(u.store().join("containers"))
            .map(|d| d.count() == 0)
            .unwrap_or(true),
        "nothing is created"
    );
}

/// A cgroup v2 group delegated to `uid` as systemd's user@.service does
/// it (`Delegate=yes`): its directory, cgroup.procs, cgroup.threads and
/// cgroup.subtree_control are the user's, and the parent enables the
/// controllers for it. Everything in it is killed and removed on drop.
struct Delegated {
    dir: PathBuf,
}

impl Delegated {
    fn make(uid: u32, name: &str) -> Delegated {
        let root = Path::new("/sys/fs/cgroup");
        std::fs::write(root.join("cgroup.subtree_control"), "+memory +cpu +pids").unwrap();
        let dir = root.join(format!("rbox-test-{name}"));
        std::fs::create_dir(&dir).unwrap();
        let d = Delegated { dir };
        for f in [
            "",
            "cgroup.procs",
            "cgroup.threads",
            "cgroup.subtree_control",
        ] {
            std::os::unix::fs::chown(d.dir.join(f), Some(uid), Some(uid)).unwrap();
        }
        d
    }

    /// `cmd` starts in the group (its leaf once rrun made one): what a
    /// login in the delegated user@.service gets.
    fn enter(&self, mut cmd: Command) -> Command {
        let leaf = self.dir.join("rbox-rrun");
        let group = if leaf.is_dir() {
            leaf
        } else {
            self.dir.clone()
        };
        let procs = std::ffi::CString::new(
            group
                .join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .unwrap();
        use std::os::unix::process::CommandExt;
        // SAFETY: open, write and close only, between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 || libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
                Ok(())
            });
        }
        cmd
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        std::thread::sleep(Duration::from_millis(200));
        fn remove(d: &Path) {
            if let Ok(entries) = std::fs::read_dir(d) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        remove(&e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(d);
        }
        remove(&self.dir);
    }
}

#[test]
fn limits_apply_in_a_delegated_cgroup_v2_subtree_and_are_refused_elsewhere() {
    if !have_newuidmap() {
        return;
    }
    let u = TestUser::create(true);
    u.load_busybox();
    let o = u.rrun(&["run", "--rm", "-m", "64m", "busybox", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    if !common::cgroup_v2() {
        // cgroup v1 (this host): refused, saying why.
        assert!(
            stderr(&o).contains("-m/--memory cannot be applied by rootless rbox")
                && stderr(&o).contains("this host has cgroup v1"),
            "{}",
            stderr(&o)
        );
        return;
    }
    // v2 without delegation: refused, saying so.
    assert!(
        stderr(&o).contains("is not delegated to you"),
        "{}",
        stderr(&o)
    );
    let d = Delegated::make(u.uid, &u.name);
    let run = |args: &[&str]| {
        d.enter(u.cmd(Path::new(common::RRUN), args))
            .output()
            .unwrap()
    };
    let o = run(&[
        "run",
        "-d",
        "--name",
        "lim",
        "-m",
        "64m",
        "--pids-limit",
        "10",
        "--cpus",
        "0.5",
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let groups: Vec<PathBuf> = std::fs::read_dir(d.dir.join("rbox"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    assert_eq!(groups.len(), 1, "{groups:?}");
    let read = |f: &str| std::fs::read_to_string(groups[0].join(f)).unwrap();
    assert_eq!(read("memory.max").trim(), (64u64 << 20).to_string());
    assert_eq!(read("pids.max").trim(), "10");
    assert_eq!(read("cpu.max").trim(), "50000 100000");
    assert!(
        !read("cgroup.procs").trim().is_empty(),
        "the container is in it"
    );
    // The group rrun made and moved the user's processes into is theirs.
    let leaf = std::fs::metadata(d.dir.join("rbox-rrun")).unwrap();
    assert_eq!(leaf.uid(), u.uid);
    let o = run(&["rm", "-f", "lim"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(!groups[0].exists(), "the container's group is removed");

    // A process over the pids limit fails to start.
    let o = run(&[
        "run",
        "--rm",
        "--pids-limit",
        "5",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5 6 7 8; do sleep 3 & done; wait; echo done",
    ]);
    assert!(
        stderr(&o).contains("can't fork"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
}

/// Pause, unpause and update of a rootless container go through its
/// cgroup in the delegated v2 subtree (the freezer, the limit files);
/// on cgroup v1 they are refused, saying why.
#[test]
fn rootless_pause_and_update_use_the_delegated_cgroup() {
    if !have_newuidmap() {
        return;
    }
    let u = TestUser::create(true);
    u.load_busybox();
    if !common::cgroup_v2() {
        let o = u.rrun(&["run", "-d", "--name", "p", "busybox", "sleep", "600"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let o = u.rrun(&["pause", "p"]);
        assert_eq!(code(&o), 1);
        assert!(
            stderr(&o).contains("cannot pause container p")
                && stderr(&o).contains("this host has cgroup v1"),
            "{}",
            stderr(&o)
        );
        let o = u.rrun(&["unpause", "p"]);
        assert_eq!(code(&o), 1);
        assert!(
            stderr(&o).contains("container p is not paused"),
            "{}",
            stderr(&o)
        );
        let o = u.rrun(&["update", "-m", "32m", "p"]);
        assert_eq!(code(&o), 1);
        assert!(
            stderr(&o).contains("cannot update container p")
                && stderr(&o).contains("this host has cgroup v1"),
            "{}",
            stderr(&o)
        );
        let o = u.rrun(&["rm", "-f", "p"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        return;
    }
    let d = Delegated::make(u.uid, &format!("{}-p", u.name));
    let run = |args: &[&str]| {
        d.enter(u.cmd(Path::new(common::RRUN), args))
            .output()
            .unwrap()
    };
    let o = run(&[
        "run", "-d", "--name", "p", "-m", "64m", "busybox", "sleep", "600",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let group = std::fs::read_dir(d.dir.join("rbox"))
        .unwrap()
        .flatten()
        .find(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .expect("the container's group")
        .path();
    let read = |f: &str| std::fs::read_to_string(group.join(f)).unwrap();
    let pid: i32 = read("cgroup.procs")
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let state = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .rsplit_once(')')
            .and_then(|(_, r)| r.trim_start().chars().next())
            .unwrap_or('?')
    };
    let o = run(&["pause", "p"]);
    assert_eq!(code(&o), 0, "pause: {}", stderr(&o));
    assert_eq!(read("cgroup.freeze").trim(), "1");
    // v2's freezer traps a task in an interruptible sleep (S); the
    // kernel says `frozen 1` once every task of the group is trapped.
    let trapped = |_pid: i32| read("cgroup.events").lines().any(|l| l == "frozen 1");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !trapped(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "not frozen: {}",
            state(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = run(&["unpause", "p"]);
    assert_eq!(code(&o), 0, "unpause: {}", stderr(&o));
    assert_eq!(read("cgroup.freeze").trim(), "0");
    let o = run(&["update", "-m", "32m", "--pids-limit", "7", "p"]);
    assert_eq!(code(&o), 0, "update: {}", stderr(&o));
    assert_eq!(read("memory.max").trim(), (32u64 << 20).to_string());
    assert_eq!(read("pids.max").trim(), "7");
    let o = run(&["rm", "-f", "p"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn keep_id_runs_as_the_user_with_their_files_theirs_on_the_host() {
    if !have_newuidmap() {
        return;
    }
    let u = TestUser::create(true);
    let start = u.sub_start.unwrap();
    u.load_busybox();
    let vol = u.home.join("vol");
    std::fs::create_dir(&vol).unwrap();
    std::os::unix::fs::chown(&vol, Some(u.uid), Some(u.uid)).unwrap();
    let spec = format!("{}:/data", vol.display());
    // The user's ids inside; the image's files still root's; a file
    // written to the volume is the user's on the host.
    let o = u.rrun(&[
        "run",
        "--rm",
        "--userns=keep-id",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "id -u; id -g; stat -c %u:%g / /bin/busybox; id -un; echo $HOME; echo hi > /data/f; cat /proc/self/uid_map",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    let id = u.uid.to_string();
    assert_eq!(&lines[..4], [&id[..], &id[..], "0:0", "0:0"], "{out}");
    // A passwd entry for the user, with their home (Podman's).
    assert_eq!(
        &lines[4..6],
        [u.name.as_str(), u.home.to_str().unwrap()],
        "{out}"
    );
    let lines = &lines[2..];
    let m = std::fs::metadata(vol.join("f")).unwrap();
    assert_eq!((m.uid(), m.gid()), (u.uid, u.uid));
    let map: Vec<Vec<u32>> = lines[4..]
        .iter()
        .map(|l| l.split_whitespace().map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        map,
        vec![
            vec![0, 1, u.uid],
            vec![u.uid, 0, 1],
            vec![u.uid + 1, u.uid + 1, COUNT - u.uid]
        ],
        "the user's id kept, the range around it (outside: rrun's namespace's ids)"
    );
    // -u still chooses; root inside is a subordinate id on the host.
    let o = u.rrun(&[
        "run",
        "--rm",
        "--userns=keep-id",
        "-u",
        "0",
        "-v",
        &spec,
        "busybox",
        "sh",
        "-c",
        "id -u; echo x > /data/g",
    ]);
    assert_eq!((code(&o), stdout(&o).trim()), (0, "0"), "{}", stderr(&o));
    assert_eq!(std::fs::metadata(vol.join("g")).unwrap().uid(), start);

    // Detached: exec joins the nested namespace, as the user.
    let o = u.rrun(&[
        "run",
        "-d",
        "--name",
        "kept",
        "--userns=keep-id",
        "busybox",
        "sleep",
        "60",
    ]);
    assert_eq!(code(&o), 0, "run -d: {}", stderr(&o));
    let o = u.rrun(&[
        "exec",
        "kept",
        "sh",
        "-c",
        "id -u; touch /tmp/e; stat -c %u /tmp/e",
    ]);
    assert_eq!(
        (code(&o), stdout(&o)),
        (0, format!("{id}\n{id}\n")),
        "exec: {}",
        stderr(&o)
    );
    let o = u.rrun(&["commit", "kept", "kept:img"]);
    assert_eq!(code(&o), 125, "commit: {}", stderr(&o));
    assert!(stderr(&o).contains("--userns=keep-id"), "{}", stderr(&o));
    let o = u.rrun(&["rm", "-f", "kept"]);
    assert_eq!(code(&o), 0, "rm -f: {}", stderr(&o));
    let left = std::fs::read_dir(u.store().join("containers"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "the copies went with the container");
}

#[test]
fn keep_id_is_refused_to_root_and_to_a_user_without_subordinate_ids() {
    common::require_root_and_kernel();
    let o = Command::new(common::RRUN)
        .args(["run", "--rm", "--userns=keep-id", "busybox", "true"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--userns")
            && stderr(&o).contains("keep-id is only supported for rootless rbox"),
        "{}",
        stderr(&o)
    );
    let o = Command::new(common::RRUN)
        .args(["run", "--rm", "--userns=auto", "busybox", "true"])
        .output()
        .unwrap();
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("host (the default) and keep-id"),
        "{}",
        stderr(&o)
    );
    let u = TestUser::create(false);
    let o = u.rrun(&["run", "--rm", "--userns=keep-id", "busybox", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("keep-id needs subordinate ids"),
        "{}",
        stderr(&o)
    );
}

/// Skip (saying why) where fuse-overlayfs or /dev/fuse is missing.
fn have_fuse_overlayfs() -> bool {
    let found = Path::new("/usr/bin/fuse-overlayfs").is_file() && Path::new("/dev/fuse").exists();
    if !found {
        eprintln!("SKIPPED: fuse-overlayfs or /dev/fuse is missing (apt-get install fuse-overlayfs; modprobe fuse)");
    }
    found
}

/// The user's fuse-overlayfs processes.
fn fuse_overlayfs_of(uid: u32) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|&(pid, u)| {
            u == uid
                && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "fuse-overlayfs")
        })
        .map(|(pid, _)| pid)
        .collect()
}

#[test]
fn fuse_overlayfs_serves_run_exec_writes_and_commit_and_leaves_nothing() {
    if !have_newuidmap() || !have_fuse_overlayfs() {
        return;
    }
    let u = TestUser::create(true);
    u.load_busybox();
    let rrun = |args: &[&str]| {
        u.cmd(Path::new(common::RRUN), args)
            .env("RBOX_OVERLAY", "fuse")
            .output()
            .unwrap()
    };
    // The container's / is fuse-overlayfs's, and it is gone afterwards.
    let o = rrun(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "awk '$5 == \"/\"' /proc/self/mountinfo | grep -c ' - fuse.fuse-overlayfs '; id -u",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(stdout(&o), "1\n0\n", "{}", stderr(&o));
    assert_eq!(
        fuse_overlayfs_of(u.uid),
        Vec::<i32>::new(),
        "after run --rm"
    );
    // Unforced, where the kernel allows it: the kernel's overlay, no note.
    let o = u.rrun(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "awk '$5 == \"/\"' /proc/self/mountinfo | grep -c ' - overlay '",
    ]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "1\n"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));

    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "f",
        "busybox",
        "sh",
        "-c",
        "echo data > /written; rm /bin/ls; touch /ready; sleep 60",
    ]);
    assert_eq!(code(&o), 0, "run -d: {}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    let upper = u.store().join("containers").join(&id).join("upper");
    eventually("the write in the upper dir", || {
        upper.join("ready").exists()
    });
    assert_eq!(
        std::fs::read_to_string(upper.join("written")).unwrap(),
        "data\n"
    );
    // A whiteout in the upper dir: a 0/0 character device.
    let wh = std::fs::symlink_metadata(upper.join("bin/ls")).expect("the whiteout of /bin/ls");
    assert_eq!((wh.mode() & libc::S_IFMT, wh.rdev()), (libc::S_IFCHR, 0));
    // One fuse-overlayfs, the user's, serving the container's merged dir.
    let fuse = fuse_overlayfs_of(u.uid);
    assert_eq!(fuse.len(), 1, "{fuse:?}");
    let info = std::fs::read_to_string(format!("/proc/{}/mountinfo", fuse[0])).unwrap();
    assert!(
        info.lines()
            .any(|l| l.contains(" - fuse.fuse-overlayfs ")
                && l.contains(u.store().to_str().unwrap())),
        "{info}"
    );
    let o = rrun(&["exec", "f", "sh", "-c", "cat /written; ls /bin/ls"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (1, "data\n"),
        "exec: {}",
        stderr(&o)
    );
    let o = rrun(&["diff", "f"]);
    assert_eq!(code(&o), 0, "diff: {}", stderr(&o));
    assert!(
        stdout(&o).contains("A /written") && stdout(&o).contains("D /bin/ls"),
        "{}",
        stdout(&o)
    );
    let o = rrun(&["commit", "--pause=false", "f", "fused:latest"]);
    assert_eq!(code(&o), 0, "commit: {}", stderr(&o));
    let o = rrun(&["rm", "-f", "f"]);
    assert_eq!(code(&o), 0, "rm -f: {}", stderr(&o));
    eventually("fuse-overlayfs to exit", || {
        fuse_overlayfs_of(u.uid).is_empty()
    });
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host.contains(u.store().to_str().unwrap()), "{host}");

    // The committed layer has the write and the removal.
    let o = rrun(&[
        "run",
        "--rm",
        "fused",
        "sh",
        "-c",
        "cat /written; test ! -e /bin/ls",
    ]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "data\n"),
        "{}",
        stderr(&o)
    );
    assert_eq!(fuse_overlayfs_of(u.uid), Vec::<i32>::new());

    // A bad choice is named.
    let o = u
        .cmd(Path::new(common::RRUN), &["run", "--rm", "busybox", "true"])
        .env("RBOX_OVERLAY", "fusee")
        .output()
        .unwrap();
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("RBOX_OVERLAY=\"fusee\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_rootless_builds_run_steps_reach_the_network_through_pasta() {
    use fixtures::netns::Outside;
    if !have_newuidmap() || !have_pasta() {
        return;
    }
    if !fixtures::netns::own_netns("a_rootless_builds_run_steps_reach_the_network_through_pasta") {
        return;
    }
    // The test's namespace stands for the host, its veth to "the
    // internet" its way out (as in the pasta test above).
    let _ = common::store_root();
    let outside = Outside::new();
    run_ok(Command::new("ip").args(["route", "add", "default", "via", "192.0.2.1"]));
    outside.serve(7001);
    let u = TestUser::create(true);
    u.load_busybox();
    // nc's stdin stays open until the reply is in (Debian 12's pasta and
    // an early half-close, see the pasta test).
    let ctx = build_context(
        "FROM busybox\nRUN sleep 2 | timeout 20 nc 192.0.2.1 7001 > /got && cat /got && grep -q 'hello from outside' /got\n",
    );
    let o = u.rbuild(&["build", "-q", "-t", "fetched", ctx.path().to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = u.rrun(&["run", "--rm", "--network", "none", "fetched", "cat", "/got"]);
    assert_eq!(
        (code(&o), stdout(&o).as_str()),
        (0, "hello from outside, you are 192.0.2.254\n"),
        "{}",
        stderr(&o)
    );
    // No pasta of the build is left.
    assert_eq!(pastas_of(u.uid), Vec::<i32>::new());
    // --network none stays only lo.
    let ctx = build_context("FROM busybox\nRUN timeout 5 nc 192.0.2.1 7001 </dev/null\n");
    let o = u.rbuild(&[
        "build",
        "-q",
        "--network",
        "none",
        ctx.path().to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
}

#[test]
fn low_ports_follow_the_unprivileged_port_start_sysctl() {
    if !have_newuidmap() || !have_pasta() {
        return;
    }
    if !fixtures::netns::own_netns("low_ports_follow_the_unprivileged_port_start_sysctl") {
        return;
    }
    // The sysctl is the test's network namespace's own.
    let _ = common::store_root();
    let _outside = fixtures::netns::Outside::new();
    run_ok(Command::new("ip").args(["route", "add", "default", "via", "192.0.2.1"]));
    let sysctl = "/proc/sys/net/ipv4/ip_unprivileged_port_start";
    std::fs::write(sysctl, "1024").unwrap();
    let u = TestUser::create(true);
    u.load_busybox();
    let script = "mkdir -p /www && echo low > /www/index.html && exec httpd -f -p 80 -h /www";
    let args = [
        "run",
        "-d",
        "--name",
        "low",
        "-p",
        "127.0.0.1:80:80",
        "busybox",
        "sh",
        "-c",
        script,
    ];
    let o = u.rrun(&args);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("host port 80")
            && stderr(&o).contains("net.ipv4.ip_unprivileged_port_start (1024 here)"),
        "{}",
        stderr(&o)
    );
    let o = u.rrun(&["ps", "-a", "-q"]);
    assert_eq!(stdout(&o).trim(), "", "nothing was made");

    std::fs::write(sysctl, "80").unwrap();
    let o = u.rrun(&args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(http_get(([127, 0, 0, 1], 80).into(), "/index.html"), "low");
    let owners = listeners_of(80);
    assert!(!owners.is_empty(), "nothing listens on 127.0.0.1:80");
    for pid in &owners {
        assert_eq!(
            status_uids(*pid).unwrap()[0],
            u.uid,
            "pasta binds as the user"
        );
    }
    let o = u.rrun(&["rm", "-f", "low"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn a_hosts_loopback_resolver_is_reached_through_pastas_dns_forward() {
    use runner::network::dns::{answer, Record, Verdict};
    if !have_newuidmap() || !have_pasta() {
        return;
    }
    if !fixtures::netns::own_netns(
        "a_hosts_loopback_resolver_is_reached_through_pastas_dns_forward",
    ) {
        return;
    }
    let _ = common::store_root();
    let _outside = fixtures::netns::Outside::new();
    run_ok(Command::new("ip").args(["route", "add", "default", "via", "192.0.2.1"]));
    // The "host" resolves through a resolver on its own 127.0.0.1 (a
    // dnsmasq's way), in this test's network and mount namespaces: rbox's
    // own resolver code answers probe.rbox.test.
    let sock = std::net::UdpSocket::bind("127.0.0.1:53").expect("bind 127.0.0.1:53");
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = asked.clone();
    std::thread::spawn(move || {
        let records = [Record {
            address: "10.1.2.3".parse().unwrap(),
            names: vec!["probe.rbox.test".into()],
        }];
        let subnet = "10.1.2.0/24".parse().unwrap();
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let reply = match answer(&buf[..n], subnet, &records) {
                Verdict::Reply(b) => Some(b),
                Verdict::Forward => runner::network::dns::servfail(&buf[..n]),
                Verdict::Drop => None,
            };
            if let Some(b) = reply {
                let _ = sock.send_to(&b, peer);
            }
        }
    });
    let dir = readable_tempdir();
    let conf = dir.path().join("resolv.conf");
    std::fs::write(&conf, "nameserver 127.0.0.1\noptions timeout:2\n").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    run_ok(
        Command::new("mount")
            .arg("--bind")
            .arg(&conf)
            .arg("/etc/resolv.conf"),
    );
    let u = TestUser::create(true);
    u.load_busybox();
    let o = u.rrun(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "cat /etc/resolv.conf; nslookup probe.rbox.test",
    ]);
    let _ = Command::new("umount").arg("/etc/resolv.conf").status();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("options timeout:2\nnameserver 169.254.1.1\n"),
        "{out}"
    );
    assert!(out.contains("10.1.2.3"), "{out}");
    assert!(asked.load(std::sync::atomic::Ordering::SeqCst) > 0);
}

/// `rrun run -it` as a user, as root's tests do it: the container's stdio
/// is a pty of its own, sized as the user's terminal (a pty from
/// `script`, 30x100), and the command's exit status comes back.
#[test]
fn a_user_runs_an_interactive_container_on_a_terminal() {
    if !have_newuidmap() {
        return;
    }
    let u = TestUser::create(true);
    u.load_busybox();
    let inner = format!(
        "stty rows 30 cols 100; {} run -it --rm --network none busybox \
         sh -c 'tty; stty size; id -u; echo on-tty; exit 3'",
        common::RRUN
    );
    let o = u
        .cmd(Path::new("/usr/bin/script"), &["-qec", &inner, "/dev/null"])
        .output()
        .unwrap();
    // `script` reads its stdin (/dev/null) to EOF and types a NUL into the
    // pty, which the terminal echoes as "^@" wherever it lands.
    let text = stdout(&o).replace('\r', "").replace("^@", "");
    assert!(
        text.contains("/dev/pts/0\n30 100\n0\non-tty\n"),
        "rootless run -it: {text:?} {}",
        stderr(&o)
    );
    assert_eq!(code(&o), 3, "{text:?} {}", stderr(&o));
}

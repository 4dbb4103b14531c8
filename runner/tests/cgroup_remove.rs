//! Removing a group kills its members and nobody else, on whichever
//! driver this host has (v1 hybrid here; v2 in the guest of
//! scripts/vm-lane.sh). Real groups under `rbox/`, real processes.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};

use engine::runtime::Resources;
use runner::cgroup::{kill::kill_listed, Cgroup, CgroupDriver, Devices};

fn driver() -> CgroupDriver {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (they create cgroups): run `cargo test` as root"
    );
    CgroupDriver::probe().expect("no usable cgroup driver at /sys/fs/cgroup")
}

/// A group of this test's own, removed (with its processes) on drop.
struct Group {
    cg: Cgroup,
    children: Vec<Child>,
}

impl Group {
    fn new(d: &CgroupDriver) -> Group {
        static N: AtomicU32 = AtomicU32::new(0);
        let id = format!(
            "rtest-remove-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let cg = d
            .create(&id, &Resources::default(), Devices::Default)
            .expect("create a test group");
        Group {
            cg,
            children: Vec::new(),
        }
    }

    /// A `sleep` started outside the group; returns its pid.
    fn spawn(&mut self) -> i32 {
        let c = Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep");
        let pid = c.id() as i32;
        self.children.push(c);
        pid
    }

    fn child(&mut self, pid: i32) -> &mut Child {
        self.children
            .iter_mut()
            .find(|c| c.id() as i32 == pid)
            .unwrap()
    }

    /// Whether `pid` (ours, not yet reaped) is still running.
    fn running(&mut self, pid: i32) -> bool {
        self.child(pid).try_wait().unwrap().is_none()
    }

    /// Wait up to 5 s for `pid` to end; true if it was SIGKILLed.
    fn killed(&mut self, pid: i32) -> bool {
        use std::os::unix::process::ExitStatusExt;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if let Some(st) = self.child(pid).try_wait().unwrap() {
                return st.signal() == Some(libc::SIGKILL);
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = self.cg.remove();
    }
}

/// The groups this test process is in, one directory per group path
/// (move a process there to take it out of a test group).
fn own_groups(cg: &Cgroup) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    cg.paths()
        .iter()
        .map(|p| {
            // <mount>/rbox/<id>: the hierarchy's mount is two levels up.
            let mount = p.parent().unwrap().parent().unwrap();
            let ours = text
                .lines()
                .find_map(|l| {
                    let mut f = l.splitn(3, ':');
                    let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
                    let name = mount.file_name()?.to_str()?;
                    let hit = if mount == Path::new("/sys/fs/cgroup") {
                        ctrls.is_empty()
                    } else {
                        ctrls.split(',').any(|c| c == name) || ctrls == name
                    };
                    hit.then(|| path.trim_start_matches('/').to_string())
                })
                .unwrap_or_else(|| panic!("no line for {} in /proc/self/cgroup", mount.display()));
            mount.join(ours)
        })
        .collect()
}

fn gone(cg: &Cgroup) -> bool {
    cg.paths().iter().all(|p| !p.exists())
}

/// The pid-reuse race, made deterministic: a pid listed in the group, no
/// longer in it when the kill round runs (a pid reused by an unrelated
/// process looks the same), must not be signalled. Killing the listed pids
/// by number (what removal did) kills it.
#[test]
fn a_stale_list_never_kills_a_process_that_left_the_group() {
    let d = driver();
    let mut g = Group::new(&d);
    let left = g.spawn();
    let member = g.spawn();
    g.cg.add_process(left).unwrap();
    g.cg.add_process(member).unwrap();
    let listed = g.cg.procs();
    assert_eq!(listed, {
        let mut v = vec![left, member];
        v.sort_unstable();
        v
    });
    for dir in own_groups(&g.cg) {
        std::fs::write(dir.join("cgroup.procs"), left.to_string())
            .unwrap_or_else(|e| panic!("move {left} to {}: {e}", dir.display()));
    }
    assert_eq!(g.cg.procs(), vec![member], "the move out did not happen");
    let mut signalled = 0;
    for p in g.cg.paths() {
        signalled += kill_listed(&p.join("cgroup.procs"), &listed);
    }
    assert!(signalled >= 1, "the member was not signalled");
    assert!(g.killed(member), "the member is not dead");
    assert!(
        g.running(left),
        "pid {left} was killed after it had left the group"
    );
    g.cg.remove().unwrap();
    assert!(gone(&g.cg));
}

#[test]
fn remove_kills_the_members_only_and_removes_the_group() {
    let d = driver();
    let mut g = Group::new(&d);
    let member = g.spawn();
    let outsider = g.spawn();
    g.cg.add_process(member).unwrap();
    g.cg.remove()
        .expect("remove a group holding a sleeping member");
    assert!(g.killed(member), "the member survived the removal");
    assert!(g.running(outsider), "an outsider was killed");
    assert!(gone(&g.cg), "the group is still there: {:?}", g.cg.paths());
}

/// The reapers' removal (groups whose owner is gone): rmdir only. A group
/// holding a process stays, and so does the process.
#[test]
fn remove_if_empty_leaves_a_busy_group_and_its_process_alone() {
    let d = driver();
    let mut g = Group::new(&d);
    let member = g.spawn();
    g.cg.add_process(member).unwrap();
    assert!(
        !g.cg.remove_if_empty().unwrap(),
        "a busy group was reported removed"
    );
    assert!(g.running(member), "remove_if_empty killed a member");
    assert!(g.cg.paths().iter().all(|p| p.exists()), "half removed");
    g.child(member).kill().unwrap();
    g.child(member).wait().unwrap();
    // The pid leaves the group as it exits; rmdir may still see it busy
    // for a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !g.cg.remove_if_empty().unwrap() {
        assert!(
            std::time::Instant::now() < deadline,
            "an empty group was not removed"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(gone(&g.cg));
}

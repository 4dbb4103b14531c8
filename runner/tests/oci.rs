//! `rrun run --runtime crun|runc`: the same image through an external OCI
//! runtime, with the same isolation, limits and exit codes, and nothing
//! left behind. Needs crun and runc installed (apt-get install crun runc).

mod common;

use common::*;

fn require(binary: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(binary).is_file()))
        .unwrap_or(false);
    assert!(found, "{binary} is not installed: apt-get install {binary}");
}

fn check_runtime(rt: &str) {
    require(rt);
    let mem = if cgroup_v2() {
        "/sys/fs/cgroup/memory.max"
    } else {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    };
    let o = rrun(&[
        "run",
        "--rm",
        "--name",
        &format!("oci-{rt}"),
        "--runtime",
        rt,
        "--hostname",
        "oci-box",
        "-m",
        "64m",
        "-e",
        "X=1",
        "busybox",
        "sh",
        "-c",
        &format!("echo $$; hostname; ls /sys/class/net; cat {mem}; echo $X; echo w > /f; exit 7"),
    ]);
    assert_eq!(code(&o), 7, "{rt}: {}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("1\noci-box\nlo\n{}\n1\n", 64u64 << 20),
        "{rt}: {}",
        stderr(&o)
    );
    let ps = stdout(&rrun(&["ps", "-a"]));
    assert!(
        !ps.contains(&format!("oci-{rt}")),
        "--rm left the container: {ps}"
    );
}

#[test]
fn crun_runs_the_same_image() {
    check_runtime("crun");
}

#[test]
fn runc_runs_the_same_image() {
    check_runtime("runc");
}

#[test]
fn oci_runtime_leaves_no_mount_or_directory() {
    require("crun");
    let mounts = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .count()
    };
    let before = mounts();
    for _ in 0..5 {
        let o = rrun(&[
            "run",
            "--rm",
            "--name",
            "oci-leak",
            "--runtime",
            "crun",
            "busybox",
            "true",
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
    }
    assert_eq!(mounts(), before);
    let o = rrun(&["ps", "-a"]);
    assert!(!stdout(&o).contains("oci-leak"), "{}", stdout(&o));
}

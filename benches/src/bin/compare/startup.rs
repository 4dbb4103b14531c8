//! startup: `/bin/true` in the same busybox rootfs, start to exit, through
//! rrun, crun, runc, podman, docker, and the lower bound of bare namespaces
//! plus chroot.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use benches::tools::{render, run_quiet, time_quiet, which};

use crate::docker::Dockerd;
use crate::interleave::{interleave, Contender};
use crate::report::{table, Section};
use crate::{rbox, Ctx};

/// What every contender's verification run must print: it ran the command
/// as PID 1 of a new pid namespace, i.e. really in a container.
const PROBE: [&str; 3] = ["/bin/sh", "-c", "echo pid=$$"];

/// Run `cmd` (the probe variant of a contender) and check its output; the
/// error is the reason for a "skipped" row (a stub that exits 0 without
/// running anything must not become a number).
fn verify(mut cmd: Command) -> Result<(), String> {
    let out = benches::tools::run_stdout(&mut cmd).map_err(|e| e.to_string())?;
    if out.lines().any(|l| l.trim() == "pid=1") {
        Ok(())
    } else {
        Err(format!(
            "its probe `{}` printed {:?}, not \"pid=1\": it did not run the command in a container",
            render(&cmd),
            out.trim()
        ))
    }
}

const PODMAN_ULIMITS: [&str; 4] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=4096:4096",
];

pub fn run(ctx: &Ctx) -> Section {
    let mut s = Section::new("startup", "Container startup: `/bin/true` in busybox");
    let bb = match benches::busybox::ensure(&ctx.cache) {
        Ok(b) => b,
        Err(e) => {
            s.intro.push(format!("skipped: no busybox rootfs: {e}"));
            return s;
        }
    };
    s.intro.push(format!(
        "Every tool runs `/bin/true` in the same busybox rootfs ({}; Debian's busybox-static with its applet links). Network: none (a fresh net namespace) for every tool. Times are wall-clock from spawning the CLI to its exit.",
        bb.dir.display()
    ));
    // Declared before the contenders, whose closures borrow it.
    let dockerd = Dockerd::start(&ctx.scratch.mountpoint.join("docker"));
    let mut cs: Vec<Contender> = Vec::new();

    // rbox: the image made from the same rootfs tar, in a store on the scratch fs.
    let store = ctx.scratch.mountpoint.join("rbox-store");
    let rrun = rbox::binary("rrun");
    let prepared = rrun.clone().and_then(|rrun| {
        rbox::import(&store, &bb.tar, "busybox")?;
        Ok(rrun)
    });
    match prepared {
        Ok(rrun) => {
            let mk = move |args: &[&str]| {
                let mut c = Command::new(&rrun);
                c.arg("--root")
                    .arg(&store)
                    .args(["run", "--rm", "--network", "none", "busybox"])
                    .args(args);
                c
            };
            match verify(mk(&PROBE)) {
                Err(e) => cs.push(Contender::skipped("rrun", e)),
                Ok(()) => {
                    let shown = render(&mk(&["/bin/true"]));
                    cs.push(
                        Contender::new("rrun", shown, "resolves the image, mounts overlay (fresh upper), cgroup, namespaces, pivot_root", Box::new(move |_| time_quiet(&mut mk(&["/bin/true"])).map_err(|e| e.to_string())))
                            .rbox(),
                    );
                }
            }
        }
        Err(e) => cs.push(Contender::skipped("rrun", e)),
    }

    // crun and runc: OCI bundles over the very same rootfs directory.
    let bundles = ctx.cache.join("bundles");
    let crun_ns = NsHolder::without_unified_cgroup2();
    for rt in ["crun", "runc"] {
        let Some(bin) = which(rt) else {
            cs.push(Contender::skipped(
                rt,
                format!("{rt} is not installed (benches/scripts/install-peers.sh)"),
            ));
            continue;
        };
        let cg = format!("/rbox-bench/{rt}");
        let bundle = bundles.join(rt);
        let probe_bundle = bundles.join(format!("{rt}-probe"));
        let written = benches::oci::write_bundle(&bundle, &bb.dir, &["/bin/true"], &cg)
            .and_then(|_| benches::oci::write_bundle(&probe_bundle, &bb.dir, &PROBE, &cg));
        if let Err(e) = written {
            cs.push(Contender::skipped(rt, e.to_string()));
            continue;
        }
        let ns = if rt == "crun" {
            match &crun_ns {
                Ok(h) => Some(h.fd()),
                Err(e) => {
                    cs.push(Contender::skipped(rt, e.clone()));
                    continue;
                }
            }
        } else {
            None
        };
        let mk = move |i: usize, probe: bool| -> Command {
            let bundle = if probe { &probe_bundle } else { &bundle };
            let id = format!("rbox-bench-{rt}-{}-{i}", std::process::id());
            let mut c = Command::new(&bin);
            c.arg("run").arg("--bundle").arg(bundle).arg(id);
            if let Some(ns) = ns {
                // crun refuses the hybrid layout: it runs in a mount
                // namespace where the empty cgroup2 is unmounted (the
                // host's mounts are untouched). Joined between fork and
                // exec, so crun's time includes no wrapper process.
                // SAFETY: setns is async-signal-safe; ns outlives the child.
                unsafe {
                    c.pre_exec(move || {
                        if libc::setns(ns, libc::CLONE_NEWNS) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            c
        };
        if let Err(e) = verify(mk(usize::MAX, true)) {
            cs.push(Contender::skipped(rt, e));
            continue;
        }
        let shown = render(&mk(0, false));
        let note = if rt == "crun" {
            "gets a ready rootfs (no image, no overlay); run in a mount namespace without the empty cgroup2 (joined before exec: no wrapper process)"
        } else {
            "gets a ready rootfs (no image, no overlay)"
        };
        cs.push(Contender::new(
            rt,
            shown,
            note,
            Box::new(move |i| time_quiet(&mut mk(i, false)).map_err(|e| e.to_string())),
        ));
    }

    // podman, its storage on the scratch fs.
    match which("podman") {
        None => cs.push(Contender::skipped(
            "podman",
            "podman is not installed (benches/scripts/install-peers.sh)",
        )),
        Some(podman) => {
            let proot = ctx.scratch.mountpoint.join("podman");
            let base = move || {
                let mut c = Command::new(&podman);
                c.arg("--root")
                    .arg(proot.join("root"))
                    .arg("--runroot")
                    .arg(proot.join("run"));
                c.args([
                    "--storage-driver",
                    "overlay",
                    "--cgroup-manager",
                    "cgroupfs",
                    "--events-backend",
                    "file",
                    "--runtime",
                    "runc",
                ]);
                c
            };
            match run_quiet(base().arg("import").arg(&bb.tar).arg("rbox-bench-busybox")) {
                Err(e) => cs.push(Contender::skipped(
                    "podman",
                    format!("podman import failed: {e}"),
                )),
                Ok(()) => {
                    let mk = move |args: &[&str]| {
                        let mut c = base();
                        c.args(["run", "--rm", "--network", "none"])
                            .args(PODMAN_ULIMITS)
                            .arg("localhost/rbox-bench-busybox")
                            .args(args);
                        c
                    };
                    match verify(mk(&PROBE)) {
                        Err(e) => cs.push(Contender::skipped("podman", e)),
                        Ok(()) => {
                            let shown = render(&mk(&["/bin/true"]));
                            cs.push(Contender::new("podman", shown, "runc as its OCI runtime (its default crun refuses the hybrid cgroup layout); overlay storage", Box::new(move |_| time_quiet(&mut mk(&["/bin/true"])).map_err(|e| e.to_string()))));
                        }
                    }
                }
            }
        }
    }

    // docker, with a daemon of our own for the duration of this part.
    match &dockerd {
        Err(e) => cs.push(Contender::skipped("docker", e.clone())),
        Ok(d) => match run_quiet(d.cmd(&["import"]).arg(&bb.tar).arg("rbox-bench-busybox")) {
            Err(e) => cs.push(Contender::skipped(
                "docker",
                format!("docker import failed: {e}"),
            )),
            Ok(()) => {
                let mk = move |args: &[&str]| {
                    let mut c = d.cmd(&["run", "--rm", "--network", "none", "rbox-bench-busybox"]);
                    c.args(args);
                    c
                };
                match verify(mk(&PROBE)) {
                    Err(e) => cs.push(Contender::skipped("docker", e)),
                    Ok(()) => {
                        let shown = render(&mk(&["/bin/true"]));
                        cs.push(Contender::new(
                            "docker",
                            shown,
                            "client → dockerd → containerd → runc; overlay2",
                            Box::new(move |_| {
                                time_quiet(&mut mk(&["/bin/true"])).map_err(|e| e.to_string())
                            }),
                        ));
                    }
                }
            }
        },
    }

    // The lower bound: namespaces and chroot, nothing else.
    let rootfs: PathBuf = bb.dir.clone();
    let mk = move |args: &[&str]| {
        let mut c = Command::new("unshare");
        c.args([
            "--pid", "--mount", "--uts", "--ipc", "--net", "--fork", "chroot",
        ])
        .arg(&rootfs)
        .args(args);
        c
    };
    match verify(mk(&PROBE)) {
        Err(e) => cs.push(Contender::skipped("unshare + chroot (lower bound)", e)),
        Ok(()) => {
            let shown = render(&mk(&["/bin/true"]));
            cs.push(Contender::new(
                "unshare + chroot (lower bound)",
                shown,
                "namespaces and chroot only: no cgroup, no /proc, no pivot_root, no image",
                Box::new(move |_| time_quiet(&mut mk(&["/bin/true"])).map_err(|e| e.to_string())),
            ));
        }
    }

    interleave(&mut cs, ctx.warmup, ctx.runs, "startup");
    s.tables.push(table("`/bin/true` start to exit", &cs));
    drop(cs);
    drop(crun_ns);
    drop(dockerd);
    let _ = std::fs::remove_dir_all(ctx.scratch.mountpoint.join("docker/exec"));
    s
}

/// A process parked in a private mount namespace where the hybrid host's
/// empty cgroup2 mount is gone; crun joins that namespace with setns.
struct NsHolder {
    child: std::process::Child,
    ns: std::fs::File,
}

impl NsHolder {
    fn without_unified_cgroup2() -> Result<NsHolder, String> {
        use std::io::BufRead;
        let mut child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("umount /sys/fs/cgroup/unified 2>/dev/null; echo ready; exec sleep 1000000")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("unshare -m: {e}"))?;
        let mut line = String::new();
        let out = child.stdout.take().expect("piped");
        std::io::BufReader::new(out)
            .read_line(&mut line)
            .map_err(|e| format!("unshare -m: {e}"))?;
        if line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            return Err("unshare -m did not start its mount namespace".into());
        }
        let path = format!("/proc/{}/ns/mnt", child.id());
        let ns = std::fs::File::open(&path).map_err(|e| format!("open {path}: {e}"))?;
        Ok(NsHolder { child, ns })
    }

    fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.ns.as_raw_fd()
    }
}

impl Drop for NsHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

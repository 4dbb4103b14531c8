//! A dockerd of our own: its own socket, data root and exec root, no
//! iptables, no bridge; stopped when dropped. The host's docker (if any) is
//! never touched.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use benches::tools::{run_quiet, which};

pub struct Dockerd {
    child: Child,
    pub socket: PathBuf,
    pub client: PathBuf,
    root: PathBuf,
}

impl Dockerd {
    pub fn start(base: &Path) -> Result<Dockerd, String> {
        let dockerd =
            which("dockerd").ok_or("dockerd is not installed (apt-get install docker.io)")?;
        // The client of the same package speaks the daemon's API version.
        let client = [PathBuf::from("/usr/bin/docker")]
            .into_iter()
            .find(|p| p.exists())
            .or_else(|| which("docker"))
            .ok_or("the docker client is not installed (apt-get install docker.io)")?;
        let root = base.to_path_buf();
        benches::tools::clean_dir(&root.join("exec")).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&root).map_err(|e| format!("create {}: {e}", root.display()))?;
        let socket = root.join("docker.sock");
        let _ = std::fs::remove_file(&socket);
        let log = std::fs::File::create(root.join("dockerd.log")).map_err(|e| e.to_string())?;
        let child = Command::new(dockerd)
            .arg("--host")
            .arg(format!("unix://{}", socket.display()))
            .arg("--data-root")
            .arg(root.join("data"))
            .arg("--exec-root")
            .arg(root.join("exec"))
            .arg("--pidfile")
            .arg(root.join("dockerd.pid"))
            .args([
                "--iptables=false",
                "--ip6tables=false",
                "--bridge=none",
                "--storage-driver=overlay2",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("start dockerd: {e}"))?;
        let mut d = Dockerd {
            child,
            socket,
            client,
            root,
        };
        let start = Instant::now();
        loop {
            if run_quiet(&mut d.cmd(&["version"])).is_ok() {
                return Ok(d);
            }
            if let Ok(Some(st)) = d.child.try_wait() {
                return Err(format!(
                    "dockerd exited ({st}): see {}",
                    d.root.join("dockerd.log").display()
                ));
            }
            if start.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "dockerd did not answer within 60 s: see {}",
                    d.root.join("dockerd.log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.client);
        c.arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args);
        c
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.child.try_wait() {
                benches::tools::unmount_under(&self.root);
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        benches::tools::unmount_under(&self.root);
    }
}

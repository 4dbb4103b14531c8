//! The pty pieces for real: a child with a pty as its controlling terminal
//! runs busybox, we relay its output, type into it, resize it.

mod security_common;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::termios::{tcgetattr, LocalFlags};
use runner::tty::{self, Pty, RawModeGuard, RelayFds, Winsize};
use security_common::*;

fn size(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// Relays `master` into a pipe on a thread; returns the pipe's read end
/// wrapped as a `Child`-like reader and the thread.
fn relay_in_thread(
    master: OwnedFd,
    stdin: Option<OwnedFd>,
    winsize_from: Option<OwnedFd>,
) -> (OwnedFd, std::thread::JoinHandle<Result<(), tty::TtyError>>) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let t = std::thread::spawn(move || {
        tty::relay(
            master.as_fd(),
            RelayFds {
                stdin: stdin.as_ref().map(|f| f.as_fd()),
                stdout: w.as_fd(),
                winsize_from: winsize_from.as_ref().map(|f| f.as_fd()),
                exited: None,
            },
        )
    });
    (r, t)
}

fn read_all(fd: OwnedFd) -> String {
    use std::io::Read;
    let mut s = String::new();
    std::fs::File::from(fd).read_to_string(&mut s).unwrap();
    s
}

#[test]
fn host_pty_becomes_the_controlling_terminal() {
    require_root_and_busybox();
    let pty = Pty::open().expect("Pty::open");
    tty::set_winsize(pty.master.as_fd(), &size(30, 100)).unwrap();
    let Pty { master, slave } = pty;
    let child = spawn(move || {
        tty::attach_slave(slave).expect("attach_slave");
        exec_busybox(&[
            "sh",
            "-c",
            "tty; stty size; [ -t 0 ] && [ -t 1 ] && echo stdio-is-tty",
        ])
    });
    // `slave` moved into the closure: the parent's copy is gone with it.
    let (out_r, relay) = relay_in_thread(master, None, None);
    let (st, _) = child.finish(Duration::from_secs(20));
    relay.join().unwrap().expect("relay");
    let out = read_all(out_r);
    assert_eq!(code(st), 0, "{out}");
    assert!(out.contains("/dev/pts/"), "tty inside: {out:?}");
    assert!(out.contains("30 100"), "stty size inside: {out:?}");
    assert!(out.contains("stdio-is-tty"), "{out:?}");
}

/// runc's console-socket shape: the pty is made inside the child's own
/// devpts instance and the master comes back over a socket, so `tty` shows
/// /dev/pts/0 of the new instance and the size is set before the command.
#[test]
fn console_from_a_new_devpts_instance() {
    require_root_and_busybox();
    let (parent_end, child_end) = tty::console_socketpair().unwrap();
    let child = spawn(move || {
        private_mount_ns();
        use nix::mount::{mount, MsFlags};
        mount(
            Some("devpts"),
            "/dev/pts",
            Some("devpts"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        )
        .expect("mount a new devpts instance");
        mount(
            Some("/dev/pts/ptmx"),
            "/dev/ptmx",
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .expect("bind ptmx");
        tty::setup_console_in_container(child_end, Some(&size(30, 100)))
            .expect("setup_console_in_container");
        exec_busybox(&["sh", "-c", "tty; stty size; ls /dev/pts"])
    });
    // `child_end` moved into the closure and was dropped with it here.
    let master = tty::receive_master(parent_end.as_fd()).expect("receive_master");
    let (out_r, relay) = relay_in_thread(master, None, None);
    let (st, _) = child.finish(Duration::from_secs(20));
    relay.join().unwrap().expect("relay");
    let out = read_all(out_r);
    assert_eq!(code(st), 0, "{out}");
    assert!(
        out.lines().any(|l| l.trim() == "/dev/pts/0"),
        "tty inside: {out:?}"
    );
    assert!(out.contains("30 100"), "stty size inside: {out:?}");
}

/// Typing reaches an interactive shell, and a SIGWINCH after the host
/// terminal changed size reaches it too.
#[test]
fn relay_types_into_a_shell_and_follows_sigwinch() {
    require_root_and_busybox();
    // A second pty plays the user's terminal: its size is what we follow.
    let host = Pty::open().unwrap();
    tty::set_winsize(host.master.as_fd(), &size(24, 80)).unwrap();
    let Pty { master, slave } = Pty::open().unwrap();
    let child = spawn(move || {
        tty::attach_slave(slave).expect("attach_slave");
        exec_busybox(&["sh", "-i"])
    });
    let (in_r, in_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let host_side = host.slave.try_clone().unwrap();
    let (out_r, relay) = relay_in_thread(master, Some(in_r), Some(host_side));
    let mut out = Reader {
        fd: out_r,
        seen: String::new(),
    };
    let type_line = |s: &str| {
        nix::unistd::write(&in_w, s.as_bytes()).unwrap();
    };
    type_line("stty size\n");
    out.until("24 80");
    type_line("echo hi$((1+1))\n");
    out.until("hi2");
    tty::set_winsize(host.master.as_fd(), &size(40, 120)).unwrap();
    nix::sys::signal::raise(nix::sys::signal::Signal::SIGWINCH).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    type_line("stty size\n");
    out.until("40 120");
    type_line("exit 3\n");
    let (st, _) = child.finish(Duration::from_secs(20));
    relay
        .join()
        .unwrap()
        .expect("relay ends when the shell is gone");
    assert_eq!(code(st), 3, "{}", out.seen);
}

struct Reader {
    fd: OwnedFd,
    seen: String,
}

impl Reader {
    fn until(&mut self, pat: &str) {
        self.until_within(pat, Duration::from_secs(10))
    }

    fn until_within(&mut self, pat: &str, limit: Duration) {
        let deadline = std::time::Instant::now() + limit;
        // Echo of the typed line contains the pattern's command, not its
        // output; look for the pattern on a line of its own.
        while !self.seen.lines().any(|l| l.trim() == pat) {
            assert!(
                std::time::Instant::now() < deadline,
                "{pat:?} not seen; output (last 500 bytes):\n{}",
                &self.seen[self.seen.len().saturating_sub(500)..]
            );
            let mut p = [nix::poll::PollFd::new(
                self.fd.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            if nix::poll::poll(&mut p, nix::poll::PollTimeout::from(100u16)).unwrap() == 0 {
                continue;
            }
            let mut buf = [0u8; 4096];
            let n = nix::unistd::read(self.fd.as_raw_fd(), &mut buf).unwrap();
            assert!(
                n > 0,
                "eof before {pat:?}; output (last 500 bytes):\n{}",
                &self.seen[self.seen.len().saturating_sub(500)..]
            );
            self.seen
                .push_str(&String::from_utf8_lossy(&buf[..n]).replace('\r', ""));
        }
    }
}

#[test]
fn raw_mode_is_restored_on_drop_and_on_panic() {
    let pty = Pty::open().unwrap();
    let canon = |fd| {
        tcgetattr(fd)
            .unwrap()
            .local_flags
            .contains(LocalFlags::ICANON | LocalFlags::ECHO)
    };
    assert!(
        canon(pty.slave.as_fd()),
        "a fresh pty starts canonical with echo"
    );
    {
        let _g = RawModeGuard::new(pty.slave.as_fd()).unwrap();
        let t = tcgetattr(pty.slave.as_fd()).unwrap();
        assert!(!t
            .local_flags
            .intersects(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG));
    }
    assert!(canon(pty.slave.as_fd()), "restored on drop");
    let slave = pty.slave.as_fd();
    let r = std::panic::catch_unwind(|| {
        let _g = RawModeGuard::new(slave).unwrap();
        panic!("boom");
    });
    assert!(r.is_err());
    assert!(canon(pty.slave.as_fd()), "restored when a panic unwinds");
    assert!(
        RawModeGuard::new(std::fs::File::open("/dev/null").unwrap().as_fd()).is_err(),
        "not a terminal"
    );
}

/// A paste larger than the terminal's buffers while the program prints a
/// lot and does not read yet: a relay that blocks writing input into the
/// master stops reading its output, and both sides wait forever.
#[test]
fn big_input_while_output_flows_does_not_deadlock() {
    require_root_and_busybox();
    let Pty { master, slave } = Pty::open().unwrap();
    // Raw before the child starts (no line limit, no echo): the input is
    // data, counted exactly.
    let mut raw = tcgetattr(slave.as_fd()).unwrap();
    nix::sys::termios::cfmakeraw(&mut raw);
    nix::sys::termios::tcsetattr(slave.as_fd(), nix::sys::termios::SetArg::TCSANOW, &raw).unwrap();
    let child = spawn(move || {
        tty::attach_slave(slave).expect("attach_slave");
        // 1 MB of output first, not reading; then count the input.
        exec_busybox(&[
            "sh",
            "-c",
            "head -c 1000000 /dev/zero | tr '\\0' x; echo; echo input=$(head -c 300001 | wc -c); echo done",
        ])
    });
    let (in_r, in_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let (out_r, relay) = relay_in_thread(master, Some(in_r), None);
    // Writer thread: 300001 bytes, more than the pty and pipe buffers hold.
    let writer = std::thread::spawn(move || {
        let data = vec![b'y'; 300_001];
        let mut off = 0;
        while off < data.len() {
            off += nix::unistd::write(&in_w, &data[off..]).unwrap();
        }
    });
    let mut out = Reader {
        fd: out_r,
        seen: String::new(),
    };
    out.until_within("done", Duration::from_secs(60));
    writer.join().unwrap();
    let (st, _) = child.finish(Duration::from_secs(20));
    relay.join().unwrap().expect("relay");
    assert_eq!(code(st), 0);
    assert!(
        out.seen.lines().any(|l| l.trim() == "input=300001"),
        "input lost: {}",
        &out.seen[out.seen.len().saturating_sub(300)..]
    );
}

/// With `exited` (a pidfd) the relay ends when the process is gone, and
/// still delivers every byte it wrote before.
#[test]
fn relay_with_a_pidfd_delivers_all_output() {
    require_root_and_busybox();
    let Pty { master, slave } = Pty::open().unwrap();
    let mut raw = tcgetattr(slave.as_fd()).unwrap();
    nix::sys::termios::cfmakeraw(&mut raw);
    nix::sys::termios::tcsetattr(slave.as_fd(), nix::sys::termios::SetArg::TCSANOW, &raw).unwrap();
    let child = spawn(move || {
        tty::attach_slave(slave).expect("attach_slave");
        exec_busybox(&[
            "sh",
            "-c",
            "head -c 200000 /dev/zero | tr '\\0' x; echo END",
        ])
    });
    // SAFETY: pidfd_open with our unreaped child's pid.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, child.pid.as_raw(), 0) };
    assert!(pidfd >= 0, "pidfd_open: {}", nix::Error::last());
    // SAFETY: a fresh descriptor from the kernel.
    let pidfd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(pidfd as i32) };
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let reader = std::thread::spawn(move || read_all(r));
    tty::relay(
        master.as_fd(),
        RelayFds {
            stdin: None,
            stdout: w.as_fd(),
            winsize_from: None,
            exited: Some(pidfd.as_fd()),
        },
    )
    .expect("relay");
    drop(w);
    let out = reader.join().unwrap();
    let (st, _) = child.finish(Duration::from_secs(20));
    assert_eq!(code(st), 0);
    assert_eq!(out.bytes().filter(|b| *b == b'x').count(), 200_000);
    assert!(
        out.trim_end().ends_with("END"),
        "{}",
        &out[out.len().saturating_sub(100)..]
    );
}

//! `rrun attach` and `rrun start -a -i` for real: a detached container's
//! stdio through its supervisor's socket, with pipes (`-di`) and with a pty
//! made here (`-dit`), detach keys, exit codes, refusals.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(20);

fn container_dir(name: &str) -> PathBuf {
    let o = rrun(&["inspect", "--format", "{{.Id}}", name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    store_root().join("containers").join(stdout(&o).trim())
}

fn status(name: &str) -> String {
    let o = rrun(&["inspect", "--format", "{{.State.Status}}", name]);
    stdout(&o).trim().to_string()
}

/// Waits until the attach socket is there (the supervisor makes it
/// before the container's command starts; `run -d` returns after).
fn socket_of(name: &str) -> PathBuf {
    let p = container_dir(name).join("attach.sock");
    let t = Instant::now();
    while !p.exists() {
        assert!(t.elapsed() < WAIT, "no {}", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    p
}

/// Everything `r` yields, on a thread, into a channel.
fn reader(mut r: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

/// Collects from `rx` into `seen` until `want` appears in it.
fn wait_for(rx: &mpsc::Receiver<Vec<u8>>, seen: &mut String, want: &str) {
    let t = Instant::now();
    while !seen.contains(want) {
        let left = WAIT.saturating_sub(t.elapsed());
        match rx.recv_timeout(left) {
            Ok(b) => seen.push_str(&String::from_utf8_lossy(&b)),
            Err(_) => panic!("{want:?} never came; saw {seen:?}"),
        }
    }
}

fn wait_exit(c: &mut Child) -> i32 {
    let t = Instant::now();
    loop {
        if let Some(st) = c.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if t.elapsed() > WAIT {
            let _ = c.kill();
            panic!("rrun attach did not end");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn attach_piped(args: &[&str]) -> Child {
    let mut a = vec!["attach"];
    a.extend_from_slice(args);
    rrun_cmd(&a)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

const ECHOER: &str = r#"while read l; do [ "$l" = quit ] && exit 7; echo "got:$l"; done"#;

#[test]
fn attach_pipes_input_output_detach_and_exit_code() {
    let o = rrun(&[
        "run", "-di", "--name", "at-pipe", "busybox", "sh", "-c", ECHOER,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let sock = socket_of("at-pipe");
    let m = std::fs::symlink_metadata(&sock).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600, "socket mode");
    assert_eq!(m.uid(), 0, "socket owner");

    // Two clients at once: both see the output of either's input.
    let mut a = attach_piped(&["at-pipe"]);
    let mut b = attach_piped(&["at-pipe"]);
    let ra = reader(a.stdout.take().unwrap());
    let rb = reader(b.stdout.take().unwrap());
    // An attach sees the output made after it is in: a slow machine (the
    // TCG guest) may take longer than any fixed pause to connect b, so a
    // says hello again until both have heard it.
    let mut ain = a.stdin.take().unwrap();
    let (mut sa, mut sb) = (String::new(), String::new());
    let t = Instant::now();
    while !(sa.contains("got:hello") && sb.contains("got:hello")) {
        assert!(
            t.elapsed() < WAIT,
            "hello never reached both: {sa:?} {sb:?}"
        );
        ain.write_all(b"hello\n").unwrap();
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            for (r, seen) in [(&ra, &mut sa), (&rb, &mut sb)] {
                if let Ok(b) = r.recv_timeout(Duration::from_millis(50)) {
                    seen.push_str(&String::from_utf8_lossy(&b));
                }
            }
        }
    }

    // Docker's default detach keys: a leaves, the container stays.
    ain.write_all(b"\x10\x11").unwrap();
    assert_eq!(wait_exit(&mut a), 0);
    let mut err = String::new();
    a.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("read escape sequence"), "{err}");
    assert_eq!(status("at-pipe"), "running");
    // b is still attached and still hears it.
    let mut bin = b.stdin.take().unwrap();
    bin.write_all(b"again\n").unwrap();
    wait_for(&rb, &mut sb, "got:again");
    // The container exits: b exits with its code.
    bin.write_all(b"quit\n").unwrap();
    assert_eq!(wait_exit(&mut b), 7);
    assert_eq!(status("at-pipe"), "exited");
    assert_eq!(code(&rrun(&["rm", "at-pipe"])), 0);
}

#[test]
fn attach_custom_detach_keys_and_no_stdin() {
    let o = rrun(&[
        "run", "-di", "--name", "at-keys", "busybox", "sh", "-c", ECHOER,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    socket_of("at-keys");
    let bad = rrun(&["attach", "--detach-keys", "ctrl-1", "at-keys"]);
    assert_eq!(code(&bad), 1);
    assert!(
        stderr(&bad).contains("Invalid detach keys (ctrl-1) provided"),
        "{}",
        stderr(&bad)
    );

    let mut a = attach_piped(&["--detach-keys", "ctrl-a,x", "at-keys"]);
    let ra = reader(a.stdout.take().unwrap());
    let mut ain = a.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // ctrl-p ctrl-q is plain input now, and a broken-off ctrl-a goes through.
    ain.write_all(b"p\x10\x11q\x01y\n").unwrap();
    let mut seen = String::new();
    wait_for(&ra, &mut seen, "got:p\u{10}\u{11}q\u{1}y");
    ain.write_all(b"\x01x").unwrap();
    assert_eq!(wait_exit(&mut a), 0);
    assert_eq!(status("at-keys"), "running");

    // --no-stdin: our input never reaches it, its output still reaches us.
    let mut n = attach_piped(&["--no-stdin", "at-keys"]);
    let rn = reader(n.stdout.take().unwrap());
    n.stdin.take().unwrap().write_all(b"quit\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(status("at-keys"), "running", "--no-stdin forwarded input");
    let mut other = attach_piped(&["at-keys"]);
    other
        .stdin
        .take()
        .unwrap()
        .write_all(b"via-other\nquit\n")
        .unwrap();
    let mut seen = String::new();
    wait_for(&rn, &mut seen, "got:via-other");
    assert_eq!(wait_exit(&mut n), 7);
    assert_eq!(wait_exit(&mut other), 7);
    assert_eq!(code(&rrun(&["rm", "at-keys"])), 0);
}

/// A pty pair made here: the attach client's terminal.
fn openpty(rows: u16, cols: u16) -> (OwnedFd, OwnedFd) {
    let ws = nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let p = nix::pty::openpty(Some(&ws), None).unwrap();
    (p.master, p.slave)
}

fn attach_on_pty(args: &[&str]) -> (Child, std::fs::File, mpsc::Receiver<Vec<u8>>) {
    let (master, slave) = openpty(24, 80);
    let mut a = vec!["attach"];
    a.extend_from_slice(args);
    let child = rrun_cmd(&a)
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let m = std::fs::File::from(master);
    let rx = reader(m.try_clone().unwrap());
    (child, m, rx)
}

#[test]
fn attach_tty_container_from_a_pty() {
    let o = rrun(&["run", "-dit", "--name", "at-tty", "busybox", "sh"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    socket_of("at-tty");
    let (mut a, mut m, rx) = attach_on_pty(&["at-tty"]);
    std::thread::sleep(Duration::from_millis(300));
    m.write_all(b"tty; echo $((6*7))x\r").unwrap();
    let mut seen = String::new();
    wait_for(&rx, &mut seen, "42x");
    assert!(
        seen.contains("/dev/pts/0"),
        "the container's own tty: {seen:?}"
    );
    // The client's terminal was raw: ^P^Q reached us, not its line discipline.
    m.write_all(b"\x10\x11").unwrap();
    assert_eq!(wait_exit(&mut a), 0);
    assert_eq!(status("at-tty"), "running");
    drop(m);

    let (mut a, mut m, rx) = attach_on_pty(&["at-tty"]);
    std::thread::sleep(Duration::from_millis(300));
    m.write_all(b"echo again$((1+1))\r").unwrap();
    let mut seen = String::new();
    wait_for(&rx, &mut seen, "again2");
    m.write_all(b"exit 3\r").unwrap();
    assert_eq!(wait_exit(&mut a), 3);
    assert_eq!(status("at-tty"), "exited");
    assert_eq!(code(&rrun(&["rm", "at-tty"])), 0);
}

#[test]
fn attach_streams_until_exit_and_proxies_signals() {
    let o = rrun(&[
        "run",
        "-d",
        "--name",
        "at-sig",
        "busybox",
        "sh",
        "-c",
        r#"trap 'echo caught; exit 5' USR1; echo ready; while :; do sleep 0.1; done"#,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    socket_of("at-sig");
    std::thread::sleep(Duration::from_millis(300));
    let mut a = attach_piped(&["at-sig"]);
    let ra = reader(a.stdout.take().unwrap());
    // Without -i nothing is read from us; only the signal ends it, once
    // attach has it blocked (it reads it from a signalfd then).
    let blocked = |pid: u32| {
        let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        st.lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & (1 << (libc::SIGUSR1 - 1)) != 0)
    };
    let t = Instant::now();
    while !blocked(a.id()) {
        assert!(t.elapsed() < WAIT, "attach never blocked SIGUSR1");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill takes integers; the child is ours.
    assert_eq!(unsafe { libc::kill(a.id() as i32, libc::SIGUSR1) }, 0);
    let mut seen = String::new();
    wait_for(&ra, &mut seen, "caught");
    assert!(
        !seen.contains("ready"),
        "attach replayed old output: {seen:?}"
    );
    assert_eq!(wait_exit(&mut a), 5);
    assert_eq!(code(&rrun(&["rm", "at-sig"])), 0);
}

#[test]
fn attach_refuses_stopped_unknown_and_a_forged_socket() {
    let o = rrun(&["attach", "at-nosuch"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("No such container: at-nosuch"),
        "{}",
        stderr(&o)
    );
    let o = rrun(&["run", "--name", "at-done", "busybox", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = rrun(&["attach", "at-done"]);
    assert_eq!(code(&o), 1);
    assert!(
        stderr(&o).contains("You cannot attach to a stopped container, start it first"),
        "{}",
        stderr(&o)
    );
    assert_eq!(code(&rrun(&["rm", "at-done"])), 0);

    let o = rrun(&[
        "run",
        "-di",
        "--name",
        "at-forged",
        "busybox",
        "sh",
        "-c",
        ECHOER,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let sock = socket_of("at-forged");
    let real = sock.with_file_name("attach.sock.real");
    std::fs::rename(&sock, &real).unwrap();
    // A regular file where the socket was.
    std::fs::write(&sock, b"").unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = rrun(&["attach", "at-forged"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("not a socket"), "{}", stderr(&o));
    std::fs::remove_file(&sock).unwrap();
    // A socket someone else owns.
    std::fs::rename(&real, &sock).unwrap();
    std::os::unix::fs::lchown(&sock, Some(1000), None).unwrap();
    let o = rrun(&["attach", "at-forged"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("not root"), "{}", stderr(&o));
    std::os::unix::fs::lchown(&sock, Some(0), None).unwrap();
    // Others may use it: refused too.
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = rrun(&["attach", "at-forged"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("others may use it"), "{}", stderr(&o));
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut a = attach_piped(&["at-forged"]);
    a.stdin.take().unwrap().write_all(b"quit\n").unwrap();
    assert_eq!(wait_exit(&mut a), 7);
    assert_eq!(code(&rrun(&["rm", "at-forged"])), 0);
}

#[test]
fn start_a_i_attaches_input_and_output() {
    let o = rrun(&[
        "create",
        "-i",
        "--name",
        "at-start",
        "busybox",
        "sh",
        "-c",
        r#"echo early; read l; echo "in:$l"; exit 9"#,
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let mut s = rrun_cmd(&["start", "-a", "-i", "at-start"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = reader(s.stdout.take().unwrap());
    s.stdin.take().unwrap().write_all(b"abc\n").unwrap();
    let mut seen = String::new();
    wait_for(&rx, &mut seen, "in:abc");
    assert!(
        seen.contains("early"),
        "output before the attach lost: {seen:?}"
    );
    assert_eq!(wait_exit(&mut s), 9);
    assert_eq!(code(&rrun(&["rm", "at-start"])), 0);
}

#[test]
fn attach_tty_takes_and_follows_the_client_window_size() {
    use std::os::unix::process::CommandExt;
    let o = rrun(&["run", "-dit", "--name", "at-size", "busybox", "sh"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    socket_of("at-size");
    let (master, slave) = openpty(33, 111);
    let mut cmd = rrun_cmd(&["attach", "at-size"]);
    cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave));
    // The pty is the client's controlling terminal, so that a resize
    // sends it SIGWINCH as a terminal emulator's would.
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut a = cmd.spawn().unwrap();
    let mut m = std::fs::File::from(master);
    let rx = reader(m.try_clone().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    m.write_all(b"stty size\r").unwrap();
    let mut seen = String::new();
    wait_for(&rx, &mut seen, "33 111");
    let ws = nix::pty::Winsize {
        ws_row: 40,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&m);
    // SAFETY: TIOCSWINSZ reads one winsize from a pointer valid for the call.
    let r = unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) };
    assert_eq!(r, 0);
    std::thread::sleep(Duration::from_millis(300));
    m.write_all(b"stty size\r").unwrap();
    wait_for(&rx, &mut seen, "40 120");
    m.write_all(b"\x10\x11").unwrap();
    assert_eq!(wait_exit(&mut a), 0);
    assert_eq!(code(&rrun(&["rm", "-f", "at-size"])), 0);
}

/// The hub's side of `rrun start -a` racing a command that ends at once:
/// the client is connected, but its hello (with the log offset to replay
/// from) reaches the hub only after the container's output has ended.
/// It must still get the output the log holds, then the exit code. Before
/// the fix it got the code alone, and `start -a` printed nothing
/// (commands::a_created_rm_container_starts_and_is_removed_at_its_exit
/// failed so, now and then).
#[test]
fn a_client_heard_only_after_the_output_ended_still_gets_its_replay() {
    use runner::attach::{frame, take_frame, Hub, EXIT, HELLO, OUTPUT, WANT_OUTPUT, WANT_REPLAY};
    require_root_and_kernel();
    let dir = tempfile::Builder::new()
        .prefix("hub")
        .tempdir_in("/tmp")
        .unwrap();
    let log = runner::logfile::Writer::open(dir.path(), Default::default()).unwrap();
    let (output, mut container) = std::io::pipe().unwrap();
    let hub = Hub::start(dir.path(), log, OwnedFd::from(output), None);
    container.write_all(b"once\n").unwrap();
    let logged = dir.path().join(runner::logfile::LOG);
    let t = Instant::now();
    while std::fs::read(&logged).unwrap_or_default() != b"once\n" {
        assert!(t.elapsed() < WAIT, "the hub never logged the output");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut sock = std::os::unix::net::UnixStream::connect(dir.path().join("attach.sock")).unwrap();
    // Accepted by the hub (it polls the listener), then the output ends
    // and the hub's loop with it, before the client says hello.
    std::thread::sleep(Duration::from_millis(300));
    drop(container);
    std::thread::sleep(Duration::from_millis(300));
    let mut hello = vec![WANT_OUTPUT | WANT_REPLAY];
    hello.extend_from_slice(&0u64.to_be_bytes());
    sock.write_all(&frame(HELLO, &hello)).unwrap();
    hub.finish(7, WAIT);
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = Vec::new();
    sock.read_to_end(&mut got).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = take_frame(&mut got).unwrap() {
        frames.push(f);
    }
    assert_eq!(
        frames,
        vec![
            (OUTPUT, b"once\n".to_vec()),
            (EXIT, 7i32.to_be_bytes().to_vec())
        ]
    );
}

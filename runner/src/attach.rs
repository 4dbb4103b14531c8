//! `rrun attach`: a detached container's stdio, reached through a Unix
//! socket its supervisor owns (`containers/<id>/attach.sock`, 0600, root's),
//! as Docker's daemon and conmon do it.
//!
//! The supervisor's hub ([`Hub`]) reads what the container writes (its one
//! output pipe, or the pty relay's output with `-t`), writes it to the log
//! and to every attached client, and feeds what clients send into the
//! container's stdin (a pipe the hub keeps open for the container's life,
//! with `-i`; with `-t` the pty relay copies it into the terminal). Several
//! clients may attach at once: each sees all output, and their input is
//! merged, as with `docker attach`.
//!
//! Wire format, both ways: frames of `kind: u8, len: u32 BE, payload`.
//! Client to hub: [`HELLO`] (one flags byte, first), [`STDIN`]. Hub to
//! client: [`OUTPUT`], then [`EXIT`] (the code as i32 BE) when the
//! supervisor ends. Detach keys are the client's: it simply disconnects.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// The socket's name in the container's directory.
pub const SOCKET: &str = "attach.sock";

pub const HELLO: u8 = 0;
pub const STDIN: u8 = 1;
pub const OUTPUT: u8 = 2;
pub const EXIT: u8 = 3;
/// Client to hub, `-t` only: the client terminal's rows and columns (two
/// u16 BE); the container's terminal takes that size.
pub const RESIZE: u8 = 4;

/// The supervisor's hub, once started, takes the container's pty master
/// (`-t`) here from the relay that owns it, to resize it for clients.
static HUB_ACTIVE: AtomicBool = AtomicBool::new(false);
static CONSOLE: Mutex<Option<OwnedFd>> = Mutex::new(None);

/// Called by the `-t` relay with its pty master: kept (a duplicate) only in
/// a supervisor whose hub runs; each run of the container replaces it.
pub fn offer_console(master: BorrowedFd<'_>) {
    if !HUB_ACTIVE.load(Ordering::Relaxed) {
        return;
    }
    if let (Ok(fd), Ok(mut slot)) = (master.try_clone_to_owned(), CONSOLE.lock()) {
        *slot = Some(fd);
    }
}

fn resize_console(payload: &[u8]) {
    let [r0, r1, c0, c1] = payload else { return };
    let ws = crate::tty::Winsize {
        ws_row: u16::from_be_bytes([*r0, *r1]),
        ws_col: u16::from_be_bytes([*c0, *c1]),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    if ws.ws_row == 0 || ws.ws_col == 0 {
        return;
    }
    if let Ok(slot) = CONSOLE.lock() {
        if let Some(m) = slot.as_ref() {
            let _ = crate::tty::set_winsize(m.as_fd(), &ws);
        }
    }
}

/// HELLO flags.
pub const WANT_STDIN: u8 = 1;
pub const WANT_OUTPUT: u8 = 2;
/// With a log offset (u64 BE) after the flags: first what the log holds
/// from there (`rrun start -a` loses nothing written before it connected).
pub const WANT_REPLAY: u8 = 4;

/// A client that does not take its output this far behind is dropped:
/// a stalled attach never stalls the container or its log.
const CLIENT_BACKLOG: usize = 4 << 20;
/// Input waiting for the container to read it; clients are not read
/// meanwhile.
const STDIN_BACKLOG: usize = 64 << 10;
/// Largest frame a client may send.
const MAX_FRAME: usize = 64 << 10;

#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("container {0} has no attach socket (it was started by an rrun without attach, or by an external OCI runtime)")]
    NoSocket(String),
    #[error("{path}: refusing to attach: {why}")]
    Unsafe { path: PathBuf, why: String },
    #[error("connect to {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("Invalid detach keys ({0}) provided")]
    DetachKeys(String),
    #[error("attach: {0}")]
    Io(#[from] io::Error),
}

/// Docker's `--detach-keys` (moby/term ToBytes): comma-separated keys,
/// each one character or `ctrl-X` with X in a-z, @, [, \, ], ^, _.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, AttachError> {
    let bad = || AttachError::DetachKeys(keys.to_string());
    let mut out = Vec::new();
    for key in keys.split(',') {
        if key.len() == 1 {
            out.push(key.as_bytes()[0]);
            continue;
        }
        let lower = key.to_ascii_lowercase();
        let Some(rest) = lower.strip_prefix("ctrl-") else {
            return Err(bad());
        };
        let code = match rest.as_bytes() {
            [c @ b'a'..=b'z'] => c - b'a' + 1,
            [b'@'] => 0,
            [b'['] => 27,
            [b'\\'] => 28,
            [b']'] => 29,
            [b'^'] => 30,
            [b'_'] => 31,
            _ => return Err(bad()),
        };
        out.push(code);
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Finds the detach sequence in the input stream. Bytes that may begin it
/// are held back; if the sequence breaks off they are passed on after all.
pub struct DetachMatcher {
    keys: Vec<u8>,
    held: usize,
}

impl DetachMatcher {
    pub fn new(keys: Vec<u8>) -> DetachMatcher {
        DetachMatcher { keys, held: 0 }
    }

    /// The bytes of `input` to forward; `true` once the sequence is complete
    /// (what came before it in `input` is still forwarded).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        for &b in input {
            if b == self.keys[self.held] {
                self.held += 1;
                if self.held == self.keys.len() {
                    return true;
                }
                continue;
            }
            // Broken off: what was held goes through, then this byte starts
            // over (it may begin the sequence itself).
            out.extend_from_slice(&self.keys[..self.held]);
            self.held = 0;
            if b == self.keys[0] {
                self.held = 1;
                if self.keys.len() == 1 {
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }
}

/// A frame longer than any frame may be: the peer is broken or hostile.
#[derive(Debug, PartialEq, Eq)]
pub struct OversizeFrame(pub usize);

/// Encodes one frame.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + payload.len());
    v.push(kind);
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// Takes one whole frame off the front of `buf`, if there is one.
/// `Err` when it claims to be larger than any frame may be.
pub fn take_frame(buf: &mut Vec<u8>) -> Result<Option<(u8, Vec<u8>)>, OversizeFrame> {
    if buf.len() < 5 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > MAX_FRAME {
        return Err(OversizeFrame(len));
    }
    if buf.len() < 5 + len {
        return Ok(None);
    }
    let kind = buf[0];
    let payload = buf[5..5 + len].to_vec();
    buf.drain(..5 + len);
    Ok(Some((kind, payload)))
}

fn open_dir(dir: &Path) -> io::Result<OwnedFd> {
    nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map(|fd| {
        // SAFETY: a fresh descriptor nobody else owns.
        unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
    })
    .map_err(io::Error::from)
}

/// A path to `name` in the directory `dir` that stays short whatever the
/// directory's own path (sun_path holds 108 bytes).
fn via_fd(dir: BorrowedFd<'_>, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))
}

/// The client's side: connect to the container's socket, once it is
/// checked to be a socket that root owns and only root may use.
pub fn connect(dir: &Path, name: &str) -> Result<UnixStream, AttachError> {
    let path = dir.join(SOCKET);
    let d = open_dir(dir).map_err(|source| AttachError::Connect {
        path: path.clone(),
        source,
    })?;
    let st = match nix::sys::stat::fstatat(
        Some(d.as_raw_fd()),
        SOCKET,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) => st,
        Err(nix::Error::ENOENT) => return Err(AttachError::NoSocket(name.to_string())),
        Err(e) => {
            return Err(AttachError::Connect {
                path,
                source: e.into(),
            })
        }
    };
    let unsafe_because = |why: &str| AttachError::Unsafe {
        path: path.clone(),
        why: why.to_string(),
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(unsafe_because("not a socket"));
    }
    if st.st_uid != 0 {
        return Err(unsafe_because(&format!(
            "owned by uid {}, not root",
            st.st_uid
        )));
    }
    if st.st_mode & 0o077 != 0 {
        return Err(unsafe_because(&format!(
            "mode {:o}: others may use it",
            st.st_mode & 0o777
        )));
    }
    UnixStream::connect(via_fd(d.as_fd(), SOCKET))
        .map_err(|source| AttachError::Connect { path, source })
}

struct Client {
    sock: UnixStream,
    flags: Option<u8>,
    inbuf: Vec<u8>,
    out: VecDeque<u8>,
}

impl Client {
    /// Writes what it can without blocking; false if the client is gone.
    fn flush(&mut self) -> bool {
        while !self.out.is_empty() {
            let (a, _) = self.out.as_slices();
            match self.sock.write(a) {
                Ok(0) => return false,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }
}

/// The supervisor's side: the log writer, the listener and the clients.
pub struct Hub {
    done: mpsc::Receiver<()>,
    code: mpsc::Sender<i32>,
}

impl Hub {
    /// Starts the hub on a thread of its own. `output`: the read end of the
    /// pipe the container's stdout and stderr go to; `stdin`: the write end
    /// of the container's stdin (`-i`), kept open until the hub ends.
    /// Without a socket (it could not be made) the hub still keeps the log.
    pub fn start(
        dir: &Path,
        log: crate::logfile::Writer,
        output: OwnedFd,
        stdin: Option<OwnedFd>,
    ) -> Hub {
        let (done_tx, done) = mpsc::channel();
        let (code, code_rx) = mpsc::channel();
        let listener = listen(dir).ok();
        HUB_ACTIVE.store(true, Ordering::Relaxed);
        let dir = dir.to_path_buf();
        let _ = std::thread::Builder::new()
            .name("attach".into())
            .spawn(move || {
                let mut hub = HubLoop {
                    dir,
                    log,
                    output: Some(std::fs::File::from(output)),
                    stdin: stdin.map(std::fs::File::from),
                    stdin_pending: Vec::new(),
                    clients: Vec::new(),
                };
                if let Some(s) = &hub.stdin {
                    let _ = set_nonblocking(s.as_fd());
                }
                hub.run(listener.as_ref().map(|l| &l.0));
                // The container's output has ended: tell the clients how
                // the supervisor's run ended, if it says so in time.
                let code = code_rx.recv_timeout(Duration::from_secs(5)).ok();
                hub.finish(listener.as_ref().map(|l| &l.0), code);
                if let Some((_, d)) = &listener {
                    let _ = nix::unistd::unlinkat(
                        Some(d.as_raw_fd()),
                        SOCKET,
                        nix::unistd::UnlinkatFlags::NoRemoveDir,
                    );
                }
                let _ = done_tx.send(());
            });
        Hub { done, code }
    }

    /// The supervisor is done with `code`: wait (at most `timeout`) until
    /// everything the container wrote is in the log and sent to clients.
    pub fn finish(self, code: i32, timeout: Duration) {
        let _ = self.code.send(code);
        let _ = self.done.recv_timeout(timeout);
    }
}

/// The socket: bound under a temporary name, made 0600, then renamed into
/// place, so nobody ever finds it with a looser mode.
fn listen(dir: &Path) -> io::Result<(UnixListener, OwnedFd)> {
    let d = open_dir(dir)?;
    let tmp = format!(".{SOCKET}.{}", std::process::id());
    let _ = nix::unistd::unlinkat(
        Some(d.as_raw_fd()),
        tmp.as_str(),
        nix::unistd::UnlinkatFlags::NoRemoveDir,
    );
    let l = UnixListener::bind(via_fd(d.as_fd(), &tmp))?;
    nix::sys::stat::fchmodat(
        Some(d.as_raw_fd()),
        tmp.as_str(),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )?;
    nix::fcntl::renameat(
        Some(d.as_raw_fd()),
        tmp.as_str(),
        Some(d.as_raw_fd()),
        SOCKET,
    )?;
    l.set_nonblocking(true)?;
    Ok((l, d))
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)?;
    fcntl(
        fd.as_raw_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

struct HubLoop {
    dir: PathBuf,
    log: crate::logfile::Writer,
    output: Option<std::fs::File>,
    stdin: Option<std::fs::File>,
    stdin_pending: Vec<u8>,
    clients: Vec<Client>,
}

impl HubLoop {
    /// Until the container's output ends (every writer closed it).
    fn run(&mut self, listener: Option<&UnixListener>) {
        let mut buf = vec![0u8; 64 << 10];
        while self.output.is_some() {
            let take_input = self.stdin_pending.len() < STDIN_BACKLOG;
            let (out_ix, listen_ix, stdin_ix, first_client, ready) = {
                let mut pfds = Vec::with_capacity(3 + self.clients.len());
                let out = self.output.as_ref().expect("checked");
                pfds.push(PollFd::new(out.as_fd(), PollFlags::POLLIN));
                let listen_ix = listener.map(|l| {
                    pfds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
                    pfds.len() - 1
                });
                let stdin_ix = match &self.stdin {
                    Some(s) if !self.stdin_pending.is_empty() => {
                        pfds.push(PollFd::new(s.as_fd(), PollFlags::POLLOUT));
                        Some(pfds.len() - 1)
                    }
                    _ => None,
                };
                let first_client = pfds.len();
                for c in &self.clients {
                    let mut ev = PollFlags::empty();
                    if take_input {
                        ev |= PollFlags::POLLIN;
                    }
                    if !c.out.is_empty() {
                        ev |= PollFlags::POLLOUT;
                    }
                    pfds.push(PollFd::new(c.sock.as_fd(), ev));
                }
                match poll(&mut pfds, PollTimeout::NONE) {
                    Ok(_) | Err(nix::Error::EINTR) => {}
                    Err(_) => return,
                }
                let ready: Vec<PollFlags> = pfds
                    .iter()
                    .map(|p| p.revents().unwrap_or(PollFlags::empty()))
                    .collect();
                (0usize, listen_ix, stdin_ix, first_client, ready)
            };
            // Clients first (their indexes are the poll's), then the rest.
            let mut gone = Vec::new();
            for (i, c) in self.clients.iter_mut().enumerate() {
                let r = ready[first_client + i];
                if r.is_empty() {
                    continue;
                }
                if r.contains(PollFlags::POLLOUT) && !c.flush() {
                    gone.push(i);
                    continue;
                }
                if r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                    && !read_client(
                        c,
                        &self.dir,
                        &mut self.stdin_pending,
                        self.stdin.is_some(),
                        &mut buf,
                    )
                {
                    gone.push(i);
                }
            }
            for i in gone.into_iter().rev() {
                self.clients.remove(i);
            }
            if stdin_ix.is_some_and(|i| !ready[i].is_empty()) {
                self.feed_stdin();
            } else if !self.stdin_pending.is_empty() {
                // Written straight away when there is room.
                self.feed_stdin();
            }
            if listen_ix.is_some_and(|i| !ready[i].is_empty()) {
                if let Some(l) = listener {
                    self.accept(l);
                }
            }
            if !ready[out_ix].is_empty() {
                self.pump_output(&mut buf);
            }
        }
    }

    fn accept(&mut self, l: &UnixListener) {
        while let Ok((sock, _)) = l.accept() {
            // Root's socket, 0600: only root gets here; checked again.
            let uid =
                nix::sys::socket::getsockopt(&sock, nix::sys::socket::sockopt::PeerCredentials)
                    .map(|c| c.uid())
                    .unwrap_or(u32::MAX);
            if uid != 0 || sock.set_nonblocking(true).is_err() {
                continue;
            }
            self.clients.push(Client {
                sock,
                flags: None,
                inbuf: Vec::new(),
                out: VecDeque::new(),
            });
        }
    }

    fn pump_output(&mut self, buf: &mut [u8]) {
        let Some(out) = self.output.as_mut() else {
            return;
        };
        match out.read(buf) {
            Ok(0) => self.output = None,
            Ok(n) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                // A full disk loses output, never the container.
                let _ = self.log.write(&buf[..n], now);
                let f = frame(OUTPUT, &buf[..n]);
                self.clients.retain_mut(|c| {
                    if c.flags.is_none_or(|f| f & WANT_OUTPUT == 0) {
                        return true;
                    }
                    if c.out.len() + f.len() > CLIENT_BACKLOG {
                        return false;
                    }
                    c.out.extend(&f);
                    c.flush()
                });
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.output = None,
        }
    }

    fn feed_stdin(&mut self) {
        let Some(s) = self.stdin.as_mut() else {
            self.stdin_pending.clear();
            return;
        };
        while !self.stdin_pending.is_empty() {
            match s.write(&self.stdin_pending) {
                Ok(n) => {
                    self.stdin_pending.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The container closed its stdin: input has nowhere to go.
                Err(_) => {
                    self.stdin_pending.clear();
                    return;
                }
            }
        }
    }

    /// Everything left goes out (briefly blocking), then the exit frame.
    /// A client that connected as the container ended may not have been
    /// accepted or heard yet: it is, first, so a `start -a` client gets
    /// its replay before the code rather than a bare code (it would print
    /// nothing). One that says no hello in time is closed without a code
    /// (`Ended::Unserved`: it reads the log instead).
    fn finish(&mut self, listener: Option<&UnixListener>, code: Option<i32>) {
        if let Some(l) = listener {
            self.accept(l);
        }
        self.read_late_hellos();
        for c in &mut self.clients {
            let _ = c.sock.set_nonblocking(false);
            let _ = c.sock.set_write_timeout(Some(Duration::from_secs(2)));
            let (a, b) = c.out.as_slices();
            let _ = c.sock.write_all(a).and_then(|()| c.sock.write_all(b));
            if let Some(code) = code {
                let _ = c.sock.write_all(&frame(EXIT, &code.to_be_bytes()));
            }
        }
        self.clients.clear();
    }

    /// Waits (at most [`LATE_HELLO`] for all) for the hello of every client
    /// that has not sent one yet, and acts on it; drops those that send
    /// none.
    fn read_late_hellos(&mut self) {
        let deadline = Instant::now() + LATE_HELLO;
        let mut buf = vec![0u8; 4096];
        let mut no_stdin = Vec::new();
        let dir = &self.dir;
        self.clients.retain_mut(|c| {
            while c.flags.is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero()
                    || c.sock.set_nonblocking(false).is_err()
                    || c.sock.set_read_timeout(Some(left)).is_err()
                    || !read_client(c, dir, &mut no_stdin, false, &mut buf)
                {
                    return false;
                }
            }
            true
        });
    }
}

/// How long a client that connected as the container ended has to say
/// hello (clients send it right after connecting).
const LATE_HELLO: Duration = Duration::from_secs(2);

/// Reads what a client sent; false when it is gone or broke the protocol.
fn read_client(
    c: &mut Client,
    dir: &Path,
    stdin: &mut Vec<u8>,
    has_stdin: bool,
    buf: &mut [u8],
) -> bool {
    match c.sock.read(buf) {
        Ok(0) => return false,
        Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => return true,
        Err(_) => return false,
    }
    loop {
        match take_frame(&mut c.inbuf) {
            Err(_) => return false,
            Ok(None) => return true,
            Ok(Some((HELLO, p))) if c.flags.is_none() && p.len() == 1 => c.flags = Some(p[0]),
            Ok(Some((HELLO, p)))
                if c.flags.is_none() && p.len() == 9 && p[0] & WANT_REPLAY != 0 =>
            {
                c.flags = Some(p[0]);
                let mut at = [0u8; 8];
                at.copy_from_slice(&p[1..]);
                replay(c, dir, u64::from_be_bytes(at));
            }
            Ok(Some((RESIZE, p))) if c.flags.is_some() => resize_console(&p),
            Ok(Some((STDIN, p))) if c.flags.is_some() => {
                if has_stdin && c.flags.is_some_and(|f| f & WANT_STDIN != 0) {
                    stdin.extend_from_slice(&p);
                }
            }
            Ok(Some(_)) => return false,
        }
    }
}

/// The log from `offset` to its end into the client's queue: the hub is
/// the log's only writer, so this is everything written so far. (A log
/// rotated past `offset` meanwhile is sent from the new file's start.)
fn replay(c: &mut Client, dir: &Path, offset: u64) {
    use std::io::Seek;
    let Ok(mut f) = std::fs::File::open(dir.join(crate::logfile::LOG)) else {
        return;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = if offset <= len { offset } else { 0 };
    if f.seek(io::SeekFrom::Start(from)).is_err() {
        return;
    }
    let mut chunk = vec![0u8; 64 << 10];
    let mut left = (len - from).min(CLIENT_BACKLOG as u64 / 2);
    while left > 0 {
        let want = chunk.len().min(left as usize);
        match f.read(&mut chunk[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                c.out.extend(&frame(OUTPUT, &chunk[..n]));
                left -= n as u64;
            }
        }
    }
}

/// How an attach ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The container's supervisor ended with this code.
    Exited(i32),
    /// The connection closed without a code (the supervisor died).
    Closed,
    /// The connection closed before the supervisor sent anything: it was
    /// ending as we connected, and never served us.
    Unserved,
    /// The user typed the detach keys.
    Detached,
}

/// What the client relays.
pub struct ClientIo<'a> {
    /// The user's input (None: `--no-stdin`, or the container has no `-i`).
    pub stdin: Option<BorrowedFd<'a>>,
    pub stdout: BorrowedFd<'a>,
    /// Input is scanned for these (empty: never detach).
    pub detach_keys: Vec<u8>,
    /// Readable when something else needs the caller (a signalfd); the
    /// callback is called then.
    pub wake: Option<BorrowedFd<'a>>,
    /// Replay the log from this offset first (`rrun start -a`).
    pub replay_from: Option<u64>,
    /// `-t` on a terminal: its size is sent at once and whenever
    /// `on_wake` returns true.
    pub winsize_from: Option<BorrowedFd<'a>>,
}

fn resize_frame(term: BorrowedFd<'_>) -> Option<Vec<u8>> {
    let ws = crate::tty::get_winsize(term).ok()?;
    let mut p = ws.ws_row.to_be_bytes().to_vec();
    p.extend_from_slice(&ws.ws_col.to_be_bytes());
    Some(frame(RESIZE, &p))
}

/// The client's relay: input to the hub, output from it, until the
/// container ends, the connection closes, or the detach keys are typed.
pub fn relay(
    sock: &mut UnixStream,
    io: ClientIo<'_>,
    mut on_wake: impl FnMut() -> bool,
) -> Result<Ended, AttachError> {
    let mut hello = vec![WANT_OUTPUT | if io.stdin.is_some() { WANT_STDIN } else { 0 }];
    if let Some(at) = io.replay_from {
        hello[0] |= WANT_REPLAY;
        hello.extend_from_slice(&at.to_be_bytes());
    }
    sock.write_all(&frame(HELLO, &hello))?;
    if let Some(f) = io.winsize_from.and_then(resize_frame) {
        sock.write_all(&f)?;
    }
    let mut matcher = (!io.detach_keys.is_empty()).then(|| DetachMatcher::new(io.detach_keys));
    let mut stdin_open = io.stdin.is_some();
    let mut inbuf = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut heard = false;
    loop {
        let mut pfds = vec![PollFd::new(sock.as_fd(), PollFlags::POLLIN)];
        let stdin_ix = match io.stdin {
            Some(s) if stdin_open => {
                pfds.push(PollFd::new(s, PollFlags::POLLIN));
                Some(pfds.len() - 1)
            }
            _ => None,
        };
        let wake_ix = io.wake.map(|w| {
            pfds.push(PollFd::new(w, PollFlags::POLLIN));
            pfds.len() - 1
        });
        match poll(&mut pfds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e).into()),
        }
        let ready: Vec<bool> = pfds
            .iter()
            .map(|p| !p.revents().unwrap_or(PollFlags::empty()).is_empty())
            .collect();
        drop(pfds);
        if wake_ix.is_some_and(|i| ready[i]) && on_wake() {
            if let Some(f) = io.winsize_from.and_then(resize_frame) {
                sock.write_all(&f)?;
            }
        }
        if stdin_ix.is_some_and(|i| ready[i]) {
            let input = io.stdin.expect("polled only when present");
            let n = loop {
                match nix::unistd::read(input.as_raw_fd(), &mut buf) {
                    Err(nix::Error::EINTR) => continue,
                    Err(nix::Error::EAGAIN) => break None,
                    Err(_) => break Some(0),
                    Ok(n) => break Some(n),
                }
            };
            match n {
                None => {}
                // The user's input ended; the container's stdin stays open
                // (Docker's StdinOnce is false for attach).
                Some(0) => stdin_open = false,
                Some(n) => {
                    let mut fwd = Vec::with_capacity(n);
                    let detach = match matcher.as_mut() {
                        Some(m) => m.feed(&buf[..n], &mut fwd),
                        None => {
                            fwd.extend_from_slice(&buf[..n]);
                            false
                        }
                    };
                    if !fwd.is_empty() {
                        sock.write_all(&frame(STDIN, &fwd))?;
                    }
                    if detach {
                        return Ok(Ended::Detached);
                    }
                }
            }
        }
        if ready[0] {
            let n = loop {
                match sock.read(&mut buf) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break 0,
                    Err(e) => return Err(e.into()),
                    Ok(n) => break n,
                }
            };
            if n == 0 {
                return Ok(if heard {
                    Ended::Closed
                } else {
                    Ended::Unserved
                });
            }
            heard = true;
            inbuf.extend_from_slice(&buf[..n]);
            loop {
                match take_frame(&mut inbuf) {
                    Err(OversizeFrame(n)) => {
                        return Err(AttachError::Io(io::Error::other(format!(
                            "the supervisor sent a frame of {n} bytes"
                        ))))
                    }
                    Ok(None) => break,
                    Ok(Some((OUTPUT, p))) => write_all(io.stdout, &p)?,
                    Ok(Some((EXIT, p))) if p.len() == 4 => {
                        return Ok(Ended::Exited(i32::from_be_bytes([p[0], p[1], p[2], p[3]])))
                    }
                    Ok(Some((k, _))) => {
                        return Err(AttachError::Io(io::Error::other(format!(
                            "unknown frame kind {k}"
                        ))))
                    }
                }
            }
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Err(nix::Error::EINTR) => continue,
            Err(nix::Error::EAGAIN) => {
                let mut p = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut p, PollTimeout::NONE);
            }
            Err(e) => return Err(e.into()),
            Ok(n) => data = &data[n..],
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_as_docker() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-[").unwrap(), vec![0, 27]);
        assert_eq!(parse_detach_keys("CTRL-Z").unwrap(), vec![26]);
        for bad in ["", "ctrl-", "ctrl-1", "ab", "ctrl-p,,x", "shift-a"] {
            let e = parse_detach_keys(bad).unwrap_err().to_string();
            assert_eq!(e, format!("Invalid detach keys ({bad}) provided"));
        }
    }

    #[test]
    fn matcher_holds_a_prefix_and_releases_it_when_broken() {
        let mut m = DetachMatcher::new(vec![16, 17]);
        let mut out = Vec::new();
        assert!(!m.feed(b"ab\x10", &mut out));
        assert_eq!(out, b"ab");
        assert!(!m.feed(b"c", &mut out));
        assert_eq!(out, b"ab\x10c");
        out.clear();
        assert!(!m.feed(b"\x10\x10", &mut out));
        assert_eq!(out, b"\x10");
        assert!(m.feed(b"\x11zz", &mut out));
        assert_eq!(out, b"\x10");
    }

    #[test]
    fn frames_round_trip_and_oversize_is_refused() {
        let mut b = frame(STDIN, b"hi");
        b.extend(frame(EXIT, &7i32.to_be_bytes()));
        b.extend_from_slice(&[OUTPUT, 0]);
        assert_eq!(take_frame(&mut b).unwrap(), Some((STDIN, b"hi".to_vec())));
        assert_eq!(
            take_frame(&mut b).unwrap(),
            Some((EXIT, 7i32.to_be_bytes().to_vec()))
        );
        assert_eq!(take_frame(&mut b).unwrap(), None);
        let mut huge = vec![STDIN, 0xff, 0xff, 0xff, 0xff];
        assert!(take_frame(&mut huge).is_err());
    }
}

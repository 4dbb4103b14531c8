//! `-t`: a pseudo-terminal for the container, the host terminal in raw
//! mode, window size followed, and the byte relay between them.
//!
//! Docker-like shape (runc's console socket): the child opens `/dev/ptmx`
//! *inside* the container, after the runner mounted a new devpts instance
//! there, so `tty` shows `/dev/pts/0` and no host pty is visible; it sends
//! the master to the parent over a socketpair and makes the slave its
//! controlling terminal. `Pty::open()` on the host's devpts is the simpler
//! path, for callers without a container devpts.

use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::termios::{self, SetArg, Termios};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum TtyError {
    #[error("opening the pty multiplexer {path}: {source} (is devpts mounted with a ptmx?)")]
    OpenPtmx { path: String, source: nix::Error },
    #[error("pty setup: {what} failed: {source}")]
    Setup {
        what: &'static str,
        source: nix::Error,
    },
    #[error("making the pty the controlling terminal: {what} failed: {source}")]
    Attach {
        what: &'static str,
        source: nix::Error,
    },
    #[error("passing the pty master over the console socket: {what} failed: {source}")]
    Socket {
        what: &'static str,
        source: nix::Error,
    },
    #[error("terminal settings of fd {fd}: {source} (is it a terminal?)")]
    Termios { fd: RawFd, source: nix::Error },
    #[error("relaying the terminal: {0}")]
    Relay(#[from] io::Error),
}

pub type Winsize = libc::winsize;

fn check(r: libc::c_int, what: &'static str) -> Result<libc::c_int, TtyError> {
    if r < 0 {
        Err(TtyError::Setup {
            what,
            source: nix::Error::last(),
        })
    } else {
        Ok(r)
    }
}

/// A pty pair: the master (the side we relay) and the slave (the
/// container's terminal). Both close on exec.
#[derive(Debug)]
pub struct Pty {
    pub master: OwnedFd,
    pub slave: OwnedFd,
}

impl Pty {
    /// A pair from the host's `/dev/ptmx`.
    pub fn open() -> Result<Pty, TtyError> {
        Pty::open_at(c"/dev/ptmx")
    }

    /// A pair from the multiplexer at `ptmx` (for the container's own
    /// devpts: `/dev/ptmx` after pivot_root). The slave is opened from the
    /// master with TIOCGPTPEER, not by path, so no path trick can hand us
    /// another terminal. Allocation-free: usable in a cloned child.
    pub fn open_at(ptmx: &CStr) -> Result<Pty, TtyError> {
        let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
        // SAFETY: `ptmx` is a valid C string; the fd is owned right below.
        let m = unsafe { libc::open(ptmx.as_ptr(), flags) };
        if m < 0 {
            return Err(TtyError::OpenPtmx {
                path: ptmx.to_string_lossy().into_owned(),
                source: nix::Error::last(),
            });
        }
        // SAFETY: `m` is a fresh fd nobody else owns.
        let master = unsafe { OwnedFd::from_raw_fd(m) };
        let unlock: libc::c_int = 0;
        // SAFETY: TIOCSPTLCK reads one int from a pointer valid for the call.
        let r = unsafe { libc::ioctl(m, libc::TIOCSPTLCK, &unlock) };
        check(r, "unlockpt (TIOCSPTLCK)")?;
        // SAFETY: TIOCGPTPEER takes open flags by value and returns a new fd.
        let r = unsafe { libc::ioctl(m, libc::TIOCGPTPEER, flags) };
        let s = check(r, "open slave (TIOCGPTPEER)")?;
        // SAFETY: `s` is a fresh fd nobody else owns.
        let slave = unsafe { OwnedFd::from_raw_fd(s) };
        Ok(Pty { master, slave })
    }
}

/// In the child: a new session whose controlling terminal is `slave`, which
/// also becomes stdin, stdout and stderr. Allocation-free.
pub fn attach_slave(slave: OwnedFd) -> Result<(), TtyError> {
    let att = |what| move |source| TtyError::Attach { what, source };
    nix::unistd::setsid().map_err(att("setsid"))?;
    let fd = slave.as_raw_fd();
    // SAFETY: TIOCSCTTY takes an int by value (0: do not steal).
    if unsafe { libc::ioctl(fd, libc::TIOCSCTTY, 0) } < 0 {
        return Err(att("TIOCSCTTY")(nix::Error::last()));
    }
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard fds; `fd` is open, and the targets
        // are meant to be replaced.
        if unsafe { libc::dup2(fd, target) } < 0 {
            return Err(att("dup2 onto stdio")(nix::Error::last()));
        }
    }
    if fd > 2 {
        drop(slave);
    } else {
        // One of 0..2 already is the slave; keep it open.
        std::mem::forget(slave);
    }
    Ok(())
}

/// The socket pair that carries the pty master from the container child to
/// the parent: `(parent_end, child_end)`, both close-on-exec.
pub fn console_socketpair() -> Result<(OwnedFd, OwnedFd), TtyError> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|source| TtyError::Socket {
        what: "socketpair",
        source,
    })
}

/// In the container child, after pivot_root with the container's devpts
/// mounted (and `/dev/ptmx` reaching its `ptmx`): opens a pty there, sets
/// its size (so the command starts with the host's), sends the master to
/// the parent and attaches the slave as controlling terminal and stdio.
pub fn setup_console_in_container(
    child_end: OwnedFd,
    size: Option<&Winsize>,
) -> Result<(), TtyError> {
    let pty = Pty::open_at(c"/dev/ptmx")?;
    if let Some(ws) = size {
        set_winsize(pty.slave.as_fd(), ws)?;
    }
    send_fd(child_end.as_fd(), pty.master.as_fd())?;
    drop(pty.master);
    drop(child_end);
    attach_slave(pty.slave)
}

/// Sends one fd with SCM_RIGHTS, without allocating.
pub fn send_fd(sock: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> Result<(), TtyError> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // u64-aligned room for one cmsghdr and one int.
    let mut cbuf = [0u64; 4];
    // SAFETY: an all-zero msghdr is valid; we fill in the pointers below.
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is pure arithmetic.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as _;
    // SAFETY: msg_control points at `cbuf`, large enough for one cmsghdr
    // carrying one int, so CMSG_FIRSTHDR/CMSG_DATA stay inside it.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd.as_raw_fd());
    }
    // SAFETY: every pointer in `msg` refers to locals alive for the call.
    if unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) } < 0 {
        return Err(TtyError::Socket {
            what: "sendmsg",
            source: nix::Error::last(),
        });
    }
    Ok(())
}

/// In the parent: receives the pty master sent by `setup_console_in_container`.
pub fn receive_master(parent_end: BorrowedFd<'_>) -> Result<OwnedFd, TtyError> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u64; 4];
    // SAFETY: an all-zero msghdr is valid; pointers filled below.
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
    loop {
        // SAFETY: every pointer in `msg` refers to locals alive for the call.
        let n = unsafe { libc::recvmsg(parent_end.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 && nix::Error::last() == nix::Error::EINTR {
            continue;
        }
        if n <= 0 {
            let source = if n == 0 {
                nix::Error::ECONNRESET
            } else {
                nix::Error::last()
            };
            return Err(TtyError::Socket {
                what: "recvmsg (did the container fail before its tty?)",
                source,
            });
        }
        break;
    }
    // SAFETY: the kernel filled `cbuf` (within msg_controllen); we read only
    // a header it reports and its one-int payload.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_level != libc::SOL_SOCKET || (*c).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(TtyError::Socket {
                what: "recvmsg: no fd in the message",
                source: nix::Error::EBADMSG,
            });
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

pub fn get_winsize(fd: BorrowedFd<'_>) -> Result<Winsize, TtyError> {
    let mut ws = Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into `ws`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    check(r, "TIOCGWINSZ")?;
    Ok(ws)
}

/// Setting the size on either side of a pty makes the kernel send SIGWINCH
/// to the terminal's foreground process group.
pub fn set_winsize(fd: BorrowedFd<'_>, ws: &Winsize) -> Result<(), TtyError> {
    // SAFETY: TIOCSWINSZ reads one winsize from a pointer valid for the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, ws) };
    check(r, "TIOCSWINSZ")?;
    Ok(())
}

pub fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> Result<(), TtyError> {
    set_winsize(to, &get_winsize(from)?)
}

pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    termios::tcgetattr(fd).is_ok()
}

/// The host terminal in raw mode for as long as this lives; the saved
/// settings come back on drop, which also runs when a panic unwinds.
pub struct RawModeGuard {
    fd: OwnedFd,
    saved: Termios,
}

impl RawModeGuard {
    pub fn new(fd: BorrowedFd<'_>) -> Result<RawModeGuard, TtyError> {
        let raw_fd = fd.as_raw_fd();
        let err = |source| TtyError::Termios { fd: raw_fd, source };
        let saved = termios::tcgetattr(fd).map_err(err)?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        // Our own copy of the fd, so the guard never outlives a borrow.
        let fd = fd
            .try_clone_to_owned()
            .map_err(|e| err(nix::Error::from_raw(e.raw_os_error().unwrap_or(0))))?;
        termios::tcsetattr(&fd, SetArg::TCSANOW, &raw).map_err(err)?;
        Ok(RawModeGuard { fd, saved })
    }
}

impl Drop for RawModeGuard {
    fn drop(&mut self) {
        // TCSADRAIN: let what we wrote reach the screen under raw settings.
        let _ = termios::tcsetattr(&self.fd, SetArg::TCSADRAIN, &self.saved);
    }
}

/// Where the relay reads and writes.
pub struct RelayFds<'a> {
    /// The user's input; `None` without `-i`. Polling stops at its EOF.
    pub stdin: Option<BorrowedFd<'a>>,
    pub stdout: BorrowedFd<'a>,
    /// The host terminal whose size the container follows on SIGWINCH.
    pub winsize_from: Option<BorrowedFd<'a>>,
    /// Readable when the container's process has exited (a pidfd); then
    /// whatever is left in the master is written out and the relay ends.
    pub exited: Option<BorrowedFd<'a>>,
}

static WINCH_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_winch(_: libc::c_int) {
    let fd = WINCH_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; one byte from a static.
        unsafe { libc::write(fd, b"w".as_ptr().cast(), 1) };
    }
}

/// Copies `stdin` → master and master → `stdout` until the master reports
/// EOF/EIO (every slave fd closed: the container's processes are gone) or
/// `exited` fires. Follows the host window size on SIGWINCH meanwhile.
pub fn relay(master: BorrowedFd<'_>, fds: RelayFds<'_>) -> Result<(), TtyError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

    let (winch_r, winch_w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
            .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    let mut old_winch = None;
    if let Some(host) = fds.winsize_from {
        let _ = copy_winsize(host, master);
        WINCH_PIPE.store(winch_w.as_raw_fd(), Ordering::Relaxed);
        let sa = SigAction::new(
            SigHandler::Handler(on_winch),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // SAFETY: the handler only calls write(2) on a pipe.
        old_winch = Some(
            unsafe { sigaction(Signal::SIGWINCH, &sa) }
                .map_err(|e| io::Error::from_raw_os_error(e as i32))?,
        );
    }
    let result = relay_loop(master, &fds, winch_r.as_fd());
    if let Some(old) = old_winch {
        // SAFETY: restoring the disposition that was there before.
        let _ = unsafe { sigaction(Signal::SIGWINCH, &old) };
        WINCH_PIPE.store(-1, Ordering::Relaxed);
    }
    return result;

    fn relay_loop(
        master: BorrowedFd<'_>,
        fds: &RelayFds<'_>,
        winch: BorrowedFd<'_>,
    ) -> Result<(), TtyError> {
        // Input goes into the master without blocking: a program that
        // prints a lot and reads nothing would otherwise fill the pty both
        // ways while we sat in write(2) instead of reading its output.
        set_nonblocking(master)?;
        let mut buf = [0u8; 16 * 1024];
        // Input read but not yet accepted by the master; stdin is not read
        // again until it is empty, so this stays one buffer long.
        let mut pending: Vec<u8> = Vec::new();
        let mut stdin_open = fds.stdin.is_some();
        loop {
            let master_events = if pending.is_empty() {
                PollFlags::POLLIN
            } else {
                PollFlags::POLLIN | PollFlags::POLLOUT
            };
            let mut pfds = vec![
                PollFd::new(master, master_events),
                PollFd::new(winch, PollFlags::POLLIN),
            ];
            let stdin_ix = match (stdin_open && pending.is_empty(), fds.stdin) {
                (true, Some(s)) => {
                    pfds.push(PollFd::new(s, PollFlags::POLLIN));
                    Some(pfds.len() - 1)
                }
                _ => None,
            };
            let exit_ix = fds.exited.map(|e| {
                pfds.push(PollFd::new(e, PollFlags::POLLIN));
                pfds.len() - 1
            });
            match poll(&mut pfds, PollTimeout::NONE) {
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(io::Error::from_raw_os_error(e as i32).into()),
                Ok(_) => {}
            }
            let revents = |i: usize| pfds[i].revents().unwrap_or(PollFlags::empty());
            let m = revents(0);
            let m_readable =
                m.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR);
            let m_writable = m.contains(PollFlags::POLLOUT);
            let w_ready = !revents(1).is_empty();
            let s_ready = stdin_ix.is_some_and(|i| !revents(i).is_empty());
            let e_ready = exit_ix.is_some_and(|i| !revents(i).is_empty());
            drop(pfds);
            if m_readable && !pump(master, fds.stdout, &mut buf)? {
                return Ok(());
            }
            if m_writable {
                feed(master, &mut pending)?;
            }
            if w_ready {
                while nix::unistd::read(winch.as_raw_fd(), &mut buf).is_ok_and(|n| n > 0) {}
                if let Some(host) = fds.winsize_from {
                    let _ = copy_winsize(host, master);
                }
            }
            if s_ready {
                let input = fds.stdin.expect("polled only when present");
                match read_some(input, &mut buf)? {
                    0 => stdin_open = false,
                    n => {
                        pending.extend_from_slice(&buf[..n]);
                        feed(master, &mut pending)?;
                    }
                }
            }
            if e_ready {
                drain(master, fds.stdout, &mut buf)?;
                return Ok(());
            }
        }
    }
}

fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), TtyError> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(fd.as_raw_fd(), FcntlArg::F_GETFL)
        .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    fcntl(
        fd.as_raw_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )
    .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    Ok(())
}

/// Writes as much of `pending` into the (non-blocking) master as it takes.
fn feed(master: BorrowedFd<'_>, pending: &mut Vec<u8>) -> Result<(), TtyError> {
    while !pending.is_empty() {
        match nix::unistd::write(master, pending) {
            Ok(n) => {
                pending.drain(..n);
            }
            Err(nix::Error::EINTR) => continue,
            Err(nix::Error::EAGAIN) => break,
            // The container is gone; its output is still to be read.
            Err(nix::Error::EIO) => {
                pending.clear();
                break;
            }
            Err(e) => return Err(io::Error::from_raw_os_error(e as i32).into()),
        }
    }
    Ok(())
}

/// One read from the master to `out`; false at EOF/EIO (no slave left).
fn pump(master: BorrowedFd<'_>, out: BorrowedFd<'_>, buf: &mut [u8]) -> Result<bool, TtyError> {
    match read_some(master, buf) {
        Ok(0) => Ok(false),
        Ok(n) => {
            write_all(out, &buf[..n])?;
            Ok(true)
        }
        Err(e) if e.raw_os_error() == Some(libc::EIO) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// After the container exited: what is still on its way through the pty.
/// Normally the slave is closed by then and the master says EIO right
/// after the last byte; if someone else still holds the slave, we stop
/// after a quiet 200 ms rather than wait for them.
fn drain(master: BorrowedFd<'_>, out: BorrowedFd<'_>, buf: &mut [u8]) -> Result<(), TtyError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut p = [PollFd::new(master, PollFlags::POLLIN)];
        match poll(&mut p, PollTimeout::from(200u8)) {
            Err(nix::Error::EINTR) => continue,
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => {
                if !pump(master, out, buf)? {
                    return Ok(());
                }
            }
        }
    }
}

fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::read(fd.as_raw_fd(), buf) {
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(io::Error::from_raw_os_error(e as i32)),
            Ok(n) => return Ok(n),
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Err(nix::Error::EINTR) | Err(nix::Error::EAGAIN) => continue,
            Err(e) => return Err(io::Error::from_raw_os_error(e as i32)),
            Ok(n) => data = &data[n..],
        }
    }
    Ok(())
}

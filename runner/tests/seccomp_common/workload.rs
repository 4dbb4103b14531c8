// A "Go-like" static program for the seccomp tests, compiled by the test
// with `rustc -C target-feature=+crt-static` (std only, no crates): it
// probes clone3, then uses what a modern runtime uses at start and under
// load: threads (glibc tries clone3 first, then clone), futexes (Mutex,
// Condvar, channels), epoll with an eventfd woken from another thread,
// std file io, a child process, and clocks. Prints `name=value` lines.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::sync::{mpsc, Arc, Condvar, Mutex};

#[repr(C, packed)]
struct EpollEvent {
    events: u32,
    data: u64,
}

extern "C" {
    fn syscall(nr: i64, ...) -> i64;
    fn __errno_location() -> *mut i32;
    fn epoll_create1(flags: i32) -> i32;
    fn epoll_ctl(epfd: i32, op: i32, fd: i32, event: *mut EpollEvent) -> i32;
    fn epoll_wait(epfd: i32, events: *mut EpollEvent, max: i32, timeout_ms: i32) -> i32;
    fn eventfd(initval: u32, flags: i32) -> i32;
}

const CLOEXEC: i32 = 0o2000000;

fn errno() -> i32 {
    // SAFETY: glibc's thread-local errno.
    unsafe { *__errno_location() }
}

fn main() {
    // clone3(NULL, 0): the kernel says EINVAL, the default filter ENOSYS.
    // SAFETY: invalid arguments, nothing is created.
    let r = unsafe { syscall(435, 0usize, 0usize) };
    println!("clone3={}", if r < 0 { errno() } else { 0 });

    let (tx, rx) = mpsc::channel();
    let threads: Vec<_> = (1..=8u64)
        .map(|i| {
            let tx = tx.clone();
            std::thread::spawn(move || tx.send((0..1000u64).map(|x| x * i).sum::<u64>()).unwrap())
        })
        .collect();
    drop(tx);
    let total: u64 = rx.iter().sum();
    for t in threads {
        t.join().unwrap();
    }
    println!("threads={total}");

    let pair = Arc::new((Mutex::new(0u32), Condvar::new()));
    let p2 = pair.clone();
    let waker = std::thread::spawn(move || {
        for _ in 0..100 {
            *p2.0.lock().unwrap() += 1;
            p2.1.notify_one();
        }
    });
    let mut n = pair.0.lock().unwrap();
    while *n < 100 {
        n = pair.1.wait(n).unwrap();
    }
    drop(n);
    waker.join().unwrap();
    println!("futex=ok");

    // SAFETY: plain fd-returning calls; the fds are owned by File below.
    let (efd, ep) = unsafe { (eventfd(0, CLOEXEC), epoll_create1(CLOEXEC)) };
    assert!(efd >= 0 && ep >= 0, "eventfd/epoll_create1: errno {}", errno());
    let mut ev = EpollEvent { events: 1, data: 7 };
    // SAFETY: valid fds and a live event struct.
    assert_eq!(unsafe { epoll_ctl(ep, 1, efd, &mut ev) }, 0, "epoll_ctl");
    // SAFETY: efd is ours and stays open while this File lives.
    let mut writer = unsafe { File::from_raw_fd(libc_dup(efd)) };
    let t = std::thread::spawn(move || writer.write_all(&5u64.to_ne_bytes()).unwrap());
    let mut out = EpollEvent { events: 0, data: 0 };
    // SAFETY: room for one event.
    let n = unsafe { epoll_wait(ep, &mut out, 1, 10_000) };
    t.join().unwrap();
    let data = out.data;
    // SAFETY: efd is owned from here on.
    let mut reader = unsafe { File::from_raw_fd(efd) };
    let mut buf = [0u8; 8];
    reader.read_exact(&mut buf).unwrap();
    println!("epoll={n} data={data} eventfd={}", u64::from_ne_bytes(buf));

    std::fs::create_dir_all("/tmp/w").unwrap();
    std::fs::write("/tmp/w/f", b"hello").unwrap();
    let back = std::fs::read_to_string("/tmp/w/f").unwrap();
    let entries = std::fs::read_dir("/tmp/w").unwrap().count();
    println!("io={back} entries={entries}");

    let st = std::process::Command::new("/bin/sh")
        .args(["-c", "exit 3"])
        .status()
        .unwrap();
    println!("child={}", st.code().unwrap_or(-1));

    let t0 = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_millis(5));
    println!("sleep={}", t0.elapsed() >= std::time::Duration::from_millis(5));
}

fn libc_dup(fd: i32) -> i32 {
    extern "C" {
        fn dup(fd: i32) -> i32;
    }
    // SAFETY: dup of an fd we own.
    unsafe { dup(fd) }
}

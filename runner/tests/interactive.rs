//! `rrun run -it` as a person uses it: in tmux, type, see output, resize,
//! exit. Needs tmux (apt-get install tmux).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn tmux(args: &[&str]) -> String {
    let o = Command::new("tmux")
        .args(args)
        .output()
        .expect("tmux is needed for this test: apt-get install tmux");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn wait_screen(session: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let screen = tmux(&["capture-pane", "-t", session, "-p"]);
        if screen.contains(needle) {
            return screen;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {needle:?} on the screen:\n{screen}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn it_shell_in_tmux_types_resizes_and_exits() {
    let session = format!("rrun-it-{}", std::process::id());
    let cmd = format!(
        "{RRUN} --root {} run -it --rm busybox sh; echo EXIT=$?; sleep 60",
        store_root().display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "120",
        "-y",
        "30",
        &cmd,
    ]);
    let _kill = KillOnDrop(session.clone());
    wait_screen(&session, "/ #");
    tmux(&[
        "send-keys",
        "-t",
        &session,
        "tty; stty size; echo $((6*7))",
        "Enter",
    ]);
    let screen = wait_screen(&session, "42");
    assert!(
        screen.contains("/dev/pts/0"),
        "not a pty of the container's devpts:\n{screen}"
    );
    assert!(
        screen.contains("30 120"),
        "window size not passed in:\n{screen}"
    );
    tmux(&["resize-window", "-t", &session, "-x", "100", "-y", "20"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux(&["send-keys", "-t", &session, "stty size", "Enter"]);
    wait_screen(&session, "20 100");
    tmux(&["send-keys", "-t", &session, "exit 3", "Enter"]);
    wait_screen(&session, "EXIT=3");
}

struct KillOnDrop(String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .output();
    }
}

#[test]
fn exec_it_into_a_running_container() {
    let o = rrun(&["run", "-d", "--name", "it-exec", "busybox", "sleep", "300"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let session = format!("rrun-exec-{}", std::process::id());
    let cmd = format!(
        "{RRUN} --root {} exec -it it-exec sh; echo EXIT=$?; sleep 60",
        store_root().display()
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "90",
        "-y",
        "25",
        &cmd,
    ]);
    let _kill = KillOnDrop(session.clone());
    wait_screen(&session, "/ #");
    tmux(&[
        "send-keys",
        "-t",
        &session,
        "tty; stty size; cat /proc/1/cmdline; echo; echo $((6*7))",
        "Enter",
    ]);
    let screen = wait_screen(&session, "42");
    assert!(
        screen.contains("/dev/pts/0") && screen.contains("25 90"),
        "{screen}"
    );
    assert!(
        screen.contains("sleep300"),
        "not in the container's pid namespace:\n{screen}"
    );
    tmux(&["send-keys", "-t", &session, "exit 4", "Enter"]);
    wait_screen(&session, "EXIT=4");
    assert_eq!(code(&rrun(&["rm", "-f", "it-exec"])), 0);
}

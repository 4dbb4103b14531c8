//! `rrun run -it busybox sh` as a person uses it: in a tmux pane, typing
//! commands, reading the screen, resizing the window, and `exit`, after
//! which the terminal must be back in its normal (cooked, echoing) mode.

mod common;

use std::time::Duration;

use fixtures::tmux::Pane;

use common::*;

const LINE_TIMEOUT: Duration = Duration::from_secs(15);

#[test]
fn interactive_shell_in_tmux() {
    let root = store_root();
    // After rrun, the pane's shell prints the exit code and whether the
    // terminal is cooked again (icanon and echo, not -icanon/-echo).
    let script = format!(
        "{RRUN} --root {} run -it --rm busybox sh; echo rrun-exit=$?; \
         echo modes: $(stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo)' | tr '\\n' ' '); sleep 600",
        root.display()
    );
    let tmux = Pane::start("rrun-tty-test", 100, 30, &script);

    // The shell's prompt shows; typing reaches it and its output comes back.
    tmux.wait_line("the container's prompt", LINE_TIMEOUT, |l| {
        l.ends_with("# ") || l.ends_with('#')
    });
    tmux.type_line("echo hi$((1+1))");
    tmux.wait_line("hi2", LINE_TIMEOUT, |l| l == "hi2");

    // Its terminal is a pty of the container's own devpts.
    tmux.type_line("tty");
    tmux.wait_line("/dev/pts/N from tty", LINE_TIMEOUT, |l| {
        l.starts_with("/dev/pts/")
    });

    // The window size is the pane's, and follows a resize (SIGWINCH).
    assert_eq!(tmux.size(), "30 100");
    tmux.type_line("stty size");
    tmux.wait_line("30 100", LINE_TIMEOUT, |l| l == "30 100");
    tmux.cmd(&["resize-window", "-t", "t", "-x", "120", "-y", "40"]);
    assert_eq!(tmux.size(), "40 120");
    std::thread::sleep(Duration::from_millis(300));
    tmux.cmd(&["send-keys", "-t", "t", "C-l"]);
    tmux.type_line("stty size");
    tmux.wait_line("40 120", LINE_TIMEOUT, |l| l == "40 120");

    // Ctrl-C reaches the container's foreground job, not rrun.
    tmux.type_line("sleep 30");
    std::thread::sleep(Duration::from_millis(300));
    tmux.cmd(&["send-keys", "-t", "t", "C-c"]);
    tmux.type_line("echo after-ctrl-c=$?");
    tmux.wait_line("after-ctrl-c=130", LINE_TIMEOUT, |l| {
        l == "after-ctrl-c=130"
    });

    tmux.type_line("exit 5");
    tmux.wait_line("rrun-exit=5", LINE_TIMEOUT, |l| l == "rrun-exit=5");
    let modes = tmux.wait_line("terminal modes", LINE_TIMEOUT, |l| l.starts_with("modes:"));
    assert!(
        modes.split_whitespace().any(|m| m == "icanon")
            && modes.split_whitespace().any(|m| m == "echo"),
        "terminal not restored after rrun: {modes}"
    );
}

//! `rrun run -it busybox sh` as a person uses it: in a tmux pane, typing
//! commands, reading the screen, resizing the window, and `exit`, after
//! which the terminal must be back in its normal (cooked, echoing) mode.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let o = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux must be installed for this test: apt-get install tmux");
        assert!(
            o.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "t"])
    }

    /// Waits until a screen line satisfies `pred`; panics with the screen.
    fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if let Some(l) = s.lines().find(|l| pred(l.trim_end())) {
                return l.trim_end().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "never saw {what} on the screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn type_line(&self, line: &str) {
        self.cmd(&["send-keys", "-t", "t", "-l", line]);
        self.cmd(&["send-keys", "-t", "t", "Enter"]);
    }

    fn pane_size(&self) -> String {
        self.cmd(&[
            "display-message",
            "-p",
            "-t",
            "t",
            "#{pane_height} #{pane_width}",
        ])
        .trim()
        .to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

#[test]
fn interactive_shell_in_tmux() {
    let root = store_root();
    let tmux = Tmux {
        socket: format!("rrun-tty-test-{}", std::process::id()),
    };
    // After rrun, the pane's shell prints the exit code and whether the
    // terminal is cooked again (icanon and echo, not -icanon/-echo).
    let script = format!(
        "{RRUN} --root {} run -it --rm busybox sh; echo rrun-exit=$?; \
         echo modes: $(stty -a | tr ' ;' '\\n\\n' | grep -xE -- '-?(icanon|echo)' | tr '\\n' ' '); sleep 600",
        root.display()
    );
    tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "t",
        "-x",
        "100",
        "-y",
        "30",
        "sh",
        "-c",
        &script,
    ]);
    tmux.cmd(&["set-option", "-g", "status", "off"]);

    // The shell's prompt shows; typing reaches it and its output comes back.
    tmux.wait_line("the container's prompt", |l| {
        l.ends_with("# ") || l.ends_with('#')
    });
    tmux.type_line("echo hi$((1+1))");
    tmux.wait_line("hi2", |l| l == "hi2");

    // Its terminal is a pty of the container's own devpts.
    tmux.type_line("tty");
    tmux.wait_line("/dev/pts/N from tty", |l| l.starts_with("/dev/pts/"));

    // The window size is the pane's, and follows a resize (SIGWINCH).
    assert_eq!(tmux.pane_size(), "30 100");
    tmux.type_line("stty size");
    tmux.wait_line("30 100", |l| l == "30 100");
    tmux.cmd(&["resize-window", "-t", "t", "-x", "120", "-y", "40"]);
    assert_eq!(tmux.pane_size(), "40 120");
    std::thread::sleep(Duration::from_millis(300));
    tmux.cmd(&["send-keys", "-t", "t", "C-l"]);
    tmux.type_line("stty size");
    tmux.wait_line("40 120", |l| l == "40 120");

    // Ctrl-C reaches the container's foreground job, not rrun.
    tmux.type_line("sleep 30");
    std::thread::sleep(Duration::from_millis(300));
    tmux.cmd(&["send-keys", "-t", "t", "C-c"]);
    tmux.type_line("echo after-ctrl-c=$?");
    tmux.wait_line("after-ctrl-c=130", |l| l == "after-ctrl-c=130");

    tmux.type_line("exit 5");
    tmux.wait_line("rrun-exit=5", |l| l == "rrun-exit=5");
    let modes = tmux.wait_line("terminal modes", |l| l.starts_with("modes:"));
    assert!(
        modes.split_whitespace().any(|m| m == "icanon")
            && modes.split_whitespace().any(|m| m == "echo"),
        "terminal not restored after rrun: {modes}"
    );
}

//! `rrun exec -it` as a person uses it: in a tmux pane, type, see output,
//! exit. (`rrun run -it` is tty_tmux.rs.) Needs tmux (apt-get install tmux).

mod common;

use std::time::Duration;

use fixtures::tmux::Pane;

use common::*;

const SCREEN_TIMEOUT: Duration = Duration::from_secs(15);

#[test]
fn exec_it_into_a_running_container() {
    let o = rrun(&["run", "-d", "--name", "it-exec", "busybox", "sleep", "300"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let script = format!(
        "{RRUN} --root {} exec -it it-exec sh; echo EXIT=$?; sleep 60",
        store_root().display()
    );
    let pane = Pane::start("rrun-exec", 90, 25, &script);
    pane.wait_screen("the prompt", SCREEN_TIMEOUT, |s| s.contains("/ #"));
    pane.type_line("tty; stty size; cat /proc/1/cmdline; echo; echo $((6*7))");
    let screen = pane.wait_screen("42", SCREEN_TIMEOUT, |s| {
        s.lines().any(|l| l.trim_end() == "42")
    });
    assert!(
        screen.contains("/dev/pts/0") && screen.contains("25 90"),
        "{screen}"
    );
    assert!(
        screen.contains("sleep300"),
        "not in the container's pid namespace:\n{screen}"
    );
    pane.type_line("exit 4");
    pane.wait_screen("EXIT=4", SCREEN_TIMEOUT, |s| s.contains("EXIT=4"));
    assert_eq!(code(&rrun(&["rm", "-f", "it-exec"])), 0);
}

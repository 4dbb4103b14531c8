//! `rbuild build --progress auto` on a real terminal (a tmux pane): the
//! tty view folds a running step to its last lines, collapses it to one
//! `=> …` line when it ends, and shows all of a failed step's output.

mod common;

use std::time::Duration;

use fixtures::tmux::Pane;

use common::*;

const SCREEN_TIMEOUT: Duration = Duration::from_secs(60);

/// A 120×50 tmux pane running `script`.
fn pane(name: &str, script: &str) -> Pane {
    Pane::start(&format!("rbuild-{name}"), 120, 50, script)
}

/// Prints fold-line-1 … fold-line-20, then waits `pause` seconds.
fn twenty_lines(pause: &str) -> String {
    format!("RUN i=1; while [ $i -le 20 ]; do echo fold-line-$i; i=$((i+1)); done; sleep {pause}")
}

fn shows(screen: &str, line: &str) -> bool {
    screen.lines().any(|l| l.trim_end().ends_with(line))
}

fn script_for(ctx: &std::path::Path, tag: &str) -> String {
    format!(
        "{RBUILD} --root {} build --progress auto --no-cache -t {tag} {}; echo rbuild-exit=$?; sleep 600",
        store_root().display(),
        ctx.display()
    )
}

#[test]
fn tty_view_folds_a_running_step_and_collapses_it_when_done() {
    let ctx = context(&[(
        "Containerfile",
        format!(
            "FROM busybox\n{}\nRUN echo second-step\n",
            twenty_lines("3")
        ),
    )]);
    let tmux = pane("fold", &script_for(ctx.path(), "tty:ok"));

    // While the step runs: its header and only its last lines.
    let live = tmux.wait_screen("the running step's last line", SCREEN_TIMEOUT, |s| {
        shows(s, "=> => # fold-line-20")
    });
    let header = live
        .lines()
        .find(|l| l.starts_with("=> [1/2] RUN i=1;"))
        .unwrap_or_else(|| panic!("no running step header:\n{live}"));
    assert!(
        header.trim_end().ends_with('s'),
        "no running time: {header}"
    );
    for i in 1..=20 {
        let want = i > 20 - 6;
        assert_eq!(
            shows(&live, &format!("fold-line-{i}")),
            want,
            "fold-line-{i} {} while the step runs:\n{live}",
            if want { "missing" } else { "shown" }
        );
    }

    // Done: one line per step, no output left.
    let done = tmux.wait_screen("the build's end", SCREEN_TIMEOUT, |s| {
        s.contains("rbuild-exit=")
    });
    assert!(done.contains("rbuild-exit=0"), "{done}");
    for i in 1..=20 {
        assert!(
            !shows(&done, &format!("fold-line-{i}")),
            "fold-line-{i} left on screen:\n{done}"
        );
    }
    assert!(
        !shows(&done, "second-step"),
        "output left on screen:\n{done}"
    );
    let step_lines: Vec<&str> = done.lines().filter(|l| l.starts_with("=> ")).collect();
    assert_eq!(step_lines.len(), 2, "{done}");
    assert!(step_lines[0].starts_with("=> [1/2] RUN i=1;"), "{done}");
    let time = step_lines[0].trim_end().rsplit(' ').next().unwrap();
    let secs: f64 = time
        .trim_end_matches('s')
        .parse()
        .unwrap_or_else(|_| panic!("{done}"));
    assert!(secs >= 2.9, "the step slept 3 s but shows {time}:\n{done}");
    assert!(
        step_lines[1].starts_with("=> [2/2] RUN echo second-step"),
        "{done}"
    );

    // Built again: the same steps, now CACHED.
    drop(tmux);
    let again = script_for(ctx.path(), "tty:ok").replace(" --no-cache", "");
    let tmux = pane("cached", &again);
    let done = tmux.wait_screen("the build's end", SCREEN_TIMEOUT, |s| {
        s.contains("rbuild-exit=")
    });
    assert!(done.contains("rbuild-exit=0"), "{done}");
    let cached = done
        .lines()
        .filter(|l| l.starts_with("=> CACHED ["))
        .count();
    assert_eq!(cached, 2, "{done}");
}

#[test]
fn tty_view_shows_all_of_a_failed_steps_output() {
    let ctx = context(&[(
        "Containerfile",
        format!("FROM busybox\n{} && exit 9\n", twenty_lines("0.2")),
    )]);
    let tmux = pane("fail", &script_for(ctx.path(), "tty:fail"));
    let done = tmux.wait_screen("the build's end", SCREEN_TIMEOUT, |s| {
        s.contains("rbuild-exit=")
    });
    assert!(done.contains("rbuild-exit=1"), "{done}");
    assert!(
        done.lines()
            .any(|l| l.starts_with("=> ERROR [1/1] RUN i=1;")),
        "{done}"
    );
    for i in 1..=20 {
        assert!(
            done.lines()
                .any(|l| l.trim_end() == format!("fold-line-{i}")),
            "fold-line-{i} of the failed step not shown:\n{done}"
        );
    }
    assert!(
        done.contains("Containerfile:2") && done.contains("exit code 9"),
        "{done}"
    );
}

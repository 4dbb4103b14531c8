//! `rbuild build --progress plain|quiet|auto` on real builds: where a RUN
//! step's output goes in each mode, and that a failing step's output is
//! shown in every mode.

mod common;

use std::collections::HashMap;

use common::*;

fn build(progress: &[&str], tag: &str, containerfile: &str) -> std::process::Output {
    let ctx = context(&[("Containerfile", containerfile)]);
    let mut args = vec!["build"];
    args.extend_from_slice(progress);
    args.extend(["--no-cache", "-t", tag, ctx.path().to_str().unwrap()]);
    rbuild(&args)
}

/// stdout of a successful build is the image's digest and nothing else.
fn assert_only_digest(out: &std::process::Output) {
    let so = stdout(out);
    assert!(
        (so.starts_with("sha256:") || so.starts_with("blake3:"))
            && so.trim_end().lines().count() == 1,
        "stdout must be the digest only:\n{so}"
    );
}

#[test]
fn quiet_build_shows_nothing_of_a_successful_run() {
    for flags in [&["--progress", "quiet"][..], &["-q"][..]] {
        let out = build(
            flags,
            "pq:ok",
            "FROM busybox\nRUN echo marker-xyz && echo marker-err-xyz >&2\n",
        );
        assert!(out.status.success(), "{flags:?}: {}", stderr(&out));
        let all = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            !all.contains("marker-xyz") && !all.contains("marker-err-xyz"),
            "{flags:?}: the RUN's output leaked:\n{all}"
        );
        assert!(stderr(&out).is_empty(), "{flags:?}: {}", stderr(&out));
        assert_only_digest(&out);
    }
}

#[test]
fn quiet_build_shows_a_failing_runs_output_exit_code_and_line() {
    let out = build(
        &["--progress", "quiet"],
        "pq:fail",
        "FROM busybox\nRUN echo fine\nRUN echo out-before-fail; echo err-before-fail >&2; exit 7\n",
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("out-before-fail"), "stdout lost:\n{err}");
    assert!(err.contains("err-before-fail"), "stderr lost:\n{err}");
    assert!(err.contains("Containerfile:3"), "line not named:\n{err}");
    assert!(err.contains("exit code 7"), "exit code not shown:\n{err}");
    assert!(
        err.contains("RUN echo out-before-fail"),
        "step not named:\n{err}"
    );
    assert!(
        !err.contains("fine"),
        "a successful step's output shown:\n{err}"
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

#[test]
fn quiet_failure_keeps_the_end_of_a_long_output() {
    // ~300 KiB: more than is kept, so the report says what was cut.
    let out = build(
        &["-q"],
        "pq:long",
        "FROM busybox\nRUN i=0; while [ $i -lt 12000 ]; do echo \"long-output-line-$i ..........\"; i=$((i+1)); done; echo the-last-words; exit 3\n",
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("the-last-words"),
        "{}",
        &err[err.len().saturating_sub(2000)..]
    );
    assert!(
        err.contains("long-output-line-11999 "),
        "the last lines are kept"
    );
    assert!(
        !err.contains("long-output-line-0 "),
        "more than the kept tail shown"
    );
    assert!(
        err.contains("earlier bytes of output not kept"),
        "the cut is not said"
    );
    assert!(err.contains("exit code 3"));
}

/// `#N` of each `#N [stage …] HEADER` line.
fn step_numbers(err: &str) -> HashMap<String, String> {
    err.lines()
        .filter_map(|l| {
            let (n, rest) = l.split_once(' ')?;
            rest.starts_with('[')
                .then(|| (rest.to_string(), n.to_string()))
        })
        .collect()
}

/// Lines `#N 1.234 TEXT` as (N, TEXT).
fn output_lines(err: &str) -> Vec<(String, String)> {
    err.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ' ');
            let (n, t, text) = (it.next()?, it.next()?, it.next()?);
            let time_ok = t.split_once('.').is_some_and(|(s, ms)| {
                s.chars().all(|c| c.is_ascii_digit())
                    && ms.len() == 3
                    && ms.chars().all(|c| c.is_ascii_digit())
            });
            (n.starts_with('#') && time_ok).then(|| (n.to_string(), text.to_string()))
        })
        .collect()
}

#[test]
fn plain_streams_run_output_with_the_steps_number_and_time() {
    let out = build(
        &["--progress", "plain"],
        "pp:1",
        "FROM busybox\nRUN echo plain-out-1 && echo plain-err-2 >&2 && printf no-newline\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let steps = step_numbers(&err);
    let (_, n) = steps
        .iter()
        .find(|(h, _)| h.contains("RUN echo plain-out-1"))
        .unwrap_or_else(|| panic!("no step header:\n{err}"));
    let lines = output_lines(&err);
    for want in ["plain-out-1", "plain-err-2", "no-newline"] {
        assert!(
            lines.iter().any(|(m, t)| m == n && t == want),
            "{want} not streamed as '{n} <time> {want}':\n{err}"
        );
    }
    assert!(err.contains(&format!("{n} DONE ")), "{err}");
    assert_only_digest(&out);
}

#[test]
fn auto_without_a_terminal_is_plain() {
    let out = build(&[], "pa:1", "FROM busybox\nRUN echo auto-marker\n");
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        !err.contains('\x1b'),
        "escape codes without a terminal:\n{err:?}"
    );
    assert!(
        output_lines(&err).iter().any(|(_, t)| t == "auto-marker"),
        "{err}"
    );
}

#[test]
fn parallel_stages_keep_their_step_numbers_apart() {
    let out = build(
        &["--progress", "plain"],
        "pp:par",
        "FROM busybox AS left\nRUN for i in 1 2 3 4 5; do echo left-$i; sleep 0.1; done\n\
         FROM busybox AS right\nRUN for i in 1 2 3 4 5; do echo right-$i; sleep 0.1; done\n\
         FROM busybox\nCOPY --from=left /etc/hostname /l\nCOPY --from=right /etc/hostname /r\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let steps = step_numbers(&err);
    let num = |side: &str| {
        steps
            .iter()
            .find(|(h, _)| h.starts_with(&format!("[{side} ")))
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| panic!("no {side} step:\n{err}"))
    };
    let (l, r) = (num("left"), num("right"));
    assert_ne!(l, r, "two stages' steps share a number:\n{err}");
    for (n, text) in output_lines(&err) {
        if text.starts_with("left-") {
            assert_eq!(n, l, "{text} under the wrong step:\n{err}");
        }
        if text.starts_with("right-") {
            assert_eq!(n, r, "{text} under the wrong step:\n{err}");
        }
    }
    assert_eq!(
        output_lines(&err)
            .iter()
            .filter(|(_, t)| t.starts_with("left-") || t.starts_with("right-"))
            .count(),
        10,
        "{err}"
    );
}

/// A generated Containerfile may hold a line of megabytes (a blob in a
/// LABEL): the build takes it, and the progress output shows its start
/// and how much was cut, not the whole line.
#[test]
fn a_huge_instruction_line_is_cut_in_the_progress_output() {
    let blob = "x".repeat(4 << 20);
    let file = format!("FROM busybox\nLABEL blob={blob}\nRUN echo after-blob\n");
    let out = build(&["--progress", "plain"], "pp:huge", &file);
    assert!(
        out.status.success(),
        "{}",
        &stderr(&out)[..2000.min(stderr(&out).len())]
    );
    let err = stderr(&out);
    assert!(err.len() < 4096, "progress echoed {} bytes", err.len());
    let cut = 200 - "LABEL blob=".len();
    let more = blob.len() - cut;
    assert!(
        err.contains(&format!(
            "LABEL blob={}... ({more} more bytes)",
            &blob[..cut]
        )),
        "{err}"
    );
    assert!(
        output_lines(&err).iter().any(|(_, t)| t == "after-blob"),
        "{err}"
    );
}

//! The renderer driven with a fake clock and a buffer for a terminal; a
//! small screen model applies the escapes it writes, so the tests check
//! what a person would see, not the escape codes.

use std::time::{Duration, Instant};

use super::render::{End, Renderer, Style, FOLD_LINES};

/// Enough of a terminal for what the renderer writes: text, '\n',
/// `ESC [ n F` (up n rows, column 0), `ESC [ J` (clear below), SGR colours.
#[derive(Default)]
struct Screen {
    rows: Vec<String>,
    row: usize,
}

impl Screen {
    fn feed(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let mut chars = text.chars().peekable();
        if self.rows.is_empty() {
            self.rows.push(String::new());
        }
        while let Some(c) = chars.next() {
            match c {
                '\x1b' => {
                    assert_eq!(chars.next(), Some('['), "only CSI sequences are written");
                    let mut param = String::new();
                    let fin = loop {
                        let c = chars.next().expect("a complete escape sequence");
                        if c.is_ascii_digit() || c == ';' {
                            param.push(c);
                        } else {
                            break c;
                        }
                    };
                    match fin {
                        'F' => {
                            let n: usize = param.parse().unwrap_or(1);
                            assert!(n <= self.row, "moved above the top of the screen");
                            self.row -= n;
                        }
                        'J' => {
                            self.rows.truncate(self.row);
                            self.rows.push(String::new());
                        }
                        'm' => {}
                        other => panic!("unexpected escape ending in {other:?}"),
                    }
                }
                '\n' => {
                    self.row += 1;
                    if self.rows.len() <= self.row {
                        self.rows.push(String::new());
                    }
                }
                c => self.rows[self.row].push(c),
            }
        }
    }

    fn text(&self) -> String {
        self.rows.join("\n")
    }
}

fn screen_of(r: &Renderer<Vec<u8>>) -> Screen {
    let mut s = Screen::default();
    s.feed(r.writer());
    s
}

fn lines(range: std::ops::RangeInclusive<u32>) -> Vec<u8> {
    range
        .map(|i| format!("line-{i:02}\n"))
        .collect::<String>()
        .into_bytes()
}

const T: Duration = Duration::from_millis(100);

#[test]
fn a_running_step_shows_its_header_and_only_its_last_lines() {
    let t0 = Instant::now();
    let mut r = Renderer::new(Style::Tty, Vec::new());
    r.begin(1, "[stage 2/5] RUN make".into(), t0);
    r.output(1, &lines(1..=20), t0 + 12 * T);
    let s = screen_of(&r);
    let text = s.text();
    assert!(s.rows[0].starts_with("=> [stage 2/5] RUN make"), "{text}");
    assert!(s.rows[0].ends_with("1.2s"), "{text}");
    for i in 1..=20 {
        let shown = text.contains(&format!("line-{i:02}"));
        assert_eq!(shown, i > 20 - FOLD_LINES as u32, "line-{i:02}:\n{text}");
    }
    assert!(text.contains("=> => # line-20"), "{text}");
}

#[test]
fn a_finished_step_collapses_to_one_line_with_its_time() {
    let t0 = Instant::now();
    let mut r = Renderer::new(Style::Tty, Vec::new());
    r.begin(1, "[stage 2/5] RUN make".into(), t0);
    r.output(1, &lines(1..=20), t0 + T);
    r.output(1, b"no newline at the end", t0 + 2 * T);
    r.end(1, End::Done, t0 + 4 * T);
    r.finish(t0 + 5 * T);
    let s = screen_of(&r);
    let text = s.text();
    assert!(!text.contains("line-"), "output left on screen:\n{text}");
    assert!(!text.contains("no newline"), "{text}");
    let shown: Vec<&str> = s
        .rows
        .iter()
        .map(String::as_str)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(shown.len(), 1, "{text}");
    assert!(shown[0].starts_with("=> [stage 2/5] RUN make"), "{text}");
    assert!(shown[0].ends_with(" 0.4s"), "{text}");
}

#[test]
fn cached_and_metadata_steps_are_one_line_each() {
    let t0 = Instant::now();
    let mut r = Renderer::new(Style::Tty, Vec::new());
    r.begin(1, "[s 1/3] FROM busybox".into(), t0);
    r.end(1, End::Meta, t0);
    r.begin(2, "[s 2/3] RUN true".into(), t0);
    r.end(2, End::Cached, t0);
    r.begin(3, "[s 3/3] ENV A=b".into(), t0);
    r.end(3, End::Meta, t0);
    r.finish(t0);
    let s = screen_of(&r);
    let shown: Vec<&str> = s
        .rows
        .iter()
        .map(String::as_str)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(shown.len(), 3, "{}", s.text());
    assert!(shown[0].starts_with("=> [s 1/3] FROM busybox"));
    assert_eq!(shown[1], "=> CACHED [s 2/3] RUN true");
    assert!(shown[2].starts_with("=> [s 3/3] ENV A=b"));
}

#[test]
fn a_failed_step_shows_all_of_its_output() {
    let t0 = Instant::now();
    let mut r = Renderer::new(Style::Tty, Vec::new());
    r.begin(1, "[stage 2/2] RUN ./test.sh".into(), t0);
    r.output(1, &lines(1..=20), t0 + T);
    r.end(
        1,
        End::Failed("Containerfile:2: exit code 3".into()),
        t0 + 3 * T,
    );
    r.finish(t0 + 3 * T);
    let text = screen_of(&r).text();
    assert!(
        text.contains("=> ERROR [stage 2/2] RUN ./test.sh"),
        "{text}"
    );
    for i in 1..=20 {
        assert!(
            text.contains(&format!("\nline-{i:02}\n")),
            "line-{i:02} lost:\n{text}"
        );
    }
    assert!(text.contains(" > [stage 2/2] RUN ./test.sh:"), "{text}");
}

#[test]
fn parallel_steps_keep_their_own_lines() {
    let t0 = Instant::now();
    let mut r = Renderer::new(Style::Tty, Vec::new());
    r.begin(1, "[left 2/2] RUN a".into(), t0);
    r.begin(2, "[right 2/2] RUN b".into(), t0);
    r.output(1, b"from-left\n", t0 + T);
    r.output(2, b"from-right\n", t0 + 2 * T);
    let s = screen_of(&r);
    let rows: Vec<&str> = s
        .rows
        .iter()
        .map(String::as_str)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 4, "{}", s.text());
    assert!(rows[0].starts_with("=> [left 2/2] RUN a"));
    assert_eq!(rows[1], "=> => # from-left");
    assert!(rows[2].starts_with("=> [right 2/2] RUN b"));
    assert_eq!(rows[3], "=> => # from-right");

    r.end(1, End::Done, t0 + 3 * T);
    let s = screen_of(&r);
    let rows: Vec<&str> = s
        .rows
        .iter()
        .map(String::as_str)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 3, "{}", s.text());
    assert!(rows[0].starts_with("=> [left 2/2] RUN a") && rows[0].ends_with("0.3s"));
    assert!(rows[1].starts_with("=> [right 2/2] RUN b"));
    assert_eq!(rows[2], "=> => # from-right");
}

#[test]
fn output_redraws_are_throttled_and_the_tick_catches_up() {
    let t0 = Instant::now();
    let mut r = Renderer::new(Style::Tty, Vec::new());
    r.begin(1, "[s 1/1] RUN x".into(), t0);
    r.output(1, b"first\n", t0);
    r.output(1, b"second\n", t0 + Duration::from_millis(10));
    assert!(
        !screen_of(&r).text().contains("second"),
        "redrawn within 10 ms"
    );
    r.tick(t0 + T);
    assert!(screen_of(&r).text().contains("=> => # second"));
}

#[test]
fn rows_never_wrap_and_control_characters_never_reach_the_terminal() {
    let t0 = Instant::now();
    let mut r = Renderer::new(Style::Tty, Vec::new());
    r.set_width(40);
    r.begin(1, format!("[s 1/1] RUN {}", "x".repeat(100)), t0);
    r.output(
        1,
        format!("{}\n10%\r99%\x1b[2J\n", "y".repeat(100)).as_bytes(),
        t0,
    );
    let s = screen_of(&r);
    for row in &s.rows {
        assert!(
            row.chars().count() < 40,
            "row wider than the terminal: {row:?}"
        );
    }
    assert!(s.rows.iter().any(|l| l == "=> => # 99%[2J"), "{}", s.text());
}

#[test]
fn plain_prefixes_every_line_with_its_step_and_time() {
    let t0 = Instant::now();
    let mut r = Renderer::new(Style::Plain, Vec::new());
    r.begin(5, "[stage 2/3] RUN echo hi".into(), t0);
    r.output(5, b"hi\npart", t0 + Duration::from_millis(123));
    r.end(5, End::Done, t0 + 4 * T);
    r.begin(6, "[stage 3/3] RUN true".into(), t0);
    r.end(6, End::Cached, t0);
    let text = String::from_utf8(r.writer().clone()).unwrap();
    assert_eq!(
        text,
        "#5 [stage 2/3] RUN echo hi\n#5 0.123 hi\n#5 0.400 part\n#5 DONE 0.4s\n\
         #6 [stage 3/3] RUN true\n#6 CACHED\n"
    );
}

#[test]
fn quiet_prints_nothing_unless_a_step_fails_and_then_its_output() {
    let t0 = Instant::now();
    let mut r = Renderer::new(Style::Quiet, Vec::new());
    r.begin(1, "[s 1/2] RUN echo marker".into(), t0);
    r.output(1, b"marker\n", t0);
    r.end(1, End::Done, t0);
    r.note("warning: unused", t0);
    assert!(r.writer().is_empty());
    r.begin(2, "[s 2/2] RUN false".into(), t0);
    r.attach(2);
    r.output(2, b"why it failed\n", t0);
    r.end(2, End::Failed("Containerfile:2: exit code 1".into()), t0);
    let text = String::from_utf8(r.writer().clone()).unwrap();
    assert_eq!(
        text,
        "------\n > [s 2/2] RUN false:\nwhy it failed\n------\n"
    );
}

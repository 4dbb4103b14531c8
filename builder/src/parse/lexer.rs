//! Turns the text of a Containerfile into logical lines: parser directives
//! read, comments and blank lines dropped, continuations joined, and the
//! bodies of heredocs (`RUN <<EOF … EOF`) taken out of the line stream the
//! way BuildKit does it.

use super::error::{ErrorKind, ParseError};
use super::heredoc::{find_markers, Heredoc};

/// One instruction as written, before its arguments are interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogicalLine {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// The instruction word as written (`run`, `RUN`).
    pub keyword: String,
    /// Everything after the keyword, continuations joined, trimmed.
    pub rest: String,
    pub heredocs: Vec<Heredoc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lexed {
    pub escape: char,
    pub lines: Vec<LogicalLine>,
}

/// Instructions whose lines may carry heredocs (BuildKit's list), also
/// as the trigger of an ONBUILD.
fn takes_heredocs(keyword: &str, rest: &str) -> bool {
    let direct = |k: &str| {
        ["RUN", "COPY", "ADD"]
            .iter()
            .any(|h| h.eq_ignore_ascii_case(k))
    };
    if keyword.eq_ignore_ascii_case("ONBUILD") {
        let mut words = rest.split_whitespace();
        let trigger = words.next().unwrap_or("");
        let after = rest.get(trigger.len()..).unwrap_or("").trim_start();
        return direct(trigger) && !after.starts_with('[');
    }
    direct(keyword) && !rest.starts_with('[')
}

/// `# key=value` with a key made of letters and digits.
fn directive(line: &str) -> Option<(String, String)> {
    let body = line.strip_prefix('#')?.trim_start();
    let eq = body.find('=')?;
    let key = body.get(..eq)?.trim_end();
    let value = body.get(eq + 1..)?.trim();
    let mut chars = key.chars();
    if !chars.next()?.is_ascii_alphabetic() || !chars.all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    if value.is_empty() {
        return None;
    }
    Some((key.to_ascii_lowercase(), value.to_string()))
}

/// A line continues when its last non-blank character is the escape char,
/// unless that is itself escaped (`echo \\` ends the line), as in Docker.
fn strip_continuation(line: &str, escape: char) -> (&str, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix(escape) {
        Some(body) if !body.ends_with(escape) => (body, true),
        _ => (line, false),
    }
}

fn is_skippable(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with('#')
}

pub(crate) fn lex(file: &str, text: &str) -> Result<Lexed, ParseError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let phys: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let err = |line: usize, kind| Err(ParseError::new(file, line, kind));

    // Directives are only read at the very top; the first line that is not
    // a known directive ends them (an unknown one is then just a comment).
    let mut escape = '\\';
    let mut seen: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(line) = phys.get(i) {
        let Some((key, value)) = directive(line) else {
            break;
        };
        if !matches!(key.as_str(), "escape" | "syntax" | "check") {
            break;
        }
        if seen.contains(&key) {
            return err(
                i + 1,
                ErrorKind::Directive(format!("only one \"{key}\" directive may be given")),
            );
        }
        if key == "escape" {
            escape = match value.as_str() {
                "\\" => '\\',
                "`" => '`',
                other => {
                    return err(
                        i + 1,
                        ErrorKind::Directive(format!(
                            "invalid escape character {other:?}: must be \\ or `"
                        )),
                    )
                }
            };
        }
        // `syntax` names a frontend image and `check` configures lints:
        // both are BuildKit features we recognise and ignore.
        seen.push(key);
        i += 1;
    }

    let mut lines = Vec::new();
    while let Some(first) = phys.get(i) {
        if is_skippable(first) {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut joined = String::new();
        let mut cur = *first;
        loop {
            let (body, continues) = strip_continuation(cur, escape);
            joined.push_str(body);
            i += 1;
            if !continues {
                break;
            }
            // Comment and blank lines inside a continued instruction are
            // dropped, as Docker does.
            while phys.get(i).is_some_and(|l| is_skippable(l)) {
                i += 1;
            }
            match phys.get(i) {
                Some(next) => cur = next,
                None => break,
            }
        }
        let joined = joined.trim();
        let (keyword, rest) = match joined.find(|c: char| c.is_whitespace()) {
            Some(at) => (
                joined.get(..at).unwrap_or(joined),
                joined.get(at..).unwrap_or("").trim(),
            ),
            None => (joined, ""),
        };
        let mut heredocs = Vec::new();
        if takes_heredocs(keyword, rest) {
            for marker in find_markers(rest, escape) {
                let mut content = String::new();
                loop {
                    let Some(body_line) = phys.get(i) else {
                        return err(
                            start,
                            ErrorKind::UnterminatedHeredoc {
                                name: marker.name.clone(),
                            },
                        );
                    };
                    i += 1;
                    let body_line = if marker.strip_tabs {
                        body_line.trim_start_matches('\t')
                    } else {
                        body_line
                    };
                    if body_line == marker.name {
                        break;
                    }
                    content.push_str(body_line);
                    content.push('\n');
                }
                heredocs.push(Heredoc {
                    name: marker.name,
                    content,
                    expand: !marker.quoted,
                    strip_tabs: marker.strip_tabs,
                });
            }
        }
        lines.push(LogicalLine {
            line: start,
            keyword: keyword.to_string(),
            rest: rest.to_string(),
            heredocs,
        });
    }
    Ok(Lexed { escape, lines })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lx(s: &str) -> Lexed {
        lex("Containerfile", s).unwrap()
    }

    #[test]
    fn continuation_comments_blank() {
        let l = lx("# a comment\n\nFROM x\nRUN echo a \\\n  # inner comment\n\n  b\n");
        assert_eq!(l.lines.len(), 2);
        assert_eq!(l.lines[1].line, 4);
        assert_eq!(l.lines[1].keyword, "RUN");
        assert_eq!(l.lines[1].rest, "echo a   b");
    }

    #[test]
    fn escape_directive_backtick() {
        let l = lx("# escape=`\nFROM x\nRUN dir c:\\ `\n  /w\n");
        assert_eq!(l.escape, '`');
        assert_eq!(l.lines[1].rest, "dir c:\\   /w");
    }

    #[test]
    fn directives_only_at_top() {
        let l = lx("FROM x\n# escape=`\nRUN a `\n");
        assert_eq!(l.escape, '\\');
        let l = lx("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\n");
        assert_eq!(l.escape, '`');
        // An unknown directive ends directive scanning.
        let l = lx("# foo=bar\n# escape=`\nFROM x\n");
        assert_eq!(l.escape, '\\');
    }

    #[test]
    fn heredoc_bodies() {
        let l = lx("FROM x\nRUN <<EOF\necho hi\n  # not a comment\nEOF\nRUN <<-A cat <<\"B\"\n\t\tone\n\tA\ntwo $X\nB\n");
        let r = &l.lines[1];
        assert_eq!(r.heredocs.len(), 1);
        assert_eq!(r.heredocs[0].content, "echo hi\n  # not a comment\n");
        let r = &l.lines[2];
        assert_eq!(r.line, 6);
        assert_eq!(r.heredocs[0].name, "A");
        assert_eq!(r.heredocs[0].content, "one\n");
        assert!(r.heredocs[0].expand);
        assert_eq!(r.heredocs[1].name, "B");
        assert!(!r.heredocs[1].expand);
        assert_eq!(r.heredocs[1].content, "two $X\n");
    }

    #[test]
    fn unterminated_heredoc() {
        let e = lex("Containerfile", "FROM x\n\nRUN <<EOF\necho\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(matches!(*e.kind, ErrorKind::UnterminatedHeredoc { .. }));
    }

    #[test]
    fn crlf_and_bom() {
        let l = lx("\u{feff}FROM x\r\nRUN a \\\r\n b\r\n");
        assert_eq!(l.lines[1].rest, "a  b");
    }
}

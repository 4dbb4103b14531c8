//! Splitting instruction arguments into words, and the JSON exec form.

/// Splits on whitespace outside quotes. Quotes and escapes stay in the
/// words: removing them is the expander's job, so that `"$A"` can still be
/// expanded after the split.
pub(crate) fn split_words(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                } else if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            None => {
                in_word = true;
                word.push(c);
                if c == '"' || c == '\'' {
                    quote = Some(c);
                } else if c == escape {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The exec form: a JSON array of strings. `None` when the text does not
/// parse as one, in which case Docker treats it as shell form.
pub(crate) fn parse_json_array(s: &str) -> Option<Vec<String>> {
    let t = s.trim();
    if !t.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

/// Splits `rest` into leading `--flag[=value]` words and the remainder,
/// as Docker's flag extraction does: flags end at the first word that does
/// not start with `--`, or after a bare `--`.
pub(crate) fn take_flags(rest: &str, escape: char) -> (Vec<String>, String) {
    let mut flags = Vec::new();
    let mut s = rest.trim_start();
    loop {
        if !s.starts_with("--") {
            break;
        }
        let end = first_unquoted_space(s, escape);
        let word = s.get(..end).unwrap_or(s);
        s = s.get(end..).unwrap_or("").trim_start();
        if word == "--" {
            break;
        }
        flags.push(word.get(2..).unwrap_or("").to_string());
    }
    (flags, s.to_string())
}

fn first_unquoted_space(s: &str, escape: char) -> usize {
    let mut quote: Option<char> = None;
    let mut skip = false;
    for (i, c) in s.char_indices() {
        if skip {
            skip = false;
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c.is_whitespace() => return i,
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == escape => skip = true,
            None => {}
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(
            split_words(r#"a "b c"  'd e' f\ g "h\"i""#, '\\'),
            vec!["a", "\"b c\"", "'d e'", "f\\ g", "\"h\\\"i\""]
        );
        assert!(split_words("   ", '\\').is_empty());
    }

    #[test]
    fn json() {
        assert_eq!(
            parse_json_array(r#"["a", "b c"]"#),
            Some(vec!["a".into(), "b c".into()])
        );
        assert_eq!(parse_json_array("[a, b]"), None);
        assert_eq!(parse_json_array("echo"), None);
        assert_eq!(parse_json_array("[1]"), None);
    }

    #[test]
    fn flags() {
        let (f, r) = take_flags("--from=build --chown=\"a b\" src dst", '\\');
        assert_eq!(f, vec!["from=build", "chown=\"a b\""]);
        assert_eq!(r, "src dst");
        let (f, r) = take_flags("-- --notaflag x", '\\');
        assert!(f.is_empty());
        assert_eq!(r, "--notaflag x");
    }
}

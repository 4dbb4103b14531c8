//! Glob patterns as Docker's patternmatcher reads them: `*` and `?` within
//! one path component, `**` across components (`**/` or `**` before more
//! pattern: zero or more whole directories; `**` at the end: anything),
//! `[...]` classes (`^` negates), `\` escapes. Matching is a small
//! dynamic program (no regex, no backtracking), so a hostile pattern costs
//! at most pattern length × path length.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    Lit(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `**` at the end: anything, separators included.
    Any,
    /// `**` or `**/` before more pattern: zero or more whole directories
    /// (`(.*/)?` in Docker's regexp).
    Dirs,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

pub(crate) fn compile(p: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            '*' => {
                if chars.get(i) == Some(&'*') {
                    while chars.get(i) == Some(&'*') {
                        i += 1;
                    }
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i >= chars.len() {
                        toks.push(Tok::Any);
                    } else {
                        toks.push(Tok::Dirs);
                    }
                } else {
                    toks.push(Tok::Star);
                }
            }
            '?' => toks.push(Tok::One),
            '\\' => match chars.get(i) {
                Some(&n) => {
                    i += 1;
                    toks.push(Tok::Lit(n));
                }
                None => return Err("ends with an escaping backslash".into()),
            },
            '[' => {
                let mut negated = false;
                // Only '^' negates, as in Go's regexp that Docker uses.
                if chars.get(i) == Some(&'^') {
                    negated = true;
                    i += 1;
                }
                let mut ranges = Vec::new();
                let mut first = true;
                loop {
                    let mut lo = match chars.get(i) {
                        None => return Err("unterminated [ character class".into()),
                        Some(']') if !first => {
                            i += 1;
                            break;
                        }
                        Some(&c) => c,
                    };
                    first = false;
                    i += 1;
                    if lo == '\\' {
                        lo = *chars.get(i).ok_or("unterminated [ character class")?;
                        i += 1;
                    }
                    let mut hi = lo;
                    if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
                        i += 1;
                        hi = *chars.get(i).ok_or("unterminated [ character class")?;
                        i += 1;
                        if hi == '\\' {
                            hi = *chars.get(i).ok_or("unterminated [ character class")?;
                            i += 1;
                        }
                        if hi < lo {
                            return Err(format!("bad range {lo}-{hi} in character class"));
                        }
                    }
                    ranges.push((lo, hi));
                }
                toks.push(Tok::Class { negated, ranges });
            }
            c => toks.push(Tok::Lit(c)),
        }
    }
    Ok(toks)
}

/// Does the whole of `text` match `toks`? `next[j]` holds whether
/// `toks[i+1..]` matches `text[j..]` while row `i` is computed.
pub(crate) fn matches(toks: &[Tok], text: &[char]) -> bool {
    let n = text.len();
    let mut next = vec![false; n + 1];
    if let Some(last) = next.last_mut() {
        *last = true;
    }
    let mut cur = vec![false; n + 1];
    for tok in toks.iter().rev() {
        // For Dirs: whether some '/' at k >= j has next[k+1].
        let mut slash_ahead = false;
        for j in (0..=n).rev() {
            let ch = text.get(j).copied();
            let after = next.get(j + 1).copied().unwrap_or(false);
            let further = cur.get(j + 1).copied().unwrap_or(false);
            cur[j] = match tok {
                Tok::Lit(c) => ch == Some(*c) && after,
                Tok::One => ch.is_some_and(|c| c != '/') && after,
                Tok::Star => next[j] || (ch.is_some_and(|c| c != '/') && further),
                Tok::Any => next[j] || (ch.is_some() && further),
                Tok::Dirs => {
                    if ch == Some('/') && after {
                        slash_ahead = true;
                    }
                    next[j] || slash_ahead
                }
                Tok::Class { negated, ranges } => match ch {
                    Some(c) if c != '/' => {
                        let inside = ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi);
                        inside != *negated && after
                    }
                    _ => false,
                },
            };
        }
        std::mem::swap(&mut next, &mut cur);
    }
    next.first().copied().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_tokens() {
        let m = |p: &str, t: &str| matches(&compile(p).unwrap(), &t.chars().collect::<Vec<_>>());
        assert!(m("*.txt", "a.txt"));
        assert!(!m("*.txt", "d/a.txt"));
        assert!(m("**/*.txt", "a.txt"));
        assert!(m("**/*.txt", "d/e/a.txt"));
        assert!(m("d/**", "d/e/f"));
        assert!(m("a/**/b", "a/b"));
        assert!(m("a/**/b", "a/x/y/b"));
        assert!(!m("a/**/b", "a/xb"));
        assert!(m("?.c", "x.c"));
        assert!(!m("?.c", "/.c"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("[!a-c]x", "!x"));
        assert!(!m("[!a-c]x", "dx"));
        assert!(m("**", "any/thing"));
        assert!(m("a**", "abc/d"));
        assert!(m("a**b", "ax/b"));
        assert!(!m("a**b", "axb"));
        assert!(m("**.txt", ".txt"));
        assert!(!m("**.txt", "a.txt"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(compile("[abc").is_err());
        assert!(compile("abc\\").is_err());
    }
}

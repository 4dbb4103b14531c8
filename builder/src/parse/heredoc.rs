//! Heredocs as BuildKit has them: `RUN <<EOF`, `<<-EOF` (leading tabs
//! stripped), `<<"EOF"` (no expansion), several on one line, and
//! `COPY <<EOF /dest` creating a file.

use super::words::split_words;

/// A heredoc body taken from the lines after an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter, quotes removed; for COPY/ADD also the file name.
    pub name: String,
    /// The body, each line ending in '\n', tabs already stripped for `<<-`.
    pub content: String,
    /// False when the delimiter was quoted: the body is taken literally.
    pub expand: bool,
    /// Written as `<<-NAME`.
    pub strip_tabs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    pub name: String,
    pub quoted: bool,
    pub strip_tabs: bool,
}

/// Parses one word as a heredoc marker: optional fd digits, `<<`, optional
/// `-`, then a delimiter containing no `<`.
pub(crate) fn parse_marker(word: &str, escape: char) -> Option<Marker> {
    let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let after = w.strip_prefix("<<")?;
    let (strip_tabs, raw) = match after.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, after),
    };
    if raw.is_empty() || raw.contains('<') {
        return None;
    }
    let quoted = raw.contains(['"', '\'']) || raw.contains(escape);
    let name: String = raw
        .chars()
        .filter(|&c| c != '"' && c != '\'' && c != escape)
        .collect();
    if name.is_empty() {
        return None;
    }
    Some(Marker {
        name,
        quoted,
        strip_tabs,
    })
}

/// Every heredoc marker among the words of an instruction, in order.
pub(crate) fn find_markers(rest: &str, escape: char) -> Vec<Marker> {
    split_words(rest, escape)
        .iter()
        .filter_map(|w| parse_marker(w, escape))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers() {
        let m = find_markers(r#"<<EOF cat <<-"X" 3<<'Y' "<<NO" <<<here"#, '\\');
        let names: Vec<_> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, vec!["EOF", "X", "Y"]);
        assert!(!m[0].quoted && m[1].quoted && m[2].quoted);
        assert!(m[1].strip_tabs);
        assert!(parse_marker("<<", '\\').is_none());
        assert!(parse_marker("<<-", '\\').is_none());
    }
}

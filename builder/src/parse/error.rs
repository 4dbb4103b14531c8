//! Parse errors. Every error carries the file and the line it is about, so
//! the message a user sees is `Containerfile:7: unknown instruction "RUNN"
//! (did you mean RUN?)`.

use std::fmt;

/// An error found while reading a Containerfile, expanding one of its
/// instructions or planning its stages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// The file as the user named it (`Containerfile`, `build/Dockerfile`).
    pub file: String,
    /// 1-based line of the instruction; 0 when the error is about the whole
    /// file (an empty file, an unknown `--target`).
    pub line: usize,
    /// Boxed to keep `Result<_, ParseError>` small.
    pub kind: Box<ErrorKind>,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.kind)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.kind)
        }
    }
}

impl ParseError {
    pub fn new(file: &str, line: usize, kind: ErrorKind) -> ParseError {
        ParseError {
            file: file.to_string(),
            line,
            kind: Box::new(kind),
        }
    }
}

fn did_you_mean(s: &Option<String>) -> String {
    match s {
        Some(s) => format!(" (did you mean {s}?)"),
        None => String::new(),
    }
}

/// What is wrong. The Display text is the part after `file:line: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("the file is empty: a Containerfile needs at least one FROM instruction")]
    Empty,
    #[error("the file is not UTF-8 text")]
    NotUtf8,
    #[error("no FROM instruction: every build stage starts with FROM")]
    NoFrom,
    #[error("{0} before the first FROM: only ARG may come before FROM")]
    BeforeFrom(String),
    #[error("unknown instruction \"{word}\"{}", did_you_mean(.suggestion))]
    UnknownInstruction {
        word: String,
        suggestion: Option<String>,
    },
    #[error("{0} requires at least one argument")]
    MissingArguments(String),
    #[error("{instruction}: {message}")]
    BadArguments {
        instruction: String,
        message: String,
    },
    #[error("{instruction}: unknown flag --{flag}{}", did_you_mean(.suggestion))]
    UnknownFlag {
        instruction: String,
        flag: String,
        suggestion: Option<String>,
    },
    #[error("{instruction}: --{flag}: {message}")]
    BadFlag {
        instruction: String,
        flag: String,
        message: String,
    },
    #[error("{instruction}: {what} must be a JSON array of strings, e.g. {example}")]
    NeedJson {
        instruction: String,
        what: String,
        example: String,
    },
    #[error("heredoc <<{name} is not terminated: no line \"{name}\" before the end of the file")]
    UnterminatedHeredoc { name: String },
    #[error("parser directive: {0}")]
    Directive(String),
    #[error("invalid stage name \"{0}\": use lowercase letters, digits, '-', '_' and '.', starting with a letter")]
    BadStageName(String),
    #[error("duplicate stage name \"{name}\": it was already defined at line {first_line}")]
    DuplicateStage { name: String, first_line: usize },
    #[error("{instruction}: {flag}={reference}: no earlier stage has that name, and it is not a valid image reference either")]
    UnknownStage {
        instruction: String,
        flag: String,
        reference: String,
    },
    #[error("{instruction}: {flag}={reference}: {message}")]
    BadStageRef {
        instruction: String,
        flag: String,
        reference: String,
        message: String,
    },
    #[error("stages form a cycle: {0}")]
    Cycle(String),
    #[error("unknown target stage \"{target}\"; the stages are: {stages}")]
    UnknownTarget { target: String, stages: String },
    #[error("{instruction}: bad variable syntax: {message}")]
    Syntax {
        instruction: String,
        message: String,
    },
    #[error("{instruction}: {message}")]
    Expansion {
        instruction: String,
        message: String,
    },
}

/// Levenshtein distance, over chars, ASCII case folded. Small inputs only:
/// O(a*b) time, O(b) memory.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_uppercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_uppercase()).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The closest candidate within a distance that still reads as a typo.
pub(crate) fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // Long words tolerate two typos; short ones one, so "RU" -> RUN but
    // "AB" does not turn into ARG.
    let limit = if word.chars().count() > 4 { 2 } else { 1 };
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("RUNN", "RUN"), 1);
        assert_eq!(edit_distance("chwon", "chown"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(suggest("RUNN", &["RUN", "ADD"]), Some("RUN"));
        assert_eq!(suggest("chwon", &["chown", "chmod", "from"]), Some("chown"));
        assert_eq!(suggest("XYZZY", &["RUN", "ADD"]), None);
    }
}

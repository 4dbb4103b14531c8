//! Variable expansion as Docker's shell lexer does it for ADD, COPY, ENV,
//! EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR: `$VAR`,
//! `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:+alt}`,
//! `${VAR+alt}`, `${VAR:?msg}`, escapes, and quote removal (nothing expands
//! inside single quotes). RUN, CMD and ENTRYPOINT are left to the shell.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Why a word could not be expanded; the caller adds file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    #[error("unterminated {0} in {1:?}")]
    Unterminated(&'static str, String),
    #[error("bad substitution in {0:?}: {1}")]
    BadSubstitution(String, String),
    #[error("{name}: {message}")]
    Required { name: String, message: String },
}

/// The variables in scope at one step of a stage: ARGs declared so far
/// (with their value, or none when declared without one) and ENV values,
/// which take precedence over ARGs of the same name, as in Docker.
///
/// The executor creates one per stage with `Containerfile::stage_expander`,
/// seeds it with the base image's ENV, and calls [`Expander::apply`] after
/// each step so ARG and ENV take effect for the steps after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expander {
    escape: char,
    env: BTreeMap<String, String>,
    args: BTreeMap<String, Option<String>>,
    /// `--build-arg` values, consulted when an ARG is declared.
    build_args: Arc<BTreeMap<String, String>>,
    /// Values of the ARGs declared before the first FROM, after build-arg
    /// overrides; an `ARG NAME` inside a stage brings one into scope.
    global_args: Arc<BTreeMap<String, Option<String>>>,
}

impl Expander {
    /// An expander with nothing in scope and no build args.
    pub fn new(escape: char) -> Expander {
        Expander {
            escape,
            env: BTreeMap::new(),
            args: BTreeMap::new(),
            build_args: Arc::default(),
            global_args: Arc::default(),
        }
    }

    pub(crate) fn with_args(
        escape: char,
        build_args: Arc<BTreeMap<String, String>>,
        global_args: Arc<BTreeMap<String, Option<String>>>,
    ) -> Expander {
        Expander {
            build_args,
            global_args,
            ..Expander::new(escape)
        }
    }

    pub fn escape(&self) -> char {
        self.escape
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.insert(key.to_string(), value.to_string());
    }

    /// Sets ENV from `KEY=VALUE` strings, as found in an image config.
    pub fn set_env_pairs<'a>(&mut self, pairs: impl IntoIterator<Item = &'a str>) {
        for p in pairs {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            self.set_env(k, v);
        }
    }

    pub fn set_arg(&mut self, key: &str, value: Option<&str>) {
        self.args
            .insert(key.to_string(), value.map(ToString::to_string));
    }

    /// The value a name expands to: ENV first, then ARG.
    pub fn lookup(&self, name: &str) -> Option<&str> {
        if let Some(v) = self.env.get(name) {
            return Some(v);
        }
        self.args.get(name).and_then(|v| v.as_deref())
    }

    /// ENV in scope (what a RUN step's process gets, plus [`Self::run_args`]).
    pub fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// ARGs in scope, with their values. Unset ARGs are `None`.
    pub fn args(&self) -> &BTreeMap<String, Option<String>> {
        &self.args
    }

    /// ARGs with a value that no ENV of the same name hides: these are set
    /// in a RUN step's environment (and belong in its cache key) but not in
    /// the image config.
    pub fn run_args(&self) -> BTreeMap<String, String> {
        self.args
            .iter()
            .filter(|(k, _)| !self.env.contains_key(*k))
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone())))
            .collect()
    }

    /// The value an `ARG name[=default]` declaration takes: the build arg
    /// if given, else the (already expanded) default, else the global ARG.
    pub fn resolve_arg(&self, name: &str, default: Option<&str>) -> Option<String> {
        if let Some(v) = self.build_args.get(name) {
            return Some(v.clone());
        }
        if let Some(d) = default {
            return Some(d.to_string());
        }
        self.global_args.get(name).cloned().flatten()
    }

    /// Expands one word and removes its quotes, as Docker's ProcessWord.
    pub fn expand_word(&self, word: &str) -> Result<String, ExpandError> {
        let mut w = Walker {
            ex: self,
            chars: word.chars().collect(),
            pos: 0,
            quotes: true,
            source: word,
            depth: 0,
        };
        w.run(None)
    }

    /// Expands a heredoc body: `$VAR` and `${...}` expand, `\$` is a literal
    /// dollar, quotes are kept.
    pub fn expand_heredoc(&self, body: &str) -> Result<String, ExpandError> {
        let mut w = Walker {
            ex: self,
            chars: body.chars().collect(),
            pos: 0,
            quotes: false,
            source: body,
            depth: 0,
        };
        w.run(None)
    }
}

struct Walker<'a> {
    ex: &'a Expander,
    chars: Vec<char>,
    pos: usize,
    /// Interpret and remove quotes (words) or keep them (heredoc bodies).
    quotes: bool,
    source: &'a str,
    /// Nesting of `${..:-${..}}`, bounded so hostile input cannot
    /// exhaust the stack.
    depth: usize,
}

const MAX_DEPTH: usize = 32;

/// Shell special parameters.
const SPECIAL: &str = "@*#?-$!";

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl Walker<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes up to `stop` (consumed), or to the end when `stop` is None.
    fn run(&mut self, stop: Option<char>) -> Result<String, ExpandError> {
        let mut out = String::new();
        let esc = self.ex.escape;
        loop {
            let Some(c) = self.peek() else {
                if stop.is_some() {
                    return Err(ExpandError::Unterminated("${", self.source.into()));
                }
                return Ok(out);
            };
            if Some(c) == stop {
                self.pos += 1;
                return Ok(out);
            }
            match c {
                '\'' if self.quotes => {
                    self.pos += 1;
                    loop {
                        match self.next() {
                            Some('\'') => break,
                            Some(c) => out.push(c),
                            None => {
                                return Err(ExpandError::Unterminated(
                                    "single quote",
                                    self.source.into(),
                                ))
                            }
                        }
                    }
                }
                '"' if self.quotes => {
                    self.pos += 1;
                    self.double_quoted(&mut out)?;
                }
                '$' => {
                    self.pos += 1;
                    self.dollar(&mut out)?;
                }
                c if c == esc => {
                    self.pos += 1;
                    match self.next() {
                        Some(n) if self.quotes => out.push(n),
                        Some('$') => out.push('$'),
                        Some(n) => {
                            out.push(esc);
                            out.push(n);
                        }
                        None if self.quotes => {}
                        None => out.push(esc),
                    }
                }
                c => {
                    self.pos += 1;
                    out.push(c);
                }
            }
        }
    }

    fn double_quoted(&mut self, out: &mut String) -> Result<(), ExpandError> {
        let esc = self.ex.escape;
        loop {
            match self.next() {
                Some('"') => return Ok(()),
                Some('$') => self.dollar(out)?,
                Some(c) if c == esc => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == esc => {
                        self.pos += 1;
                        out.push(n);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
                None => {
                    return Err(ExpandError::Unterminated(
                        "double quote",
                        self.source.into(),
                    ))
                }
            }
        }
    }

    /// A variable name; or positional (`1`, `999`) or special (`@`, `#`,
    /// `$`...) shell parameters, which a Containerfile never sets: they
    /// are read as names no variable can have, so they expand to nothing.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.pos += 1;
                }
            }
            Some(c) if SPECIAL.contains(c) => {
                name.push(c);
                self.pos += 1;
            }
            _ => {
                while let Some(c) = self.peek().filter(|c| is_name_char(*c)) {
                    name.push(c);
                    self.pos += 1;
                }
            }
        }
        name
    }

    /// After a `$`.
    fn dollar(&mut self, out: &mut String) -> Result<(), ExpandError> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                self.braced(out)
            }
            Some(c) if is_name_char(c) || SPECIAL.contains(c) => {
                let name = self.name();
                if name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                    out.push_str(self.ex.lookup(&name).unwrap_or(""));
                }
                Ok(())
            }
            _ => {
                out.push('$');
                Ok(())
            }
        }
    }

    /// After `${`.
    fn braced(&mut self, out: &mut String) -> Result<(), ExpandError> {
        let name = self.name();
        let bad = |msg: &str| ExpandError::BadSubstitution(self.source.into(), msg.into());
        if name.is_empty() {
            return Err(bad("expected a variable name after ${"));
        }
        let special = !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
        let value = if special {
            None
        } else {
            self.ex.lookup(&name).map(ToString::to_string)
        };
        let (colon, op) = match self.next() {
            Some('}') => {
                out.push_str(value.as_deref().unwrap_or(""));
                return Ok(());
            }
            Some(':') => (true, self.next()),
            Some(c) => (false, Some(c)),
            None => return Err(ExpandError::Unterminated("${", self.source.into())),
        };
        let op = match op {
            Some(c @ ('-' | '+' | '?')) => c,
            Some(c) => {
                return Err(bad(&format!(
                    "unsupported modifier {c:?} after ${{{name} (use :-, -, :+, +, :? or ?)"
                )))
            }
            None => return Err(ExpandError::Unterminated("${", self.source.into())),
        };
        if self.depth >= MAX_DEPTH {
            return Err(bad("variables nested too deeply"));
        }
        self.depth += 1;
        let word = self.run(Some('}'))?;
        self.depth -= 1;
        // With a colon, an empty value counts as unset.
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        match op {
            '-' => out.push_str(if set {
                value.as_deref().unwrap_or("")
            } else {
                &word
            }),
            '+' => {
                if set {
                    out.push_str(&word)
                }
            }
            _ => {
                if !set {
                    let message = if word.is_empty() {
                        "is not set".to_string()
                    } else {
                        word
                    };
                    return Err(ExpandError::Required { name, message });
                }
                out.push_str(value.as_deref().unwrap_or(""));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex() -> Expander {
        let mut e = Expander::new('\\');
        e.set_env("A", "apple");
        e.set_env("E", "");
        e.set_arg("B", Some("banana"));
        e.set_arg("U", None);
        e
    }

    fn w(s: &str) -> String {
        ex().expand_word(s).unwrap()
    }

    #[test]
    fn simple_forms() {
        assert_eq!(w("$A"), "apple");
        assert_eq!(w("${A}x"), "applex");
        assert_eq!(w("$Ax"), "");
        assert_eq!(w("$B-$U-$NOPE"), "banana--");
        assert_eq!(w("a$"), "a$");
        assert_eq!(w("$-x"), "x");
        assert_eq!(w("$.x"), "$.x");
    }

    #[test]
    fn modifiers() {
        assert_eq!(w("${NOPE:-dflt}"), "dflt");
        assert_eq!(w("${E:-dflt}"), "dflt");
        assert_eq!(w("${E-dflt}"), "");
        assert_eq!(w("${NOPE-dflt}"), "dflt");
        assert_eq!(w("${A:-dflt}"), "apple");
        assert_eq!(w("${A:+alt}"), "alt");
        assert_eq!(w("${E:+alt}"), "");
        assert_eq!(w("${E+alt}"), "alt");
        assert_eq!(w("${NOPE+alt}"), "");
        assert_eq!(w("${NOPE:-$A/${B}}"), "apple/banana");
        assert_eq!(w("${NOPE:-'a b'}"), "a b");
        assert!(matches!(
            ex().expand_word("${NOPE:?need it}"),
            Err(ExpandError::Required { .. })
        ));
        assert_eq!(w("${A:?x}"), "apple");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(w("'$A'"), "$A");
        assert_eq!(w("\"$A b\""), "apple b");
        assert_eq!(w("\\$A"), "$A");
        assert_eq!(w("\"\\$A\""), "$A");
        assert_eq!(w("\"a\\\"b\""), "a\"b");
        assert_eq!(w("\"a\\nb\""), "a\\nb");
        assert_eq!(w("a\\ b"), "a b");
        let mut back = Expander::new('`');
        back.set_env("A", "x");
        assert_eq!(back.expand_word("`$A$A").unwrap(), "$Ax");
        assert_eq!(back.expand_word("c:\\dir").unwrap(), "c:\\dir");
    }

    #[test]
    fn errors() {
        for bad in [
            "${", "${A", "${}", "${A:-x", "'abc", "\"abc", "${A/x/y}", "${A:",
        ] {
            assert!(ex().expand_word(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn heredoc_bodies_keep_quotes() {
        assert_eq!(
            ex().expand_heredoc("echo '$A' \"$B\" \\$A \\n\n").unwrap(),
            "echo 'apple' \"banana\" $A \\n\n"
        );
    }

    #[test]
    fn env_beats_arg() {
        let mut e = Expander::new('\\');
        e.set_arg("X", Some("arg"));
        e.set_env("X", "env");
        assert_eq!(e.lookup("X"), Some("env"));
        assert!(e.run_args().is_empty());
    }
}

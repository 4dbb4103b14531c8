//! `.containerignore` / `.dockerignore` with Docker's pattern semantics,
//! also used for `COPY --exclude`.
//!
//! A path is excluded when the last pattern that matches it, or matches
//! one of its parent directories, is not a `!` exception. Patterns are
//! cleaned like Go's `filepath.Clean` and a leading `/` is dropped; `*`
//! and `?` stay within one path component, `**` crosses components, `[..]`
//! is a character class and `\` escapes (see `glob.rs`).

use std::io;
use std::path::{Component, Path, PathBuf};

use super::glob::{compile, matches, Tok};

/// Looked up in the context directory, in this order (buildah's order).
pub const IGNORE_FILES: &[&str] = &[".containerignore", ".dockerignore"];

#[derive(Debug, thiserror::Error)]
pub enum IgnoreError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{origin}:{line}: bad pattern {pattern:?}: {message}")]
    Pattern {
        origin: String,
        line: usize,
        pattern: String,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    text: String,
    exception: bool,
    toks: Vec<Tok>,
    /// Set when the pattern has no wildcard: most ignore files are lists
    /// of plain names (`.git`, `target`), matched by comparison alone.
    literal: Option<String>,
    /// Without `**`, a pattern only matches text with exactly this many
    /// '/' (`*`, `?` and classes never match one).
    slashes: Option<usize>,
    /// Literal text every match starts / ends with: cheap rejects before
    /// the matcher runs.
    head: String,
    tail: String,
}

/// One candidate text: the path or one of its parents.
struct Candidate<'a> {
    text: &'a str,
    slashes: usize,
}

impl Pattern {
    fn new(text: String, exception: bool, toks: Vec<Tok>) -> Pattern {
        let lit = |t: &Tok| match t {
            Tok::Lit(c) => Some(*c),
            _ => None,
        };
        let literal = toks.iter().map(lit).collect::<Option<String>>();
        let slashes = if toks.iter().any(|t| matches!(t, Tok::Any | Tok::Dirs)) {
            None
        } else {
            Some(toks.iter().filter(|t| **t == Tok::Lit('/')).count())
        };
        let head: String = toks.iter().map_while(lit).collect();
        let mut tail: Vec<char> = toks.iter().rev().map_while(lit).collect();
        tail.reverse();
        Pattern {
            text,
            exception,
            toks,
            literal,
            slashes,
            head,
            tail: tail.into_iter().collect(),
        }
    }

    /// Matches the path (the last candidate) or one of its parents.
    fn hits(&self, candidates: &[Candidate<'_>]) -> bool {
        if let (Some(lit), Some(full)) = (&self.literal, candidates.last()) {
            let full = full.text;
            return full == lit
                || (full.starts_with(lit.as_str())
                    && full.as_bytes().get(lit.len()) == Some(&b'/'));
        }
        candidates.iter().any(|c| {
            (self.slashes.is_none() || self.slashes == Some(c.slashes))
                && c.text.starts_with(self.head.as_str())
                && c.text.ends_with(self.tail.as_str())
                && matches(&self.toks, &c.text.chars().collect::<Vec<_>>())
        })
    }
}

/// Decides which context paths are left out of the build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextFilter {
    patterns: Vec<Pattern>,
    /// The ignore file that was read, if any.
    pub source: Option<PathBuf>,
}

/// `filepath.Clean` on '/'-separated text, then without a leading '/'.
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !p.starts_with('/') {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

impl ContextFilter {
    /// Reads the first of [`IGNORE_FILES`] found in `context_dir`; no file
    /// means nothing is excluded.
    pub fn load(context_dir: &Path) -> Result<ContextFilter, IgnoreError> {
        ContextFilter::load_for(context_dir, None)
    }

    /// Like [`Self::load`], but an ignore file named after the
    /// Containerfile and beside it (`build/Dockerfile.prod.dockerignore`,
    /// as BuildKit has it) takes precedence.
    pub fn load_for(
        context_dir: &Path,
        containerfile: Option<&Path>,
    ) -> Result<ContextFilter, IgnoreError> {
        let mut candidates = Vec::new();
        if let Some(file) = containerfile {
            for ext in IGNORE_FILES {
                let mut name = file.as_os_str().to_owned();
                name.push(ext);
                candidates.push(PathBuf::from(name));
            }
        }
        candidates.extend(IGNORE_FILES.iter().map(|n| context_dir.join(n)));
        for path in candidates {
            let name = path.display().to_string();
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let mut f = ContextFilter::parse(&name, &text)?;
                    f.source = Some(path);
                    return Ok(f);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(IgnoreError::Read { path, source }),
            }
        }
        Ok(ContextFilter::default())
    }

    /// Parses ignore-file text: one pattern a line, `#` comments, blank
    /// lines skipped, `!` for exceptions. `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<ContextFilter, IgnoreError> {
        let mut patterns = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |message: String| IgnoreError::Pattern {
                origin: origin.to_string(),
                line: i + 1,
                pattern: line.to_string(),
                message,
            };
            let (exception, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            if body.is_empty() {
                return Err(bad("an exception needs a pattern after '!'".into()));
            }
            let text = clean(body);
            if text.is_empty() {
                continue; // "/" or "." would mean the whole context: Docker ignores it too
            }
            let toks = compile(&text).map_err(bad)?;
            patterns.push(Pattern::new(text, exception, toks));
        }
        Ok(ContextFilter {
            patterns,
            source: None,
        })
    }

    /// A filter from `COPY --exclude` patterns (exceptions allowed too).
    pub fn from_patterns<S: AsRef<str>>(patterns: &[S]) -> Result<ContextFilter, IgnoreError> {
        let text: Vec<&str> = patterns.iter().map(AsRef::as_ref).collect();
        ContextFilter::parse("--exclude", &text.join("\n"))
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when some pattern is a `!` exception: an excluded directory
    /// may then still hold included files and must be walked.
    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| p.exception)
    }

    /// Whether a directory walk may skip `rel_dir` and everything in it:
    /// it is excluded and no `!` exception could re-include something
    /// beneath it (exceptions with wildcards are assumed to).
    pub fn can_skip_dir(&self, rel_dir: &Path) -> bool {
        if !self.is_excluded(rel_dir) {
            return false;
        }
        let dir = rel_dir.to_string_lossy();
        let dir = dir.trim_start_matches("./").trim_matches('/');
        !self
            .patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| match &p.literal {
                Some(lit) => lit.starts_with(dir) && lit.as_bytes().get(dir.len()) == Some(&b'/'),
                None => true,
            })
    }

    /// The cleaned patterns, `!` included, for cache keys.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns
            .iter()
            .map(|p| format!("{}{}", if p.exception { "!" } else { "" }, p.text))
            .collect()
    }

    /// Whether `rel_path` (relative to the context; a leading `/` or `./`
    /// is ignored) is left out.
    pub fn is_excluded(&self, rel_path: &Path) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let raw = rel_path.to_string_lossy();
        // The common case, a clean relative path, is used as it is.
        let clean_already = !raw.starts_with('/')
            && !raw.ends_with('/')
            && !raw.is_empty()
            && raw.split('/').all(|c| !c.is_empty() && c != ".");
        let full: std::borrow::Cow<'_, str> = if clean_already {
            raw
        } else {
            let parts: Vec<String> = rel_path
                .components()
                .filter_map(|c| match c {
                    Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
                    Component::ParentDir => Some("..".to_string()),
                    _ => None,
                })
                .collect();
            std::borrow::Cow::Owned(parts.join("/"))
        };
        if full.is_empty() {
            return false;
        }
        // Each parent ("a", "a/b" for "a/b/c"), then the path itself.
        let mut candidates: Vec<Candidate<'_>> = full
            .match_indices('/')
            .enumerate()
            .map(|(i, (at, _))| Candidate {
                text: full.get(..at).unwrap_or(""),
                slashes: i,
            })
            .collect();
        candidates.push(Candidate {
            text: &full,
            slashes: candidates.len(),
        });
        let mut excluded = false;
        for p in &self.patterns {
            // Only a pattern that could flip the answer needs matching.
            if p.exception != excluded {
                continue;
            }
            if p.hits(&candidates) {
                excluded = !p.exception;
            }
        }
        excluded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(text: &str) -> ContextFilter {
        ContextFilter::parse(".dockerignore", text).unwrap()
    }

    fn ex(filter: &ContextFilter, p: &str) -> bool {
        filter.is_excluded(Path::new(p))
    }

    #[test]
    fn docker_semantics() {
        let filter = f("# comment\n\n*.md\n!README.md\n/build\ntemp?\n**/*.log\nnode_modules\n");
        assert!(ex(&filter, "CHANGES.md"));
        assert!(!ex(&filter, "README.md"));
        assert!(!ex(&filter, "docs/x.md")); // *.md is for the top level only
        assert!(ex(&filter, "build"));
        assert!(ex(&filter, "build/out/bin")); // parent matches
        assert!(ex(&filter, "temp1"));
        assert!(ex(&filter, "a/b/c.log"));
        assert!(ex(&filter, "node_modules/x/y.js"));
        assert!(!ex(&filter, "src/main.rs"));
        assert!(ex(&filter, "./build/x"));
        assert!(ex(&filter, "/build/x"));
    }

    #[test]
    fn literal_fast_path_agrees() {
        let filter = f("node_modules\na/b\nx\\*y\n");
        assert!(ex(&filter, "node_modules"));
        assert!(ex(&filter, "node_modules/p/q"));
        assert!(!ex(&filter, "node_modules2"));
        assert!(!ex(&filter, "src/node_modules")); // anchored at the top
        assert!(ex(&filter, "a/b/c"));
        assert!(!ex(&filter, "a/bc"));
        assert!(ex(&filter, "x*y")); // escaped star is a literal
        assert!(!ex(&filter, "xzy"));
    }

    #[test]
    fn exceptions_order() {
        let filter = f("docs\n!docs/keep.txt\n");
        assert!(ex(&filter, "docs/a"));
        assert!(!ex(&filter, "docs/keep.txt"));
        assert!(filter.has_exceptions());
        let filter = f("!keep\n*\n");
        assert!(ex(&filter, "keep")); // the later pattern wins
        let filter = f("*\n!src\nsrc/*.tmp\n");
        assert!(!ex(&filter, "src/a.rs"));
        assert!(ex(&filter, "src/a.tmp"));
        assert!(ex(&filter, "other"));
    }

    #[test]
    fn cleaning() {
        let filter = f("./a//b/../c\n/\n.\n");
        assert_eq!(filter.patterns(), vec!["a/c"]);
        assert!(ContextFilter::parse("x", "!\n").is_err());
        let e = ContextFilter::parse(".dockerignore", "ok\n[bad\n").unwrap_err();
        assert!(
            e.to_string().starts_with(".dockerignore:2: bad pattern"),
            "{e}"
        );
    }

    #[test]
    fn excludes_for_copy() {
        let filter = ContextFilter::from_patterns(&["*.tmp", "cache/"]).unwrap();
        assert!(ex(&filter, "x.tmp"));
        assert!(ex(&filter, "cache/a"));
        assert!(!ex(&filter, "x.rs"));
    }

    #[test]
    fn skipping_directories() {
        let filter = f("target\nnode_modules\n!node_modules/keep/x\n");
        assert!(filter.can_skip_dir(Path::new("target")));
        assert!(!filter.can_skip_dir(Path::new("node_modules")));
        assert!(filter.can_skip_dir(Path::new("node_modules/other")));
        assert!(!filter.can_skip_dir(Path::new("src")));
        let filter = f("docs\n!**/*.md\n");
        assert!(!filter.can_skip_dir(Path::new("docs")));
    }

    #[test]
    fn load_prefers_containerignore() {
        let d = tempfile::tempdir().unwrap();
        assert!(ContextFilter::load(d.path()).unwrap().is_empty());
        std::fs::write(d.path().join(".dockerignore"), "a\n").unwrap();
        let filter = ContextFilter::load(d.path()).unwrap();
        assert!(ex(&filter, "a") && !ex(&filter, "b"));
        std::fs::write(d.path().join(".containerignore"), "b\n").unwrap();
        let filter = ContextFilter::load(d.path()).unwrap();
        assert!(!ex(&filter, "a") && ex(&filter, "b"));
        assert_eq!(filter.source, Some(d.path().join(".containerignore")));
    }

    #[test]
    fn ignore_file_named_after_the_containerfile() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".dockerignore"), "a\n").unwrap();
        std::fs::create_dir(d.path().join("build")).unwrap();
        let file = d.path().join("build/Dockerfile.prod");
        std::fs::write(&file, "FROM x\n").unwrap();
        let filter = ContextFilter::load_for(d.path(), Some(&file)).unwrap();
        assert!(ex(&filter, "a"));
        std::fs::write(d.path().join("build/Dockerfile.prod.dockerignore"), "b\n").unwrap();
        let filter = ContextFilter::load_for(d.path(), Some(&file)).unwrap();
        assert!(!ex(&filter, "a") && ex(&filter, "b"));
    }
}

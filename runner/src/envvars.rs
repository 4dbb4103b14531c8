//! Environment entries from the command line (`-e`) and from env files
//! (`--env-file`), checked as Docker checks them, and more strictly where
//! Docker lets a bad byte through: a name is non-empty, without '=' (by
//! construction) and without whitespace; an env file is read as bytes,
//! and a NUL or invalid UTF-8 is an error naming the file and the line
//! (a NUL cannot reach execve, and silently replacing it would run the
//! container with an environment nobody wrote).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("open env file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("env file {path}, line {line}: {what}")]
    Line {
        path: PathBuf,
        line: usize,
        what: String,
    },
    #[error("invalid environment variable {0:?}: {1}")]
    Entry(String, &'static str),
}

/// Why `entry` (`NAME=value` or `NAME`) is not a valid entry, if it is not.
fn entry_problem(entry: &str) -> Option<&'static str> {
    let name = entry.split('=').next().unwrap_or("");
    if name.is_empty() {
        Some("the name before '=' is empty")
    } else if name.chars().any(char::is_whitespace) {
        Some("the name contains whitespace")
    } else if entry.contains('\0') {
        Some("it contains a NUL byte")
    } else {
        None
    }
}

/// Checks one `-e` entry.
pub fn check_entry(entry: &str) -> Result<(), EnvError> {
    match entry_problem(entry) {
        Some(why) => Err(EnvError::Entry(entry.to_string(), why)),
        None => Ok(()),
    }
}

/// Apply one entry to `env`, as Docker does for `run -e` and `exec -e`:
/// `NAME=value` replaces any `NAME`; a bare `NAME` takes the value from
/// `lookup` (our own environment, in the binaries) and is left out, not
/// set empty, when `lookup` has none. The entry must have passed
/// [`check_entry`] or come from [`read_env_file`].
pub fn apply(env: &mut Vec<String>, entry: &str, lookup: impl Fn(&str) -> Option<String>) {
    let kv = if entry.contains('=') {
        entry.to_string()
    } else {
        match lookup(entry) {
            Some(v) => format!("{entry}={v}"),
            None => return,
        }
    };
    let key = kv.split('=').next().unwrap_or("");
    env.retain(|e| e.split('=').next() != Some(key));
    env.push(kv);
}

/// The entries of an env file, in order: `NAME=value` lines, and bare
/// `NAME` lines (the caller takes those from its own environment). Blank
/// lines and `#` comments are skipped; surrounding whitespace is trimmed.
pub fn read_env_file(path: &Path) -> Result<Vec<String>, EnvError> {
    let bytes = std::fs::read(path).map_err(|source| EnvError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_env_file(path, &bytes)
}

fn parse_env_file(path: &Path, bytes: &[u8]) -> Result<Vec<String>, EnvError> {
    let bad = |line: usize, what: String| EnvError::Line {
        path: path.to_path_buf(),
        line,
        what,
    };
    let mut out = Vec::new();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        if raw.contains(&0) {
            return Err(bad(n, "contains a NUL byte".into()));
        }
        let text = std::str::from_utf8(raw).map_err(|e| {
            bad(
                n,
                format!("is not valid UTF-8 (at byte {})", e.valid_up_to()),
            )
        })?;
        let text = if n == 1 {
            text.trim_start_matches('\u{feff}')
        } else {
            text
        };
        let line = text.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(why) = entry_problem(line) {
            return Err(bad(n, format!("{line:?}: {why}")));
        }
        out.push(line.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Vec<String>, String> {
        parse_env_file(Path::new("list.env"), bytes).map_err(|e| e.to_string())
    }

    #[test]
    fn good_files_parse() {
        assert_eq!(
            parse(b"\xef\xbb\xbfA=1\r\n# note\n\n  B=x y \nC\nD=\xc3\xa9\n").unwrap(),
            ["A=1", "B=x y", "C", "D=é"]
        );
    }

    #[test]
    fn a_nul_byte_is_an_error_naming_file_and_line() {
        assert_eq!(
            parse(b"A=1\nB=x\0y\n").unwrap_err(),
            "env file list.env, line 2: contains a NUL byte"
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_naming_file_and_line() {
        assert_eq!(
            parse(b"A=1\n\nB=\xff\n").unwrap_err(),
            "env file list.env, line 3: is not valid UTF-8 (at byte 2)"
        );
    }

    #[test]
    fn empty_and_spaced_names_are_refused() {
        assert_eq!(
            parse(b"=x\n").unwrap_err(),
            "env file list.env, line 1: \"=x\": the name before '=' is empty"
        );
        assert!(parse(b"A B=x\n").unwrap_err().contains("whitespace"));
        assert_eq!(
            check_entry("=x").unwrap_err().to_string(),
            "invalid environment variable \"=x\": the name before '=' is empty"
        );
        assert!(check_entry("=").is_err());
        assert!(check_entry("A=").is_ok());
        assert!(check_entry("A==b").is_ok());
        assert!(check_entry("PATH").is_ok());
    }

    #[test]
    fn apply_replaces_by_name_and_leaves_out_an_unset_bare_name() {
        let lookup = |k: &str| (k == "HOSTVAR").then(|| "from-host".to_string());
        let mut env = vec!["A=1".to_string(), "B=2".to_string()];
        apply(&mut env, "A=3", lookup);
        apply(&mut env, "HOSTVAR", lookup);
        apply(&mut env, "UNSET", lookup);
        apply(&mut env, "B", lookup);
        // An unset bare name leaves what the image had.
        assert_eq!(env, ["B=2", "A=3", "HOSTVAR=from-host"]);
        apply(&mut env, "C==x", lookup);
        assert_eq!(env.last().unwrap(), "C==x");
    }
}

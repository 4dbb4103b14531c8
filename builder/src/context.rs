//! The build context: finding COPY/ADD sources and hashing what they hold,
//! for the step cache key (content and mode of every file, as Docker does;
//! mtimes are ignored so that a fresh checkout still hits the cache).

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("COPY source {0:?} is outside the build context")]
    OutsideContext(String),
    #[error("COPY source {pattern:?}: no such file or directory in the build context {context}")]
    NotFound { pattern: String, context: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A source path made relative to the context root, refusing `..` escapes
/// (a leading `/` means the context root, as in Docker).
pub fn normalize_source(pattern: &str) -> Result<PathBuf, ContextError> {
    let mut out = PathBuf::new();
    for c in Path::new(pattern).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(ContextError::OutsideContext(pattern.to_string()));
                }
            }
            Component::Prefix(_) => return Err(ContextError::OutsideContext(pattern.to_string())),
        }
    }
    Ok(out)
}

/// Go's `filepath.Match` for one path component: `*`, `?`, `[a-z]`, `[!x]`, `\x`.
pub fn wildcard_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(&c) = n.first() else { return false };
                let mut i = 1;
                let negate = matches!(p.get(1), Some('!') | Some('^'));
                if negate {
                    i += 1;
                }
                let mut matched = false;
                let start = i;
                while i < p.len() && (p[i] != ']' || i == start) {
                    if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
                        matched |= p[i] <= c && c <= p[i + 2];
                        i += 3;
                    } else {
                        matched |= p[i] == c;
                        i += 1;
                    }
                }
                if i >= p.len() {
                    return false; // unterminated class never matches
                }
                matched != negate && go(&p[i + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Expand one COPY source pattern against the context: paths relative to
/// the context root, sorted. A pattern without wildcards must exist.
pub fn expand_source(context: &Path, pattern: &str) -> Result<Vec<PathBuf>, ContextError> {
    let rel = normalize_source(pattern)?;
    let mut matches = vec![PathBuf::new()];
    let count = rel.components().count();
    for (i, comp) in rel.components().enumerate() {
        let comp = comp.as_os_str().to_string_lossy().to_string();
        let mut next = Vec::new();
        for base in &matches {
            if has_wildcard(&comp) {
                let dir = context.join(base);
                let Ok(rd) = fs::read_dir(&dir) else { continue };
                let mut names: Vec<String> = rd
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .filter(|n| wildcard_match(&comp, n))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| base.join(n)));
            } else {
                let candidate = base.join(&comp);
                if fs::symlink_metadata(context.join(&candidate)).is_ok() {
                    next.push(candidate);
                }
            }
        }
        // Only real directories are descended into: a symlink in the middle
        // of a source path could point out of the context (or out of a
        // stage's root file system).
        if i + 1 < count {
            next.retain(|p| fs::symlink_metadata(context.join(p)).is_ok_and(|m| m.is_dir()));
        }
        matches = next;
    }
    if matches.is_empty() {
        return Err(ContextError::NotFound {
            pattern: pattern.to_string(),
            context: context.to_path_buf(),
        });
    }
    Ok(matches)
}

/// Every file under `rel` (itself if it is not a directory), relative to
/// the context, skipping what `excluded` says, sorted.
pub fn walk(
    context: &Path,
    rel: &Path,
    excluded: &dyn Fn(&Path) -> bool,
) -> Result<Vec<PathBuf>, ContextError> {
    let mut out = Vec::new();
    let mut stack = vec![rel.to_path_buf()];
    while let Some(p) = stack.pop() {
        if !p.as_os_str().is_empty() && excluded(&p) {
            continue;
        }
        let full = context.join(&p);
        let meta = fs::symlink_metadata(&full).map_err(io_err(&full))?;
        out.push(p.clone());
        if meta.is_dir() {
            for e in fs::read_dir(&full).map_err(io_err(&full))? {
                let e = e.map_err(io_err(&full))?;
                stack.push(p.join(e.file_name()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// blake3 over (path, type, mode, size, content or link target) of every
/// file, in sorted order; file contents are hashed in parallel.
pub fn hash_files(context: &Path, files: &[PathBuf]) -> Result<blake3::Hash, ContextError> {
    let per_file: Vec<[u8; 32]> = files
        .par_iter()
        .map(|rel| {
            let full = context.join(rel);
            let meta = fs::symlink_metadata(&full).map_err(io_err(&full))?;
            let mut h = blake3::Hasher::new();
            h.update(rel.as_os_str().as_encoded_bytes());
            h.update(&[0]);
            h.update(&meta.permissions().mode().to_le_bytes());
            h.update(&meta.uid().to_le_bytes());
            h.update(&meta.gid().to_le_bytes());
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&full).map_err(io_err(&full))?;
                h.update(target.as_os_str().as_encoded_bytes());
            } else if meta.is_file() {
                h.update(&meta.len().to_le_bytes());
                if meta.len() > 0 {
                    let f = fs::File::open(&full).map_err(io_err(&full))?;
                    h.update_reader(f).map_err(io_err(&full))?;
                }
            }
            Ok(*h.finalize().as_bytes())
        })
        .collect::<Result<_, ContextError>>()?;
    let mut total = blake3::Hasher::new();
    for h in per_file {
        total.update(&h);
    }
    Ok(total.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_wildcards() {
        assert!(wildcard_match("*.txt", "a.txt"));
        assert!(!wildcard_match("*.txt", "a.txt.bak"));
        assert!(wildcard_match("fil?", "file"));
        assert!(wildcard_match("[a-c]x", "bx"));
        assert!(!wildcard_match("[!a-c]x", "bx"));
        assert!(wildcard_match("\\*", "*"));
        assert!(!wildcard_match("[ab", "a"));
    }

    #[test]
    fn sources_stay_in_the_context() {
        assert_eq!(normalize_source("/a/./b").unwrap(), PathBuf::from("a/b"));
        assert_eq!(normalize_source("a/../b").unwrap(), PathBuf::from("b"));
        assert!(normalize_source("../etc/passwd").is_err());
        assert!(normalize_source("a/../../x").is_err());
    }

    #[test]
    fn expands_hashes_and_notices_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dir.path();
        fs::create_dir(ctx.join("src")).unwrap();
        fs::write(ctx.join("src/a.rs"), "a").unwrap();
        fs::write(ctx.join("src/b.rs"), "b").unwrap();
        fs::write(ctx.join("src/c.md"), "c").unwrap();
        let m = expand_source(ctx, "src/*.rs").unwrap();
        assert_eq!(
            m,
            vec![PathBuf::from("src/a.rs"), PathBuf::from("src/b.rs")]
        );
        assert!(matches!(
            expand_source(ctx, "nope"),
            Err(ContextError::NotFound { .. })
        ));
        let all = walk(ctx, Path::new("src"), &|p| {
            p.extension().is_some_and(|e| e == "md")
        })
        .unwrap();
        assert_eq!(all.len(), 3, "{all:?}");
        let h1 = hash_files(ctx, &all).unwrap();
        fs::write(ctx.join("src/a.rs"), "A").unwrap();
        assert_ne!(h1, hash_files(ctx, &all).unwrap());
        fs::write(ctx.join("src/a.rs"), "a").unwrap();
        assert_eq!(h1, hash_files(ctx, &all).unwrap());
        fs::set_permissions(ctx.join("src/a.rs"), fs::Permissions::from_mode(0o700)).unwrap();
        assert_ne!(h1, hash_files(ctx, &all).unwrap());
    }
}

//! `.dockerignore` / `.containerignore` over a real directory tree, walked
//! the way a context sender would: skip what `can_skip_dir` allows, keep
//! files `is_excluded` does not drop. Also `COPY --exclude` patterns.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use builder::parse::ContextFilter;

fn tree(root: &Path, files: &[&str]) {
    for f in files {
        let p = root.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, f.as_bytes()).unwrap();
    }
}

/// Relative paths of the files that survive the filter.
fn walk(root: &Path, filter: &ContextFilter) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in fs::read_dir(root.join(&rel)).unwrap() {
            let entry = entry.unwrap();
            let child = rel.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                if !filter.can_skip_dir(&child) {
                    stack.push(child);
                }
            } else if !filter.is_excluded(&child) {
                out.insert(child.to_string_lossy().into_owned());
            }
        }
    }
    out
}

const FILES: &[&str] = &[
    "Containerfile",
    "README.md",
    "NOTES.md",
    "src/main.rs",
    "src/lib.rs",
    "src/gen/out.tmp",
    "docs/guide.md",
    "docs/img/a.png",
    "target/debug/app",
    "node_modules/left-pad/index.js",
    "node_modules/keep/LICENSE",
    "logs/a.log",
    "deep/er/b.log",
    ".git/HEAD",
];

#[test]
fn dockerignore_over_a_tree() {
    let d = tempfile::tempdir().unwrap();
    tree(d.path(), FILES);
    fs::write(
        d.path().join(".dockerignore"),
        "# build outputs\n/target\n.git\nnode_modules\n!node_modules/keep/LICENSE\n*.md\n!README.md\n**/*.log\nsrc/**/*.tmp\n",
    )
    .unwrap();
    let filter = ContextFilter::load(d.path()).unwrap();
    let kept = walk(d.path(), &filter);
    let want: BTreeSet<String> = [
        ".dockerignore",
        "Containerfile",
        "README.md",
        "src/main.rs",
        "src/lib.rs",
        "docs/guide.md",
        "docs/img/a.png",
        "node_modules/keep/LICENSE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(kept, want);
}

#[test]
fn containerignore_wins_over_dockerignore() {
    let d = tempfile::tempdir().unwrap();
    tree(d.path(), FILES);
    fs::write(d.path().join(".dockerignore"), "src\n").unwrap();
    fs::write(d.path().join(".containerignore"), "*\n!src\n").unwrap();
    let filter = ContextFilter::load(d.path()).unwrap();
    let kept = walk(d.path(), &filter);
    let want: BTreeSet<String> = ["src/main.rs", "src/lib.rs", "src/gen/out.tmp"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(kept, want);
}

#[test]
fn copy_exclude_patterns() {
    let d = tempfile::tempdir().unwrap();
    tree(d.path(), FILES);
    let filter = ContextFilter::from_patterns(&["*.md", "target", "**/*.log", ".git"]).unwrap();
    let kept = walk(d.path(), &filter);
    assert!(kept.contains("docs/guide.md"), "*.md is top-level only");
    assert!(!kept.contains("README.md"));
    assert!(!kept.iter().any(|p| p.ends_with(".log")));
    assert!(!kept
        .iter()
        .any(|p| p.starts_with("target/") || p.starts_with(".git/")));
    assert!(kept.contains("src/gen/out.tmp"));
    assert_eq!(
        filter.patterns(),
        vec!["*.md", "target", "**/*.log", ".git"]
    );
}

#[test]
fn bad_patterns_name_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join(".dockerignore"), "ok\n\n[unterminated\n").unwrap();
    let e = ContextFilter::load(d.path()).unwrap_err().to_string();
    assert!(
        e.contains(".dockerignore:3: bad pattern \"[unterminated\""),
        "{e}"
    );
}

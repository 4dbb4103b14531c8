//! Build secrets (`rbuild build --secret`, `RUN --mount=type=secret`),
//! for real, as root: readable in their step, and nowhere in the store
//! afterwards: not in a blob, an unpacked layer, the cache or the history.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const SECRET: &str = "rbox-build-secret-5b1e0c9d77a2";

const FILE: &str = "FROM busybox
RUN --mount=type=secret,id=tok sha256sum /run/secrets/tok | cut -c1-64 > /seen && stat -c '%a %u' /run/secrets/tok > /mode
RUN --mount=type=secret,id=tok,target=/etc/app/key,uid=7,mode=0440 stat -c '%a %u' /etc/app/key > /mode2 && cat /etc/app/key > /dev/null
RUN --mount=type=secret,id=tok,env=TOK sh -c 'echo ${#TOK}' > /len
RUN --mount=type=secret,id=absent echo optional > /optional
";

fn sha256(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x");
    std::fs::write(&f, bytes).unwrap();
    let o = Command::new("sha256sum").arg(&f).output().unwrap();
    String::from_utf8_lossy(&o.stdout)[..64].to_string()
}

/// Every file below `dir` whose bytes (or, for a zstd or gzip file, whose
/// decompressed bytes) hold `needle`. A file with several hard links is
/// read once, under the first name met: the busybox layer holds one binary
/// under some 300 names, and reading each of them made the search the bulk
/// of this binary's time.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let finder = memchr::memmem::Finder::new(needle);
    let mut seen = std::collections::HashSet::new();
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
                continue;
            }
            if !t.is_file() {
                continue;
            }
            let m = e.metadata().unwrap();
            if !seen.insert((m.dev(), m.ino())) {
                continue;
            }
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            let mut hit = finder.find(&bytes).is_some();
            let tool = if bytes.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
                Some("zstd")
            } else if bytes.starts_with(&[0x1f, 0x8b]) {
                Some("gzip")
            } else {
                None
            };
            if let Some(tool) = tool {
                let o = Command::new(tool)
                    .arg("-dc")
                    .arg(e.path())
                    .output()
                    .unwrap();
                hit |= finder.find(&o.stdout).is_some();
            }
            if hit {
                found.push(e.path().display().to_string());
            }
        }
    }
    found
}

#[test]
fn a_secret_is_readable_in_its_step_and_nowhere_in_the_store() {
    let ctx = context(&[("Containerfile", FILE)]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tok");
    std::fs::write(&file, SECRET).unwrap();
    let spec = format!("id=tok,src={}", file.display());
    build_ok(
        "secret:one",
        ctx.path(),
        // --no-cache: the other test builds the same file with other values.
        &["--network", "none", "--no-cache", "--secret", &spec],
    );

    let seen = run_ok(
        "secret:one",
        &["cat", "/seen", "/mode", "/mode2", "/len", "/optional"],
    );
    assert_eq!(
        seen,
        format!(
            "{}\n400 0\n440 7\n{}\noptional\n",
            sha256(SECRET.as_bytes()),
            SECRET.len()
        )
    );
    // No mount point left behind in the image.
    let o = run_ok(
        "secret:one",
        &[
            "sh",
            "-c",
            "ls -d /run/secrets /etc/app /etc/app/key 2>/dev/null; true",
        ],
    );
    assert_eq!(o, "", "secret mount points reached the image");
    // Not in any blob (layers decompressed), unpacked layer, cache record
    // or history of the whole store.
    let hits = files_holding(store_root(), SECRET.as_bytes());
    assert!(hits.is_empty(), "the secret is in the store: {hits:?}");
    let history = stdout(&rbuild(&["history", "--no-trunc", "secret:one"]));
    assert!(history.contains("type=secret"), "{history}");
    assert!(!history.contains(SECRET));
}

#[test]
fn a_changed_secret_reuses_the_cache_and_a_missing_required_one_fails() {
    let ctx = context(&[("Containerfile", FILE)]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tok");
    std::fs::write(&file, "first value").unwrap();
    let spec = format!("id=tok,src={}", file.display());
    build_ok(
        "secret:two",
        ctx.path(),
        &["--network", "none", "--secret", &spec],
    );
    // As BuildKit: the value is not part of the cache key.
    std::fs::write(&file, "second value").unwrap();
    let o = build_ok(
        "secret:two",
        ctx.path(),
        &["--network", "none", "--secret", &spec],
    );
    assert_eq!(cached_steps(&o), 4, "{}", stderr(&o));

    // The search below the store finds a value that does reach a layer
    // (so its silence in the other test means something).
    let leaky = context(&[(
        "Containerfile",
        "FROM busybox\nRUN --mount=type=secret,id=tok cp /run/secrets/tok /leaked\n",
    )]);
    build_ok(
        "secret:leaky",
        leaky.path(),
        &["--network", "none", "--secret", &spec],
    );
    assert!(!files_holding(store_root(), b"second value").is_empty());

    let strict = context(&[(
        "Containerfile",
        "FROM busybox\nRUN --mount=type=secret,id=nope,required cat /run/secrets/nope\n",
    )]);
    let o = rbuild(&[
        "build",
        "--progress",
        "plain",
        "--network",
        "none",
        strict.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("secret \"nope\" is required but was not given"),
        "{}",
        stderr(&o)
    );
    let o = rbuild(&[
        "build",
        "--secret",
        "id=x,env=RBOX_SURELY_UNSET_VAR",
        strict.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("RBOX_SURELY_UNSET_VAR is not set"),
        "{}",
        stderr(&o)
    );
}

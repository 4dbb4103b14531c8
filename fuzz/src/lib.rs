//! The properties both fuzz drivers check (libFuzzer's targets and the
//! stable `fuzz_stable` loop): the layer unpacker never panics and never
//! writes outside its target; the Containerfile parser never panics and
//! every error names a line.

pub mod seeds;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Names the seeds and mutations aim at outside the target. If any of
/// them exists after an unpack, the unpacker wrote outside its target.
pub const CANARY: &str = "/tmp/rbox-fuzz-canary";

/// A sandbox `<tmp>/sandbox/{target,sibling}`: everything but `target`
/// must be unchanged after the unpack.
struct Sandbox {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn sandbox_base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let p = std::env::temp_dir().join(format!("rbox-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        p
    })
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir_in(sandbox_base()).unwrap();
        let root = dir.path().to_path_buf();
        std::fs::create_dir(root.join("target")).unwrap();
        std::fs::create_dir(root.join("sibling")).unwrap();
        std::fs::write(root.join("sibling/file"), "untouched").unwrap();
        Sandbox { _dir: dir, root }
    }

    fn assert_untouched(&self, data: &[u8]) {
        let mut names: Vec<_> = std::fs::read_dir(&self.root)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["sibling", "target"], "the unpacker wrote beside its target; input {data:?}");
        let sib: Vec<_> = std::fs::read_dir(self.root.join("sibling")).unwrap().collect();
        assert_eq!(sib.len(), 1, "the unpacker wrote into a sibling; input {data:?}");
        assert_eq!(
            std::fs::read_to_string(self.root.join("sibling/file")).unwrap(),
            "untouched",
            "the unpacker rewrote a sibling file; input {data:?}"
        );
        for p in [CANARY.to_string(), format!("{CANARY}-dir")] {
            assert!(
                std::fs::symlink_metadata(&p).is_err(),
                "the unpacker created {p} outside its target; input {data:?}"
            );
        }
    }
}

/// Unpack `data` (any compression the unpacker detects) into a fresh
/// target. An error is fine; a panic or a write outside is not.
pub fn check_unpack(data: &[u8]) {
    let sb = Sandbox::new();
    let target = sb.root.join("target");
    let _ = engine::layer::unpack_stream(data, &target, &engine::layer::UnpackOptions::layer("fuzz"));
    sb.assert_untouched(data);
}

/// Parse `data` as a Containerfile. An error must name a line of the
/// file; only the two whole-file errors (empty file, no FROM at all) may
/// say line 0.
pub fn check_containerfile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = builder::parse::Containerfile::parse("Containerfile", text) {
        let lines = text.lines().count().max(1);
        let has_instruction = text
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
        assert!(
            e.line <= lines + 1,
            "error names line {} of a {lines}-line file: {e}; input {text:?}",
            e.line
        );
        let whole_file = matches!(
            *e.kind,
            builder::parse::ErrorKind::Empty | builder::parse::ErrorKind::NoFrom
        );
        assert!(
            e.line >= 1 || whole_file || !has_instruction,
            "error names no line: {e}; input {text:?}"
        );
        let shown = e.to_string();
        assert!(shown.starts_with("Containerfile"), "error does not name the file: {shown}");
    }
}

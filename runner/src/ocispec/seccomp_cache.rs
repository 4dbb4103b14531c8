//! Compiled linux.seccomp programs kept under rbox-runtime's `--root`.
//!
//! libseccomp needs 15-20 ms of CPU to turn Docker's and Podman's default
//! profile into BPF (measured: `rbox-runtime run` of /bin/true, 3.9 ms
//! without the profile, 21.4 ms with it), the same program on every
//! start. So the program is kept in `<root>/@seccomp/<key>` (`@`: no
//! container id can name it), where the key
//! is the SHA-256 of the profile's JSON, process.noNewPrivileges, the
//! libseccomp version and the running binary's size and mtime: a
//! different profile, flag, library or rbox-runtime never finds another's
//! program. The file's first line is the SHA-256 of the rest; a file that
//! does not match (truncated, edited) is recompiled and replaced.
//!
//! Trust: the directory must be a real directory owned by us (root) with
//! no access for group or others, the file a regular file of ours that
//! no one else may write; otherwise the cache is not used at all. The
//! state root is root's only (0700) as every rbox directory, out of any
//! container's reach. A failure to write the cache is not an error: the
//! program was compiled.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use engine::digest::Digest;
use serde_json::Value;

use super::seccomp::{self, Filter};
use super::Result;

static DIR: OnceLock<PathBuf> = OnceLock::new();

/// Use `<root>/@seccomp` for this process's compiled profiles (the first
/// call wins).
pub fn use_root(root: &Path) {
    let _ = DIR.set(root.join("@seccomp"));
}

/// `seccomp::compile`, through the cache set by `use_root` (none set: no cache).
pub fn compile(v: &Value, no_new_privs: bool) -> Result<Filter> {
    match DIR.get() {
        Some(dir) => compile_in(dir, v, no_new_privs),
        None => seccomp::compile(v, no_new_privs),
    }
}

/// `seccomp::compile` with its program kept in `dir`.
pub fn compile_in(dir: &Path, v: &Value, no_new_privs: bool) -> Result<Filter> {
    let Some(key) = key(v, no_new_privs) else {
        return seccomp::compile(v, no_new_privs);
    };
    let file = dir.join(&key);
    if trusted_dir(dir, false) {
        if let Some(f) = read(&file) {
            return Ok(f);
        }
    }
    let f = seccomp::compile(v, no_new_privs)?;
    if trusted_dir(dir, true) {
        if let Err(e) = write(&file, &f) {
            super::debug(&format!(
                "keep the compiled seccomp profile in {}: {e}",
                file.display()
            ));
        }
    }
    Ok(f)
}

/// The cache key: `None` when the binary or the library cannot be named.
fn key(v: &Value, no_new_privs: bool) -> Option<String> {
    let exe = std::fs::metadata("/proc/self/exe").ok()?;
    let lib = libseccomp::ScmpVersion::current().ok()?;
    let text = format!(
        "rbox-runtime seccomp v1\nexe {} {} {}\nlibseccomp {}.{}.{}\nnnp {no_new_privs}\n{}",
        exe.size(),
        exe.mtime(),
        exe.mtime_nsec(),
        lib.major,
        lib.minor,
        lib.micro,
        serde_json::to_string(v).ok()?
    );
    Some(Digest::sha256_of(text.as_bytes()).hex().to_string())
}

/// `dir` is ours alone (made so with `create`).
fn trusted_dir(dir: &Path, create: bool) -> bool {
    if create {
        // The state root too, root's only as `create` makes it.
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    // SAFETY: geteuid takes nothing and cannot fail.
    let me = unsafe { libc::geteuid() };
    std::fs::symlink_metadata(dir)
        .is_ok_and(|m| m.is_dir() && m.uid() == me && m.mode() & 0o077 == 0)
}

fn read(file: &Path) -> Option<Filter> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)
        .ok()?;
    let m = f.metadata().ok()?;
    // SAFETY: geteuid takes nothing and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !m.is_file() || m.uid() != me || m.mode() & 0o022 != 0 {
        return None;
    }
    let text = std::io::read_to_string(f).ok()?;
    let (sum, body) = text.split_once('\n')?;
    if Digest::sha256_of(body.as_bytes()).hex() != sum {
        return None;
    }
    Filter::from_json(&serde_json::from_str(body).ok()?)
}

/// Temp file then rename: a reader sees the old file or the whole new one.
fn write(file: &Path, f: &Filter) -> std::io::Result<()> {
    let body = f.to_json().to_string();
    let sum = Digest::sha256_of(body.as_bytes());
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    let r = out
        .write_all(format!("{}\n{body}", sum.hex()).as_bytes())
        .and_then(|()| std::fs::rename(&tmp, file));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile(errno_call: &str) -> Value {
        json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": [errno_call], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        })
    }

    fn files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        v.sort();
        v
    }

    fn program(f: &Filter) -> String {
        f.to_json()["insns"].to_string()
    }

    #[test]
    fn a_kept_program_is_reused_and_a_tampered_one_recompiled() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("seccomp");
        let fresh = seccomp::compile(&profile("mkdir"), true).unwrap();
        let first = compile_in(&dir, &profile("mkdir"), true).unwrap();
        assert_eq!(program(&first), program(&fresh));
        let kept = files(&dir);
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        // A hit: the kept file is what is loaded (a consistent edit of it,
        // its sum recomputed, shows through).
        let mut j = fresh.to_json();
        j["rules"] = json!(4242);
        write(&kept[0], &Filter::from_json(&j).unwrap()).unwrap();
        assert_eq!(
            compile_in(&dir, &profile("mkdir"), true).unwrap().rules,
            4242
        );
        // Tampered (its sum no longer matches): recompiled and replaced.
        let text = std::fs::read_to_string(&kept[0]).unwrap();
        let mut j: Value = serde_json::from_str(text.split_once('\n').unwrap().1).unwrap();
        j["insns"][0][3] = json!(7);
        let (sum, _) = text.split_once('\n').unwrap();
        std::fs::write(&kept[0], format!("{sum}\n{j}")).unwrap();
        let again = compile_in(&dir, &profile("mkdir"), true).unwrap();
        assert_eq!(program(&again), program(&fresh));
        assert_eq!(again.rules, fresh.rules);
        assert!(
            read(&kept[0]).is_some(),
            "the tampered file was not replaced"
        );
        // Garbage: recompiled too.
        std::fs::write(&kept[0], "not a program").unwrap();
        let again = compile_in(&dir, &profile("mkdir"), true).unwrap();
        assert_eq!(program(&again), program(&fresh));
    }

    #[test]
    fn a_different_profile_or_flag_never_gets_another_program() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("seccomp");
        let a = compile_in(&dir, &profile("mkdir"), true).unwrap();
        let b = compile_in(&dir, &profile("rmdir"), true).unwrap();
        let c = compile_in(&dir, &profile("mkdir"), false).unwrap();
        assert_eq!(files(&dir).len(), 3);
        assert_eq!(
            program(&b),
            program(&seccomp::compile(&profile("rmdir"), true).unwrap())
        );
        assert_ne!(program(&a), program(&b));
        assert_eq!(
            program(&c),
            program(&seccomp::compile(&profile("mkdir"), false).unwrap())
        );
    }

    #[test]
    fn a_directory_others_can_reach_is_not_used() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("seccomp");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        compile_in(&dir, &profile("mkdir"), true).unwrap();
        assert!(
            files(&dir).is_empty(),
            "wrote into a world-writable directory"
        );
        // Nor a file another user may write, planted in a good directory.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        compile_in(&dir, &profile("mkdir"), true).unwrap();
        let f = &files(&dir)[0];
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(read(f).is_none(), "read a file others may write");
    }
}

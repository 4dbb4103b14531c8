//! Build secrets, as BuildKit has them: `rbuild build --secret
//! id=ID,src=FILE|env=VAR` gives a value that `RUN
//! --mount=type=secret,id=ID[,target=PATH][,env=VAR]` can read, in that
//! step only. The value never reaches a layer, the step cache's key or
//! the image's history:
//!
//! - it is held in memory by rbuild and, for a step that mounts it as a
//!   file, written to a tmpfs mounted for that step in rbuild's own mount
//!   namespace (never on disk), bind-mounted read-only at the target and
//!   unmounted when the step ends;
//! - the cache key and history see the instruction's text (`--mount=
//!   type=secret,id=ID`), never the value: a changed secret reuses the
//!   cached step, as in BuildKit;
//! - the empty file and the directories made in the step's upper dir to
//!   mount it on are removed before the upper dir becomes a layer, when
//!   the lower layers did not have them.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// At most this many bytes per secret (BuildKit's limit is 500 KiB).
pub const MAX_SECRET_BYTES: usize = 500 << 10;

/// The secrets given to one build, by id.
#[derive(Clone, Default)]
pub struct Secrets(BTreeMap<String, Vec<u8>>);

impl std::fmt::Debug for Secrets {
    /// Ids only: a value must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Secrets {
    /// Read `--secret` values: `id=ID,src=FILE` (also `source=`,
    /// `type=file`), `id=ID,env=VAR` (also `type=env,src=VAR`), or `id=ID`
    /// alone (the variable ID, else the file ID, as buildx does).
    pub fn from_specs(specs: &[String]) -> Result<Secrets, String> {
        let mut out = BTreeMap::new();
        for spec in specs {
            let (id, value) = read_spec(spec)?;
            if value.len() > MAX_SECRET_BYTES {
                return Err(format!(
                    "--secret {id}: {} bytes, more than the {MAX_SECRET_BYTES} allowed",
                    value.len()
                ));
            }
            if out.insert(id.clone(), value).is_some() {
                return Err(format!("--secret {id}: given twice"));
            }
        }
        Ok(Secrets(out))
    }

    pub fn get(&self, id: &str) -> Option<&[u8]> {
        self.0.get(id).map(Vec::as_slice)
    }
}

fn read_spec(spec: &str) -> Result<(String, Vec<u8>), String> {
    let (mut id, mut kind, mut src, mut env) = (None, None, None, None);
    for field in spec.split(',') {
        match field.split_once('=') {
            Some(("id", v)) => id = Some(v),
            Some(("type", v)) => kind = Some(v),
            Some(("src" | "source", v)) => src = Some(v),
            Some(("env", v)) => env = Some(v),
            _ => {
                return Err(format!(
                "invalid --secret {spec:?}: unknown field {field:?} (use id=, src=, env=, type=)"
            ))
            }
        }
    }
    let id = match id {
        Some(id) if !id.is_empty() && !id.contains('/') => id.to_string(),
        _ => {
            return Err(format!(
                "invalid --secret {spec:?}: id= is missing or holds '/'"
            ))
        }
    };
    let from_env = |var: &str| {
        std::env::var_os(var)
            .map(std::os::unix::ffi::OsStringExt::into_vec)
            .ok_or_else(|| format!("--secret {id}: the environment variable {var} is not set"))
    };
    let from_file =
        |path: &str| fs::read(path).map_err(|e| format!("--secret {id}: read {path}: {e}"));
    let value = match (kind, src, env) {
        (_, Some(_), Some(_)) => {
            return Err(format!(
                "invalid --secret {spec:?}: give src= or env=, not both"
            ))
        }
        (None | Some("env"), None, Some(var)) => from_env(var)?,
        (Some("env"), Some(var), None) => from_env(var)?,
        (None | Some("file"), Some(path), None) => from_file(path)?,
        (None, None, None) => match std::env::var_os(&id) {
            Some(_) => from_env(&id)?,
            None => from_file(&id)?,
        },
        (Some("file"), None, _) => {
            return Err(format!("invalid --secret {spec:?}: type=file needs src="))
        }
        (Some(other), _, _) => {
            return Err(format!(
                "invalid --secret {spec:?}: type={other:?} (use file or env)"
            ))
        }
    };
    Ok((id, value))
}

/// The secret files of one RUN step: a tmpfs in rbuild's own mount
/// namespace (the step's container sees it; nothing else does), removed
/// on drop.
pub(super) struct StepSecrets {
    dir: PathBuf,
    mounted: bool,
    /// Per file target, its components from the root down, each with
    /// whether the lower layers had it.
    targets: Vec<Vec<(PathBuf, bool)>>,
    staged: usize,
}

impl StepSecrets {
    /// An empty set for a step; the tmpfs is mounted at `dir` on first use.
    pub fn new(dir: PathBuf) -> StepSecrets {
        StepSecrets {
            dir,
            mounted: false,
            targets: Vec::new(),
            staged: 0,
        }
    }

    /// Write `value` as the file the container will see at `target`,
    /// owned by `uid:gid` with `mode`; returns the host path to bind.
    pub fn stage(
        &mut self,
        value: &[u8],
        target: &str,
        lowers: &[PathBuf],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> std::io::Result<PathBuf> {
        if !self.mounted {
            fs::create_dir(&self.dir)?;
            fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))?;
            nix::mount::mount(
                Some("rbuild-secrets"),
                &self.dir,
                Some("tmpfs"),
                nix::mount::MsFlags::MS_NOSUID
                    | nix::mount::MsFlags::MS_NODEV
                    | nix::mount::MsFlags::MS_NOEXEC,
                Some("mode=0700,size=16m"),
            )?;
            self.mounted = true;
        }
        self.staged += 1;
        let path = self.dir.join(self.staged.to_string());
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(value)?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid))?;
        f.set_permissions(fs::Permissions::from_mode(mode & 0o7777))?;
        // The mount point the runtime makes for it in the upper dir.
        let mut at = PathBuf::new();
        let mut comps = Vec::new();
        for c in Path::new(target.trim_start_matches('/')).components() {
            at.push(c);
            let had = lowers
                .iter()
                .any(|l| l.join(&at).symlink_metadata().is_ok());
            comps.push((at.clone(), had));
        }
        self.targets.push(comps);
        Ok(path)
    }

    /// Remove from `upper` the mount points the step's secrets needed and
    /// the lower layers did not have: the target if it is an empty file,
    /// then each directory above it if empty. Walked by fd without
    /// following symlinks: the step may have put anything there.
    pub fn remove_stubs(&self, upper: &Path) -> std::io::Result<()> {
        let root = fs::File::open(upper)?;
        for comps in &self.targets {
            for (depth, (rel, had)) in comps.iter().enumerate().rev() {
                if *had {
                    break; // the image had it, and so everything above
                }
                let file = depth + 1 == comps.len();
                // Gone already, or not what we made: leave it, and what
                // holds it.
                if remove_stub(root.as_fd(), rel, file).is_err() {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Remove `rel` beneath `root` if it is an empty file (`file`) or an
/// empty directory.
fn remove_stub(root: BorrowedFd<'_>, rel: &Path, file: bool) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    };
    let dir = open_dir_beneath(root, parent)?;
    let name = CString::new(std::os::unix::ffi::OsStrExt::as_bytes(name))
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    let st = nix::sys::stat::fstatat(
        Some(dir.as_raw_fd()),
        name.as_c_str(),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    let kind = st.st_mode & libc::S_IFMT;
    let flag = match (file, kind) {
        (true, libc::S_IFREG) if st.st_size == 0 => nix::unistd::UnlinkatFlags::NoRemoveDir,
        // rmdir refuses a directory that is not empty.
        (false, libc::S_IFDIR) => nix::unistd::UnlinkatFlags::RemoveDir,
        _ => return Err(std::io::Error::from_raw_os_error(libc::EEXIST)),
    };
    nix::unistd::unlinkat(Some(dir.as_raw_fd()), name.as_c_str(), flag)?;
    Ok(())
}

impl Drop for StepSecrets {
    fn drop(&mut self) {
        if self.mounted {
            let _ = nix::mount::umount2(&self.dir, nix::mount::MntFlags::MNT_DETACH);
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// `rel` opened as a directory beneath `root`, no symlink followed.
fn open_dir_beneath(root: BorrowedFd<'_>, rel: &Path) -> std::io::Result<OwnedFd> {
    let path = if rel.as_os_str().is_empty() {
        CString::new(".").expect("no NUL")
    } else {
        CString::new(std::os::unix::ffi::OsStrExt::as_bytes(rel.as_os_str()))
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?
    };
    engine::fsutil::openat2(
        root,
        &path,
        libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_read_files_and_variables_and_refuse_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        fs::write(&f, b"s3cr3t").unwrap();
        let s = Secrets::from_specs(&[format!("id=a,src={}", f.display())]).unwrap();
        assert_eq!(s.get("a"), Some(&b"s3cr3t"[..]));
        assert_eq!(format!("{s:?}"), "{\"a\"}", "Debug shows ids only");
        let s = Secrets::from_specs(&["id=b,env=PATH".into()]).unwrap();
        assert!(!s.get("b").unwrap().is_empty());
        let err = |spec: &str| Secrets::from_specs(&[spec.to_string()]).unwrap_err();
        assert!(err("src=x").contains("id= is missing"));
        assert!(err("id=a/b,src=x").contains("id= is missing or holds '/'"));
        assert!(err("id=a,env=RBOX_SURELY_UNSET_VAR").contains("RBOX_SURELY_UNSET_VAR is not set"));
        assert!(err("id=a,src=/nonexistent/x").contains("read /nonexistent/x"));
        assert!(err("id=a,type=ssh,src=x").contains("type=\"ssh\""));
        assert!(err("id=a,bogus=1").contains("unknown field \"bogus=1\""));
        let big = dir.path().join("big");
        fs::write(&big, vec![b'x'; MAX_SECRET_BYTES + 1]).unwrap();
        assert!(err(&format!("id=a,src={}", big.display())).contains("more than"));
        let twice = Secrets::from_specs(&["id=b,env=PATH".into(), "id=b,env=PATH".into()]);
        assert!(twice.unwrap_err().contains("given twice"));
    }
}

//! Looking into an image's layers without running anything: what a path is
//! in the merged view (for COPY's "is the destination a directory?" and for
//! the metadata of parents), and read-only mounted views of a stage's root
//! file system (for `COPY --from` and `RUN --mount=type=bind,from=`).

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use engine::Store;

/// The unpacked layers of an image, top layer first, a repeated layer only
/// at its topmost position (overlayfs refuses a lower twice; see
/// `engine::layer::stack` for why that is the same merged view).
#[derive(Debug, Clone, Default)]
pub struct LayerStack {
    pub lowers: Vec<PathBuf>,
}

impl LayerStack {
    pub fn of(store: &Store, diff_ids: &[engine::Digest]) -> LayerStack {
        LayerStack {
            lowers: engine::layer::stack::lowerdirs(store, diff_ids),
        }
    }

    /// The metadata of `rel` in the merged view, as overlayfs would show
    /// it: the topmost layer that has it wins; a whiteout or an opaque
    /// directory above hides the layers below. Symlinks on the way are not
    /// followed (we only ever ask about paths we are about to create).
    pub fn stat(&self, rel: &Path) -> Option<fs::Metadata> {
        'layers: for layer in &self.lowers {
            // An opaque directory or a whiteout on the way down hides the
            // rest of the stack for this path.
            let mut cur = layer.clone();
            let comps: Vec<_> = rel.components().collect();
            for (i, c) in comps.iter().enumerate() {
                cur.push(c);
                match fs::symlink_metadata(&cur) {
                    Ok(m) if m.file_type().is_char_device() && m.rdev() == 0 => return None,
                    Ok(m) if i + 1 == comps.len() => return Some(m),
                    Ok(m) if m.is_dir() => {
                        if is_opaque(&cur) {
                            // Below this directory only this layer counts.
                            let rest: PathBuf = comps[i + 1..].iter().collect();
                            return fs::symlink_metadata(cur.join(rest)).ok();
                        }
                    }
                    Ok(_) => return None, // a file or symlink where a directory was asked for
                    Err(_) => continue 'layers,
                }
            }
            if comps.is_empty() {
                return fs::symlink_metadata(layer).ok();
            }
        }
        None
    }

    pub fn is_dir(&self, rel: &Path) -> bool {
        self.stat(rel).is_some_and(|m| m.is_dir())
    }
}

fn is_opaque(dir: &Path) -> bool {
    xattr_value(dir, engine::rootless::opaque_xattr()).as_deref() == Some(b"y".as_slice())
}

fn xattr_value(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let n = CString::new(name).ok()?;
    let mut buf = [0u8; 16];
    // SAFETY: valid C strings and a buffer of the length we pass.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| buf[..len as usize].to_vec())
}

/// An image's root file system mounted (overlay, throwaway upper) at a
/// temp directory; unmounted on drop. The builder runs in its own mount
/// namespace (see main), so a killed build leaves no mount on the host.
pub struct MountedView {
    dir: PathBuf,
    merged: PathBuf,
}

impl MountedView {
    pub fn mount(store: &Store, stack: &LayerStack) -> std::io::Result<MountedView> {
        let dir = store.new_temp_dir("view").map_err(std::io::Error::other)?;
        let merged = dir.join("merged");
        let empty = dir.join("empty");
        for d in ["merged", "upper", "work", "empty"] {
            fs::create_dir(dir.join(d))?;
        }
        let mut lowers: Vec<CString> = stack.lowers.iter().map(|p| cstr(p)).collect();
        if lowers.is_empty() {
            lowers.push(cstr(&empty)); // FROM scratch: an empty root
        }
        let plan = runner::native::rootfs::RootfsPlan {
            lowers,
            upper: cstr(&dir.join("upper")),
            work: cstr(&dir.join("work")),
            merged: cstr(&merged),
            readonly: true,
            // A throw-away view: nothing in its upper is ever kept.
            volatile: true,
            steps: Vec::new(),
        };
        runner::native::rootfs::mount_overlay(&plan)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(MountedView { dir, merged })
    }

    pub fn root(&self) -> &Path {
        &self.merged
    }
}

impl Drop for MountedView {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.merged, nix::mount::MntFlags::MNT_DETACH);
        let _ = engine::fsutil::remove_tree(&self.dir);
    }
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).expect("store paths have no NUL")
}

//! COPY and ADD: planned first (sources found and hashed, for the cache
//! key), then executed on a cache miss into a fresh layer directory.

use std::fs;
use std::path::{Path, PathBuf};

use engine::layer::{LayerBlob, UnpackOptions, WriteOptions};

use super::view::{LayerStack, MountedView};
use super::{other, BuildError, Executor, ImageState};
use crate::context;
use crate::copy::{self, Ownership};
use crate::parse::{parse_mode, ContextFilter, Copy, Source, Step};

/// One matched source: its path relative to the source root, and every
/// path beneath it that will be copied (itself first).
struct Item {
    rel: PathBuf,
    files: Vec<PathBuf>,
    is_dir: bool,
    archive: bool,
}

pub(super) struct CopyPlan {
    /// What the cache key must cover beyond the instruction text.
    pub inputs: String,
    root: PathBuf,
    _view: Option<MountedView>,
    items: Vec<Item>,
    heredocs: Vec<(String, String)>,
    /// ADD URL: (file name, downloaded file); the directory goes with the plan.
    downloads: Vec<(String, PathBuf)>,
    _download_dir: Option<TempDir>,
    dest: String,
    own: Ownership,
}

/// A directory under the store's tmp, removed when the step is done.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = engine::fsutil::remove_tree(&self.0);
    }
}

pub(super) fn plan(
    exec: &Executor<'_>,
    step: &Step,
    stage: usize,
    c: &Copy,
    is_add: bool,
    state: &ImageState,
) -> Result<CopyPlan, BuildError> {
    let store = exec.store;
    let (root, view, from_context) = match &c.from {
        None => (exec.opts.context.clone(), None, true),
        Some(from) => {
            let base = exec.cf.resolve_from(step, stage, from)?;
            let src = exec.resolve_base(&base, Some(step))?;
            let view = MountedView::mount(store, &src.stack(store)).map_err(other)?;
            (view.root().to_path_buf(), Some(view), false)
        }
    };
    let excludes =
        ContextFilter::from_patterns(&c.excludes).map_err(|e| BuildError::step(step, e))?;
    let ignore = &exec.filter;
    // .dockerignore patterns are relative to the context root; --exclude
    // patterns to the source they filter (BuildKit: `COPY --exclude=*.txt dir/ /d`),
    // and for a single-file source to its name.
    let excluded_under = |source: &Path, p: &Path| {
        if from_context && ignore.is_excluded(p) {
            return true;
        }
        let rel = match p.strip_prefix(source) {
            Ok(r) if !r.as_os_str().is_empty() => r,
            _ => Path::new(p.file_name().unwrap_or_default()),
        };
        excludes.is_excluded(rel) || excludes.is_excluded(p)
    };

    let mut items = Vec::new();
    let mut heredocs = Vec::new();
    let mut downloads = Vec::new();
    let mut download_dir: Option<TempDir> = None;
    let mut all_files = Vec::new();
    for source in &c.sources {
        match source {
            Source::Url(u) => {
                if download_dir.is_none() {
                    download_dir = Some(TempDir(store.new_temp_dir("add-url").map_err(other)?));
                }
                let dir = &download_dir.as_ref().expect("created above").0;
                let name = super::download::file_name(u);
                let file = dir.join(format!("{}-{name}", downloads.len()));
                super::download::fetch(u, &file, c.checksum.as_deref())
                    .map_err(|e| BuildError::step(step, format!("ADD {u}: {e}")))?;
                downloads.push((name, file));
            }
            Source::Heredoc(h) => heredocs.push((h.name.clone(), h.content.clone())),
            Source::Path(p) => {
                let matches =
                    context::expand_source(&root, p).map_err(|e| BuildError::step(step, e))?;
                for rel in matches {
                    if !rel.as_os_str().is_empty() && excluded_under(&rel, &rel) {
                        continue;
                    }
                    let meta = fs::symlink_metadata(root.join(&rel))
                        .map_err(|e| BuildError::step(step, e))?;
                    let excluded = |p: &Path| excluded_under(&rel, p);
                    let files = context::walk(&root, &rel, &excluded)
                        .map_err(|e| BuildError::step(step, e))?;
                    all_files.extend(files.iter().cloned());
                    let archive = is_add && meta.is_file() && is_archive(&root.join(&rel));
                    items.push(Item {
                        rel,
                        files,
                        is_dir: meta.is_dir(),
                        archive,
                    });
                }
            }
        }
    }
    if items.is_empty() && heredocs.is_empty() && downloads.is_empty() {
        return Err(BuildError::step(
            step,
            "no source files were specified (all excluded?)",
        ));
    }
    let hash = context::hash_files(&root, &all_files).map_err(|e| BuildError::step(step, e))?;
    let mut inputs = hash.to_hex().to_string();
    for (name, content) in &heredocs {
        inputs.push_str(&format!(
            " {}:{}",
            name,
            blake3::hash(content.as_bytes()).to_hex()
        ));
    }

    // A URL's content, not its address, decides the cache (as Docker).
    for (name, file) in &downloads {
        let f = fs::File::open(file).map_err(other)?;
        let mut h = blake3::Hasher::new();
        h.update_reader(f).map_err(other)?;
        inputs.push_str(&format!(" url:{name}:{}", h.finalize().to_hex()));
    }

    let stack = state.stack(store);
    let own = ownership(step, c, &stack)?;
    let dest = super::config::workdir_abs(&state.config, &c.dest);
    let dest = if c.dest.ends_with('/') && !dest.ends_with('/') {
        format!("{dest}/")
    } else {
        dest
    };
    Ok(CopyPlan {
        inputs,
        root,
        _view: view,
        items,
        heredocs,
        downloads,
        _download_dir: download_dir,
        dest,
        own,
    })
}

fn ownership(step: &Step, c: &Copy, stack: &LayerStack) -> Result<Ownership, BuildError> {
    let mut own = Ownership::default();
    if let Some(chown) = &c.chown {
        let passwd = runner::user::read_from_layers(&stack.lowers, "etc/passwd");
        let group = runner::user::read_from_layers(&stack.lowers, "etc/group");
        let u = runner::user::resolve(chown, passwd.as_deref(), group.as_deref())
            .map_err(|e| BuildError::step(step, format!("--chown: {e}")))?;
        own.uid = u.spec.uid;
        own.gid = u.spec.gid;
    }
    if let Some(m) = &c.chmod {
        own.mode =
            Some(parse_mode(m).map_err(|e| BuildError::step(step, format!("--chmod: {e}")))?);
    }
    Ok(own)
}

/// tar, tar.gz or tar.zst by content, as ADD recognises archives.
fn is_archive(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut f) = fs::File::open(path) else {
        return false;
    };
    let n = std::io::Read::read(&mut f, &mut head).unwrap_or(0);
    let head = &head[..n];
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &head[257..262] == b"ustar")
}

pub(super) fn execute(
    exec: &Executor<'_>,
    step: &Step,
    plan: CopyPlan,
    state: &ImageState,
) -> Result<Option<LayerBlob>, BuildError> {
    let store = exec.store;
    let stack = state.stack(store);
    let existing = |rel: &Path| stack.stat(rel);
    in_fresh_layer(exec, "copy", |layer| {
        let layer = layer.to_path_buf();
        let dest_rel = copy::image_relative(&plan.dest).map_err(|e| BuildError::step(step, e))?;
        let many = plan.items.len() + plan.heredocs.len() + plan.downloads.len() > 1;
        let dest_is_dir = plan.dest.ends_with('/') || many || stack.is_dir(&dest_rel);
        let step_err = |e: copy::CopyError| BuildError::step(step, e);
        for item in &plan.items {
            if item.is_dir {
                copy::copy_tree(
                    &plan.root,
                    &item.files,
                    &item.rel,
                    &layer,
                    &dest_rel,
                    plan.own,
                    &existing,
                )
                .map_err(step_err)?;
            } else if item.archive {
                copy::make_parents(&layer, &dest_rel.join("x"), &existing).map_err(step_err)?;
                let target = layer.join(&dest_rel);
                fs::create_dir_all(&target).map_err(other)?;
                let opts = UnpackOptions {
                    whiteouts: false,
                    ..UnpackOptions::layer(item.rel.display().to_string())
                };
                engine::layer::unpack_file(&plan.root.join(&item.rel), &target, &opts)
                    .map_err(|e| BuildError::step(step, e))?;
            } else {
                let target = if dest_is_dir {
                    dest_rel.join(item.rel.file_name().unwrap_or_default())
                } else {
                    dest_rel.clone()
                };
                copy::copy_tree(
                    &plan.root,
                    &item.files,
                    &item.rel,
                    &layer,
                    &target,
                    plan.own,
                    &existing,
                )
                .map_err(step_err)?;
            }
        }
        for (name, file) in &plan.downloads {
            let target = if dest_is_dir {
                dest_rel.join(name)
            } else {
                dest_rel.clone()
            };
            let content = fs::read(file).map_err(other)?;
            // Docker gives downloaded files mode 600 unless --chmod says otherwise.
            let own = Ownership {
                mode: Some(plan.own.mode.unwrap_or(0o600)),
                ..plan.own
            };
            copy::write_file(&layer, &target, &content, own, &existing).map_err(step_err)?;
        }
        for (name, content) in &plan.heredocs {
            let target = if dest_is_dir {
                dest_rel.join(name)
            } else {
                dest_rel.clone()
            };
            copy::write_file(&layer, &target, content.as_bytes(), plan.own, &existing)
                .map_err(step_err)?;
        }
        Ok(())
    })
}

/// WORKDIR of a directory the image does not have: a layer creating it.
pub(super) fn make_dir_layer(
    exec: &Executor<'_>,
    step: &Step,
    rel: &Path,
    state: &ImageState,
) -> Result<Option<LayerBlob>, BuildError> {
    let stack = state.stack(exec.store);
    in_fresh_layer(exec, "workdir", |layer| {
        copy::make_parents(layer, &rel.join("x"), &|p| stack.stat(p))
            .map_err(|e| BuildError::step(step, e))
    })
}

/// Fill a fresh, private directory with `fill` and snapshot it into a
/// layer (published unpacked, so the next step needs no unpack).
fn in_fresh_layer(
    exec: &Executor<'_>,
    prefix: &str,
    fill: impl FnOnce(&Path) -> Result<(), BuildError>,
) -> Result<Option<LayerBlob>, BuildError> {
    let store = exec.store;
    let dir = store.new_temp_dir(prefix).map_err(other)?;
    let layer = dir.join("fs");
    let result = fs::create_dir(&layer)
        .map_err(other)
        .and_then(|()| fill(&layer))
        .and_then(|()| {
            let opts = WriteOptions {
                source_date_epoch: super::run_step::source_date_epoch(),
                publish_unpacked: true,
            };
            engine::layer::write_layer(store, &layer, &opts).map_err(other)
        });
    let _ = engine::fsutil::remove_tree(&dir);
    result
}

//! RUN: a container over the current layers with a fresh upper dir, run
//! through the `Runtime` seam; its upper dir becomes the step's layer.

use std::fs;
use std::os::unix::fs::{lchown, PermissionsExt};
use std::path::PathBuf;

use engine::layer::LayerBlob;
use engine::mount::MountSpec;
use engine::runtime::{
    ContainerSpec, ExitStatus, NetworkMode, OutputSink, Resources, RootfsSpec, SecuritySpec,
    UserSpec,
};

use super::view::MountedView;
use super::{config, other, BuildError, Executor, ImageState};
use crate::parse::{Expander, MountKind, Network, Run, RunScript, Step};
use crate::progress::StepId;

pub(super) fn run(
    exec: &Executor<'_>,
    step: &Step,
    progress: StepId,
    stage: usize,
    run: &Run,
    state: &ImageState,
    ex: &Expander,
) -> Result<Option<LayerBlob>, BuildError> {
    let store = exec.store;
    let stack = state.stack(store);
    let dir = store.new_temp_dir("run").map_err(other)?;
    let result = (|| {
        let (upper, work, empty) = (dir.join("upper"), dir.join("work"), dir.join("empty"));
        // The step mounts its root in its own mount namespace, so all steps
        // share one mount point (as rrun's containers do): no directory that
        // was a mount point has to be removed afterwards.
        let merged = store.root().join("mnt");
        fs::create_dir_all(&merged).map_err(other)?;
        for d in [&upper, &work, &empty] {
            fs::create_dir(d).map_err(other)?;
        }
        let mut secrets = super::secrets::StepSecrets::new(dir.join("secrets"));
        let mut lowers = stack.lowers.clone();
        if lowers.is_empty() {
            lowers.push(empty); // FROM scratch
        }

        let args = match run.script() {
            RunScript::Exec(argv) => argv,
            RunScript::Shell(s) => config::shell_argv(&state.config, &s),
            // A `#!` heredoc: its interpreter runs the body with -c, which
            // every shell and python/perl/ruby accept; the #! line is then
            // a comment to it.
            RunScript::File(body) => {
                let first = body.lines().next().unwrap_or("#!/bin/sh");
                let mut argv: Vec<String> = first
                    .trim_start_matches("#!")
                    .split_whitespace()
                    .map(String::from)
                    .collect();
                if argv.is_empty() {
                    argv.push("/bin/sh".into());
                }
                argv.push("-c".into());
                argv.push(body.clone());
                argv
            }
        };

        let mut env = state.config.config.env.clone();
        for (k, v) in ex.run_args() {
            if !env
                .iter()
                .any(|e| e.split_once('=').map(|(ek, _)| ek) == Some(k.as_str()))
            {
                env.push(format!("{k}={v}"));
            }
        }
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={}", runner::DEFAULT_PATH));
        }

        let user = match state.config.config.user.as_deref() {
            None | Some("") => UserSpec {
                uid: 0,
                gid: 0,
                additional_gids: vec![],
            },
            Some(u) => {
                let passwd = runner::user::read_from_layers(&stack.lowers, "etc/passwd");
                let group = runner::user::read_from_layers(&stack.lowers, "etc/group");
                runner::user::resolve(u, passwd.as_deref(), group.as_deref())
                    .map_err(|e| BuildError::step(step, e))?
                    .spec
            }
        };

        // Views of other stages must stay mounted until the step ends.
        let mut views: Vec<MountedView> = Vec::new();
        let mut mounts = Vec::new();
        let mut secret_env = Vec::new();
        for m in &run.mounts {
            match m.kind {
                MountKind::Secret => {
                    let id = m.secret_id();
                    let Some(value) = exec.opts.secrets.get(id) else {
                        if m.required {
                            return Err(BuildError::step(
                                step,
                                format!("secret {id:?} is required but was not given: rbuild build --secret id={id},src=FILE"),
                            ));
                        }
                        continue; // BuildKit skips a missing optional secret
                    };
                    if let Some(var) = &m.env {
                        let text = std::str::from_utf8(value)
                            .ok()
                            .filter(|t| !t.contains('\0'))
                            .ok_or_else(|| {
                                BuildError::step(
                                    step,
                                    format!("secret {id:?} cannot be the variable {var}: it is not UTF-8 text without NUL"),
                                )
                            })?;
                        secret_env.push(format!("{var}={text}"));
                    }
                    if let Some(target) = m.secret_target() {
                        let file = secrets
                            .stage(
                                value,
                                &target,
                                &lowers,
                                m.mode.unwrap_or(0o400),
                                m.uid.unwrap_or(0),
                                m.gid.unwrap_or(0),
                            )
                            .map_err(|e| {
                                BuildError::step(step, format!("stage secret {id:?}: {e}"))
                            })?;
                        mounts.push(MountSpec::bind(file, &target, true));
                    }
                }
                MountKind::Cache => {
                    let id = blake3::hash(m.cache_id().as_bytes()).to_hex().to_string();
                    let cache_dir = store.root().join("cache/mounts").join(id);
                    if !cache_dir.exists() {
                        fs::create_dir_all(&cache_dir).map_err(other)?;
                        fs::set_permissions(
                            &cache_dir,
                            fs::Permissions::from_mode(m.mode.unwrap_or(0o755)),
                        )
                        .map_err(other)?;
                        lchown(
                            &cache_dir,
                            Some(m.uid.unwrap_or(0)),
                            Some(m.gid.unwrap_or(0)),
                        )
                        .map_err(other)?;
                    }
                    mounts.push(MountSpec::bind(cache_dir, &m.target, false));
                }
                MountKind::Tmpfs => {
                    let size = m.size.map(|s| format!("size={s}"));
                    let opts: Vec<&str> = size.iter().map(String::as_str).collect();
                    mounts.push(MountSpec::tmpfs(&m.target, &opts));
                }
                MountKind::Bind => {
                    let root: PathBuf = match &m.from {
                        None => exec.opts.context.clone(),
                        Some(from) => {
                            let base = exec.cf.resolve_from(step, stage, from)?;
                            let src = exec.resolve_base(&base, Some(step))?;
                            let view =
                                MountedView::mount(store, &src.stack(store)).map_err(other)?;
                            let root = view.root().to_path_buf();
                            views.push(view);
                            root
                        }
                    };
                    let source = resolve_in_root(&root, m.source.as_deref().unwrap_or("/"))
                        .map_err(|e| {
                            BuildError::step(
                                step,
                                format!(
                                    "--mount source {:?}: {e}",
                                    m.source.as_deref().unwrap_or("/")
                                ),
                            )
                        })?;
                    mounts.push(MountSpec::bind(source, &m.target, m.readonly));
                }
            }
        }

        let network =
            match run.network {
                Some(Network::None) => NetworkMode::None,
                // A Containerfile cannot give itself the host's network (and
                // its loopback services): the person building must (BuildKit's
                // network.host entitlement).
                Some(Network::Host) if exec.opts.network == NetworkMode::Host => NetworkMode::Host,
                Some(Network::Host) => return Err(BuildError::step(
                    step,
                    "RUN --network=host needs the builder's opt-in: rbuild build --network host",
                )),
                Some(Network::Default) | None => exec.opts.network,
            };
        let spec = ContainerSpec {
            id: super::step_container_id(),
            rootfs: RootfsSpec {
                lowers,
                upper: upper.clone(),
                work,
                merged,
                readonly: false,
                // Snapshotted into a layer blob (written and synced) as soon
                // as the step ends; a crash mid-step redoes the step.
                disposable: true,
            },
            args,
            // Secrets given as variables reach this process only (the
            // cache key and the history never see `env`).
            env: env.into_iter().chain(secret_env).collect(),
            cwd: state
                .config
                .config
                .working_dir
                .clone()
                .unwrap_or_else(|| "/".into()),
            user,
            hostname: "rbuild".into(),
            mounts,
            network,
            resources: Resources::default(),
            security: SecuritySpec::default(),
            tty: false,
            stdin: false,
            init: false,
        };
        // The step's stdout and stderr go to the progress view through a
        // pipe, read on a thread of its own while the step runs: a step
        // that prints more than a pipe holds must never block on us.
        let (rd, wr) = runner::sys::pipe()
            .map_err(|e| BuildError::step(step, format!("create a pipe for its output: {e}")))?;
        let status = std::thread::scope(|s| {
            s.spawn(|| exec.progress.drain(progress, rd));
            // The runtime closes `wr` when the container is gone, which
            // ends the reader; the scope waits for it, so all the output
            // is shown before the step's outcome.
            exec.runtime.run_with_output(&spec, OutputSink::Fd(wr))
        })
        .map_err(|e| BuildError::step(step, e))?;
        drop(views);
        match status {
            ExitStatus::Exited(0) => {}
            other => {
                return Err(BuildError::RunFailed {
                    at: format!("{}:{}", step.file, step.line),
                    command: step.instruction.to_string(),
                    code: other.code(),
                })
            }
        }
        secrets.remove_stubs(&upper).map_err(|e| {
            BuildError::step(step, format!("remove the secrets' mount points: {e}"))
        })?;
        drop(secrets);
        // The snapshot rrun commit makes too (engine::snapshot).
        engine::snapshot::snapshot_upper(store, &upper, engine::snapshot::Upper::Publish)
            .map_err(other)
    })();
    let _ = engine::fsutil::remove_tree(&dir);
    result
}

/// `SOURCE_DATE_EPOCH` clamps layer mtimes, for reproducible builds.
pub(super) fn source_date_epoch() -> Option<i64> {
    engine::snapshot::source_date_epoch()
}

/// Resolve `path` inside `root` as if `root` were `/` (symlinks cannot
/// lead out), returning the real path the kernel found.
pub(super) fn resolve_in_root(root: &std::path::Path, path: &str) -> std::io::Result<PathBuf> {
    use std::os::fd::AsFd;
    let dir = fs::File::open(root)?;
    let rel = runner::sys::cstring(
        path.trim_start_matches('/').to_string()
            + if path.trim_start_matches('/').is_empty() {
                "."
            } else {
                ""
            },
    );
    let fd = runner::sys::openat2(
        dir.as_fd(),
        &rel,
        libc::O_PATH,
        libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
    )?;
    use std::os::fd::AsRawFd;
    fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

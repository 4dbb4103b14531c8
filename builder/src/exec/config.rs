//! What the metadata instructions do to the image config, as Docker does it.

use std::path::{Path, PathBuf};

use engine::image::ImageConfig;

use crate::parse::{Command, Health, Instruction, PortSpec};

/// The shell form's argv: the stage's SHELL, else `/bin/sh -c`.
pub fn shell_argv(config: &ImageConfig, script: &str) -> Vec<String> {
    let mut argv = if config.config.shell.is_empty() {
        vec!["/bin/sh".to_string(), "-c".to_string()]
    } else {
        config.config.shell.clone()
    };
    argv.push(script.to_string());
    argv
}

fn command_argv(config: &ImageConfig, c: &Command) -> Vec<String> {
    match c {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => shell_argv(config, s),
    }
}

/// WORKDIR's path: relative ones are relative to the previous WORKDIR.
pub fn workdir_abs(config: &ImageConfig, w: &str) -> String {
    if w.starts_with('/') {
        w.to_string()
    } else {
        let base = config
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".into());
        Path::new(&base).join(w).to_string_lossy().to_string()
    }
}

pub fn workdir_rel(config: &ImageConfig, w: &str) -> PathBuf {
    crate::copy::image_relative(&workdir_abs(config, w)).unwrap_or_default()
}

/// Apply a metadata instruction. `cmd_set_here` tracks whether this stage
/// set CMD: ENTRYPOINT resets a CMD inherited from the base, as in Docker.
pub fn apply(
    config: &mut ImageConfig,
    inst: &Instruction,
    cmd_set_here: &mut bool,
) -> Result<(), String> {
    let rc = &mut config.config;
    match inst {
        Instruction::Env(kv) => {
            for (k, v) in kv {
                rc.set_env(k, v);
            }
        }
        Instruction::Label(kv) => {
            for (k, v) in kv {
                rc.labels.insert(k.clone(), v.clone());
            }
        }
        Instruction::Workdir(w) => {
            let abs = workdir_abs(config, w);
            // Normalise `/a/./b/../c` the way the runner will resolve it.
            let rel = crate::copy::image_relative(&abs).map_err(|e| e.to_string())?;
            config.config.working_dir = Some(format!("/{}", rel.display()));
        }
        Instruction::User(u) => rc.user = Some(u.clone()),
        Instruction::Cmd(c) => {
            let argv = command_argv(config, c);
            config.config.cmd = Some(argv);
            *cmd_set_here = true;
        }
        Instruction::Entrypoint(c) => {
            config.config.entrypoint = Some(command_argv(config, c));
            if !*cmd_set_here {
                config.config.cmd = None;
            }
        }
        Instruction::Expose(ports) => {
            for p in ports {
                for key in PortSpec::parse(p)?.config_keys() {
                    rc.exposed_ports.insert(key, Default::default());
                }
            }
        }
        Instruction::Volume(vols) => {
            for v in vols {
                rc.volumes.insert(v.clone(), Default::default());
            }
        }
        Instruction::Shell(argv) => rc.shell = argv.clone(),
        Instruction::StopSignal(s) => rc.stop_signal = Some(s.clone()),
        Instruction::Healthcheck(h) => {
            rc.healthcheck = Some(match h {
                Health::None => serde_json::json!({ "Test": ["NONE"] }),
                Health::Check(c) => {
                    let test = match &c.command {
                        Command::Exec(v) => std::iter::once("CMD".to_string())
                            .chain(v.iter().cloned())
                            .collect::<Vec<_>>(),
                        Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
                    };
                    let ns = |d: &Option<std::time::Duration>| d.map(|d| d.as_nanos() as u64);
                    serde_json::json!({
                        "Test": test,
                        "Interval": ns(&c.interval),
                        "Timeout": ns(&c.timeout),
                        "StartPeriod": ns(&c.start_period),
                        "Retries": c.retries,
                    })
                }
            })
        }
        Instruction::Onbuild(t) => rc.on_build.push(t.clone()),
        Instruction::Maintainer(m) => config.author = Some(m.clone()),
        Instruction::Arg(_) => {}
        Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) => {
            return Err("not a metadata instruction".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_resets_inherited_cmd_only() {
        let mut c = ImageConfig::scratch();
        c.config.cmd = Some(vec!["sh".into()]);
        let mut here = false;
        apply(
            &mut c,
            &Instruction::Entrypoint(Command::Exec(vec!["/app".into()])),
            &mut here,
        )
        .unwrap();
        assert_eq!(c.config.cmd, None);
        apply(
            &mut c,
            &Instruction::Cmd(Command::Shell("echo hi".into())),
            &mut here,
        )
        .unwrap();
        apply(
            &mut c,
            &Instruction::Entrypoint(Command::Exec(vec!["/app2".into()])),
            &mut here,
        )
        .unwrap();
        assert_eq!(
            c.config.cmd.as_ref().unwrap(),
            &["/bin/sh", "-c", "echo hi"]
        );
    }

    #[test]
    fn workdir_is_relative_to_the_previous_one() {
        let mut c = ImageConfig::scratch();
        let mut here = false;
        apply(&mut c, &Instruction::Workdir("/a".into()), &mut here).unwrap();
        apply(&mut c, &Instruction::Workdir("b/../c".into()), &mut here).unwrap();
        assert_eq!(c.config.working_dir.as_deref(), Some("/a/c"));
    }
}

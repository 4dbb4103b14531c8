//! `rbuild import ROOTFS.tar[.gz|.zst] NAME[:TAG]`, as `docker import`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use engine::image::{now_rfc3339, History, ImageConfig, RunConfig};
use engine::ImageRef;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// Rootfs tarball: plain, gzip or zstd (detected from its content)
    pub file: PathBuf,
    /// Name of the new image, NAME[:TAG]
    pub reference: String,
    /// Apply a Dockerfile instruction to the image (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE)
    #[arg(short, long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// Set a commit message for the imported image
    #[arg(short, long)]
    pub message: Option<String>,
}

pub fn run(root: &Path, args: ImportArgs) -> anyhow::Result<()> {
    let reference: ImageRef = args.reference.parse()?;
    let mut config = ImageConfig::scratch();
    for change in &args.changes {
        apply_change(&mut config.config, change)?;
    }
    let store = super::open_store(root)?;
    let layer = engine::layer::import_tarball(&store, &args.file)
        .with_context(|| format!("cannot import {}", args.file.display()))?;
    config.created = Some(now_rfc3339());
    config.rootfs.diff_ids.push(layer.diff_id.clone());
    config.history.push(History {
        created: config.created.clone(),
        created_by: Some(format!("rbuild import {}", args.file.display())),
        comment: args.message.clone(),
        empty_layer: false,
    });
    let manifest = store.put_image(&config, vec![layer.descriptor()])?;
    store.tag(&reference, &manifest)?;
    println!("{manifest}");
    Ok(())
}

/// The few instructions `docker import --change` accepts.
fn apply_change(config: &mut RunConfig, change: &str) -> anyhow::Result<()> {
    let (word, rest) = change
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((change.trim(), ""));
    let rest = rest.trim();
    let exec_or_shell = |s: &str| -> anyhow::Result<Vec<String>> {
        if s.starts_with('[') {
            serde_json::from_str(s)
                .with_context(|| format!("--change {change:?}: invalid JSON array"))
        } else {
            Ok(vec!["/bin/sh".into(), "-c".into(), s.into()])
        }
    };
    match word.to_ascii_uppercase().as_str() {
        "CMD" => config.cmd = Some(exec_or_shell(rest)?),
        "ENTRYPOINT" => config.entrypoint = Some(exec_or_shell(rest)?),
        "WORKDIR" => config.working_dir = Some(rest.to_string()),
        "USER" => config.user = Some(rest.to_string()),
        "ENV" | "LABEL" => {
            let Some((k, v)) = rest.split_once('=') else {
                bail!("--change {change:?}: expected {word} KEY=VALUE");
            };
            let v = v.trim_matches('"');
            if word.eq_ignore_ascii_case("ENV") {
                config.set_env(k, v);
            } else {
                config.labels.insert(k.to_string(), v.to_string());
            }
        }
        "EXPOSE" => {
            for port in rest.split_whitespace() {
                let port = if port.contains('/') { port.to_string() } else { format!("{port}/tcp") };
                config.exposed_ports.insert(port, Default::default());
            }
        }
        other => bail!("--change {change:?}: {other} is not supported by import (use CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL or EXPOSE)"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_changes() {
        let mut c = RunConfig::default();
        apply_change(&mut c, r#"CMD ["sh"]"#).unwrap();
        apply_change(&mut c, "ENTRYPOINT echo hi").unwrap();
        apply_change(&mut c, "ENV PATH=/bin").unwrap();
        apply_change(&mut c, "EXPOSE 80 53/udp").unwrap();
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(c.entrypoint.as_ref().unwrap()[2], "echo hi");
        assert_eq!(c.env_value("PATH"), Some("/bin"));
        assert!(c.exposed_ports.contains_key("80/tcp") && c.exposed_ports.contains_key("53/udp"));
        assert!(apply_change(&mut c, "RUN true").is_err());
        assert!(apply_change(&mut c, "CMD [broken").is_err());
    }
}

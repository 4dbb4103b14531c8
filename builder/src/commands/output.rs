//! `rbuild build --output`: the built stage's files written out, as
//! `docker build -o` does (BuildKit's local and tar exporters):
//!
//! - `type=local,dest=DIR` (or just `DIR`): the tree, into DIR;
//! - `type=tar,dest=FILE` (or `-` for standard output): one tar.
//!
//! Both come from the same flattened tar as `rbuild export`. A local
//! output is extracted by the layer unpacker, which resolves every path
//! beneath DIR by fd: a symlink in the image, or one already in DIR,
//! never sends a file outside DIR.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use engine::outfile::OutputFile;

/// Where `--output` sends the result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Local(PathBuf),
    Tar(PathBuf),
    TarStdout,
}

impl Output {
    /// Parse `--output`'s value: `type=local|tar,dest=PATH`, or the
    /// shorthands `PATH` (local) and `-` (a tar on standard output).
    pub fn parse(spec: &str) -> anyhow::Result<Output> {
        if spec == "-" {
            return Ok(Output::TarStdout);
        }
        if !spec.contains('=') {
            if spec.is_empty() {
                bail!("invalid --output \"\": give a directory, - or type=local|tar,dest=PATH");
            }
            return Ok(Output::Local(spec.into()));
        }
        let (mut kind, mut dest) = (None, None);
        for field in spec.split(',') {
            match field.split_once('=') {
                Some(("type", v)) => kind = Some(v),
                Some(("dest", v)) => dest = Some(v),
                _ => bail!(
                    "invalid --output {spec:?}: unknown field {field:?} (rbuild takes type= and dest=)"
                ),
            }
        }
        let dest = match dest {
            Some(d) if !d.is_empty() => d,
            _ => bail!("invalid --output {spec:?}: dest= is missing"),
        };
        match kind {
            Some("local") | None => Ok(Output::Local(dest.into())),
            Some("tar") if dest == "-" => Ok(Output::TarStdout),
            Some("tar") => Ok(Output::Tar(dest.into())),
            Some(other) => bail!(
                "invalid --output {spec:?}: type {other:?} is not supported (use local or tar; the image itself is always stored, and `rbuild save` or `push` take it further)"
            ),
        }
    }

    /// Whether the output is standard output (nothing else may go there).
    pub fn is_stdout(&self) -> bool {
        *self == Output::TarStdout
    }

    /// Where it went, for the build's last lines.
    pub fn describe(&self) -> String {
        match self {
            Output::Local(d) => format!("files in {}", d.display()),
            Output::Tar(f) => format!("tar {}", f.display()),
            Output::TarStdout => "tar to standard output".into(),
        }
    }

    /// Write `image`'s tree out.
    pub fn write(&self, store: &engine::Store, image: &engine::Image) -> anyhow::Result<()> {
        match self {
            Output::TarStdout => {
                super::export::write_image_tar(store, image, std::io::stdout().lock())
                    .context("--output -: write the tar to standard output")
            }
            Output::Tar(path) => (|| -> anyhow::Result<()> {
                let mut out = OutputFile::create(path)?;
                super::export::write_image_tar(store, image, out.file())?;
                out.commit()?;
                Ok(())
            })()
            .with_context(|| format!("--output: write {}", path.display())),
            Output::Local(dir) => write_local(store, image, dir)
                .with_context(|| format!("--output: write the files into {}", dir.display())),
        }
    }
}

/// The tar streams through a pipe into the unpacker (ADD's mode: no
/// whiteout magic), so the tree is never held twice.
fn write_local(store: &engine::Store, image: &engine::Image, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let (reader, writer) = std::io::pipe().context("make a pipe")?;
    let label = format!("--output {}", dir.display());
    std::thread::scope(|s| {
        let producer = s.spawn(move || super::export::write_image_tar(store, image, writer));
        let unpacked =
            engine::layer::unpack_stream(reader, dir, &engine::layer::UnpackOptions::plain(label));
        let produced = producer.join().expect("the tar writer panicked");
        // The unpacker's error first: a failed write is only its echo
        // (the pipe closed under it).
        unpacked?;
        produced
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_forms() {
        assert_eq!(Output::parse("out").unwrap(), Output::Local("out".into()));
        assert_eq!(Output::parse("-").unwrap(), Output::TarStdout);
        assert_eq!(
            Output::parse("type=local,dest=/x").unwrap(),
            Output::Local("/x".into())
        );
        assert_eq!(
            Output::parse("type=tar,dest=a.tar").unwrap(),
            Output::Tar("a.tar".into())
        );
        assert_eq!(Output::parse("type=tar,dest=-").unwrap(), Output::TarStdout);
        assert_eq!(Output::parse("dest=d").unwrap(), Output::Local("d".into()));
    }

    #[test]
    fn refuses_what_it_cannot_do_naming_it() {
        let err = |s: &str| Output::parse(s).unwrap_err().to_string();
        assert!(err("type=registry,dest=x").contains("type \"registry\" is not supported"));
        assert!(err("type=local").contains("dest= is missing"));
        assert!(err("type=local,dest=").contains("dest= is missing"));
        assert!(
            err("type=tar,dest=x,compression=zstd").contains("unknown field \"compression=zstd\"")
        );
        assert!(err("").contains("give a directory"));
    }
}

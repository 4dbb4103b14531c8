//! `rbuild save IMAGE -o FILE|oci:DIR[:TAG] [--format oci|docker-archive] [--compression zstd|gzip]`.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use engine::oci::{self, ExportCompression};
use engine::outfile::OutputFile;
use engine::ImageRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    /// OCI image layout (tarball, or directory with oci:DIR)
    #[default]
    Oci,
    /// `docker save` format (manifest.json, uncompressed layer tars)
    DockerArchive,
}

#[derive(clap::Args)]
pub struct SaveArgs {
    /// Image to save (NAME[:TAG] or id)
    pub image: String,
    /// Output tarball, or oci:DIR[:TAG] for an OCI layout directory
    #[arg(short, long)]
    pub output: String,
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Layer compression: zstd (ours) or gzip (for older clients); default keeps what is stored
    #[arg(long, value_parser = ["zstd", "gzip"])]
    pub compression: Option<String>,
}

/// `oci:DIR[:TAG]` → (DIR, TAG).
pub fn parse_oci_dir(s: &str) -> Option<(PathBuf, Option<String>)> {
    let rest = s.strip_prefix("oci:")?;
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    match rest[last_slash..].rfind(':') {
        Some(i) => Some((
            PathBuf::from(&rest[..last_slash + i]),
            Some(rest[last_slash + i + 1..].to_string()),
        )),
        None => Some((PathBuf::from(rest), None)),
    }
}

pub fn run(root: &Path, args: SaveArgs) -> anyhow::Result<()> {
    let store = super::open_store(root)?;
    let image = store.find_image(&args.image)?;
    let compression = match args.compression.as_deref() {
        Some(c) => c.parse::<ExportCompression>().map_err(anyhow::Error::msg)?,
        None => ExportCompression::Keep,
    };
    let exported = oci::export::export_image(&store, &image, compression)
        .with_context(|| format!("cannot export {}", args.image))?;
    // Name the image inside the file as the user named it, when that is a name.
    let named: Option<ImageRef> = args
        .image
        .parse::<ImageRef>()
        .ok()
        .filter(|r| store.resolve(r).ok().flatten().as_ref() == Some(&image.manifest_digest));
    let full = named.as_ref().map(|r| r.to_string());
    if let Some((dir, tag)) = parse_oci_dir(&args.output) {
        if args.format != Format::Oci {
            bail!("oci:DIR writes an OCI layout; --format docker-archive needs a file");
        }
        let tag = tag.or_else(|| named.as_ref().map(|r| r.tag.clone()));
        oci::layout::save_dir(&exported, &dir, full.as_deref(), tag.as_deref())
            .with_context(|| format!("cannot write the OCI layout {}", dir.display()))?;
        return Ok(());
    }
    let out = Path::new(&args.output);
    // A random O_EXCL temp name beside the target, renamed over it at the
    // end; a device or fifo (-o /dev/stdout) is written in place.
    let mut file =
        OutputFile::create(out).with_context(|| format!("cannot write {}", out.display()))?;
    let result = (|| -> anyhow::Result<()> {
        let w = BufWriter::with_capacity(1 << 20, file.file());
        let w = match args.format {
            Format::Oci => oci::layout::save_tar(
                &exported,
                w,
                full.as_deref(),
                named.as_ref().map(|r| r.tag.as_str()),
            )?,
            Format::DockerArchive => oci::archive::save(&store, &exported, w, full.as_deref())?,
        };
        w.into_inner().map_err(|e| e.into_error())?;
        Ok(())
    })();
    // An error drops `file`, and its temp file with it.
    let result = result.and_then(|()| Ok(file.commit()?));
    result.with_context(|| format!("cannot write {}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_oci_dir_refs() {
        assert_eq!(
            parse_oci_dir("oci:/tmp/x:v1"),
            Some((PathBuf::from("/tmp/x"), Some("v1".into())))
        );
        assert_eq!(
            parse_oci_dir("oci:/tmp/x"),
            Some((PathBuf::from("/tmp/x"), None))
        );
        assert_eq!(parse_oci_dir("rel/dir.tar"), None);
    }
}

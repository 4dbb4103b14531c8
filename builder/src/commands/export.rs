//! `rbuild export IMAGE -o rootfs.tar`: the image's flattened tree (layers
//! merged by overlayfs, whiteouts applied), as `docker export` gives it.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;
use engine::outfile::OutputFile;

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Image to export (NAME[:TAG] or id)
    pub image: String,
    /// Output tar file
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn run(root: &Path, args: ExportArgs) -> anyhow::Result<()> {
    let store = super::open_store(root)?;
    let image = store.find_image(&args.image)?;
    let result = (|| -> anyhow::Result<()> {
        // A random O_EXCL temp name beside the target, renamed over it at
        // the end; a device or fifo (-o /dev/stdout) is written in place.
        let mut out = OutputFile::create(&args.output)?;
        let w = engine::oci::flatten::export_rootfs(
            &store,
            &image,
            BufWriter::with_capacity(1 << 20, out.file()),
        )?;
        w.into_inner().map_err(|e| e.into_error())?;
        out.commit()?;
        Ok(())
    })();
    result.with_context(|| format!("cannot export {} to {}", args.image, args.output.display()))
}

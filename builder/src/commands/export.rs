//! `rbuild export IMAGE -o rootfs.tar`: the image's flattened tree (layers
//! merged by overlayfs, whiteouts applied), as `docker export` gives it.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;
use engine::outfile::OutputFile;

use builder::exec::view::{LayerStack, MountedView};

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
        let mut out = OutputFile::create(&args.output)?;
        write_image_tar(&store, &image, out.file())?;
        out.commit()?;
        Ok(())
    })();
    result.with_context(|| format!("cannot export {} to {}", args.image, args.output.display()))
}

/// Write `image`'s flattened tree to `out` as a tar: its layers merged by
/// overlayfs (a read-only view with a throw-away upper), whiteouts
/// applied, hard links kept. Used by `export` and `build --output`.
pub fn write_image_tar(
    store: &engine::Store,
    image: &engine::Image,
    out: impl std::io::Write,
) -> anyhow::Result<()> {
    engine::layer::unpack_image(store, image)?;
    let stack = LayerStack::of(store, &image.config.rootfs.diff_ids);
    let view = MountedView::mount(store, &stack)
        .context("cannot mount the image's layers as an overlay")?;
    let w =
        engine::oci::flatten::write_rootfs(view.root(), BufWriter::with_capacity(1 << 20, out))?;
    w.into_inner().map_err(|e| e.into_error())?;
    Ok(())
}

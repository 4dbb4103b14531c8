//! `rbuild export IMAGE -o rootfs.tar`: the image's flattened tree (layers
//! merged by overlayfs, whiteouts applied), as `docker export` gives it.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;

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
    let tmp = args
        .output
        .with_extension(format!("partial-{}", std::process::id()));
    let result = (|| -> anyhow::Result<()> {
        let f = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        engine::layer::unpack_image(&store, &image)?;
        // The layers merged by overlayfs (read-only view, throw-away upper).
        let stack = LayerStack::of(&store, &image.config.rootfs.diff_ids);
        let view = MountedView::mount(&store, &stack)
            .context("cannot mount the image's layers as an overlay")?;
        let w =
            engine::oci::flatten::write_rootfs(view.root(), BufWriter::with_capacity(1 << 20, f))?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &args.output)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot export {} to {}", args.image, args.output.display()))
}

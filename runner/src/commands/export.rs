//! `rrun export NAME [-o FILE]`: the container's filesystem (its image's
//! layers under its upper dir, whiteouts applied, no volumes) as a tar,
//! running or not. With `-o` the tar is written to a temp file beside FILE
//! and renamed over it when complete (`engine::outfile`): a failed export
//! leaves FILE as it was.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use runner::copy::archive::TarWriter;
use runner::state;

use crate::cli::ExportArgs;
use crate::run::{require_root, Coded};

pub fn export(root: &Path, a: &ExportArgs) -> Result<i32> {
    if a.output.is_none() && std::io::stdout().is_terminal() {
        bail!(Coded(
            1,
            anyhow!("refusing to write a tar to a terminal: use -o FILE or redirect the output")
        ));
    }
    require_root("rrun export")?;
    let (dir, s) =
        state::find(&root.join("containers"), &a.container).map_err(|e| Coded(1, e.into()))?;
    // Held open (shared) while the layers are read: gc waits for it.
    let store = engine::Store::open(root).map_err(|e| Coded(125, e.into()))?;
    let image = super::container_image(&store, &s)?;
    let lowers = crate::run::image_lowers(&store, &image)?;
    let tree = runner::container_fs::open_readonly(
        &s.name,
        &dir.join("upper"),
        &lowers,
        &store.root().join("mnt"),
    )
    .map_err(|e| Coded(1, e.into()))?;
    let write = |out: &mut dyn Write| -> Result<()> {
        let mut t = TarWriter::new(BufWriter::with_capacity(1 << 20, out));
        t.children(tree, b"")
            .with_context(|| format!("read the filesystem of {}", s.name))?;
        let mut w = t.finish().context("write the tar")?;
        w.flush().context("write the tar")?;
        Ok(())
    };
    match &a.output {
        Some(path) => {
            let mut out = engine::outfile::OutputFile::create(path)
                .with_context(|| format!("create {}", path.display()))?;
            write(out.file())?;
            out.commit()
                .with_context(|| format!("write {}", path.display()))?;
        }
        None => write(&mut std::io::stdout().lock())?,
    }
    Ok(0)
}

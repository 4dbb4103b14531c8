//! `rrun commit [-m MSG] [-c INSTRUCTION]... NAME [IMAGE[:TAG]]`: the
//! container's upper dir becomes a new layer on its image, through the
//! snapshot a build's RUN step makes (`engine::snapshot`), with the `-c`
//! changes applied to the image's config (`runner::commit`) and a history
//! entry. A running container is paused (frozen) meanwhile, as Docker's
//! `--pause` default does, so the layer is one moment's tree.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use engine::snapshot::{self, Upper};
use runner::{lifecycle, state};

use crate::cli::CommitArgs;
use crate::run::{require_root, Coded};

pub fn commit(root: &Path, a: &CommitArgs) -> Result<i32> {
    let reference: Option<engine::reference::ImageRef> = match &a.image {
        None => None,
        Some(r) => Some(
            r.parse()
                .map_err(|e| Coded(125, anyhow!("invalid image reference {r:?}: {e}")))?,
        ),
    };
    require_root("rrun commit")?;
    let (dir, s) =
        state::find(&root.join("containers"), &a.container).map_err(|e| Coded(1, e.into()))?;
    if s.options.keep_id {
        // Its upper dir holds the owners of the nested namespace
        // (runner::rootless::keepid), not the image's.
        bail!(Coded(
            125,
            anyhow!(
                "rrun commit: {} runs with --userns=keep-id, whose files are owned by shifted ids; commit is not supported for it",
                s.name
            )
        ));
    }
    let store = engine::Store::open(root).map_err(|e| Coded(125, e.into()))?;
    let image = super::container_image(&store, &s)?;
    let mut config = image.config.clone();
    runner::commit::apply_changes(&mut config, &a.changes).map_err(|e| Coded(125, e.into()))?;
    let pause = a.pause && s.is_running() && !lifecycle::paused(&s);
    if pause {
        lifecycle::pause(&dir, &s).with_context(|| format!("pause {} to commit it", s.name))?;
    }
    let layer = snapshot::snapshot_upper(&store, &dir.join("upper"), Upper::Keep);
    if pause {
        lifecycle::unpause(&dir, &s)
            .with_context(|| format!("unpause {} after the commit", s.name))?;
    }
    let layer = layer.with_context(|| format!("snapshot the changes of {}", s.name))?;
    let mut layers = image.manifest.layers.clone();
    snapshot::append_layer(
        &mut config,
        &mut layers,
        layer,
        s.command.join(" "),
        a.message.clone().unwrap_or_default(),
    );
    let digest = store
        .put_image(&config, layers)
        .context("store the image")?;
    if let Some(r) = &reference {
        store
            .tag(r, &digest)
            .with_context(|| format!("tag the image {r}"))?;
    }
    println!("{digest}");
    Ok(0)
}

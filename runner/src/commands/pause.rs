//! `rrun pause NAME...` and `rrun unpause NAME...`: freeze and thaw every
//! process of a container through its cgroup (v2's cgroup.freeze, v1's
//! freezer), as `docker pause` does, through the runtime that runs it
//! (`Container::pause`). A paused container shows as
//! `Up (Paused)` in `ps` and `"Paused": true` in `inspect`; `exec` into it
//! is refused; `stop`, `kill` and `rm -f` thaw it after signalling it.

use std::path::Path;

use anyhow::Result;
use runner::lifecycle;

use crate::cli::PauseArgs;
use crate::run::require_root;

pub fn pause(root: &Path, a: &PauseArgs) -> Result<i32> {
    require_root("rrun pause")?;
    Ok(crate::admin::each_container(
        root,
        &a.containers,
        |dir, s| Ok(lifecycle::pause(dir, s)?),
    ))
}

pub fn unpause(root: &Path, a: &PauseArgs) -> Result<i32> {
    require_root("rrun unpause")?;
    Ok(crate::admin::each_container(
        root,
        &a.containers,
        |dir, s| Ok(lifecycle::unpause(dir, s)?),
    ))
}

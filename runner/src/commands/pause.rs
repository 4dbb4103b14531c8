//! `rrun pause NAME...` and `rrun unpause NAME...`: freeze and thaw every
//! process of a container through its cgroup (v2's cgroup.freeze, v1's
//! freezer), as `docker pause` does. A paused container shows as
//! `Up (Paused)` in `ps` and `"Paused": true` in `inspect`; `exec` into it
//! is refused; `stop`, `kill` and `rm -f` thaw it after signalling it.

use std::path::Path;

use anyhow::Result;
use runner::{lifecycle, state};

use crate::cli::PauseArgs;
use crate::run::require_root;

fn each(
    root: &Path,
    a: &PauseArgs,
    what: &str,
    act: fn(&state::State) -> Result<(), lifecycle::LifecycleError>,
) -> Result<i32> {
    require_root(what)?;
    let mut code = 0;
    for c in &a.containers {
        let r = state::find(&root.join("containers"), c)
            .map_err(anyhow::Error::from)
            .and_then(|(_, s)| act(&s).map_err(anyhow::Error::from));
        match r {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("rrun: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

pub fn pause(root: &Path, a: &PauseArgs) -> Result<i32> {
    each(root, a, "rrun pause", lifecycle::pause)
}

pub fn unpause(root: &Path, a: &PauseArgs) -> Result<i32> {
    each(root, a, "rrun unpause", lifecycle::unpause)
}

//! `rrun rename OLD NEW`: a new name for a container, running or not.
//! Names are unique in a store; the state file is rewritten atomically.

use std::path::Path;

use anyhow::{anyhow, bail, Result};
use runner::state;

use crate::cli::RenameArgs;
use crate::run::{name_problem, Coded};

pub fn rename(root: &Path, a: &RenameArgs) -> Result<i32> {
    let containers = root.join("containers");
    if let Some(why) = name_problem(&a.new) {
        bail!(Coded(
            1,
            anyhow!("invalid container name {:?}: {why}", a.new)
        ));
    }
    let (dir, mut s) = state::find(&containers, &a.old).map_err(|e| Coded(1, e.into()))?;
    if s.name == a.new {
        bail!(Coded(
            1,
            anyhow!("container {} is already named {:?}", a.old, a.new)
        ));
    }
    if state::list(&containers)
        .iter()
        .any(|(_, o)| o.name == a.new)
    {
        bail!(Coded(
            1,
            anyhow!("the container name {:?} is already in use", a.new)
        ));
    }
    s.name = a.new.clone();
    s.save(&dir).map_err(|e| Coded(1, e.into()))?;
    // On a user-defined network: the others' /etc/hosts follow.
    if let Ok(def) = runner::network::user::load(root, &s.host.network_mode) {
        let mut names = vec![s.name.clone()];
        names.extend(s.host.network_aliases.iter().cloned());
        runner::network::hosts::rename(&def.network(root), &s.id, &names);
    }
    // And on those it was connected to (rrun network connect).
    for c in &s.host.connected {
        let mut names = vec![s.name.clone()];
        names.extend(c.aliases.iter().cloned());
        runner::network::hosts::rename(&c.net(), &s.id, &names);
    }
    Ok(0)
}

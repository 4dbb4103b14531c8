//! `pause` and `resume`: freeze and thaw every process of a container
//! through its cgroup (v2's `cgroup.freeze`; v1's freezer, which the
//! container's processes join when it is first paused, see
//! `cgroup::v1::V1Cgroup::freeze`). `state` reports a frozen running
//! container as `paused` (`lifecycle::state`).

use std::path::Path;

use crate::cgroup::Cgroup;

use super::state::{Saved, Status};
use super::{lifecycle, OciError, Result};

/// The container's cgroup.
pub(crate) fn group(s: &Saved) -> Result<Cgroup> {
    let (driver, name) = super::cgroup_for(s.cgroups_path.as_deref(), &s.id)?;
    Ok(driver.open(&name))
}

/// Freeze a running container.
pub fn pause(root: &Path, id: &str) -> Result<()> {
    let (saved, status) = lifecycle::state(root, id)?;
    match (saved, status) {
        (Some(s), Status::Running) => Ok(group(&s)?.freeze()?),
        _ => Err(OciError::WrongState {
            id: id.to_string(),
            status: status.as_str(),
            what: "only a running container can be paused",
        }),
    }
}

/// Thaw a paused container.
pub fn resume(root: &Path, id: &str) -> Result<()> {
    let (saved, status) = lifecycle::state(root, id)?;
    match (saved, status) {
        (Some(s), Status::Paused) => Ok(group(&s)?.thaw()?),
        _ => Err(OciError::WrongState {
            id: id.to_string(),
            status: status.as_str(),
            what: "only a paused container can be resumed",
        }),
    }
}

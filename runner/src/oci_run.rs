//! `rrun run --runtime crun|runc|youki`: the same container through an
//! external OCI runtime (see runner::oci).

use std::path::Path;

use anyhow::{anyhow, Result};
use engine::runtime::ContainerSpec;
use runner::state::State;

use crate::run::Coded;

pub fn run(runtime: &str, _spec: &ContainerSpec, _dir: &Path, _state: State) -> Result<i32> {
    Err(Coded(
        125,
        anyhow!("--runtime {runtime} is not available yet in this build of rrun"),
    )
    .into())
}

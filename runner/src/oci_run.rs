//! `rrun run --runtime crun|runc|youki`: the same container through an
//! external OCI runtime (see runner::oci). Foreground only.

use std::path::Path;

use anyhow::{anyhow, Result};
use engine::runtime::ContainerSpec;
use runner::oci::OciRuntime;
use runner::state::{ProcessId, State, Status};

use crate::run::Coded;

pub fn run(
    runtime: &str,
    spec: &ContainerSpec,
    dir: &Path,
    mut state: State,
    detach: bool,
) -> Result<i32> {
    if detach {
        return Err(Coded(
            125,
            anyhow!("--runtime {runtime} runs in the foreground only (drop -d)"),
        )
        .into());
    }
    if spec.tty {
        return Err(Coded(
            125,
            anyhow!("--runtime {runtime} does not support -t in rrun yet"),
        )
        .into());
    }
    state.status = Status::Running;
    state.supervisor = Some(ProcessId::current());
    let _ = state.save(dir);
    let rt = OciRuntime::new(runtime);
    let status = rt
        .run_with(spec, &dir.join("bundle"), true)
        .map_err(|e| Coded(125, e.into()))?;
    state.status = Status::Exited;
    state.exit_code = Some(status.code());
    state.finished = Some(runner::state::now());
    let _ = state.save(dir);
    Ok(status.code())
}

//! `rrun wait NAME…`: block until each container stops, then print its
//! exit code, as `docker wait` does. A container that is already stopped
//! prints at once; one that is removed meanwhile (`--rm`) is an error.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use runner::state::{self, State, Status};

use crate::cli::WaitArgs;

/// Poll the state file: the supervisor records the exit right after the
/// container's process ends. Starts at 5 ms, backs off to 200 ms.
fn wait_one(containers: &Path, key: &str) -> Result<i32, String> {
    let (dir, _) = state::find(containers, key).map_err(|e| e.to_string())?;
    let mut delay = Duration::from_millis(5);
    loop {
        let s = State::load(&dir).map_err(|_| format!("container {key} was removed"))?;
        let supervisor_alive = s.supervisor.map(|p| p.alive()).unwrap_or(false);
        let exited = s.status == Status::Exited
            || (s.status == Status::Running && !s.is_running() && !supervisor_alive);
        if exited {
            return Ok(s.exit_code.unwrap_or(-1));
        }
        if s.status == Status::Created && !supervisor_alive && !s.awaits_start() {
            // Its start failed and nobody will start it. (One made by
            // `rrun create` is waited for, as Docker does: until an
            // `rrun start` runs it and it exits.)
            return Err(format!("container {key} was never started"));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(200));
    }
}

pub fn wait(root: &Path, a: &WaitArgs) -> Result<i32> {
    let containers = root.join("containers");
    let mut code = 0;
    for key in &a.containers {
        match wait_one(&containers, key) {
            Ok(exit) => println!("{exit}"),
            Err(e) => {
                eprintln!("rrun: {e}");
                code = 1;
            }
        }
    }
    Ok(code)
}

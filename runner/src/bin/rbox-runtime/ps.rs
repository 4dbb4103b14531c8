//! `ps [--format table|json] ID`: the host pids of the container's
//! processes (every member of its cgroup), as containerd's shim asks
//! runc for them (`ps --format json`).

use runner::ocispec::{lifecycle, OciError};

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    pub id: String,
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), OciError> {
    let mut pids = lifecycle::pids(&cli.root, &a.id)?;
    pids.sort_unstable();
    if a.format == "json" {
        println!("{}", serde_json::to_string(&pids).expect("json"));
    } else {
        println!("PID");
        for p in pids {
            println!("{p}");
        }
    }
    Ok(())
}

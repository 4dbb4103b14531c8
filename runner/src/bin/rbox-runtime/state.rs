//! `state ID`: the runtime-spec state object.

use runner::ocispec::{lifecycle, state, OciError};

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    pub id: String,
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), OciError> {
    let (saved, status) = lifecycle::state(&cli.root, &a.id)?;
    let v = match saved {
        Some(s) => state::oci_state(&s, status),
        None => serde_json::json!({
            "ociVersion": state::OCI_VERSION,
            "id": a.id,
            "status": status.as_str(),
            "pid": 0,
        }),
    };
    println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    Ok(())
}

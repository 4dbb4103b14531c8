//! `list [--format table|json] [--quiet]`

use runner::ocispec::{lifecycle, state, OciError};

use crate::Cli;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(short = 'f', long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Ids only.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

pub fn run(cli: &Cli, a: &Args) -> Result<(), OciError> {
    let mut rows = Vec::new();
    for id in state::list(&cli.root) {
        if let Ok((Some(s), status)) = lifecycle::state(&cli.root, &id) {
            rows.push((s, status));
        }
    }
    if a.quiet {
        for (s, _) in &rows {
            println!("{}", s.id);
        }
    } else if a.format == "json" {
        let v: Vec<_> = rows
            .iter()
            .map(|(s, st)| state::oci_state(s, *st))
            .collect();
        println!("{}", serde_json::to_string(&v).expect("json"));
    } else {
        println!(
            "{:<20} {:<8} {:<10} {:<40} CREATED",
            "ID", "PID", "STATUS", "BUNDLE"
        );
        for (s, st) in &rows {
            let pid = if matches!(st, state::Status::Stopped) {
                0
            } else {
                s.pid
            };
            println!(
                "{:<20} {:<8} {:<10} {:<40} {}",
                s.id,
                pid,
                st.as_str(),
                s.bundle.display(),
                s.created
            );
        }
    }
    Ok(())
}

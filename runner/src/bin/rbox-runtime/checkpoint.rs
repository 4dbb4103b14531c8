//! `checkpoint` and `restore`: refused (rbox-runtime has no CRIU support).

use runner::ocispec::OciError;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Whatever runc would take; nothing is done with it.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub rest: Vec<String>,
}

pub fn refuse(what: &str) -> Result<(), OciError> {
    Err(OciError::Other(format!(
        "{what} is not supported by rbox-runtime (no CRIU checkpoint/restore)"
    )))
}

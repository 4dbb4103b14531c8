//! `rbuild login REGISTRY -u USER (-p PASS | --password-stdin)`, `rbuild logout REGISTRY`.
//! Credentials go to `<store root>/auth.json` (or `--authfile` / `$RBOX_AUTH_FILE`), mode 0600.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use engine::oci::registry;

#[derive(clap::Args)]
pub struct LoginArgs {
    /// Registry host[:port] (docker.io for Docker Hub)
    pub registry: String,
    #[arg(short, long)]
    pub username: String,
    /// Password (visible in ps; prefer --password-stdin)
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Allow plain http to a registry that is not on loopback
    #[arg(long)]
    pub insecure: bool,
    /// Credentials file (default: <store root>/auth.json); Docker's ~/.docker/config.json works too
    #[arg(long, env = "RBOX_AUTH_FILE", value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct LogoutArgs {
    pub registry: String,
    /// Credentials file (default: <store root>/auth.json); Docker's ~/.docker/config.json works too
    #[arg(long, env = "RBOX_AUTH_FILE", value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

pub fn login(root: &Path, args: LoginArgs) -> anyhow::Result<()> {
    let password = match (args.password, args.password_stdin) {
        (Some(p), false) => p,
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("cannot read the password from stdin")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        _ => bail!("give exactly one of --password and --password-stdin"),
    };
    let store = super::open_store(root)?;
    registry::login(
        &store,
        &args.registry,
        &args.username,
        &password,
        args.insecure,
        args.authfile.as_deref(),
    )
    .with_context(|| format!("cannot log in to {}", args.registry))?;
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(root: &Path, args: LogoutArgs) -> anyhow::Result<()> {
    let store = super::open_store(root)?;
    if registry::logout(&store, &args.registry, args.authfile.as_deref())? {
        println!("Removed login credentials for {}", args.registry);
    } else {
        println!("Not logged in to {}", args.registry);
    }
    Ok(())
}

//! Saved registry credentials: `<store root>/auth.json`, mode 0600, in
//! Docker's `{"auths": {"host": {"auth": base64(user:password)}}}` shape.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::client::Credentials;
use super::RegistryError;

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AuthEntry {
    auth: String,
}

pub fn auth_path(store_root: &Path) -> PathBuf {
    store_root.join("auth.json")
}

fn read(path: &Path) -> Result<AuthFile, RegistryError> {
    match fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            RegistryError::Local(format!(
                "{}: invalid JSON: {e} (fix or remove it)",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
        Err(e) => Err(RegistryError::Local(format!(
            "read {}: {e}",
            path.display()
        ))),
    }
}

fn write(path: &Path, tmp_dir: &Path, file: &AuthFile) -> Result<(), RegistryError> {
    let bytes = serde_json::to_vec_pretty(file).expect("auth file serialises");
    crate::oci::ingest::write_private(tmp_dir, path, &bytes)
        .map_err(|e| RegistryError::Local(format!("write {}: {e}", path.display())))
}

pub fn lookup(store_root: &Path, registry: &str) -> Result<Option<Credentials>, RegistryError> {
    let file = read(&auth_path(store_root))?;
    let Some(entry) = file.auths.get(registry) else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&entry.auth)
        .map_err(|e| {
            RegistryError::Local(format!(
                "{}: entry for {registry} is not base64: {e}",
                auth_path(store_root).display()
            ))
        })?;
    let raw = String::from_utf8_lossy(&raw);
    let (u, p) = raw.split_once(':').unwrap_or((&raw, ""));
    Ok(Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    }))
}

pub fn save(
    store_root: &Path,
    tmp_dir: &Path,
    registry: &str,
    creds: &Credentials,
) -> Result<(), RegistryError> {
    let path = auth_path(store_root);
    let mut file = read(&path)?;
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.username, creds.password));
    file.auths.insert(registry.to_string(), AuthEntry { auth });
    write(&path, tmp_dir, &file)
}

/// Returns whether there was an entry.
pub fn remove(store_root: &Path, tmp_dir: &Path, registry: &str) -> Result<bool, RegistryError> {
    let path = auth_path(store_root);
    let mut file = read(&path)?;
    let had = file.auths.remove(registry).is_some();
    if had {
        write(&path, tmp_dir, &file)?;
    }
    Ok(had)
}

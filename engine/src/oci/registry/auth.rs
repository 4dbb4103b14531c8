//! Saved registry credentials, in Docker's
//! `{"auths": {"host": {"auth": base64(user:password)}}}` shape, mode 0600.
//!
//! The file is `<store root>/auth.json` unless the caller names another
//! (`rbuild --authfile`, `$RBOX_AUTH_FILE`, as podman's `--authfile`): one
//! file can then serve several stores, or be Docker's own
//! `~/.docker/config.json`, whose other keys (and other fields of an entry)
//! are kept as they are when we rewrite it.

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
    /// Whatever else the file holds (Docker: credsStore, HttpHeaders, ...).
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: String,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

/// The default: beside the store's images.
pub fn auth_path(store_root: &Path) -> PathBuf {
    store_root.join("auth.json")
}

/// The keys an entry for `registry` may be under. Docker files Docker Hub
/// under its old v1 index URL.
fn keys(registry: &str) -> Vec<&str> {
    if registry == super::reference::DOCKER_HUB {
        vec![
            registry,
            "https://index.docker.io/v1/",
            "index.docker.io",
            "registry-1.docker.io",
        ]
    } else {
        vec![registry]
    }
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

/// Rewrite atomically: the temporary file goes beside the target (it may
/// be on another filesystem than the store), created 0600 from the start.
fn write(path: &Path, file: &AuthFile) -> Result<(), RegistryError> {
    let bytes = serde_json::to_vec_pretty(file).expect("auth file serialises");
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let local = |what: &str, e: std::io::Error| {
        RegistryError::Local(format!("{what} {}: {e}", path.display()))
    };
    if !dir.exists() {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| local("create the directory of", e))?;
    }
    crate::oci::ingest::write_private(path, &bytes).map_err(|e| local("write", e))
}

/// Credentials for `registry` in the file at `path`, if any.
pub fn lookup(path: &Path, registry: &str) -> Result<Option<Credentials>, RegistryError> {
    let file = read(path)?;
    let Some(entry) = keys(registry)
        .into_iter()
        .find_map(|k| file.auths.get(k))
        .filter(|e| !e.auth.is_empty())
    else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&entry.auth)
        .map_err(|e| {
            RegistryError::Local(format!(
                "{}: entry for {registry} is not base64: {e}",
                path.display()
            ))
        })?;
    let raw = String::from_utf8_lossy(&raw);
    let (u, p) = raw.split_once(':').unwrap_or((&raw, ""));
    Ok(Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    }))
}

pub fn save(path: &Path, registry: &str, creds: &Credentials) -> Result<(), RegistryError> {
    let mut file = read(path)?;
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.username, creds.password));
    let entry = file
        .auths
        .entry(registry.to_string())
        .or_insert_with(|| AuthEntry {
            auth: String::new(),
            other: serde_json::Map::new(),
        });
    entry.auth = auth;
    write(path, &file)
}

/// Returns whether there was an entry.
pub fn remove(path: &Path, registry: &str) -> Result<bool, RegistryError> {
    let mut file = read(path)?;
    let mut had = false;
    for k in keys(registry) {
        had |= file.auths.remove(k).is_some();
    }
    if had {
        write(path, &file)?;
    }
    Ok(had)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_else_a_docker_config_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/config.json");
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw","email":"x@y"}},"HttpHeaders":{"X-A":"b"}}"#,
        )
        .unwrap();
        let hub = lookup(&path, "docker.io").unwrap().unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("u", "p"));
        let creds = Credentials {
            username: "me".into(),
            password: "s:e".into(),
        };
        save(&path, "127.0.0.1:5000", &creds).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["HttpHeaders"]["X-A"], "b");
        assert_eq!(v["auths"]["https://index.docker.io/v1/"]["email"], "x@y");
        let got = lookup(&path, "127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(
            (got.username.as_str(), got.password.as_str()),
            ("me", "s:e")
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(remove(&path, "docker.io").unwrap());
        assert!(lookup(&path, "docker.io").unwrap().is_none());
        assert!(!remove(&path, "docker.io").unwrap());
        // A file in a directory that is not there yet.
        let fresh = dir.path().join("new/dir/auth.json");
        save(&fresh, "r", &creds).unwrap();
        assert!(lookup(&fresh, "r").unwrap().is_some());
    }
}

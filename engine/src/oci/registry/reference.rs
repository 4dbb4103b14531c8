//! Remote references: `[host[:port]/]repo/path[:tag][@sha256:…]`, with
//! Docker's defaults (`docker.io`, `library/` for one-component names, tag
//! `latest`).

use crate::digest::Digest;

use super::RegistryError;

pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_API: &str = "registry-1.docker.io";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteRef {
    /// The registry as users name it (`docker.io`, `localhost:5000`).
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl RemoteRef {
    pub fn parse(input: &str) -> Result<RemoteRef, RegistryError> {
        let bad = |why: &str| RegistryError::BadReference {
            input: input.to_string(),
            reason: why.to_string(),
        };
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => (
                r,
                Some(d.parse::<Digest>().map_err(|e| bad(&e.to_string()))?),
            ),
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        // Validate with the store's own rules (they are the distribution spec's).
        crate::reference::ImageRef::new(name, tag.as_deref().unwrap_or("latest"))
            .map_err(|e| bad(e.reason))?;
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(RemoteRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host the API is served from.
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// What goes after `/manifests/`: the digest if pinned, else the tag.
    pub fn reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

/// Plain http only for loopback, or when the user insists (`--insecure`).
pub fn scheme_for(host: &str, insecure: bool) -> &'static str {
    let name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let loopback = matches!(name, "localhost" | "127.0.0.1" | "[::1]") || name.starts_with("127.");
    if insecure || loopback {
        "http"
    } else {
        "https"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_defaults_and_ports() {
        let r = RemoteRef::parse("busybox").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("docker.io", "library/busybox", Some("latest"))
        );
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = RemoteRef::parse("localhost:5000/team/app:v2").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("localhost:5000", "team/app", Some("v2"))
        );
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let r = RemoteRef::parse(&format!("127.0.0.1:5000/app@{d}")).unwrap();
        assert_eq!((r.tag.clone(), r.reference()), (None, d.to_string()));
        assert!(RemoteRef::parse("UPPER/case").is_err());
        assert_eq!(scheme_for("127.0.0.1:5000", false), "http");
        assert_eq!(scheme_for("registry.example.com", false), "https");
    }
}

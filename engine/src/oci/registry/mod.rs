//! The OCI distribution spec, client side: pull, push, login.
//!
//! Pull verifies every manifest, config and layer against its digest before
//! anything is committed, unpacks each layer while it streams in (one
//! thread per layer), and tags the image only once all of it is in place: a registry
//! that goes away mid-pull leaves no image, only blobs `gc` collects.

pub mod auth;
pub mod client;
pub mod reference;

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use client::{Body, Client, Credentials};
pub use reference::RemoteRef;

use super::export::{export_image, ExportCompression};
use super::ingest::{import_manifest, BlobFetch};
use super::layout::{is_index_type, select_platform, Index, Platform};
use super::{json, verify_bytes, OciError, Result};
use crate::digest::Digest;
use crate::image::{media_type, Descriptor};
use crate::reference::ImageRef;
use crate::store::{Image, Store};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid remote reference {input:?}: {reason}")]
    BadReference { input: String, reason: String },
    #[error("{method} {url}: HTTP {code}: {body}")]
    Status {
        method: String,
        url: String,
        code: u16,
        body: String,
    },
    #[error("{url}: {detail} (is the registry running and reachable? for plain http to a non-loopback host use --insecure)")]
    Transport { url: String, detail: String },
    #[error("{url}: not authorised: {detail}")]
    Unauthorized { url: String, detail: String },
    #[error("{0}")]
    Local(String),
}

/// What happens, for progress displays.
#[derive(Debug, Clone)]
pub enum Event {
    /// A blob transfer starts (pull or push).
    Start {
        digest: Digest,
        size: u64,
    },
    Done {
        digest: Digest,
        size: u64,
        took: Duration,
    },
    /// Already there (in our store on pull, in the registry on push).
    Exists {
        digest: Digest,
    },
    Mounted {
        digest: Digest,
        from: String,
    },
    Manifest {
        digest: Digest,
    },
}

pub type Progress<'a> = &'a (dyn Fn(Event) + Sync);

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub platform: Option<Platform>,
    pub insecure: bool,
}

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub insecure: bool,
    pub compression: ExportCompression,
    /// Upload in chunks of this many bytes (PATCH); `None`: one PUT per blob.
    pub chunk_size: Option<u64>,
    /// Try a cross-repository mount from this repository (same registry) first.
    pub mount_from: Option<String>,
}

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

fn client_for(
    store_root: &Path,
    r: &RemoteRef,
    insecure: bool,
    actions: &str,
    extra_scopes: Vec<String>,
) -> Result<Client> {
    let creds = auth::lookup(store_root, &r.registry)?;
    let mut scopes = vec![format!("repository:{}:{actions}", r.repository)];
    scopes.extend(extra_scopes);
    Ok(Client::new(r.api_host(), insecure, scopes, creds))
}

struct RegistryBlobs<'a> {
    client: &'a Client,
    repository: &'a str,
    progress: Progress<'a>,
}

struct Timed<'a, R> {
    inner: R,
    digest: Digest,
    size: u64,
    start: Instant,
    read: u64,
    progress: Progress<'a>,
}

impl<R: Read> Read for Timed<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if n == 0 && !buf.is_empty() && self.read == self.size {
            (self.progress)(Event::Done {
                digest: self.digest.clone(),
                size: self.size,
                took: self.start.elapsed(),
            });
            self.read += 1; // report once
        }
        Ok(n)
    }
}

impl BlobFetch for RegistryBlobs<'_> {
    fn fetch(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        let path = format!("/v2/{}/blobs/{}", self.repository, desc.digest);
        let resp = self.client.send("GET", &path, &[], &Body::None)?;
        (self.progress)(Event::Start {
            digest: desc.digest.clone(),
            size: desc.size,
        });
        Ok(Box::new(Timed {
            inner: resp.into_reader(),
            digest: desc.digest.clone(),
            size: desc.size,
            start: Instant::now(),
            read: 0,
            progress: self.progress,
        }))
    }
}

/// GET a manifest; verify it against the pinned digest, or against the
/// registry's `Docker-Content-Digest` when that is sha256.
fn get_manifest(
    client: &Client,
    repository: &str,
    reference: &str,
) -> Result<(String, Vec<u8>, Digest)> {
    let path = format!("/v2/{repository}/manifests/{reference}");
    let resp = client.send("GET", &path, &[("Accept", MANIFEST_ACCEPT)], &Body::None)?;
    let claimed = resp
        .header("docker-content-digest")
        .and_then(|d| d.parse::<Digest>().ok());
    let content_type = resp
        .header("content-type")
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(4 << 20)
        .read_to_end(&mut bytes)
        .map_err(|e| RegistryError::Transport {
            url: client.url(&path),
            detail: format!("reading the manifest: {e}"),
        })?;
    let actual = Digest::sha256_of(&bytes);
    let expected = match reference.parse::<Digest>() {
        Ok(d) => Some(d),
        Err(_) => claimed,
    };
    if let Some(d) = expected {
        verify_bytes(&format!("manifest {repository}:{reference}"), &bytes, &d)?;
    }
    // The body's mediaType wins over the header when present.
    let mt = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| {
            v.get("mediaType")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or(content_type);
    Ok((mt, bytes, actual))
}

/// Pull `reference` into the store and tag it there under the name as given
/// (`localhost:5000/app:v1` stays that; a pinned digest only is not tagged).
/// Returns the stored (blake3) manifest digest.
pub fn pull(
    store: &Store,
    reference: &str,
    opts: &PullOptions,
    progress: Progress<'_>,
) -> Result<Digest> {
    let r = RemoteRef::parse(reference)?;
    let client = client_for(store.root(), &r, opts.insecure, "pull", Vec::new())?;
    let (mut mt, mut bytes, mut digest) = get_manifest(&client, &r.repository, &r.reference())?;
    if is_index_type(&mt) {
        let index: Index = json("image index", &bytes)?;
        let platform = opts.platform.clone().unwrap_or_else(Platform::linux_amd64);
        let chosen = select_platform(&index, &platform)?.digest.to_string();
        (mt, bytes, digest) = get_manifest(&client, &r.repository, &chosen)?;
        if is_index_type(&mt) {
            return Err(OciError::Unsupported(format!(
                "{reference}: nested image indexes are not supported"
            )));
        }
    }
    progress(Event::Manifest { digest });
    let src = RegistryBlobs {
        client: &client,
        repository: &r.repository,
        progress,
    };
    let manifest = import_manifest(store, &src, &bytes)?;
    if let Some(tag) = &r.tag {
        let name = reference.split('@').next().unwrap_or(reference);
        let name = name.strip_suffix(&format!(":{tag}")).unwrap_or(name);
        let r = ImageRef::new(name, tag).map_err(|e| RegistryError::BadReference {
            input: reference.to_string(),
            reason: e.reason.to_string(),
        })?;
        store.tag(&r, &manifest)?;
    }
    Ok(manifest)
}

/// The hook for `rrun run REF` (as `docker run` pulls): the image from the
/// store if it is there, else pulled from its registry, tagged, and returned.
/// Layers are unpacked by the pull, so the container starts at once.
pub fn find_or_pull(
    store: &Store,
    reference: &str,
    opts: &PullOptions,
    progress: Progress<'_>,
) -> Result<Image> {
    match store.find_image(reference) {
        Ok(image) => Ok(image),
        Err(crate::store::StoreError::ImageNotFound { .. }) => {
            let digest = pull(store, reference, opts, progress)?;
            Ok(store.image_by_digest(&digest)?)
        }
        Err(e) => Err(e.into()),
    }
}

/// Push a stored image to `reference`. Blobs the registry has are skipped
/// (HEAD); with `mount_from`, a cross-repository mount is tried first.
/// Returns the sha256 manifest digest as the registry knows it.
pub fn push(
    store: &Store,
    image: &Image,
    reference: &str,
    opts: &PushOptions,
    progress: Progress<'_>,
) -> Result<Digest> {
    let r = RemoteRef::parse(reference)?;
    let extra = opts
        .mount_from
        .iter()
        .map(|f| format!("repository:{f}:pull"))
        .collect();
    let client = client_for(store.root(), &r, opts.insecure, "pull,push", extra)?;
    let exported = export_image(store, image, opts.compression)?;
    // Authenticate once before the parallel uploads, so they share a token.
    let _ = client.send("GET", "/v2/", &[], &Body::None);
    let results: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = exported
            .layers
            .iter()
            .map(|l| {
                let client = &client;
                let r = &r;
                s.spawn(move || {
                    upload_blob(
                        client,
                        &r.repository,
                        &l.descriptor,
                        BlobSrc::File(&l.path),
                        opts,
                        progress,
                    )
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("an upload thread panicked"))
            .collect()
    });
    results.into_iter().collect::<Result<Vec<_>>>()?;
    upload_blob(
        &client,
        &r.repository,
        &exported.config_descriptor,
        BlobSrc::Bytes(&exported.config),
        opts,
        progress,
    )?;
    let tag = r.reference();
    client.send(
        "PUT",
        &format!("/v2/{}/manifests/{tag}", r.repository),
        &[("Content-Type", media_type::MANIFEST)],
        &Body::Bytes(&exported.manifest),
    )?;
    progress(Event::Manifest {
        digest: exported.manifest_descriptor.digest.clone(),
    });
    Ok(exported.manifest_descriptor.digest)
}

enum BlobSrc<'a> {
    File(&'a Path),
    Bytes(&'a [u8]),
}

fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!(
        "{location}{sep}digest={}",
        client::encode(&digest.to_string())
    )
}

fn location(client: &Client, resp: &client::Response) -> Result<String> {
    let loc = resp.header("location").ok_or_else(|| {
        RegistryError::Local("the registry answered an upload without a Location header".into())
    })?;
    Ok(if loc.starts_with('/') || loc.starts_with("http") {
        client.url(loc)
    } else {
        client.url(&format!("/{loc}"))
    })
}

fn upload_blob(
    client: &Client,
    repo: &str,
    desc: &Descriptor,
    src: BlobSrc<'_>,
    opts: &PushOptions,
    progress: Progress<'_>,
) -> Result<()> {
    let head = client.send(
        "HEAD",
        &format!("/v2/{repo}/blobs/{}", desc.digest),
        &[],
        &Body::None,
    );
    match head {
        Ok(_) => {
            progress(Event::Exists {
                digest: desc.digest.clone(),
            });
            return Ok(());
        }
        Err(RegistryError::Status { code: 404, .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let start = Instant::now();
    let mut loc = None;
    if let Some(from) = &opts.mount_from {
        let path = format!(
            "/v2/{repo}/blobs/uploads/?mount={}&from={}",
            client::encode(&desc.digest.to_string()),
            client::encode(from)
        );
        let resp = client.send("POST", &path, &[("Content-Length", "0")], &Body::None)?;
        if resp.status() == 201 {
            progress(Event::Mounted {
                digest: desc.digest.clone(),
                from: from.clone(),
            });
            return Ok(());
        }
        loc = Some(location(client, &resp)?);
    }
    let mut loc = match loc {
        Some(l) => l,
        None => {
            let resp = client.send(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/"),
                &[("Content-Length", "0")],
                &Body::None,
            )?;
            location(client, &resp)?
        }
    };
    progress(Event::Start {
        digest: desc.digest.clone(),
        size: desc.size,
    });
    let octet = ("Content-Type", "application/octet-stream");
    match (opts.chunk_size, &src) {
        (Some(chunk), _) if chunk > 0 => {
            let mut off = 0u64;
            while off < desc.size {
                let len = chunk.min(desc.size - off);
                let range = format!("{}-{}", off, off + len - 1);
                let body = match &src {
                    BlobSrc::File(p) => Body::File(p, off, len),
                    BlobSrc::Bytes(b) => Body::Bytes(&b[off as usize..(off + len) as usize]),
                };
                let resp =
                    client.send("PATCH", &loc, &[octet, ("Content-Range", &range)], &body)?;
                loc = location(client, &resp)?;
                off += len;
            }
            client.send(
                "PUT",
                &with_digest(&loc, &desc.digest),
                &[octet],
                &Body::Bytes(&[]),
            )?;
        }
        _ => {
            let body = match &src {
                BlobSrc::File(p) => Body::File(p, 0, desc.size),
                BlobSrc::Bytes(b) => Body::Bytes(b),
            };
            client.send("PUT", &with_digest(&loc, &desc.digest), &[octet], &body)?;
        }
    }
    progress(Event::Done {
        digest: desc.digest.clone(),
        size: desc.size,
        took: start.elapsed(),
    });
    Ok(())
}

/// Check credentials against `registry` (GET /v2/ through the auth dance)
/// and save them in `<store root>/auth.json` (0600).
pub fn login(
    store: &Store,
    registry: &str,
    username: &str,
    password: &str,
    insecure: bool,
) -> Result<()> {
    let host = if registry == reference::DOCKER_HUB {
        "registry-1.docker.io"
    } else {
        registry
    };
    let creds = Credentials {
        username: username.to_string(),
        password: password.to_string(),
    };
    let client = Client::new(host, insecure, Vec::new(), Some(creds));
    client
        .send("GET", "/v2/", &[], &Body::None)
        .map_err(|e| match e {
            RegistryError::Status { code: 401, url, .. } => RegistryError::Unauthorized {
                url,
                detail: "wrong username or password".into(),
            },
            e => e,
        })?;
    auth::save(
        store.root(),
        store.tmp_dir(),
        registry,
        &Credentials {
            username: username.to_string(),
            password: password.to_string(),
        },
    )?;
    Ok(())
}

pub fn logout(store: &Store, registry: &str) -> Result<bool> {
    Ok(auth::remove(store.root(), store.tmp_dir(), registry)?)
}

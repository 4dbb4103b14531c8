//! The OCI distribution spec, client side: pull, push, login.
//!
//! Pull verifies every manifest, config and layer against its digest before
//! anything is committed, unpacks each layer while it streams in (a few
//! layers at a time, [`Limits::parallel_blobs`]), and tags the image only
//! once all of it is in place: a registry that goes away mid-pull, or
//! serves one layer that does not match its digest, leaves no image and
//! no layer ([`super::ingest`] stages every layer before publishing any). Nothing from the network is read
//! without a bound ([`transfer`]): a blob stops at its descriptor's size,
//! a manifest at [`MANIFEST_LIMIT`], every transfer at a stall.
//!
//! Push skips blobs the registry has (HEAD) and, before uploading, asks for
//! a cross-repository mount from any repository of the same registry we
//! pulled the blob from or pushed it to ([`super::sources`]), as Docker does.

pub mod auth;
pub mod client;
pub mod index;
pub mod reference;
pub mod transfer;

use std::io::Read;
use std::path::{Path, PathBuf};

use client::{Body, Client, Credentials};
pub use reference::RemoteRef;
use transfer::{check_length, read_limited, Exact, Progress};
pub use transfer::{Limits, TransferError};

use super::export::{export_image, ExportCompression};
use super::ingest::{import_manifest, parse_manifest, BlobFetch, Watch};
use super::layout::{is_index_type, resolve_platform, Index, IndexEntry, Platform};
use super::sources;
use super::{json, verify_bytes, OciError, Result};
use crate::digest::Digest;
use crate::image::{media_type, Descriptor};
use crate::progress::{Note, Phase, TransferProgress};
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
    #[error(transparent)]
    Transfer(#[from] TransferError),
}

#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub platform: Option<Platform>,
    pub insecure: bool,
    /// Credentials file; `None`: `<store root>/auth.json`.
    pub auth_file: Option<PathBuf>,
    /// Stall window, rate floor, parallel downloads.
    pub limits: Limits,
}

#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    pub insecure: bool,
    pub compression: ExportCompression,
    /// Upload in chunks of this many bytes (PATCH); `None`: one PUT per blob.
    pub chunk_size: Option<u64>,
    /// Try a cross-repository mount from this repository (same registry)
    /// first, before the ones the store remembers for each blob.
    pub mount_from: Option<String>,
    /// Credentials file; `None`: `<store root>/auth.json`.
    pub auth_file: Option<PathBuf>,
    /// Stall window and rate floor.
    pub limits: Limits,
}

/// The credentials file: the one named, else the store's.
pub fn auth_file(store: &Store, named: Option<&Path>) -> PathBuf {
    named.map_or_else(|| auth::auth_path(store.root()), Path::to_path_buf)
}

/// The most a manifest or index may be (real ones are a few KiB; an
/// index of every platform stays far below).
pub const MANIFEST_LIMIT: u64 = 4 << 20;

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

fn client_for(
    auth_file: &Path,
    r: &RemoteRef,
    insecure: bool,
    actions: &str,
    extra_scopes: Vec<String>,
    limits: Limits,
) -> Result<Client> {
    let creds = auth::lookup(auth_file, &r.registry)?;
    let mut scopes = vec![format!("repository:{}:{actions}", r.repository)];
    scopes.extend(extra_scopes);
    Ok(Client::new(r.api_host(), insecure, scopes, creds, limits))
}

struct RegistryBlobs<'a> {
    client: &'a Client,
    repository: &'a str,
}

impl BlobFetch for RegistryBlobs<'_> {
    /// The body stops at the descriptor's size (one byte more is an
    /// error), and must keep up [`Limits`]' rate.
    fn fetch(&self, desc: &Descriptor) -> Result<Box<dyn Read + Send + '_>> {
        let path = format!("/v2/{}/blobs/{}", self.repository, desc.digest);
        let what = format!("blob {}", desc.digest);
        let resp = self.client.get_stream(&path)?;
        check_length(
            resp.header("content-length"),
            &what,
            Some(desc.size),
            u64::MAX,
        )
        .map_err(RegistryError::from)?;
        let body = Progress::new(resp.into_reader(), what.clone(), &self.client.limits);
        Ok(Box::new(Exact::new(body, what, desc.size)))
    }

    fn parallel(&self) -> usize {
        self.client.limits.parallel_blobs
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
    let what = format!("manifest {repository}:{reference}");
    check_length(resp.header("content-length"), &what, None, MANIFEST_LIMIT)
        .map_err(RegistryError::from)?;
    let body = Progress::new(resp.into_reader(), what.clone(), &client.limits);
    let bytes =
        read_limited(body, &what, MANIFEST_LIMIT).map_err(|e| RegistryError::Transport {
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
    progress: &dyn TransferProgress,
) -> Result<Digest> {
    let r = RemoteRef::parse(reference)?;
    let creds = auth_file(store, opts.auth_file.as_deref());
    let client = client_for(&creds, &r, opts.insecure, "pull", Vec::new(), opts.limits)?;
    let (mut mt, mut bytes, mut digest) = get_manifest(&client, &r.repository, &r.reference())?;
    if is_index_type(&mt) {
        let index: Index = json("image index", &bytes)?;
        let platform = opts.platform.clone().unwrap_or_else(Platform::linux_amd64);
        let mut open = |e: &IndexEntry| -> Result<Index> {
            let (mt, bytes, _) = get_manifest(&client, &r.repository, &e.digest.to_string())?;
            if !is_index_type(&mt) {
                return Err(OciError::Format(format!(
                    "{reference}: {} is listed as an image index but is {mt}",
                    e.digest
                )));
            }
            json("nested image index", &bytes)
        };
        let chosen = resolve_platform(&index, &platform, &mut open)?;
        (mt, bytes, digest) = get_manifest(&client, &r.repository, &chosen.digest.to_string())?;
        if is_index_type(&mt) {
            return Err(OciError::Format(format!(
                "{reference}: {} is listed as an image manifest but is an image index",
                chosen.digest
            )));
        }
    }
    progress.note(Phase::Download, &digest.to_string(), &Note::Manifest);
    let src = RegistryBlobs {
        client: &client,
        repository: &r.repository,
    };
    let watch = Watch {
        progress,
        phase: Phase::Download,
    };
    let manifest = import_manifest(store, &src, &bytes, watch)?;
    let parsed = parse_manifest("manifest", &bytes)?;
    for d in parsed.layers.iter().chain([&parsed.config]) {
        sources::record(store, &d.digest, &r.registry, &r.repository)?;
    }
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
    progress: &dyn TransferProgress,
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
/// (HEAD); blobs the store knows in another repository of the same
/// registry (or in `mount_from`) are mounted from there when the registry
/// agrees, else uploaded. Returns the sha256 manifest digest as the
/// registry knows it.
pub fn push(
    store: &Store,
    image: &Image,
    reference: &str,
    opts: &PushOptions,
    progress: &dyn TransferProgress,
) -> Result<Digest> {
    let r = RemoteRef::parse(reference)?;
    let exported = export_image(store, image, opts.compression)?;
    let mut blobs: Vec<(&Descriptor, BlobSrc<'_>)> = exported
        .layers
        .iter()
        .map(|l| (&l.descriptor, BlobSrc::File(&l.path)))
        .collect();
    blobs.push((
        &exported.config_descriptor,
        BlobSrc::Bytes(&exported.config),
    ));
    let candidates: Vec<Vec<String>> = blobs
        .iter()
        .map(|(d, _)| mount_candidates(store, &r, &d.digest, opts.mount_from.as_deref()))
        .collect();
    // Bearer tokens must also grant pull on every repository we mount from.
    let mut extra: Vec<String> = Vec::new();
    for c in candidates.iter().flatten() {
        let scope = format!("repository:{c}:pull");
        if !extra.contains(&scope) {
            extra.push(scope);
        }
    }
    let creds = auth_file(store, opts.auth_file.as_deref());
    let client = client_for(&creds, &r, opts.insecure, "pull,push", extra, opts.limits)?;
    let pusher = Pusher {
        client: &client,
        store,
        remote: &r,
        opts,
        progress,
    };
    // Authenticate once before the parallel uploads, so they share a token.
    let _ = client.send("GET", "/v2/", &[], &Body::None);
    let (config, layers) = blobs.split_last().expect("the config is always there");
    let jobs: Vec<_> = layers.iter().zip(&candidates).collect();
    super::parallel::map_bounded(&jobs, opts.limits.parallel_blobs, |((desc, src), from)| {
        pusher.blob(desc, src, from)
    })?;
    pusher.blob(
        config.0,
        &config.1,
        candidates.last().expect("one per blob"),
    )?;
    let tag = r.reference();
    client.send(
        "PUT",
        &format!("/v2/{}/manifests/{tag}", r.repository),
        &[("Content-Type", media_type::MANIFEST)],
        &Body::Bytes(&exported.manifest),
    )?;
    progress.note(
        Phase::Upload,
        &exported.manifest_descriptor.digest.to_string(),
        &Note::Manifest,
    );
    Ok(exported.manifest_descriptor.digest)
}

/// Repositories to try a mount from, in order: the one asked for, then the
/// ones of the same registry the store remembers for this blob. Three at
/// most: each refused try costs a round trip (and an upload session).
fn mount_candidates(
    store: &Store,
    r: &RemoteRef,
    digest: &Digest,
    asked: Option<&str>,
) -> Vec<String> {
    let mut out: Vec<String> = asked.map(str::to_string).into_iter().collect();
    for c in sources::mount_candidates(store, digest, &r.registry, &r.repository) {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out.truncate(3);
    out
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

/// One push's shared state; `blob` runs on one thread per layer.
struct Pusher<'a> {
    client: &'a Client,
    store: &'a Store,
    remote: &'a RemoteRef,
    opts: &'a PushOptions,
    progress: &'a dyn TransferProgress,
}

impl Pusher<'_> {
    /// Get one blob into the repository: there already, mounted, or
    /// uploaded; then remember it is there.
    fn blob(&self, desc: &Descriptor, src: &BlobSrc<'_>, mount_from: &[String]) -> Result<()> {
        let (client, repo) = (self.client, &self.remote.repository);
        let id = desc.digest.to_string();
        let head = client.send("HEAD", &format!("/v2/{repo}/blobs/{id}"), &[], &Body::None);
        match head {
            Ok(_) => self.progress.note(Phase::Upload, &id, &Note::Exists),
            Err(RegistryError::Status { code: 404, .. }) => {
                let session = match self.mount(desc, mount_from)? {
                    Mount::Done => return self.remember(desc),
                    Mount::Refused(session) => session,
                };
                self.upload(desc, src, session)?;
            }
            Err(e) => return Err(e.into()),
        }
        self.remember(desc)
    }

    fn remember(&self, desc: &Descriptor) -> Result<()> {
        sources::record(
            self.store,
            &desc.digest,
            &self.remote.registry,
            &self.remote.repository,
        )
    }

    /// Ask for a mount from each candidate in turn. 201: linked, no bytes
    /// move. 202: the registry could not (blob not there, or no access)
    /// and opened an upload session instead, which the upload then uses.
    fn mount(&self, desc: &Descriptor, candidates: &[String]) -> Result<Mount> {
        let (client, repo) = (self.client, &self.remote.repository);
        let mut session: Option<String> = None;
        for from in candidates {
            let path = format!(
                "/v2/{repo}/blobs/uploads/?mount={}&from={}",
                client::encode(&desc.digest.to_string()),
                client::encode(from)
            );
            match client.send("POST", &path, &[("Content-Length", "0")], &Body::None) {
                Ok(resp) if resp.status() == 201 => {
                    let mounted = Note::Mounted { from: from.clone() };
                    self.progress
                        .note(Phase::Upload, &desc.digest.to_string(), &mounted);
                    if let Some(open) = session {
                        let _ = client.send("DELETE", &open, &[], &Body::None);
                    }
                    return Ok(Mount::Done);
                }
                Ok(resp) => {
                    let open = location(client, &resp)?;
                    match &session {
                        None => session = Some(open),
                        // One session is enough; the registry purges stale
                        // ones anyway, this only saves it the wait.
                        Some(_) => {
                            let _ = client.send("DELETE", &open, &[], &Body::None);
                        }
                    }
                }
                // Some registries answer a mount they will not do with an
                // error (e.g. 401/403/404 on the source): upload instead.
                Err(RegistryError::Status { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Mount::Refused(session))
    }

    fn upload(&self, desc: &Descriptor, src: &BlobSrc<'_>, session: Option<String>) -> Result<()> {
        let (client, repo) = (self.client, &self.remote.repository);
        let mut loc = match session {
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
        let id = desc.digest.to_string();
        let progress = self.progress;
        progress.start(Phase::Upload, &id, Some(desc.size));
        let on_sent = |n: u64| progress.advance(Phase::Upload, &id, n);
        let octet = ("Content-Type", "application/octet-stream");
        let body = |off: u64, len: u64| match src {
            BlobSrc::File(p) => Body::File(p, off, len, Some(&on_sent)),
            BlobSrc::Bytes(b) => Body::Bytes(&b[off as usize..(off + len) as usize]),
        };
        match self.opts.chunk_size {
            Some(chunk) if chunk > 0 => {
                let mut off = 0u64;
                while off < desc.size {
                    let len = chunk.min(desc.size - off);
                    let range = format!("{}-{}", off, off + len - 1);
                    let resp = client.send(
                        "PATCH",
                        &loc,
                        &[octet, ("Content-Range", &range)],
                        &body(off, len),
                    )?;
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
                client.send(
                    "PUT",
                    &with_digest(&loc, &desc.digest),
                    &[octet],
                    &body(0, desc.size),
                )?;
            }
        }
        if let BlobSrc::Bytes(b) = src {
            progress.advance(Phase::Upload, &id, b.len() as u64);
        }
        progress.finish(Phase::Upload, &id);
        Ok(())
    }
}

enum Mount {
    Done,
    /// Not mounted; the upload session the registry opened, if any.
    Refused(Option<String>),
}

/// Check credentials against `registry` (GET /v2/ through the auth dance)
/// and save them in `auth_file` (default `<store root>/auth.json`), 0600.
pub fn login(
    store: &Store,
    registry: &str,
    username: &str,
    password: &str,
    insecure: bool,
    auth_file: Option<&Path>,
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
    let client = Client::new(host, insecure, Vec::new(), Some(creds), Limits::default());
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
        &self::auth_file(store, auth_file),
        registry,
        &Credentials {
            username: username.to_string(),
            password: password.to_string(),
        },
    )?;
    Ok(())
}

pub fn logout(store: &Store, registry: &str, auth_file: Option<&Path>) -> Result<bool> {
    Ok(auth::remove(&self::auth_file(store, auth_file), registry)?)
}

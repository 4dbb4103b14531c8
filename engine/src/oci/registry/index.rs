//! An image index of our own at a registry reference: put one whose
//! manifests are already in the repository, and get one back, verified.
//! (`rbuild build --cache-to/--cache-from type=registry` keeps the step
//! cache this way: one index naming every step's image.)

use super::client::Body;
use super::{auth_file, client_for, get_manifest, PullOptions, PushOptions, RemoteRef, Result};
use crate::digest::Digest;
use crate::image::media_type;
use crate::oci::layout::{is_index_type, Index};
use crate::oci::{json, OciError};
use crate::store::Store;

/// PUT `index` at `reference` (a tag). Every manifest it lists must be in
/// the repository already (the registry checks). Returns its sha256 digest.
pub fn push_index(
    store: &Store,
    index: &Index,
    reference: &str,
    opts: &PushOptions,
) -> Result<Digest> {
    let r = RemoteRef::parse(reference)?;
    let creds = auth_file(store, opts.auth_file.as_deref());
    let client = client_for(
        &creds,
        &r,
        opts.insecure,
        "pull,push",
        Vec::new(),
        opts.limits,
    )?;
    let bytes = serde_json::to_vec(index).expect("an index serialises");
    client.send(
        "PUT",
        &format!("/v2/{}/manifests/{}", r.repository, r.reference()),
        &[("Content-Type", media_type::INDEX)],
        &Body::Bytes(&bytes),
    )?;
    Ok(Digest::sha256_of(&bytes))
}

/// GET the image index at `reference`: verified against the digest if
/// pinned (else the registry's), and refused if it is not an index.
pub fn fetch_index(store: &Store, reference: &str, opts: &PullOptions) -> Result<Index> {
    let r = RemoteRef::parse(reference)?;
    let creds = auth_file(store, opts.auth_file.as_deref());
    let client = client_for(&creds, &r, opts.insecure, "pull", Vec::new(), opts.limits)?;
    let (mt, bytes, _) = get_manifest(&client, &r.repository, &r.reference())?;
    if !is_index_type(&mt) {
        return Err(OciError::Format(format!(
            "{reference} is {mt}, not an image index"
        )));
    }
    json("image index", &bytes)
}

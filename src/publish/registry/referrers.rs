//! The artifacts attached to an image (signatures, SBOMs, provenance) pushed with it: each
//! artifact's blobs, then its manifest by digest, once the manifests it refers to are in the
//! registry. A registry without the referrers API finds them through the referrers tag
//! (`sha256-HEX` of the subject), an image index kiln merges with what the tag already lists.

use super::push::put_manifest;
use super::upload::push_blob;
use crate::attest::referrers::{self, MANIFEST_TYPE, Referrer};
use crate::error::RegistryError;
use crate::inputs::registry::client::Client;
use crate::inputs::registry::source::fetch;
use crate::oci::digest::Digest;
use crate::oci::reference::Reference;
use crate::store::BlobSource;
use crate::store::walk::Blob;
use serde_json::{Value, json};

const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// The descriptors an artifact's manifest names: its config and layers.
fn parts(r: &Referrer) -> Vec<Blob> {
    let config = r.manifest.get("config").into_iter();
    let layers = r.manifest.get("layers").and_then(Value::as_array).into_iter().flatten();
    config.chain(layers).filter_map(Blob::from_json).collect()
}

/// Pushes the artifacts of `src` whose subject is one of `subjects` to `target`'s repository;
/// returns how many.
pub fn push_attached(
    c: &Client,
    src: &dyn BlobSource,
    target: &Reference,
    subjects: &[Digest],
) -> Result<usize, RegistryError> {
    let repo = &target.repository;
    let all = referrers::list(src)?;
    let mine: Vec<&Referrer> = all.iter().filter(|r| subjects.contains(&r.subject)).collect();
    for r in &mine {
        for b in parts(r) {
            push_blob(c, repo, src, &b, None)?;
        }
        put_manifest(c, repo, &r.blob.digest.to_string(), MANIFEST_TYPE, &src.read_blob(&r.blob)?)?;
    }
    for subject in subjects {
        let of: Vec<&&Referrer> = mine.iter().filter(|r| &r.subject == subject).collect();
        if of.is_empty() || answers_referrers(c, target, subject)? {
            continue;
        }
        let tag = format!("sha256-{}", subject.hex());
        let mut listed: Vec<Value> = match fetch(c, target, &format!("/v2/{repo}/manifests/{tag}"), true) {
            Ok((bytes, _)) => serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("manifests").and_then(Value::as_array).cloned())
                .unwrap_or_default(),
            Err(RegistryError::Refused { status: 404, .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        for r in of {
            let digest = r.blob.digest.to_string();
            if !listed.iter().any(|d| d.get("digest").and_then(Value::as_str) == Some(digest.as_str())) {
                listed.push(json!({"mediaType": MANIFEST_TYPE, "artifactType": r.artifact_type, "digest": digest, "size": r.blob.size}));
            }
        }
        let index = json!({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": listed});
        put_manifest(c, repo, &tag, INDEX_TYPE, &crate::oci::canonical::to_vec(&index))?;
    }
    Ok(mine.len())
}

/// Whether the registry answers the referrers API for `subject`.
fn answers_referrers(c: &Client, target: &Reference, subject: &Digest) -> Result<bool, RegistryError> {
    match fetch(c, target, &format!("/v2/{}/referrers/{subject}", target.repository), true) {
        Ok(_) => Ok(true),
        Err(RegistryError::Refused { status: 404, .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Signs the image `target` names in its registry, every image index and manifest and every
/// in-toto statement attached to them, as `kiln sign` signs a layout, and pushes the
/// signatures beside it.
pub fn sign_reference(
    target: &Reference,
    opts: &crate::inputs::registry::Options,
    key: &crate::attest::keys::PrivateKey,
) -> Result<crate::attest::signing::SignSummary, RegistryError> {
    use crate::attest::signing::{SIGNATURE_TYPE, signature, subjects};
    let src = crate::inputs::registry::RegistrySource::open(target, opts)?;
    let signed = subjects(&src, None, &[])?;
    let scratch = tempfile::tempdir()
        .map_err(|e| RegistryError::Store(crate::error::StoreError::io("create", "a temporary directory")(e)))?;
    let empty = json!({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": []});
    for (name, bytes) in
        [("index.json", crate::oci::canonical::to_vec(&empty)), ("oci-layout", crate::store::OCI_LAYOUT.to_vec())]
    {
        let path = scratch.path().join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| RegistryError::Store(crate::error::StoreError::io("write", &path)(e)))?;
    }
    let name = format!("{}/{}", target.registry, target.repository);
    let (mut artifacts, mut blobs) = (Vec::new(), Vec::new());
    for s in &signed {
        let (manifest, body) = signature(s, &name, key);
        artifacts.push((SIGNATURE_TYPE.to_string(), manifest));
        blobs.push(body);
    }
    let digests: Vec<Digest> = signed.iter().map(|s| s.digest.clone()).collect();
    let all = referrers::from_registry(&src, &digests)?;
    let covered = signed.clone();
    let mut signed = signed;
    signed.extend(crate::attest::signing::sign_statements(&src, (&all, &covered), key, (&mut artifacts, &mut blobs))?);
    let added = referrers::attach(scratch.path(), &artifacts, &blobs)?;
    let layout = crate::store::LayoutDir::new(scratch.path());
    let c = Client::new(target, opts);
    push_attached(&c, &layout, target, &digests)?;
    Ok(crate::attest::signing::SignSummary { key_id: key.public().key_id(), signed, added })
}

/// Checks the signatures a registry holds for the image `target` names.
pub fn check_reference(
    target: &Reference,
    opts: &crate::inputs::registry::Options,
    key: &crate::attest::keys::PublicKey,
) -> Result<Vec<crate::attest::signing::Checked>, RegistryError> {
    let src = crate::inputs::registry::RegistrySource::open(target, opts)?;
    let subjects: Vec<Digest> =
        crate::attest::signing::subjects(&src, None, &[])?.into_iter().map(|s| s.digest).collect();
    let all = referrers::from_registry(&src, &subjects)?;
    Ok(crate::attest::signing::check_with(&src, &all, key, (None, &[]))?)
}

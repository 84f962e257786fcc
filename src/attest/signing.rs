//! Signing a layout's images the way cosign stores signatures, and checking them. Every image
//! index and every platform manifest gets an artifact (`artifactType` [`SIGNATURE_TYPE`],
//! `subject` the signed manifest) whose one layer is cosign's simple-signing payload naming
//! the signed digest, with the base64 DER signature in the layer's
//! `dev.cosignproject.cosign/signature` annotation: what cosign writes in its OCI 1.1
//! referrers mode, so cosign users can check kiln's signatures and kiln checks cosign's.
//! Each in-toto statement attached to a manifest (provenance) is signed as a DSSE envelope,
//! attached beside it (`artifactType` [`DSSE_TYPE`], the same subject).

use super::cosign::{SIGNATURE_ANNOTATION, SIMPLE_SIGNING, payload, signed_digest};
use super::dsse;
use super::keys::{PrivateKey, PublicKey};
use super::provenance::IN_TOTO_TYPE;
use super::referrers::{self, Referrer, artifact, descriptor};
use crate::error::StoreError;
use crate::oci::digest::Digest;
use crate::store::walk::{self, Blob};
use crate::store::{BlobSource, LayoutDir};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;

/// The artifact type of a cosign signature in OCI 1.1 referrers form.
pub const SIGNATURE_TYPE: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The artifact and layer type of a DSSE envelope (a signed in-toto statement).
pub const DSSE_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

/// One thing a signature covers: an image's index, or one platform's manifest.
#[derive(Debug, Clone, Serialize)]
pub struct Subject {
    pub image: String,
    /// `image index`, or `manifest linux/arm64`.
    pub what: String,
    pub digest: Digest,
    #[serde(skip)]
    pub blob: Blob,
}

/// The image indexes and platform manifests of the layout's images (with `only`, of one; with
/// `platforms`, only those platforms' manifests: what a device holds).
pub fn subjects(src: &dyn BlobSource, only: Option<&str>, platforms: &[String]) -> Result<Vec<Subject>, StoreError> {
    let mut out = Vec::new();
    for i in walk::images_for(src, only, platforms)? {
        if i.index.is_some() {
            out.push(Subject {
                image: i.name.clone(),
                what: "image index".into(),
                digest: i.blob.digest.clone(),
                blob: i.blob.clone(),
            });
        }
        for p in &i.platforms {
            let what = format!("manifest {}", p.platform);
            out.push(Subject { image: i.name.clone(), what, digest: p.blob.digest.clone(), blob: p.blob.clone() });
        }
    }
    Ok(out)
}

/// The signature artifact of `subject` as the image `reference`, and its payload blob.
pub fn signature(subject: &Subject, reference: &str, key: &PrivateKey) -> (Vec<u8>, Vec<u8>) {
    let body = payload(reference, &subject.digest.to_string());
    let sig = STANDARD.encode(key.sign(&body));
    let mut layer = descriptor(SIMPLE_SIGNING, &body);
    layer["annotations"] = serde_json::json!({ SIGNATURE_ANNOTATION: sig });
    (artifact(SIGNATURE_TYPE, vec![layer], &subject.blob), body)
}

/// What `kiln sign` did.
#[derive(Debug, Clone, Serialize)]
pub struct SignSummary {
    pub key_id: String,
    pub signed: Vec<Subject>,
    /// Signatures added to `index.json` (a subject signed before by the same key gets the same
    /// signature, which is not added twice).
    pub added: usize,
}

/// Signs every image index and platform manifest of the layout `dir` (with `only`, of one
/// image) with `key`, and attaches the signatures to the layout.
pub fn sign_layout(dir: &Path, key: &PrivateKey, only: Option<&str>) -> Result<SignSummary, StoreError> {
    let src = LayoutDir::new(dir);
    let signed = subjects(&src, only, &[])?;
    let (mut artifacts, mut blobs) = (Vec::new(), Vec::new());
    for s in &signed {
        let (manifest, body) = signature(s, &s.image, key);
        artifacts.push((SIGNATURE_TYPE.to_string(), manifest));
        blobs.push(body);
    }
    let mut signed = signed;
    let all = referrers::list(&src)?;
    let covered = signed.clone();
    signed.extend(sign_statements(&src, (&all, &covered), key, (&mut artifacts, &mut blobs))?);
    let added = referrers::attach(dir, &artifacts, &blobs)?;
    Ok(SignSummary { key_id: key.public().key_id(), signed, added })
}

/// DSSE envelopes of the in-toto statements among `all` attached to `subjects`: each
/// envelope's artifact pushed onto `artifacts`, its document onto `blobs`; returns what was
/// signed.
pub fn sign_statements(
    src: &dyn BlobSource,
    (all, subjects): (&[Referrer], &[Subject]),
    key: &PrivateKey,
    (artifacts, blobs): (&mut Vec<referrers::Artifact>, &mut Vec<Vec<u8>>),
) -> Result<Vec<Subject>, StoreError> {
    let mut signed = Vec::new();
    for (statement, r, subject) in statements(src, all, subjects)? {
        let envelope = crate::oci::canonical::to_vec(&dsse::sign(dsse::IN_TOTO, &statement, key));
        let subject_blob = subject_of(&r);
        let manifest = artifact(DSSE_TYPE, vec![descriptor(DSSE_TYPE, &envelope)], &subject_blob);
        artifacts.push((DSSE_TYPE.to_string(), manifest));
        blobs.push(envelope);
        signed.push(subject);
    }
    Ok(signed)
}

/// The descriptor an artifact's `subject` holds.
fn subject_of(r: &Referrer) -> Blob {
    let s = r.manifest.get("subject");
    let field = |k: &str| s.and_then(|s| s.get(k));
    Blob {
        digest: r.subject.clone(),
        size: field("size").and_then(Value::as_u64).unwrap_or(0),
        media_type: field("mediaType").and_then(Value::as_str).unwrap_or(referrers::MANIFEST_TYPE).to_string(),
    }
}

/// The in-toto statements attached to the manifests among `subjects`: each statement's bytes,
/// its artifact, and what a signature of it is reported as.
fn statements(
    src: &dyn BlobSource,
    all: &[Referrer],
    subjects: &[Subject],
) -> Result<Vec<(Vec<u8>, Referrer, Subject)>, StoreError> {
    let mut out = Vec::new();
    for r in all.iter().filter(|r| r.artifact_type == IN_TOTO_TYPE) {
        let Some(of) = subjects.iter().find(|s| s.digest == r.subject) else { continue };
        let (_, bytes) = referrers::layer_bytes(src, r, 0)?;
        let subject = Subject {
            image: of.image.clone(),
            what: format!("in-toto statement on {}", of.what),
            digest: r.blob.digest.clone(),
            blob: r.blob.clone(),
        };
        out.push((bytes, r.clone(), subject));
    }
    Ok(out)
}

/// Whether a DSSE envelope attached beside `statement` signs it with `key`.
fn check_statement(
    src: &dyn BlobSource,
    all: &[Referrer],
    r: &Referrer,
    statement: &[u8],
    key: &PublicKey,
) -> Result<Status, StoreError> {
    let mut status = Status::Unsigned;
    for e in all.iter().filter(|e| e.subject == r.subject && e.artifact_type == DSSE_TYPE) {
        let (_, bytes) = referrers::layer_bytes(src, e, 0)?;
        let verdict = match serde_json::from_slice::<dsse::Envelope>(&bytes) {
            Err(e) => Err(format!("the envelope is not DSSE JSON: {e}")),
            Ok(env) if env.payload_type != dsse::IN_TOTO => {
                Err(format!("the envelope's payload type is {}", env.payload_type))
            }
            Ok(env) => dsse::verify(&env, key)
                .and_then(|p| if p == statement { Ok(()) } else { Err("it signs another statement".into()) }),
        };
        match verdict {
            Ok(()) => return Ok(Status::Signed),
            Err(why) if why.starts_with("it signs another") => {}
            Err(why) => status = Status::Invalid(why),
        }
    }
    Ok(status)
}

/// How one subject's signatures checked out.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum Status {
    /// A signature by the key verifies.
    Signed,
    /// No signature refers to it.
    Unsigned,
    /// Signatures refer to it, and none verifies with the key: why the last one failed.
    Invalid(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Checked {
    #[serde(flatten)]
    pub subject: Subject,
    #[serde(flatten)]
    pub status: Status,
}

/// Why one signature artifact does not sign `subject` with `key`, or `None` when it does.
fn check_one(
    src: &dyn BlobSource,
    r: &Referrer,
    subject: &Digest,
    key: &PublicKey,
) -> Result<Option<String>, StoreError> {
    let (layer, body) = referrers::layer_bytes(src, r, 0)?;
    if layer.get("mediaType").and_then(Value::as_str) != Some(SIMPLE_SIGNING) {
        return Ok(Some("its layer is not a simple-signing payload".into()));
    }
    match signed_digest(&body) {
        Ok(d) if d == subject.to_string() => {}
        Ok(d) => return Ok(Some(format!("its payload signs {d}, not {subject}"))),
        Err(e) => return Ok(Some(format!("its payload cannot be read: {e}"))),
    }
    let sig =
        layer.pointer(&format!("/annotations/{}", SIGNATURE_ANNOTATION.replace('/', "~1"))).and_then(Value::as_str);
    let Some(sig) = sig.and_then(|s| STANDARD.decode(s).ok()) else {
        return Ok(Some("its signature annotation is missing or not base64".into()));
    };
    Ok((!key.verify(&body, &sig)).then(|| "its signature does not verify with this key".into()))
}

/// Checks that every image index and platform manifest of `src` (with `only`, of one image;
/// with `platforms`, of those platforms) carries a signature by `key`.
pub fn check(
    src: &dyn BlobSource,
    key: &PublicKey,
    (only, platforms): (Option<&str>, &[String]),
) -> Result<Vec<Checked>, StoreError> {
    check_with(src, &referrers::list(src)?, key, (only, platforms))
}

/// [`check`] with the artifacts found elsewhere than in `src`'s `index.json` (a registry's
/// referrers).
pub fn check_with(
    src: &dyn BlobSource,
    all: &[Referrer],
    key: &PublicKey,
    (only, platforms): (Option<&str>, &[String]),
) -> Result<Vec<Checked>, StoreError> {
    let mut out = Vec::new();
    for s in subjects(src, only, platforms)? {
        let mut status = Status::Unsigned;
        for r in all.iter().filter(|r| r.subject == s.digest && r.artifact_type == SIGNATURE_TYPE) {
            match check_one(src, r, &s.digest, key)? {
                None => {
                    status = Status::Signed;
                    break;
                }
                Some(why) => status = Status::Invalid(why),
            }
        }
        out.push(Checked { subject: s, status });
    }
    let subjects: Vec<Subject> = out.iter().map(|c| c.subject.clone()).collect();
    for (statement, r, subject) in statements(src, all, &subjects)? {
        let status = check_statement(src, all, &r, &statement, key)?;
        out.push(Checked { subject, status });
    }
    Ok(out)
}

/// [`check`] of the layout at `dir`.
pub fn check_layout(dir: &Path, key: &PublicKey, only: Option<&str>) -> Result<Vec<Checked>, StoreError> {
    check(&LayoutDir::new(dir), key, (only, &[]))
}

//! One image of a release into a repository, in the order that never shows a partial image:
//! every blob (configs and layers, a few at a time, each only when the registry lacks it),
//! then each platform's manifest by digest, then the image index by digest, and only then
//! the tags. The bytes pushed are the release's own, so the registry's digests are kiln's.

use super::upload::{Outcome, push_blob};
use crate::error::RegistryError;
use crate::inputs::registry::client::{Body, Client, header};
use crate::oci::digest::Digest;
use crate::oci::reference::Reference;
use crate::progress::Progress;
use crate::store::BlobSource;
use crate::store::walk::{Blob, Image};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use ureq::http::Method;

/// What a push did.
#[derive(Debug, Clone, Serialize)]
pub struct PushSummary {
    /// The image's name in the release.
    pub image: String,
    /// `host/repository@sha256:…`: what was pushed, by digest.
    pub reference: String,
    pub digest: String,
    /// `host/repository:tag` for each tag set.
    pub tags: Vec<String>,
    /// Distinct blobs (configs and layers) the image holds.
    pub blobs: usize,
    /// Blobs sent, and their bytes.
    pub uploaded: usize,
    pub uploaded_bytes: u64,
    /// Blobs mounted from another repository of the registry.
    pub mounted: usize,
    /// Blobs the repository held already.
    pub present: usize,
    /// Manifests and indexes written.
    pub manifests: usize,
    /// Artifacts attached to the image (signatures, SBOMs, provenance) pushed with it.
    pub attached: usize,
}

/// What to push where.
pub struct PushJob<'a> {
    pub src: &'a (dyn BlobSource + Sync),
    pub image: &'a Image,
    /// The repository (its tag and digest are not used: `tags` are).
    pub target: &'a Reference,
    pub tags: &'a [String],
    /// Blobs that repositories of the same registry hold already (pushed before in the same
    /// run), and which: they are mounted from there instead of sent again.
    pub mount_from: &'a BTreeMap<Digest, String>,
}

/// The distinct configs and layers of an image, largest first (so the long uploads start
/// first).
fn blobs_of(image: &Image) -> Vec<Blob> {
    let mut blobs: Vec<Blob> = Vec::new();
    for p in &image.platforms {
        for b in std::iter::once(&p.config).chain(&p.layers) {
            if !blobs.iter().any(|x| x.digest == b.digest) {
                blobs.push(b.clone());
            }
        }
    }
    blobs.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.digest.cmp(&b.digest)));
    blobs
}

/// The repository to mount `blob` from, when another one of the registry holds it.
fn mount<'a>(job: &PushJob<'a>, blob: &Blob) -> Option<&'a str> {
    job.mount_from.get(&blob.digest).map(String::as_str).filter(|r| *r != job.target.repository)
}

/// Pushes the blobs `jobs` at a time; the first error stops the others from starting more.
fn push_blobs(
    c: &Client,
    job: &PushJob<'_>,
    blobs: &[Blob],
    progress: &dyn Progress,
) -> Result<Vec<Outcome>, RegistryError> {
    let next = AtomicUsize::new(0);
    let outcomes = Mutex::new(vec![Outcome::Present; blobs.len()]);
    let failed: Mutex<Option<RegistryError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..c.options().jobs.clamp(1, 16).min(blobs.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= blobs.len() || failed.lock().map_or(true, |f| f.is_some()) {
                        return;
                    }
                    match push_blob(c, &job.target.repository, job.src, &blobs[i], mount(job, &blobs[i])) {
                        Ok(o) => {
                            let what = match o {
                                Outcome::Present => "present",
                                Outcome::Mounted => "mounted",
                                Outcome::Uploaded => "uploaded",
                            };
                            let sent = if o == Outcome::Uploaded { blobs[i].size } else { 0 };
                            progress.blob_done(what, &blobs[i].digest.to_string(), sent);
                            if let Ok(mut all) = outcomes.lock() {
                                all[i] = o;
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = failed.lock() {
                                f.get_or_insert(e);
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().ok().flatten() {
        return Err(e);
    }
    Ok(outcomes.into_inner().unwrap_or_default())
}

/// Puts a manifest or an index at `reference` (a digest or a tag), checking the digest the
/// registry says it stored.
pub fn put_manifest(
    c: &Client,
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) -> Result<(), RegistryError> {
    let url = c.url(&format!("/v2/{repo}/manifests/{reference}"));
    let scope = format!("repository:{repo}:pull,push");
    let what = format!("manifest {reference}");
    let expected = Digest::of(bytes);
    c.retrying(&format!("putting {what}"), |_| {
        let answer = c.send(Method::PUT, &url, &[("Content-Type", media_type)], Body::Bytes(bytes), &scope)?;
        match answer.status().as_u16() {
            201 | 200 => match header(&answer, "docker-content-digest") {
                Some(d) if d != expected.to_string() => Err(crate::inputs::registry::client::Failed::Fatal(
                    c.protocol(&what, format!("it stored {d}, not {expected}")),
                )),
                _ => Ok(()),
            },
            _ => Err(c.unexpected(&what, answer)),
        }
    })
}

/// The digest the repository serves for manifest `reference` (a digest or a tag), if any.
fn manifest_digest(c: &Client, repo: &str, reference: &str, media_type: &str) -> Result<Option<String>, RegistryError> {
    let url = c.url(&format!("/v2/{repo}/manifests/{reference}"));
    let scope = format!("repository:{repo}:pull,push");
    c.retrying(&format!("checking manifest {reference}"), |_| {
        let answer = c.send(Method::HEAD, &url, &[("Accept", media_type)], Body::Empty, &scope)?;
        match answer.status().as_u16() {
            200 => Ok(header(&answer, "docker-content-digest").map(str::to_string)),
            404 => Ok(None),
            _ => Err(c.unexpected(&format!("a check of manifest {reference}"), answer)),
        }
    })
}

/// Whether the repository holds the image already: its index and every platform manifest,
/// asked at once. A registry stores a manifest only once the blobs it names are there, so
/// nothing below them needs asking for.
fn held(c: &Client, job: &PushJob<'_>) -> Result<bool, RegistryError> {
    let repo = &job.target.repository;
    let mut wanted: Vec<&Blob> = vec![&job.image.blob];
    if job.image.index.is_some() {
        wanted.extend(job.image.platforms.iter().map(|p| &p.blob));
    }
    let answers: Vec<Result<bool, RegistryError>> = std::thread::scope(|s| {
        let asks: Vec<_> = wanted
            .iter()
            .map(|b| {
                s.spawn(move || {
                    let d = b.digest.to_string();
                    manifest_digest(c, repo, &d, &b.media_type).map(|got| got.is_some_and(|g| g == d))
                })
            })
            .collect();
        asks.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    answers.into_iter().try_fold(true, |all, a| Ok(all && a?))
}

/// Pushes one image: blobs, manifests, index, then tags. An image the repository holds
/// already (asked by the digests of its manifests) only gets its tags and attachments.
pub fn push(c: &Client, job: &PushJob<'_>, progress: &dyn Progress) -> Result<PushSummary, RegistryError> {
    let repo = &job.target.repository;
    let blobs = blobs_of(job.image);
    progress.start_transfer(blobs.len() as u64);
    let there = held(c, job)?;
    let outcomes = if there { vec![Outcome::Present; blobs.len()] } else { push_blobs(c, job, &blobs, progress)? };
    let count = |o| outcomes.iter().filter(|x| **x == o).count();
    let uploaded_bytes =
        blobs.iter().zip(&outcomes).filter(|(_, o)| **o == Outcome::Uploaded).map(|(b, _)| b.size).sum();
    let mut manifests = 0;
    if job.image.index.is_some() && !there {
        for p in &job.image.platforms {
            let bytes = job.src.read_blob(&p.blob)?;
            put_manifest(c, repo, &p.blob.digest.to_string(), &p.blob.media_type, &bytes)?;
            manifests += 1;
        }
    }
    let top = job.src.read_blob(&job.image.blob)?;
    let digest = job.image.blob.digest.to_string();
    if !there {
        put_manifest(c, repo, &digest, &job.image.blob.media_type, &top)?;
        manifests += 1;
    }
    let subjects: Vec<Digest> = std::iter::once(job.image.blob.digest.clone())
        .chain(job.image.platforms.iter().map(|p| p.blob.digest.clone()))
        .collect();
    let attached = super::referrers::push_attached(c, job.src, job.target, &subjects)?;
    let mut tags = Vec::new();
    for t in job.tags {
        // A tag that names the image already is left as it is.
        if !there || manifest_digest(c, repo, t, &job.image.blob.media_type)?.as_deref() != Some(digest.as_str()) {
            put_manifest(c, repo, t, &job.image.blob.media_type, &top)?;
        }
        tags.push(job.target.with_tag(t).plain());
    }
    progress.finish();
    Ok(PushSummary {
        image: job.image.name.clone(),
        reference: job.target.at(&job.image.blob.digest).plain(),
        digest,
        tags,
        blobs: blobs.len(),
        uploaded: count(Outcome::Uploaded),
        uploaded_bytes,
        mounted: count(Outcome::Mounted),
        present: count(Outcome::Present),
        manifests,
        attached,
    })
}

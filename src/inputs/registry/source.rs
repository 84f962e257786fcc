//! An image in a registry read as a release, so `kiln diff`, `kiln bundle` and `--previous`
//! take registry references as they take layouts: the reference's manifest or index stands
//! in `index.json` (named by the repository's last part, as a layout names the image),
//! manifests and configs are fetched as they are read (each checked against its digest), and
//! layers only when a command streams them.

use super::client::{Body, Client, Options};
use crate::error::{RegistryError, StoreError};
use crate::oci::digest::Digest;
use crate::oci::reference::Reference;
use crate::store::walk::{MAX_JSON, check_read};
use crate::store::{Blob, BlobSource, LayoutDir};
use oci_spec::image::ImageIndex;
use std::io::Read;
use std::path::{Path, PathBuf};
use ureq::http::Method;

/// The manifest types kiln reads.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.docker.distribution.manifest.v2+json";

/// A release on disk or in a registry, as a command line names it.
#[derive(Debug, Clone)]
pub enum Release {
    Layout(PathBuf),
    Registry(Reference),
}

impl Release {
    /// A path that exists is a layout; otherwise a string that names a registry host first
    /// (`registry.example/…`, `host:5000/…`, `localhost/…`) is a registry reference.
    pub fn parse(arg: &str) -> Release {
        let looks_remote = arg.starts_with("http://")
            || arg.split_once('/').is_some_and(|(h, _)| h.contains(['.', ':']) || h == "localhost");
        match Reference::parse(arg) {
            Ok(r) if looks_remote && !Path::new(arg).exists() => Release::Registry(r),
            _ => Release::Layout(PathBuf::from(arg)),
        }
    }

    /// The release, ready to read.
    pub fn open(&self, opts: &Options) -> Result<Box<dyn BlobSource + Sync>, StoreError> {
        match self {
            Release::Layout(dir) => Ok(Box::new(LayoutDir::new(dir))),
            Release::Registry(r) => {
                Ok(Box::new(RegistrySource::open(r, opts).map_err(|e| StoreError::Registry(Box::new(e)))?))
            }
        }
    }
}

/// One image of a registry, read as a release.
pub struct RegistrySource {
    client: Client,
    reference: Reference,
    name: PathBuf,
    top: Blob,
    top_bytes: Vec<u8>,
}

fn is_manifest(media_type: &str) -> bool {
    media_type.contains("manifest") || media_type.contains("index")
}

impl RegistrySource {
    /// Fetches the reference's manifest or index (checked against the digest it names).
    pub fn open(r: &Reference, opts: &Options) -> Result<RegistrySource, RegistryError> {
        let client = Client::new(r, opts);
        let target =
            r.digest.as_ref().map_or_else(|| r.tag.clone().unwrap_or_else(|| "latest".into()), Digest::to_string);
        let (bytes, media_type) = fetch(&client, r, &format!("/v2/{}/manifests/{target}", r.repository), true)?;
        let digest = Digest::of(&bytes);
        if let Some(d) = &r.digest
            && *d != digest
        {
            return Err(RegistryError::Integrity {
                registry: client.registry.clone(),
                what: format!("manifest of {r}"),
                expected: d.to_string(),
                actual: digest.to_string(),
            });
        }
        let media_type = media_type.unwrap_or_else(|| "application/vnd.oci.image.index.v1+json".into());
        let top = Blob { digest, size: bytes.len() as u64, media_type };
        Ok(RegistrySource { client, name: PathBuf::from(r.to_string()), reference: r.clone(), top, top_bytes: bytes })
    }

    /// The manifests that name `subject` as theirs, each with its `artifactType`: from the
    /// referrers API, else from the referrers tag (`sha256-HEX`) registries without it keep,
    /// else none.
    pub fn referrers(&self, subject: &Digest) -> Result<Vec<(Blob, Option<String>)>, StoreError> {
        let repo = &self.reference.repository;
        let mut found = None;
        for path in
            [format!("/v2/{repo}/referrers/{subject}"), format!("/v2/{repo}/manifests/sha256-{}", subject.hex())]
        {
            match fetch(&self.client, &self.reference, &path, true) {
                Ok((bytes, _)) => {
                    found = Some(bytes);
                    break;
                }
                Err(RegistryError::Refused { status: 404, .. }) => {}
                Err(e) => return Err(self.error(e)),
            }
        }
        let Some(bytes) = found else { return Ok(Vec::new()) };
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| StoreError::InvalidLayout {
            path: self.name.clone(),
            reason: format!("its referrers: {e}"),
        })?;
        let list = v.get("manifests").and_then(serde_json::Value::as_array).cloned().unwrap_or_default();
        Ok(list
            .iter()
            .filter_map(|m| {
                let blob = Blob {
                    digest: m.get("digest")?.as_str()?.parse().ok()?,
                    size: m.get("size")?.as_u64()?,
                    media_type: m.get("mediaType")?.as_str()?.to_string(),
                };
                Some((blob, m.get("artifactType").and_then(serde_json::Value::as_str).map(str::to_string)))
            })
            .collect())
    }

    fn error(&self, e: RegistryError) -> StoreError {
        StoreError::Registry(Box::new(e))
    }
}

/// GETs a manifest (`accept`) or a JSON blob, at most [`MAX_JSON`] bytes; its bytes and the
/// media type the registry gave.
pub(crate) fn fetch(
    c: &Client,
    r: &Reference,
    path: &str,
    accept: bool,
) -> Result<(Vec<u8>, Option<String>), RegistryError> {
    let url = c.url(path);
    let scope = format!("repository:{}:pull", r.repository);
    let headers: &[(&str, &str)] = if accept { &[("Accept", ACCEPT)] } else { &[] };
    c.retrying(&format!("fetching {path}"), |_| {
        let mut answer = c.send(Method::GET, &url, headers, Body::Empty, &scope)?;
        if answer.status().as_u16() != 200 {
            return Err(c.unexpected(path, answer));
        }
        let media_type =
            super::client::header(&answer, "content-type").map(|m| m.split(';').next().unwrap_or(m).trim().to_string());
        let bytes = super::client::read_json_body(c, &mut answer)?;
        Ok((bytes, media_type))
    })
}

impl BlobSource for RegistrySource {
    fn location(&self) -> &Path {
        &self.name
    }

    /// Named by the repository's last part, in the bytes `kiln build` writes for a layout of
    /// this one image, so that a bundle made against the registry applies to a device's layout
    /// of the same release.
    fn index(&self) -> Result<(Vec<u8>, ImageIndex), StoreError> {
        let name = self.reference.repository.rsplit('/').next().unwrap_or(&self.reference.repository);
        crate::store::cas::one_image_index(&self.name, &self.top, name)
    }

    fn read_blob(&self, blob: &Blob) -> Result<Vec<u8>, StoreError> {
        if blob.digest == self.top.digest {
            return Ok(self.top_bytes.clone());
        }
        if blob.size > MAX_JSON {
            return Err(StoreError::TooLarge { path: self.blob_name(&blob.digest), size: blob.size, limit: MAX_JSON });
        }
        let kind = if is_manifest(&blob.media_type) { "manifests" } else { "blobs" };
        let path = format!("/v2/{}/{kind}/{}", self.reference.repository, blob.digest);
        let (bytes, _) = fetch(&self.client, &self.reference, &path, kind == "manifests").map_err(|e| self.error(e))?;
        check_read(&self.name, &blob.digest, blob.size, (&Digest::of(&bytes), bytes.len() as u64))?;
        Ok(bytes)
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, StoreError> {
        let c = &self.client;
        let url = c.url(&format!("/v2/{}/blobs/{digest}", self.reference.repository));
        let scope = format!("repository:{}:pull", self.reference.repository);
        let manifest = c.url(&format!("/v2/{}/manifests/{digest}", self.reference.repository));
        let answer = c
            .retrying(&format!("fetching blob {digest}"), |_| {
                let answer = c.send(Method::GET, &url, &[], Body::Empty, &scope)?;
                match answer.status().as_u16() {
                    200 => Ok(answer),
                    // Manifests and indexes are not blobs to every registry.
                    404 => {
                        let answer = c.send(Method::GET, &manifest, &[("Accept", ACCEPT)], Body::Empty, &scope)?;
                        if answer.status().as_u16() == 200 {
                            Ok(answer)
                        } else {
                            Err(c.unexpected(&format!("blob {digest}"), answer))
                        }
                    }
                    _ => Err(c.unexpected(&format!("blob {digest}"), answer)),
                }
            })
            .map_err(|e| self.error(e))?;
        Ok(Box::new(answer.into_body().into_reader()))
    }

    /// Whether the repository holds `digest` (a blob, or a manifest).
    fn has_blob(&self, digest: &Digest) -> bool {
        let c = &self.client;
        let scope = format!("repository:{}:pull", self.reference.repository);
        ["blobs", "manifests"].iter().any(|kind| {
            let url = c.url(&format!("/v2/{}/{kind}/{digest}", self.reference.repository));
            let headers: &[(&str, &str)] = if *kind == "manifests" { &[("Accept", ACCEPT)] } else { &[] };
            c.retrying("checking a blob", |_| c.send(Method::HEAD, &url, headers, Body::Empty, &scope))
                .is_ok_and(|a| a.status().as_u16() == 200)
        })
    }

    /// Not asked of the registry: a size is checked where a blob is read.
    fn stored_size(&self, _: &Digest) -> Option<u64> {
        None
    }

    fn blob_name(&self, digest: &Digest) -> PathBuf {
        PathBuf::from(format!("{}@{digest}", self.reference.repo_name()))
    }
}

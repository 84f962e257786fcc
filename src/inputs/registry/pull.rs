//! A base image pulled by digest into kiln's cache, in the fetch step: the image index (or
//! manifest), the manifests of the platforms asked for, their configs and layers. Each blob is
//! checked against its digest before it takes its name; what the cache holds is not fetched
//! again.

use super::client::{Body, Client, Failed};
use crate::error::RegistryError;
use crate::oci::digest::Digest;
use crate::oci::platform::Platform;
use crate::oci::reference::Reference;
use crate::progress::Progress;
use crate::store::Blob;
use crate::store::cas::put_blob;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use ureq::http::Method;

/// The manifest types kiln reads, as a pull asks for them.
const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.docker.distribution.manifest.v2+json";

/// What a pull brought.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The image index or manifest the reference names.
    pub top: Blob,
    /// Blobs fetched (the others were in the cache), and their bytes.
    pub fetched: usize,
    pub bytes: u64,
}

fn scope(r: &Reference) -> String {
    format!("repository:{}:pull", r.repository)
}

/// Fetches a manifest or index by digest (from the cache when it holds it).
fn manifest(c: &Client, r: &Reference, digest: &Digest, cas: &Path) -> Result<(Vec<u8>, u64), RegistryError> {
    let cached = crate::store::blob_path(cas, digest);
    if let Ok(bytes) = std::fs::read(&cached)
        && Digest::of(&bytes) == *digest
    {
        return Ok((bytes, 0));
    }
    let url = c.url(&format!("/v2/{}/manifests/{digest}", r.repository));
    let what = format!("manifest {digest} of {}", r.repo_name());
    let bytes = c.retrying(&format!("fetching {what}"), |_| {
        let mut answer = c.send(Method::GET, &url, &[("Accept", ACCEPT)], Body::Empty, &scope(r))?;
        if answer.status().as_u16() != 200 {
            return Err(c.unexpected(&what, answer));
        }
        super::client::read_json_body(c, &mut answer)
    })?;
    let actual = Digest::of(&bytes);
    if actual != *digest {
        return Err(RegistryError::Integrity {
            registry: c.registry.clone(),
            what,
            expected: digest.to_string(),
            actual: actual.to_string(),
        });
    }
    let n = bytes.len() as u64;
    put_blob(cas, digest, n, &mut &bytes[..])?;
    Ok((bytes, n))
}

/// Fetches a config or layer into the cache unless it is there; the bytes fetched.
pub(crate) fn blob(c: &Client, r: &Reference, b: &Blob, cas: &Path) -> Result<u64, RegistryError> {
    if crate::store::blob_path(cas, &b.digest).is_file() {
        return Ok(0);
    }
    let url = c.url(&format!("/v2/{}/blobs/{}", r.repository, b.digest));
    let what = format!("blob {} of {}", b.digest, r.repo_name());
    c.retrying(&format!("fetching {what}"), |_| {
        let mut answer = c.send(Method::GET, &url, &[], Body::Empty, &scope(r))?;
        if answer.status().as_u16() != 200 {
            return Err(c.unexpected(&what, answer));
        }
        let mut body = answer.body_mut().with_config().limit(b.size + 1).reader();
        match put_blob(cas, &b.digest, b.size, &mut body as &mut dyn Read) {
            Ok(n) => Ok(n),
            // A cut download is fetched again; bytes that are not the digest's are not.
            Err(crate::error::StoreError::Io(e)) => Err(Failed::Retry(e.to_string(), None)),
            Err(e) => Err(Failed::Fatal(RegistryError::Integrity {
                registry: c.registry.clone(),
                what: what.clone(),
                expected: b.digest.to_string(),
                actual: e.to_string(),
            })),
        }
    })
}

/// A descriptor of a manifest or index, as JSON.
fn descriptor(v: &Value) -> Option<Blob> {
    Some(Blob {
        digest: v.get("digest")?.as_str()?.parse().ok()?,
        size: v.get("size")?.as_u64()?,
        media_type: v.get("mediaType").and_then(Value::as_str).unwrap_or_default().to_string(),
    })
}

/// Whether an index entry's platform is one of `wanted`.
fn wanted_platform(m: &Value, wanted: &[Platform]) -> bool {
    let p = &m["platform"];
    let (os, arch, variant) = (p["os"].as_str(), p["architecture"].as_str(), p["variant"].as_str());
    wanted.iter().any(|w| {
        os == Some(w.os())
            && arch == Some(w.arch())
            && match w {
                Platform::LinuxArmV7 => matches!(variant, None | Some("v7")),
                _ => true,
            }
    })
}

/// Pulls `r` (which names a digest) for `platforms` into the cache `cas`.
pub fn pull(
    c: &Client,
    r: &Reference,
    platforms: &[Platform],
    cas: &Path,
    progress: &dyn Progress,
) -> Result<Pulled, RegistryError> {
    let Some(digest) = &r.digest else {
        return Err(RegistryError::Protocol {
            registry: r.registry.clone(),
            what: r.to_string(),
            reason: "a base is pulled by digest; pin the tag with `kiln lock`".into(),
        });
    };
    let (top_bytes, mut bytes) = manifest(c, r, digest, cas)?;
    let bad = |why: &str| RegistryError::Protocol {
        registry: c.registry.clone(),
        what: format!("{r}"),
        reason: why.to_string(),
    };
    let top: Value = serde_json::from_slice(&top_bytes).map_err(|_| bad("its manifest is not JSON"))?;
    let media_type = top["mediaType"].as_str().unwrap_or("application/vnd.oci.image.manifest.v1+json").to_string();
    let mut manifests = Vec::new();
    if let Some(list) = top.get("manifests").and_then(Value::as_array) {
        // Every platform's manifest (planning reads the index whole), the configs and layers
        // only of the platforms asked for.
        for m in list {
            let d = descriptor(m).ok_or_else(|| bad("its index has a malformed descriptor"))?;
            let (b, n) = manifest(c, r, &d.digest, cas)?;
            bytes += n;
            if wanted_platform(m, platforms) {
                manifests.push(serde_json::from_slice::<Value>(&b).map_err(|_| bad("a manifest is not JSON"))?);
            }
        }
    } else {
        manifests.push(top);
    }
    let mut blobs: Vec<Blob> = Vec::new();
    for m in &manifests {
        let config = m.get("config").and_then(descriptor).ok_or_else(|| bad("a manifest has no config"))?;
        let layers = m.get("layers").and_then(Value::as_array).ok_or_else(|| bad("a manifest has no layers"))?;
        for b in std::iter::once(Some(config)).chain(layers.iter().map(descriptor)) {
            let b = b.ok_or_else(|| bad("a manifest has a malformed descriptor"))?;
            if !blobs.iter().any(|x| x.digest == b.digest) {
                blobs.push(b);
            }
        }
    }
    progress.start_transfer(blobs.len() as u64);
    let mut fetched = 0;
    for b in &blobs {
        let n = blob(c, r, b, cas)?;
        fetched += usize::from(n > 0);
        bytes += n;
        progress.blob_done(if n > 0 { "fetched" } else { "cached" }, &b.digest.to_string(), n);
    }
    progress.finish();
    Ok(Pulled { top: Blob { digest: digest.clone(), size: top_bytes.len() as u64, media_type }, fetched, bytes })
}

/// Pulls each base `(reference, platforms)` named by digest into kiln's cache `cache`; one
/// named by tag is left to planning, which says how to pin it.
pub fn pull_bases(
    bases: &[(String, Vec<Platform>)],
    cache: &Path,
    opts: &super::Options,
    progress: &dyn Progress,
) -> Result<Vec<Pulled>, RegistryError> {
    let cas = crate::store::cas::registry_cache(cache);
    let mut out = Vec::new();
    for (reference, platforms) in bases {
        let r = Reference::parse(reference)?;
        if r.digest.is_none() || platforms.is_empty() {
            continue;
        }
        let c = Client::new(&r, opts);
        out.push(pull(&c, &r, platforms, &cas, progress)?);
    }
    Ok(out)
}

/// The bases with each tag `pins` pins replaced by the pinned digest (`host/repo@sha256:…`).
pub fn through_lock(
    bases: Vec<(String, Vec<Platform>)>,
    pins: &BTreeMap<String, String>,
) -> Vec<(String, Vec<Platform>)> {
    bases
        .into_iter()
        .map(|(r, platforms)| {
            let pinned = pins
                .get(&r)
                .and_then(|d| d.parse::<Digest>().ok())
                .and_then(|d| Reference::parse(&r).ok().map(|x| x.at(&d)));
            (pinned.map_or(r, |p| p.to_string()), platforms)
        })
        .collect()
}

/// The digest a tag names now: what `kiln lock` pins. The manifest is fetched and hashed (a
/// registry's `Docker-Content-Digest` that disagrees is refused).
pub fn resolve_tag(r: &Reference, opts: &super::Options) -> Result<Digest, RegistryError> {
    let c = Client::new(r, opts);
    let tag = r.tag.clone().unwrap_or_else(|| "latest".into());
    let url = c.url(&format!("/v2/{}/manifests/{tag}", r.repository));
    let what = format!("tag {tag} of {}", r.repo_name());
    let (bytes, said) = c.retrying(&format!("resolving {what}"), |_| {
        let mut answer = c.send(Method::GET, &url, &[("Accept", ACCEPT)], Body::Empty, &scope(r))?;
        if answer.status().as_u16() != 200 {
            return Err(c.unexpected(&what, answer));
        }
        let said = super::client::header(&answer, "docker-content-digest").map(str::to_string);
        let bytes = super::client::read_json_body(&c, &mut answer)?;
        Ok((bytes, said))
    })?;
    let digest = Digest::of(&bytes);
    if let Some(said) = said
        && said != digest.to_string()
    {
        return Err(RegistryError::Integrity {
            registry: c.registry.clone(),
            what,
            expected: said,
            actual: digest.to_string(),
        });
    }
    Ok(digest)
}

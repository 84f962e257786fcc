//! Reads an OCI image layout the one way every command needs it: `index.json`, then each
//! image's index, then each platform's manifest, checking every blob read against its digest.
//! `inspect`, `diff`, `bundle`, `apply` and `--previous` all walk releases through here, from
//! any [`BlobSource`].

use super::BlobSource;
use crate::error::StoreError;
use crate::oci::annotation::{ANNOTATION_LAYERS, ANNOTATION_REF_NAME};
use crate::oci::digest::Digest;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;

/// A descriptor as kiln uses it: its digest parsed where the layout was read, its size and
/// media type.
#[derive(Debug, Clone, PartialEq)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

impl Blob {
    /// A descriptor read from JSON (`digest`, `size`, `mediaType`), `None` unless it has all
    /// three, well formed.
    pub fn from_json(d: &Value) -> Option<Blob> {
        Some(Blob {
            digest: d.get("digest")?.as_str()?.parse().ok()?,
            size: d.get("size")?.as_u64()?,
            media_type: d.get("mediaType")?.as_str()?.to_string(),
        })
    }
}

/// One named image of a layout.
#[derive(Debug, Clone)]
pub struct Image {
    /// The `org.opencontainers.image.ref.name` in `index.json`, else the digest.
    pub name: String,
    /// What its entry in `index.json` names: the image index, or the one manifest.
    pub blob: Blob,
    /// The image index, when `index.json` points at one (multi-platform images).
    pub index: Option<ImageIndex>,
    pub platforms: Vec<PlatformImage>,
    /// Platforms the image index names whose manifests this layout does not hold (a device
    /// keeps only its own); always empty for a strict walk.
    pub absent: Vec<String>,
}

/// One platform's manifest of an image.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    /// `os/architecture[/variant]`.
    pub platform: String,
    pub desc: Descriptor,
    /// The manifest's own blob.
    pub blob: Blob,
    /// The manifest's config and layers (bottom first).
    pub config: Blob,
    pub layers: Vec<Blob>,
}

pub(crate) fn invalid(dir: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidLayout { path: dir.to_path_buf(), reason: reason.into() }
}

/// The most kiln reads of one JSON document from a layout or a bundle (`index.json`, image
/// indexes, manifests, configs, a bundle's manifest): 4 MiB, as registries limit manifests.
/// A larger one is refused before it is read.
pub const MAX_JSON: u64 = 4 << 20;

/// A string read from a file, fit for a message: quoted, escaped, and cut after 80 characters.
pub(crate) fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// A descriptor of `file` (which names it in messages), its digest parsed.
fn blob(dir: &Path, file: &str, d: &Descriptor) -> Result<Blob, StoreError> {
    let digest = Digest::try_from(d.digest()).map_err(|e| invalid(dir, format!("{file} has the digest {e}")))?;
    Ok(Blob { digest, size: d.size(), media_type: d.media_type().to_string() })
}

/// How a blob is named in messages: what it is and where it is (`manifest blobs/sha256/…`).
fn file_name(what: &str, blob: &Blob) -> String {
    format!("{what} {}", blob.digest.layout_path().display())
}

/// Checks what was read of a blob (its digest and byte count) against its descriptor.
pub(crate) fn check_read(dir: &Path, digest: &Digest, size: u64, read: (&Digest, u64)) -> Result<(), StoreError> {
    let (actual, len) = read;
    if actual != digest {
        return Err(invalid(dir, format!("blob {digest} has digest {actual}")));
    }
    if len != size {
        return Err(invalid(dir, format!("blob {digest} is {len} bytes; its descriptor says {size}")));
    }
    Ok(())
}

/// Refuses a blob whose file is not the size its descriptor says; a blob the layout does not
/// hold is left to the caller.
pub(crate) fn check_size(src: &dyn BlobSource, digest: &Digest, size: u64) -> Result<(), StoreError> {
    match src.stored_size(digest) {
        Some(held) if held != size => {
            Err(invalid(src.location(), format!("blob {digest} is {held} bytes; its descriptor says {size}")))
        }
        _ => Ok(()),
    }
}

/// Reads at most [`MAX_JSON`] bytes; `None` when there is more.
pub(crate) fn read_capped(r: impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    r.take(MAX_JSON + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= MAX_JSON).then_some(bytes))
}

/// The descriptors of an index or a manifest, as JSON: `manifests`, `config`, `layers`,
/// `subject`.
fn descriptors(v: &Value) -> impl Iterator<Item = &Value> {
    let list = |key| v.get(key).and_then(Value::as_array).into_iter().flatten();
    let one = |key| v.get(key).filter(|d| d.is_object());
    list("manifests").chain(one("config")).chain(list("layers")).chain(one("subject"))
}

/// Parses an index or a manifest of a layout (`file` names it in messages). Every
/// descriptor's digest is parsed first, so a malformed one is named with the reason, before
/// anything uses it.
pub(crate) fn parse_json<T: DeserializeOwned>(dir: &Path, file: &str, bytes: &[u8]) -> Result<T, StoreError> {
    parse(dir, file, bytes, true)
}

fn parse<T: DeserializeOwned>(dir: &Path, file: &str, bytes: &[u8], has_descriptors: bool) -> Result<T, StoreError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| invalid(dir, format!("{file}: {e}")))?;
    for d in descriptors(&v).filter(|_| has_descriptors) {
        match d.get("digest") {
            Some(Value::String(s)) => {
                s.parse::<Digest>().map_err(|e| invalid(dir, format!("{file} has the digest {e}")))?;
            }
            _ => return Err(invalid(dir, format!("{file} has a descriptor without a digest"))),
        }
    }
    serde_json::from_value(v).map_err(|e| invalid(dir, format!("{file}: {e}")))
}

/// A JSON blob (`what`: image index, manifest, config), read and parsed. A config holds no
/// descriptors (its `config` is the container's settings).
fn read_json<T: DeserializeOwned>(src: &dyn BlobSource, what: &str, blob: &Blob) -> Result<T, StoreError> {
    let bytes = src.read_blob(blob)?;
    parse(src.location(), &file_name(what, blob), &bytes, what != "config")
}

/// `os/architecture[/variant]` of a descriptor's platform.
pub fn platform_name(desc: &Descriptor) -> String {
    match desc.platform() {
        Some(p) => {
            let mut s = format!("{}/{}", p.os(), p.architecture());
            if let Some(v) = p.variant() {
                s.push('/');
                s.push_str(v);
            }
            s
        }
        None => "unknown".into(),
    }
}

/// Every image of the release `src` (with `only`, just the image of that name).
pub fn images(src: &dyn BlobSource, only: Option<&str>) -> Result<Vec<Image>, StoreError> {
    walk(src, only, &[], false)
}

/// Like [`images`], but a platform whose manifest the layout does not hold is listed in
/// [`Image::absent`] instead of failing the walk: what a device holding some platforms has.
pub fn images_present(
    src: &dyn BlobSource,
    only: Option<&str>,
    platforms: &[String],
) -> Result<Vec<Image>, StoreError> {
    walk(src, only, platforms, true)
}

/// Like [`images`], with only the manifests of `platforms` (`os/arch[/variant]`; empty: all).
/// The others are not read, so a layout holding only some platforms of an image (as a
/// device does) can be walked for those.
pub fn images_for(src: &dyn BlobSource, only: Option<&str>, platforms: &[String]) -> Result<Vec<Image>, StoreError> {
    walk(src, only, platforms, false)
}

/// One platform's manifest, `desc` its descriptor (`blob`: that descriptor parsed), with its config's and layers' descriptors parsed and their sizes checked.
fn platform_image(src: &dyn BlobSource, desc: &Descriptor, blob: Blob) -> Result<PlatformImage, StoreError> {
    let manifest: ImageManifest = read_json(src, "manifest", &blob)?;
    let dir = src.location();
    let file = file_name("manifest", &blob);
    let config = self::blob(dir, &file, manifest.config())?;
    let layers = manifest.layers().iter().map(|l| self::blob(dir, &file, l)).collect::<Result<Vec<_>, _>>()?;
    for b in std::iter::once(&config).chain(&layers) {
        check_size(src, &b.digest, b.size)?;
    }
    // A manifest listed in index.json without a platform (one platform copied out of an
    // index) names its platform in its config.
    let platform = match desc.platform() {
        Some(_) => platform_name(desc),
        None => {
            let c: ImageConfiguration = read_json(src, "config", &config)?;
            let mut name = format!("{}/{}", c.os(), c.architecture());
            if let Some(v) = c.variant() {
                name = format!("{name}/{v}");
            }
            name
        }
    };
    Ok(PlatformImage { platform, desc: desc.clone(), blob, config, layers })
}

fn walk(
    src: &dyn BlobSource,
    only: Option<&str>,
    platforms: &[String],
    partial: bool,
) -> Result<Vec<Image>, StoreError> {
    let (_, top) = src.index()?;
    let dir = src.location();
    let mut out = Vec::new();
    let ref_name = |d: &Descriptor| d.annotations().as_ref().and_then(|a| a.get(ANNOTATION_REF_NAME)).cloned();
    let named: Vec<(Option<String>, String)> =
        top.manifests().iter().map(|d| (ref_name(d), d.digest().to_string())).collect();
    // Artifacts that refer to a manifest (signatures, SBOMs) are listed beside the images.
    for d in top.manifests().iter().filter(|d| d.artifact_type().is_none()) {
        let listed = blob(dir, "index.json", d)?;
        let name = ref_name(d).unwrap_or_else(|| listed.digest.to_string());
        // `IMAGE:TAG` beside `IMAGE` at the same digest is a tag of that image, not another.
        let tag_of = name.split_once(':').map(|(n, _)| n).filter(|n| {
            named.iter().any(|(o, digest)| o.as_deref() == Some(*n) && *digest == listed.digest.to_string())
        });
        if tag_of.is_some() {
            continue;
        }
        if only.is_some_and(|o| {
            o != name && !(o.starts_with(&format!("{name}:")) && named.iter().any(|(n, _)| n.as_deref() == Some(o)))
        }) {
            continue;
        }
        let image = match d.media_type() {
            MediaType::ImageIndex => {
                let idx: ImageIndex = read_json(src, "image index", &listed)?;
                let file = file_name("image index", &listed);
                let wanted = |m: &&Descriptor| platforms.is_empty() || platforms.contains(&platform_name(m));
                let (mut found, mut absent) = (Vec::new(), Vec::new());
                for m in idx.manifests().iter().filter(wanted) {
                    let b = blob(dir, &file, m)?;
                    if partial && !src.has_blob(&b.digest) {
                        absent.push(platform_name(m));
                    } else {
                        found.push(platform_image(src, m, b)?);
                    }
                }
                Image { name, blob: listed, index: Some(idx), platforms: found, absent }
            }
            MediaType::ImageManifest => {
                let platforms = vec![platform_image(src, d, listed.clone())?];
                Image { name, blob: listed, index: None, platforms, absent: Vec::new() }
            }
            other => return Err(invalid(dir, format!("unsupported media type {other} in index.json"))),
        };
        out.push(image);
    }
    if let Some(o) = only
        && out.is_empty()
    {
        return Err(invalid(dir, format!("no image named `{o}`")));
    }
    Ok(out)
}

impl Image {
    /// Each layer's key, bottom first, where one is recorded. kiln records the keys of the
    /// layers it made (the top ones) once per image on its index, and on a platform's
    /// descriptor where that platform's differ; the layers below come from a base image and
    /// are keyed `base DIGEST`, as in the plan. For images other tools built, the config's
    /// history names the layers when it has one entry per layer; the flag says whether the
    /// keys are kiln's.
    pub fn layer_keys(
        &self,
        src: &dyn BlobSource,
        p: &PlatformImage,
    ) -> Result<(Vec<Option<String>>, bool), StoreError> {
        let layers = &p.layers;
        let recorded = |a: &Option<HashMap<String, String>>| a.as_ref().and_then(|a| a.get(ANNOTATION_LAYERS)).cloned();
        let own =
            recorded(p.desc.annotations()).or_else(|| self.index.as_ref().and_then(|i| recorded(i.annotations())));
        if let Some(own) = own {
            let own: Vec<&str> = if own.is_empty() { Vec::new() } else { own.split('\n').collect() };
            if own.len() <= layers.len() {
                let below = layers.len() - own.len();
                let keys = layers[..below]
                    .iter()
                    .map(|l| Some(format!("base {}", l.digest)))
                    .chain(own.into_iter().map(|k| Some(k.to_string())))
                    .collect();
                return Ok((keys, true));
            }
        }
        let config: ImageConfiguration = read_json(src, "config", &p.config)?;
        let history: Vec<Option<String>> = config
            .history()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|h| !h.empty_layer().unwrap_or(false))
            .map(|h| h.created_by().clone())
            .collect();
        Ok((if history.len() == layers.len() { history } else { vec![None; layers.len()] }, false))
    }
}

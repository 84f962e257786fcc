//! Reads an OCI image layout the one way every command needs it: `index.json`, then each
//! image's index, then each platform's manifest, checking every blob read against its digest.
//! `inspect`, `diff`, `bundle`, `apply` and `--previous` all walk layouts through here.

use crate::error::BuildError;
use crate::image::{ANNOTATION_LAYERS, ANNOTATION_REF_NAME};
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, MediaType};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One named image of a layout.
#[derive(Debug, Clone)]
pub struct Image {
    /// The `org.opencontainers.image.ref.name` in `index.json`, else the digest.
    pub name: String,
    /// Its entry in `index.json`.
    pub desc: Descriptor,
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
    pub manifest: ImageManifest,
}

pub(crate) fn invalid(dir: &Path, reason: impl Into<String>) -> BuildError {
    BuildError::InvalidLayout { path: dir.to_path_buf(), reason: reason.into() }
}

/// Path of a blob, refusing digests that are not `sha256:<64 hex>`.
pub fn blob_path(dir: &Path, digest: &str) -> Result<PathBuf, BuildError> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    match hex {
        Some(h) => Ok(dir.join("blobs/sha256").join(h)),
        None => Err(invalid(dir, format!("unsupported digest `{digest}`"))),
    }
}

/// A blob's bytes, refused when they do not match the descriptor's digest.
pub fn read_blob(dir: &Path, desc: &Descriptor) -> Result<Vec<u8>, BuildError> {
    let p = blob_path(dir, desc.digest().as_ref())?;
    let bytes = std::fs::read(&p).map_err(BuildError::io("read", &p))?;
    let actual = crate::digest::sha256_digest(&bytes);
    if actual != desc.digest().to_string() {
        return Err(invalid(dir, format!("blob {} has digest {actual}", desc.digest())));
    }
    Ok(bytes)
}

fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, desc: &Descriptor) -> Result<T, BuildError> {
    serde_json::from_slice(&read_blob(dir, desc)?).map_err(|e| invalid(dir, format!("blob {}: {e}", desc.digest())))
}

/// `index.json` as bytes and parsed.
pub fn read_index(dir: &Path) -> Result<(Vec<u8>, ImageIndex), BuildError> {
    let p = dir.join("index.json");
    let bytes = std::fs::read(&p).map_err(BuildError::io("read", &p))?;
    let index = serde_json::from_slice(&bytes).map_err(|e| invalid(dir, format!("index.json: {e}")))?;
    Ok((bytes, index))
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

/// Every image of the layout at `dir` (with `only`, just the image of that name).
pub fn images(dir: &Path, only: Option<&str>) -> Result<Vec<Image>, BuildError> {
    walk(dir, only, &[], false)
}

/// Like [`images`], but a platform whose manifest the layout does not hold is listed in
/// [`Image::absent`] instead of failing the walk: what a device holding some platforms has.
pub fn images_present(dir: &Path, only: Option<&str>, platforms: &[String]) -> Result<Vec<Image>, BuildError> {
    walk(dir, only, platforms, true)
}

/// Like [`images`], with only the manifests of `platforms` (`os/arch[/variant]`; empty: all).
/// The others are not read, so a layout holding only some platforms of an image (as a
/// device does) can be walked for those.
pub fn images_for(dir: &Path, only: Option<&str>, platforms: &[String]) -> Result<Vec<Image>, BuildError> {
    walk(dir, only, platforms, false)
}

fn walk(dir: &Path, only: Option<&str>, platforms: &[String], partial: bool) -> Result<Vec<Image>, BuildError> {
    let (_, top) = read_index(dir)?;
    let mut out = Vec::new();
    for d in top.manifests() {
        let name = d
            .annotations()
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_REF_NAME))
            .cloned()
            .unwrap_or_else(|| d.digest().to_string());
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let platform = |m: &Descriptor| -> Result<PlatformImage, BuildError> {
            let manifest: ImageManifest = read_json(dir, m)?;
            // A manifest listed in index.json without a platform (one platform copied out
            // of an index) names its platform in its config.
            let platform = match m.platform() {
                Some(_) => platform_name(m),
                None => {
                    let c: ImageConfiguration = read_json(dir, manifest.config())?;
                    let mut name = format!("{}/{}", c.os(), c.architecture());
                    if let Some(v) = c.variant() {
                        name = format!("{name}/{v}");
                    }
                    name
                }
            };
            Ok(PlatformImage { platform, desc: m.clone(), manifest })
        };
        let image = match d.media_type() {
            MediaType::ImageIndex => {
                let idx: ImageIndex = read_json(dir, d)?;
                let wanted = |m: &&Descriptor| platforms.is_empty() || platforms.contains(&platform_name(m));
                let held = |m: &Descriptor| blob_path(dir, m.digest().as_ref()).is_ok_and(|p| p.is_file());
                let (mut found, mut absent) = (Vec::new(), Vec::new());
                for m in idx.manifests().iter().filter(wanted) {
                    if partial && !held(m) {
                        absent.push(platform_name(m));
                    } else {
                        found.push(platform(m)?);
                    }
                }
                Image { name, desc: d.clone(), index: Some(idx), platforms: found, absent }
            }
            MediaType::ImageManifest => {
                Image { name, desc: d.clone(), index: None, platforms: vec![platform(d)?], absent: Vec::new() }
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

/// The layer keys kiln records, as the value of [`ANNOTATION_LAYERS`]: one per line.
pub fn encode_keys<'a>(keys: impl IntoIterator<Item = &'a str>) -> String {
    keys.into_iter().collect::<Vec<_>>().join("\n")
}

impl Image {
    /// Each layer's key, bottom first, where one is recorded. kiln records the keys of the
    /// layers it made (the top ones) once per image on its index, and on a platform's
    /// descriptor where that platform's differ; the layers below come from a base image and
    /// are keyed `base DIGEST`, as in the plan. For images other tools built, the config's
    /// history names the layers when it has one entry per layer; the flag says whether the
    /// keys are kiln's.
    pub fn layer_keys(&self, dir: &Path, p: &PlatformImage) -> Result<(Vec<Option<String>>, bool), BuildError> {
        let layers = p.manifest.layers();
        let recorded = |a: &Option<HashMap<String, String>>| a.as_ref().and_then(|a| a.get(ANNOTATION_LAYERS)).cloned();
        let own =
            recorded(p.desc.annotations()).or_else(|| self.index.as_ref().and_then(|i| recorded(i.annotations())));
        if let Some(own) = own {
            let own: Vec<&str> = if own.is_empty() { Vec::new() } else { own.split('\n').collect() };
            if own.len() <= layers.len() {
                let below = layers.len() - own.len();
                let keys = layers[..below]
                    .iter()
                    .map(|l| Some(format!("base {}", l.digest())))
                    .chain(own.into_iter().map(|k| Some(k.to_string())))
                    .collect();
                return Ok((keys, true));
            }
        }
        let config: ImageConfiguration = read_json(dir, p.manifest.config())?;
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

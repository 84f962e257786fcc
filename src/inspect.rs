//! Reads an OCI image layout back: images, platforms, layers, and which images and platforms
//! share each layer. Works on any OCI layout, not only kiln's.

use crate::error::BuildError;
use crate::image::ANNOTATION_REF_NAME;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Serialize)]
pub struct LayoutReport {
    pub images: Vec<ImageReport>,
    /// Every layer digest with its size and the `image platform` pairs that use it.
    pub layers: BTreeMap<String, LayerUse>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub name: String,
    pub digest: String,
    pub media_type: String,
    pub platforms: Vec<PlatformReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlatformReport {
    pub platform: String,
    pub manifest: String,
    pub config: String,
    pub layers: Vec<LayerReport>,
    /// Config, manifest and layers.
    pub total_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
    /// The layer's key in kiln's layer plan (its history entry), for images kiln wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Why the layer holds what it holds and stands where it does.
    pub why: String,
    /// Files and links in the layer.
    pub files: u64,
    /// The directories holding most of its files (up to three levels deep), with their counts.
    pub top: Vec<(String, u64)>,
}

/// Counts a layer's files by the first three components of their directories.
fn contents(dir: &Path, digest: &str, media_type: &str) -> Result<(u64, Vec<(String, u64)>), BuildError> {
    let p = blob_path(dir, digest)?;
    let f = std::io::BufReader::new(std::fs::File::open(&p).map_err(BuildError::io("open", &p))?);
    let reader: Box<dyn std::io::Read> = if media_type.ends_with("+gzip") || media_type.ends_with(".gzip") {
        Box::new(flate2::read::GzDecoder::new(f))
    } else if media_type.ends_with("+zstd") {
        Box::new(zstd::stream::read::Decoder::new(f).map_err(BuildError::io("read", &p))?)
    } else {
        Box::new(f)
    };
    let mut tar = tar::Archive::new(reader);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut files = 0;
    for e in tar.entries().map_err(BuildError::io("read", &p))? {
        let e = e.map_err(BuildError::io("read", &p))?;
        if e.header().entry_type().is_dir() {
            continue;
        }
        files += 1;
        let path = e.path().map_err(BuildError::io("read", &p))?.to_string_lossy().into_owned();
        let parts: Vec<&str> = path.trim_start_matches("./").trim_start_matches('/').split('/').collect();
        let depth = parts.len().saturating_sub(1).min(3);
        let top = format!("/{}", parts[..depth].join("/"));
        *counts.entry(top).or_default() += 1;
    }
    let mut top: Vec<(String, u64)> = counts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(4);
    Ok((files, top))
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerUse {
    pub size: u64,
    pub used_by: Vec<String>,
}

fn invalid(dir: &Path, reason: impl Into<String>) -> BuildError {
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

fn read_blob(dir: &Path, desc: &Descriptor) -> Result<Vec<u8>, BuildError> {
    let p = blob_path(dir, desc.digest().as_ref())?;
    let bytes = std::fs::read(&p).map_err(BuildError::io("read", &p))?;
    let actual = crate::digest::sha256_digest(&bytes);
    if actual != desc.digest().to_string() {
        return Err(invalid(dir, format!("blob {} has digest {actual}", desc.digest())));
    }
    Ok(bytes)
}

/// `os/architecture[/variant]` of a descriptor's platform.
pub(crate) fn platform_name(desc: &Descriptor) -> String {
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

fn manifest_report(dir: &Path, desc: &Descriptor, platform: String) -> Result<PlatformReport, BuildError> {
    let m: ImageManifest = serde_json::from_slice(&read_blob(dir, desc)?)
        .map_err(|e| invalid(dir, format!("manifest {}: {e}", desc.digest())))?;
    let keys = layer_keys_of(dir, &m)?.unwrap_or_default();
    let layers: Vec<LayerReport> = m
        .layers()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let key = keys.get(i).cloned();
            let (files, top) = contents(dir, l.digest().as_ref(), l.media_type().as_ref())?;
            Ok(LayerReport {
                digest: l.digest().to_string(),
                size: l.size(),
                media_type: l.media_type().to_string(),
                why: key.as_deref().map(crate::plan::layering::reason).unwrap_or_else(|| "not built by kiln".into()),
                key,
                files,
                top,
            })
        })
        .collect::<Result<_, BuildError>>()?;
    let total_bytes = desc.size() + m.config().size() + layers.iter().map(|l| l.size).sum::<u64>();
    Ok(PlatformReport {
        platform,
        manifest: desc.digest().to_string(),
        config: m.config().digest().to_string(),
        layers,
        total_bytes,
    })
}

/// Reads the layout at `dir`; with `only`, just that image.
pub fn inspect(dir: &Path, only: Option<&str>) -> Result<LayoutReport, BuildError> {
    let index_path = dir.join("index.json");
    let top: ImageIndex =
        serde_json::from_slice(&std::fs::read(&index_path).map_err(BuildError::io("read", &index_path))?)
            .map_err(|e| invalid(dir, format!("index.json: {e}")))?;
    let mut images = Vec::new();
    for desc in top.manifests() {
        let name = desc
            .annotations()
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_REF_NAME))
            .cloned()
            .unwrap_or_else(|| desc.digest().to_string());
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let platforms = match desc.media_type() {
            MediaType::ImageIndex => {
                let idx: ImageIndex = serde_json::from_slice(&read_blob(dir, desc)?)
                    .map_err(|e| invalid(dir, format!("index {}: {e}", desc.digest())))?;
                idx.manifests()
                    .iter()
                    .map(|m| manifest_report(dir, m, platform_name(m)))
                    .collect::<Result<Vec<_>, _>>()?
            }
            MediaType::ImageManifest => vec![manifest_report(dir, desc, platform_name(desc))?],
            other => {
                return Err(invalid(dir, format!("unsupported media type {other} in index.json")));
            }
        };
        images.push(ImageReport {
            name,
            digest: desc.digest().to_string(),
            media_type: desc.media_type().to_string(),
            platforms,
        });
    }
    if let Some(o) = only
        && images.is_empty()
    {
        return Err(invalid(dir, format!("no image named `{o}`")));
    }
    let mut layers: BTreeMap<String, LayerUse> = BTreeMap::new();
    for i in &images {
        for p in &i.platforms {
            for l in &p.layers {
                let u = layers.entry(l.digest.clone()).or_insert(LayerUse { size: l.size, used_by: Vec::new() });
                u.used_by.push(format!("{} {}", i.name, p.platform));
            }
        }
    }
    Ok(LayoutReport { images, layers })
}

/// The layer keys of an image: its config's history, one entry per layer (kiln writes each
/// layer's key there; for other images these are whatever their builder wrote).
fn layer_keys_of(dir: &Path, m: &ImageManifest) -> Result<Option<Vec<String>>, BuildError> {
    let config: oci_spec::image::ImageConfiguration =
        serde_json::from_slice(&read_blob(dir, m.config())?).map_err(|e| invalid(dir, format!("config: {e}")))?;
    let keys: Vec<String> = config
        .history()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|h| !h.empty_layer().unwrap_or(false))
        .map(|h| h.created_by().clone().unwrap_or_default())
        .collect();
    Ok((keys.len() == m.layers().len()).then_some(keys))
}

/// The layer keys kiln recorded in a layout's images, by (image, platform): what
/// `--previous` keeps the order of.
pub fn layer_keys(dir: &Path) -> Result<BTreeMap<(String, crate::platform::Platform), Vec<String>>, BuildError> {
    let index_path = dir.join("index.json");
    let top: ImageIndex =
        serde_json::from_slice(&std::fs::read(&index_path).map_err(BuildError::io("read", &index_path))?)
            .map_err(|e| invalid(dir, format!("index.json: {e}")))?;
    let mut out = BTreeMap::new();
    for desc in top.manifests() {
        let Some(name) = desc.annotations().as_ref().and_then(|a| a.get(ANNOTATION_REF_NAME)).cloned() else {
            continue;
        };
        let manifests = match desc.media_type() {
            MediaType::ImageIndex => {
                let idx: ImageIndex =
                    serde_json::from_slice(&read_blob(dir, desc)?).map_err(|e| invalid(dir, e.to_string()))?;
                idx.manifests().clone()
            }
            _ => vec![desc.clone()],
        };
        for m in manifests {
            let Some(platform) = crate::platform::Platform::parse(&platform_name(&m)) else { continue };
            let manifest: ImageManifest =
                serde_json::from_slice(&read_blob(dir, &m)?).map_err(|e| invalid(dir, e.to_string()))?;
            if let Some(keys) = layer_keys_of(dir, &manifest)? {
                out.insert((name.clone(), platform), keys);
            }
        }
    }
    Ok(out)
}

fn short(d: &str) -> &str {
    &d[..d.len().min(19)]
}

/// Human-readable form of a report.
pub fn render_text(r: &LayoutReport) -> String {
    let mut s = String::new();
    let platform_count: usize = r.images.iter().map(|i| i.platforms.len()).sum();
    for i in &r.images {
        let _ = writeln!(s, "image {}  {}", i.name, i.digest);
        for p in &i.platforms {
            let _ = writeln!(
                s,
                "  {}  manifest {}  {} layer(s), {} bytes",
                p.platform,
                short(&p.manifest),
                p.layers.len(),
                p.total_bytes
            );
            for (n, l) in p.layers.iter().enumerate() {
                let users = &r.layers[&l.digest].used_by;
                let shared = if users.len() == platform_count && platform_count > 1 {
                    "shared by every image and platform".to_string()
                } else if users.len() > 1 {
                    format!("shared by {}", users.join(", "))
                } else {
                    "not shared".to_string()
                };
                let _ = writeln!(s, "    {:>2}  {}  {:>10} B  {}", n + 1, short(&l.digest), l.size, shared);
                let top: Vec<String> = l.top.iter().map(|(d, c)| format!("{d} ({c})")).collect();
                let _ = writeln!(
                    s,
                    "        {}: {} file(s) in {}",
                    l.key.as_deref().unwrap_or("layer"),
                    l.files,
                    if top.is_empty() { "-".into() } else { top.join(", ") }
                );
                let _ = writeln!(s, "        why: {}", l.why);
            }
        }
    }
    let distinct: u64 = r.layers.values().map(|l| l.size).sum();
    let referenced: u64 = r.layers.values().map(|l| l.size * l.used_by.len() as u64).sum();
    let _ =
        writeln!(s, "{} distinct layer(s), {distinct} bytes stored for {referenced} bytes referenced", r.layers.len());
    s
}

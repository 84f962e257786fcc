//! Reads an OCI image layout back: images, platforms, layers, and which images and platforms
//! share each layer. Works on any OCI layout, not only kiln's.

use crate::error::BuildError;
use crate::oci::digest::{Digest, HashingReader};
use crate::store::walk::{self, Blob, Image, PlatformImage};
use crate::store::{BlobSource, LayoutDir};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::io::Read;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct LayoutReport {
    pub images: Vec<ImageReport>,
    /// Every layer digest with its size and the `image platform` pairs that use it.
    pub layers: BTreeMap<Digest, LayerUse>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub name: String,
    pub digest: Digest,
    pub media_type: String,
    pub platforms: Vec<PlatformReport>,
    /// Artifacts that refer to the image index (signatures).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attached: Vec<Attached>,
    /// Platforms the image index names whose manifests the layout does not hold.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlatformReport {
    pub platform: String,
    pub manifest: Digest,
    pub config: Digest,
    /// The user the image runs as, and where that comes from.
    pub user: String,
    pub user_from: String,
    pub layers: Vec<LayerReport>,
    /// Config, manifest and layers.
    pub total_bytes: u64,
    /// Artifacts that refer to this manifest (signatures, SBOMs, provenance).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attached: Vec<Attached>,
}

/// An artifact the layout lists that refers to a manifest (OCI 1.1 `subject`).
#[derive(Debug, Clone, Serialize)]
pub struct Attached {
    pub artifact_type: String,
    /// What people call it: `signature (cosign)`, `SBOM (SPDX)`.
    pub kind: String,
    pub digest: Digest,
    pub size: u64,
}

/// What people call an artifact type.
fn kind(artifact_type: &str) -> String {
    match artifact_type {
        crate::attest::signing::SIGNATURE_TYPE => "signature (cosign)".into(),
        "application/spdx+json" => "SBOM (SPDX)".into(),
        "application/vnd.cyclonedx+json" => "SBOM (CycloneDX)".into(),
        "application/vnd.in-toto+json" => "in-toto statement".into(),
        "application/vnd.dsse.envelope.v1+json" => "signed in-toto statement (DSSE)".into(),
        other => other.to_string(),
    }
}

fn attached(all: &[crate::attest::referrers::Referrer], subject: &Digest) -> Vec<Attached> {
    all.iter()
        .filter(|r| &r.subject == subject)
        .map(|r| Attached {
            artifact_type: r.artifact_type.clone(),
            kind: kind(&r.artifact_type),
            digest: r.blob.digest.clone(),
            size: r.blob.size,
        })
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerReport {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// The layer's key in kiln's layer plan, for images kiln wrote (for others, the config's
    /// history entry when there is one per layer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Why the layer holds what it holds and stands where it does.
    pub why: String,
    /// Files and links in the layer.
    pub files: u64,
    /// The directories holding most of its files (up to three levels deep), with their counts.
    pub top: Vec<(String, u64)>,
}

/// Counts a layer's files by the first three components of their directories. The
/// compressed stream is hashed while it is read, and read to the end: a layer whose bytes are
/// not the ones its descriptor names is refused, and nothing it lists is shown.
fn contents(src: &dyn BlobSource, layer: &Blob) -> Result<(u64, Vec<(String, u64)>), BuildError> {
    let p = src.blob_name(&layer.digest);
    walk::check_size(src, &layer.digest, layer.size)?;
    let mut hashed = HashingReader::new(src.open_blob(&layer.digest)?);
    let listed = count_files(&mut hashed, &layer.media_type, &p);
    // The decompressor and tar stop at the end of the archive; the blob may go on.
    std::io::copy(&mut hashed, &mut std::io::sink()).map_err(BuildError::io("read", &p))?;
    let (_, actual, len) = hashed.finish();
    walk::check_read(src.location(), &layer.digest, layer.size, (&actual, len))?;
    listed
}

fn count_files(blob: &mut dyn Read, media_type: &str, p: &Path) -> Result<(u64, Vec<(String, u64)>), BuildError> {
    let reader = crate::layer::decoder(media_type, blob).map_err(BuildError::io("read", p))?;
    let mut tar = tar::Archive::new(reader);
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut files = 0;
    for e in tar.entries().map_err(BuildError::io("read", p))? {
        let e = e.map_err(BuildError::io("read", p))?;
        if e.header().entry_type().is_dir() {
            continue;
        }
        files += 1;
        let path = e.path().map_err(BuildError::io("read", p))?.to_string_lossy().into_owned();
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

fn platform_report(
    src: &dyn BlobSource,
    image: &Image,
    p: &PlatformImage,
    referrers: &[crate::attest::referrers::Referrer],
) -> Result<PlatformReport, BuildError> {
    let (keys, kiln) = image.layer_keys(src, p)?;
    let layers: Vec<LayerReport> = p
        .layers
        .iter()
        .zip(keys)
        .map(|(l, key)| {
            let (files, top) = contents(src, l)?;
            Ok(LayerReport {
                digest: l.digest.clone(),
                size: l.size,
                media_type: l.media_type.clone(),
                why: match &key {
                    Some(k) if kiln => crate::plan::layering::reason(k),
                    Some(_) => "not built by kiln; the key is what its history says made it".into(),
                    None => "not built by kiln".into(),
                },
                key,
                files,
                top,
            })
        })
        .collect::<Result<_, BuildError>>()?;
    let total_bytes = p.blob.size + p.config.size + layers.iter().map(|l| l.size).sum::<u64>();
    let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&src.read_blob(&p.config)?)
        .map_err(|e| walk::invalid(src.location(), format!("config {}: {e}", p.config.digest)))?;
    let set = config.config().as_ref().and_then(|c| c.user().clone()).filter(|u| !u.is_empty());
    let (user, user_from) = match set {
        Some(u) => (u, "the image config's User".to_string()),
        None => ("0 (root)".to_string(), "the image config sets no User, so runtimes run it as root".to_string()),
    };
    Ok(PlatformReport {
        platform: p.platform.clone(),
        manifest: p.blob.digest.clone(),
        config: p.config.digest.clone(),
        user,
        user_from,
        layers,
        total_bytes,
        attached: attached(referrers, &p.blob.digest),
    })
}

/// Reads the layout at `dir`; with `only`, just that image.
pub fn inspect(dir: &Path, only: Option<&str>) -> Result<LayoutReport, BuildError> {
    let src = LayoutDir::new(dir);
    let referrers = crate::attest::referrers::list(&src)?;
    let mut images = Vec::new();
    for i in walk::images_present(&src, only, &[])? {
        images.push(ImageReport {
            name: i.name.clone(),
            digest: i.blob.digest.clone(),
            media_type: i.blob.media_type.clone(),
            platforms: i
                .platforms
                .iter()
                .map(|p| platform_report(&src, &i, p, &referrers))
                .collect::<Result<_, _>>()?,
            attached: if i.index.is_some() { attached(&referrers, &i.blob.digest) } else { Vec::new() },
            absent: i.absent.clone(),
        });
    }
    let mut layers: BTreeMap<Digest, LayerUse> = BTreeMap::new();
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

/// The layer keys recorded in a layout's images, by (image, platform): what `--previous`
/// keeps the order of. Images whose keys are not all known are left out.
pub fn layer_keys(
    previous: &crate::inputs::registry::Release,
    opts: &crate::inputs::registry::Options,
) -> Result<BTreeMap<(String, crate::oci::platform::Platform), Vec<String>>, BuildError> {
    let src = previous.open(opts)?;
    let src = src.as_ref();
    let mut out = BTreeMap::new();
    for i in walk::images_present(src, None, &[])? {
        for p in &i.platforms {
            let Some(platform) = crate::oci::platform::Platform::parse(&p.platform) else { continue };
            if let Some(keys) = i.layer_keys(src, p)?.0.into_iter().collect::<Option<Vec<String>>>() {
                out.insert((i.name.clone(), platform), keys);
            }
        }
    }
    Ok(out)
}

/// A digest with its first 12 hex digits, for people.
fn short(d: &Digest) -> String {
    format!("{}:{}", d.algorithm(), d.short_hex())
}

/// `svc1 and svc2 on every platform`, `svc1 (every platform), svc2 linux/amd64`: who uses a
/// layer, by image.
fn users_by_image(r: &LayoutReport, users: &[String]) -> String {
    let mut by_image: Vec<(&str, Vec<&str>)> = Vec::new();
    for u in users {
        let (image, platform) = u.split_once(' ').unwrap_or((u.as_str(), ""));
        match by_image.iter_mut().find(|(i, _)| *i == image) {
            Some((_, ps)) => ps.push(platform),
            None => by_image.push((image, vec![platform])),
        }
    }
    let every = |image: &str, ps: &[&str]| {
        r.images.iter().find(|i| i.name == image).is_some_and(|i| i.platforms.len() == ps.len() && ps.len() > 1)
    };
    if by_image.iter().all(|(i, ps)| every(i, ps)) {
        let names: Vec<&str> = by_image.iter().map(|(i, _)| *i).collect();
        return format!("{} on every platform", names.join(", "));
    }
    let parts: Vec<String> = by_image
        .iter()
        .map(|(i, ps)| if every(i, ps) { format!("{i} (every platform)") } else { format!("{i} {}", ps.join(", ")) })
        .collect();
    parts.join("; ")
}

/// Human-readable form of a report.
pub fn render_text(r: &LayoutReport) -> String {
    let mut s = String::new();
    let platform_count: usize = r.images.iter().map(|i| i.platforms.len()).sum();
    for i in &r.images {
        let _ = writeln!(s, "image {}  {}", i.name, i.digest);
        for a in &i.attached {
            let _ = writeln!(s, "  attached: {} {}", a.kind, short(&a.digest));
        }
        for a in &i.absent {
            let _ = writeln!(s, "  {a}  not held in this layout");
        }
        for p in &i.platforms {
            let _ = writeln!(
                s,
                "  {}  manifest {}  {} layer(s), {} bytes",
                p.platform,
                short(&p.manifest),
                p.layers.len(),
                p.total_bytes
            );
            let _ = writeln!(s, "    runs as {} ({})", p.user, p.user_from);
            for a in &p.attached {
                let _ = writeln!(s, "    attached: {} {}", a.kind, short(&a.digest));
            }
            for (n, l) in p.layers.iter().enumerate() {
                let users = &r.layers[&l.digest].used_by;
                let shared = if users.len() == platform_count && platform_count > 1 {
                    "shared by every image and platform".to_string()
                } else if users.len() > 1 {
                    format!("shared by {}", users_by_image(r, users))
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

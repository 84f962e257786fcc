//! `kiln diff`: what a device holding OLD downloads to hold NEW, image by image and platform by
//! platform, and the text report of it.

use super::{PlatformBlobs, held, images, reachable};
use crate::error::UpdateError;
use crate::inputs::registry::{Options, Release};
use crate::oci::digest::Digest;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Serialize)]
pub struct Blob {
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlatformDiff {
    pub platform: String,
    pub added: Vec<Blob>,
    pub removed: Vec<Blob>,
    pub kept: Vec<Blob>,
    /// What a device running OLD's image on this platform downloads: new layers, config,
    /// manifest and image index.
    pub download_bytes: u64,
    /// The part of `download_bytes` that is metadata: manifest, config and image index.
    pub metadata_bytes: u64,
    /// With `--delta`: the download when each added layer that has a layer of the same key in
    /// OLD goes as a binary delta (`kiln bundle --delta`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta_download_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageDiff {
    pub name: String,
    /// The image is new: OLD has no image of that name.
    pub new_image: bool,
    pub platforms: Vec<PlatformDiff>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub images: Vec<ImageDiff>,
    /// Bytes of every blob NEW references (for the chosen platforms) that OLD lacks: what a
    /// device holding all of OLD downloads to hold all of NEW.
    pub total_bytes: u64,
    /// Bytes of every blob NEW references (for the chosen platforms).
    pub new_bytes: u64,
    /// With `--delta`: `total_bytes` with layers sent as deltas where that is smaller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_delta_bytes: Option<u64>,
    /// The budget, which applies to what would be sent: `total_delta_bytes` with `--delta`,
    /// else `total_bytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<u64>,
    pub over_budget: bool,
}

fn blobs(list: &[&(Digest, u64)]) -> Vec<Blob> {
    list.iter().map(|(d, s)| Blob { digest: d.clone(), size: *s }).collect()
}

/// Compares two releases (layouts or registry references; of a registry only manifests and
/// configs are read); `platforms` limits the comparison (empty: all).
pub fn diff(
    (old, new): (&Release, &Release),
    opts: &Options,
    platforms: &[String],
    (budget, with_deltas): (Option<u64>, bool),
) -> Result<DiffReport, UpdateError> {
    let (old, new) = (old.open(opts)?, new.open(opts)?);
    let (old_images, new_images) = (held(old.as_ref(), platforms)?, images(new.as_ref(), platforms)?);
    let old_all = reachable(&old_images);
    let mut report = Vec::new();
    let mut wanted: BTreeMap<Digest, u64> = BTreeMap::new();
    for img in &new_images {
        let before = old_images.iter().find(|o| o.name == img.name);
        let mut diffs = Vec::new();
        for p in &img.platforms {
            let had: Option<&PlatformBlobs> =
                before.and_then(|b| b.platforms.iter().find(|o| o.platform == p.platform));
            let had_blobs: BTreeSet<&Digest> = had
                .map(|h| {
                    std::iter::once(&h.manifest)
                        .chain(std::iter::once(&h.config))
                        .chain(h.layers.iter())
                        .map(|(d, _)| d)
                        .collect()
                })
                .unwrap_or_default();
            let old_layers: Vec<&(Digest, u64)> = had.map(|h| h.layers.iter().collect()).unwrap_or_default();
            let added: Vec<&(Digest, u64)> = p.layers.iter().filter(|(d, _)| !had_blobs.contains(d)).collect();
            let kept: Vec<&(Digest, u64)> = p.layers.iter().filter(|(d, _)| had_blobs.contains(d)).collect();
            let removed: Vec<&(Digest, u64)> =
                old_layers.into_iter().filter(|(d, _)| !p.layers.iter().any(|(n, _)| n == d)).collect();
            let mut metadata = 0;
            for (d, s) in [&p.config, &p.manifest] {
                if !had_blobs.contains(d) {
                    metadata += s;
                }
            }
            if let Some((d, s)) = &img.index
                && before.and_then(|b| b.index.as_ref()).is_none_or(|(o, _)| o != d)
            {
                metadata += s;
            }
            let download = metadata + added.iter().map(|(_, s)| s).sum::<u64>();
            for (d, s) in std::iter::once(&p.manifest).chain(std::iter::once(&p.config)).chain(p.layers.iter()) {
                wanted.insert(d.clone(), *s);
            }
            diffs.push(PlatformDiff {
                platform: p.platform.clone(),
                added: blobs(&added),
                removed: blobs(&removed),
                kept: blobs(&kept),
                download_bytes: download,
                metadata_bytes: metadata,
                delta_download_bytes: None,
            });
        }
        if let Some((d, s)) = &img.index {
            wanted.insert(d.clone(), *s);
        }
        report.push(ImageDiff { name: img.name.clone(), new_image: before.is_none(), platforms: diffs });
    }
    let lacking: BTreeMap<Digest, u64> =
        wanted.iter().filter(|(d, _)| !old_all.contains_key(*d)).map(|(d, s)| (d.clone(), *s)).collect();
    let total_bytes = lacking.values().sum();
    let new_bytes = wanted.values().sum();
    let total_delta_bytes = if with_deltas {
        let patches = super::delta::patch_sizes(old.as_ref(), new.as_ref(), platforms, &lacking)?;
        let sent = |d: &Digest, s: u64| patches.get(d).copied().unwrap_or(s);
        for p in report.iter_mut().flat_map(|i| i.platforms.iter_mut()) {
            let layers: u64 = p.added.iter().map(|b| sent(&b.digest, b.size)).sum();
            p.delta_download_bytes = Some(p.metadata_bytes + layers);
        }
        Some(lacking.iter().map(|(d, s)| sent(d, *s)).sum())
    } else {
        None
    };
    let sent: u64 = total_delta_bytes.unwrap_or(total_bytes);
    Ok(DiffReport {
        images: report,
        total_bytes,
        new_bytes,
        total_delta_bytes,
        budget,
        over_budget: budget.is_some_and(|b| sent > b),
    })
}

/// `2MiB`, `500kB`, `1.5MB`, `123` → bytes.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "kib" => 1024.0,
        "mb" | "m" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "gb" | "g" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((n * mult).round() as u64)
}

pub fn render_diff(r: &DiffReport) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for i in &r.images {
        for p in &i.platforms {
            let _ = writeln!(
                s,
                "{}{}  {:<13} layers: {} added, {} removed, {} kept   download {} bytes ({} of manifest, config and index)",
                i.name,
                if i.new_image { " (new)" } else { "" },
                p.platform,
                p.added.len(),
                p.removed.len(),
                p.kept.len(),
                p.download_bytes,
                p.metadata_bytes
            );
            if let Some(d) = p.delta_download_bytes {
                let _ = writeln!(s, "    with deltas: download {d} bytes");
            }
            for b in &p.added {
                let _ = writeln!(s, "    + {} {:>10} bytes", b.digest, b.size);
            }
            for b in &p.removed {
                let _ = writeln!(s, "    - {} {:>10} bytes", b.digest, b.size);
            }
        }
    }
    let _ = writeln!(s, "total: {} bytes of {} are new to OLD", r.total_bytes, r.new_bytes);
    if let Some(d) = r.total_delta_bytes {
        let _ = writeln!(s, "total with deltas: {d} bytes");
    }
    if let Some(b) = r.budget {
        let _ = writeln!(s, "budget: {b} bytes: {}", if r.over_budget { "OVER" } else { "within" });
    }
    s
}

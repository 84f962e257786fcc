//! Updates between two releases: what a device holding OLD must download to get NEW
//! (`kiln diff`), a bundle of exactly that (`kiln bundle`), and applying it on the device
//! (`kiln apply`), which checks every byte and leaves the layout unchanged on any failure.

use crate::error::BuildError;
use crate::walk::{self, blob_path, invalid, read_index};
use oci_spec::image::Descriptor;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// One platform's image: its manifest, config and layers as (digest, size).
#[derive(Debug, Clone)]
pub struct PlatformBlobs {
    pub platform: String,
    pub manifest: (String, u64),
    pub config: (String, u64),
    pub layers: Vec<(String, u64)>,
}

/// One named image of a layout.
#[derive(Debug, Clone)]
pub struct ImageBlobs {
    pub name: String,
    /// The image index, when the image is multi-platform.
    pub index: Option<(String, u64)>,
    pub platforms: Vec<PlatformBlobs>,
}

/// Every image of a layout with the blobs it references, for `platforms` (empty: all). The
/// manifests of other platforms are not read: a device may hold only its own.
pub fn images(dir: &Path, platforms: &[String]) -> Result<Vec<ImageBlobs>, BuildError> {
    images_of(walk::images_for(dir, None, platforms)?)
}

/// What a device's layout holds: platforms whose manifests it lacks are left out, as if the
/// image did not have them.
fn held(dir: &Path, platforms: &[String]) -> Result<Vec<ImageBlobs>, BuildError> {
    images_of(walk::images_present(dir, None, platforms)?)
}

fn images_of(walked: Vec<walk::Image>) -> Result<Vec<ImageBlobs>, BuildError> {
    let pair = |d: &Descriptor| (d.digest().to_string(), d.size());
    Ok(walked
        .into_iter()
        .map(|i| ImageBlobs {
            index: i.index.as_ref().map(|_| pair(&i.desc)),
            platforms: i
                .platforms
                .iter()
                .map(|p| PlatformBlobs {
                    platform: p.platform.clone(),
                    manifest: pair(&p.desc),
                    config: pair(p.manifest.config()),
                    layers: p.manifest.layers().iter().map(pair).collect(),
                })
                .collect(),
            name: i.name,
        })
        .collect())
}

/// Every blob a layout references, with its size.
pub fn reachable(images: &[ImageBlobs]) -> BTreeMap<String, u64> {
    let mut all = BTreeMap::new();
    for i in images {
        if let Some((d, s)) = &i.index {
            all.insert(d.clone(), *s);
        }
        for p in &i.platforms {
            for (d, s) in std::iter::once(&p.manifest).chain(std::iter::once(&p.config)).chain(p.layers.iter()) {
                all.insert(d.clone(), *s);
            }
        }
    }
    all
}

#[derive(Debug, Clone, Serialize)]
pub struct Blob {
    pub digest: String,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget: Option<u64>,
    pub over_budget: bool,
}

fn blobs(list: &[&(String, u64)]) -> Vec<Blob> {
    list.iter().map(|(d, s)| Blob { digest: d.clone(), size: *s }).collect()
}

/// Compares two layouts; `platforms` limits the comparison (empty: all).
pub fn diff(old: &Path, new: &Path, platforms: &[String], budget: Option<u64>) -> Result<DiffReport, BuildError> {
    let (old_images, new_images) = (held(old, platforms)?, images(new, platforms)?);
    let old_all = reachable(&old_images);
    let mut report = Vec::new();
    let mut wanted: BTreeMap<String, u64> = BTreeMap::new();
    for img in &new_images {
        let before = old_images.iter().find(|o| o.name == img.name);
        let mut diffs = Vec::new();
        for p in &img.platforms {
            let had: Option<&PlatformBlobs> =
                before.and_then(|b| b.platforms.iter().find(|o| o.platform == p.platform));
            let had_blobs: BTreeSet<&str> = had
                .map(|h| {
                    std::iter::once(&h.manifest)
                        .chain(std::iter::once(&h.config))
                        .chain(h.layers.iter())
                        .map(|(d, _)| d.as_str())
                        .collect()
                })
                .unwrap_or_default();
            let old_layers: Vec<&(String, u64)> = had.map(|h| h.layers.iter().collect()).unwrap_or_default();
            let added: Vec<&(String, u64)> = p.layers.iter().filter(|(d, _)| !had_blobs.contains(d.as_str())).collect();
            let kept: Vec<&(String, u64)> = p.layers.iter().filter(|(d, _)| had_blobs.contains(d.as_str())).collect();
            let removed: Vec<&(String, u64)> =
                old_layers.into_iter().filter(|(d, _)| !p.layers.iter().any(|(n, _)| n == d)).collect();
            let mut metadata = 0;
            for (d, s) in [&p.config, &p.manifest] {
                if !had_blobs.contains(d.as_str()) {
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
            });
        }
        if let Some((d, s)) = &img.index {
            wanted.insert(d.clone(), *s);
        }
        report.push(ImageDiff { name: img.name.clone(), new_image: before.is_none(), platforms: diffs });
    }
    let total_bytes = wanted.iter().filter(|(d, _)| !old_all.contains_key(*d)).map(|(_, s)| s).sum();
    let new_bytes = wanted.values().sum();
    Ok(DiffReport {
        images: report,
        total_bytes,
        new_bytes,
        budget,
        over_budget: budget.is_some_and(|b| total_bytes > b),
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
            for b in &p.added {
                let _ = writeln!(s, "    + {} {:>10} bytes", b.digest, b.size);
            }
            for b in &p.removed {
                let _ = writeln!(s, "    - {} {:>10} bytes", b.digest, b.size);
            }
        }
    }
    let _ = writeln!(s, "total: {} bytes of {} are new to OLD", r.total_bytes, r.new_bytes);
    if let Some(b) = r.budget {
        let _ = writeln!(s, "budget: {b} bytes: {}", if r.over_budget { "OVER" } else { "within" });
    }
    s
}

const BUNDLE_MANIFEST: &str = "kiln-bundle.json";

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct BundleManifest {
    bundle_format: u32,
    /// The platforms the bundle updates (`os/arch[/variant]`); empty: all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    platforms: Vec<String>,
    /// sha256 of the index.json the bundle installs.
    index_json: String,
    /// Blobs the bundle carries.
    provides: Vec<String>,
}

/// What a bundle holds.
#[derive(Debug, Clone, Serialize)]
pub struct BundleSummary {
    pub file: String,
    pub blobs: usize,
    pub blob_bytes: u64,
    pub requires: usize,
    pub bytes: u64,
}

fn tar_header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// Writes a bundle with what a device holding `have` lacks to hold `want`, for `platforms`
/// (empty: every platform; a device usually runs one, and needs only its blobs).
pub fn bundle(have: &Path, want: &Path, platforms: &[String], file: &Path) -> Result<BundleSummary, BuildError> {
    let had = reachable(&held(have, platforms)?);
    let (index_bytes, _) = read_index(want)?;
    let needed = reachable(&images(want, platforms)?);
    type Blobs<'a> = Vec<(&'a String, &'a u64)>;
    let (provides, requires): (Blobs, Blobs) = needed
        .iter()
        .partition(|(d, _)| !had.contains_key(*d) || !blob_path(have, d).map(|p| p.is_file()).unwrap_or(false));
    let manifest = BundleManifest {
        bundle_format: 1,
        platforms: platforms.to_vec(),
        index_json: crate::digest::sha256_digest(&index_bytes),
        provides: provides.iter().map(|(d, _)| (*d).clone()).collect(),
    };
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(BuildError::io("create a file in", &dir))?;
    {
        let out = std::io::BufWriter::new(tmp.reopen().map_err(BuildError::io("open", tmp.path()))?);
        let mut tar = tar::Builder::new(out);
        let io = BuildError::io("write", file);
        let m = crate::canonical::to_vec(&manifest);
        let add = |tar: &mut tar::Builder<_>, name: &str, bytes: &[u8]| {
            tar.append_data(&mut tar_header(bytes.len() as u64), name, bytes)
        };
        add(&mut tar, BUNDLE_MANIFEST, &m).map_err(io)?;
        add(&mut tar, "index.json", &index_bytes).map_err(BuildError::io("write", file))?;
        add(&mut tar, "oci-layout", crate::layout::OCI_LAYOUT).map_err(BuildError::io("write", file))?;
        for (d, size) in &provides {
            let src = blob_path(want, d)?;
            let f = std::fs::File::open(&src).map_err(BuildError::io("open", &src))?;
            tar.append_data(&mut tar_header(**size), format!("blobs/sha256/{}", &d[7..]), f)
                .map_err(BuildError::io("write", file))?;
        }
        let out = tar.into_inner().map_err(BuildError::io("write", file))?;
        out.into_inner().map_err(|e| BuildError::Io {
            action: "write",
            path: file.to_path_buf(),
            source: e.into_error(),
        })?;
    }
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .map_err(BuildError::io("set permissions of", tmp.path()))?;
    }
    tmp.persist(file).map_err(|e| BuildError::Io { action: "write", path: file.to_path_buf(), source: e.error })?;
    Ok(BundleSummary {
        file: file.display().to_string(),
        blobs: provides.len(),
        blob_bytes: provides.iter().map(|(_, s)| **s).sum(),
        requires: requires.len(),
        bytes: std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
    })
}

fn refuse(bundle: &Path, reason: impl Into<String>) -> BuildError {
    BuildError::BundleRefused { bundle: bundle.to_path_buf(), reason: reason.into() }
}

/// What applying a bundle did.
#[derive(Debug, Clone, Serialize)]
pub struct ApplySummary {
    /// Blobs the bundle brought, each checked against its digest.
    pub added: usize,
    /// Blobs the new index no longer reaches, removed (unless kept).
    pub pruned: usize,
    pub pruned_bytes: u64,
}

/// Applies a bundle to `layout`: every blob is checked against its digest, everything the
/// new index needs must then be present, and only then does the layout change, in one rename.
/// Blobs the new index does not reach (the previous release's) are left out, unless
/// `keep_unused`: devices have small disks.
pub fn apply(bundle_file: &Path, layout: &Path, keep_unused: bool) -> Result<ApplySummary, BuildError> {
    crate::layout::recover(layout)?;
    if !layout.join("oci-layout").is_file() {
        return Err(invalid(layout, "not an OCI image layout"));
    }
    let staging = crate::layout::Staging::new(layout)?;
    let file = std::fs::File::open(bundle_file).map_err(BuildError::io("open", bundle_file))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let (mut manifest, mut index_json, mut added) = (None, None, 0);
    for entry in archive.entries().map_err(|e| refuse(bundle_file, e.to_string()))? {
        let mut entry = entry.map_err(|e| refuse(bundle_file, format!("unreadable: {e}")))?;
        let name = entry.path().map_err(|e| refuse(bundle_file, e.to_string()))?.to_string_lossy().into_owned();
        let declared = entry.header().size().unwrap_or(0);
        match name.as_str() {
            BUNDLE_MANIFEST | "index.json" => {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).map_err(|e| refuse(bundle_file, format!("{name}: {e}")))?;
                if bytes.len() as u64 != declared {
                    return Err(refuse(bundle_file, format!("{name} is truncated")));
                }
                if name == "index.json" {
                    index_json = Some(bytes);
                } else {
                    let m = serde_json::from_slice::<BundleManifest>(&bytes)
                        .map_err(|e| refuse(bundle_file, format!("{BUNDLE_MANIFEST}: {e}")))?;
                    if m.bundle_format != 1 {
                        return Err(refuse(bundle_file, format!("unknown bundle format {}", m.bundle_format)));
                    }
                    manifest = Some(m);
                }
            }
            "oci-layout" => {}
            n if n.starts_with("blobs/sha256/") => {
                let expected = format!("sha256:{}", &n["blobs/sha256/".len()..]);
                blob_path(layout, &expected).map_err(|_| refuse(bundle_file, format!("bad blob name {n}")))?;
                let blob = staging.write_blob(|w| {
                    let n =
                        std::io::copy(&mut entry, w).map_err(|e| refuse(bundle_file, format!("{expected}: {e}")))?;
                    if n != declared {
                        return Err(refuse(bundle_file, format!("{expected} is truncated")));
                    }
                    Ok(())
                })?;
                if blob.digest != expected {
                    return Err(refuse(
                        bundle_file,
                        format!("blob {expected} holds bytes with digest {}", blob.digest),
                    ));
                }
                added += 1;
            }
            other => return Err(refuse(bundle_file, format!("unexpected member {other}"))),
        }
    }
    let manifest = manifest.ok_or_else(|| refuse(bundle_file, format!("no {BUNDLE_MANIFEST}")))?;
    let index_json = index_json.ok_or_else(|| refuse(bundle_file, "no index.json"))?;
    if crate::digest::sha256_digest(&index_json) != manifest.index_json {
        return Err(refuse(bundle_file, "index.json does not match the bundle's manifest"));
    }
    if manifest.provides.len() != added {
        return Err(refuse(
            bundle_file,
            format!("it should carry {} blobs and carries {added}", manifest.provides.len()),
        ));
    }
    // The layout's own blobs, linked (or copied) into the staging directory: those the new
    // index reaches, or all of them with `keep_unused`. The new index's image indexes and
    // manifests may be the layout's, so they are linked first, and the walk follows.
    let staged = staging.path().to_path_buf();
    std::fs::write(staged.join("index.json"), &index_json).map_err(BuildError::io("write", &staged))?;
    let blob_dir = layout.join("blobs/sha256");
    let mut own: Vec<(std::ffi::OsString, PathBuf, u64)> = Vec::new();
    for e in std::fs::read_dir(&blob_dir).map_err(BuildError::io("read", &blob_dir))?.filter_map(Result::ok) {
        let size = e.metadata().map(|m| m.len()).unwrap_or(0);
        own.push((e.file_name(), e.path(), size));
    }
    let link = |name: &std::ffi::OsStr, from: &Path| -> Result<(), BuildError> {
        let dest = staging.blob_dir().join(name);
        if dest.exists() {
            return Ok(());
        }
        if std::fs::hard_link(from, &dest).is_err() {
            std::fs::copy(from, &dest).map_err(BuildError::io("copy", from))?;
        }
        Ok(())
    };
    for (name, path, _) in &own {
        link(name, path)?;
    }
    // Everything the new index reaches must now be present and intact.
    let needed = reachable(
        &images(&staged, &manifest.platforms)
            .map_err(|e| refuse(bundle_file, format!("the layout lacks what the bundle builds on: {e}")))?,
    );
    for digest in needed.keys() {
        let p = blob_path(&staged, digest)?;
        let Ok(f) = std::fs::File::open(&p) else {
            return Err(refuse(
                bundle_file,
                format!("the layout lacks {digest}, which the bundle builds on (is this the right base?)"),
            ));
        };
        // What the bundle does not carry, the device must hold intact.
        if !manifest.provides.contains(digest) {
            let (hex, _) = crate::digest::sha256_reader(f).map_err(BuildError::io("read", &p))?;
            if format!("sha256:{hex}") != *digest {
                return Err(refuse(bundle_file, format!("the layout's {digest} is damaged")));
            }
        }
    }
    let (mut pruned, mut pruned_bytes) = (0, 0);
    if !keep_unused {
        // Image indexes of images the bundle does not update still name other platforms'
        // manifests: a blob is kept when anything in the new layout refers to it.
        let referenced = reachable(&held(&staged, &[])?);
        for (name, _, size) in &own {
            let digest = format!("sha256:{}", name.to_string_lossy());
            if !referenced.contains_key(&digest) {
                let p = staging.blob_dir().join(name);
                std::fs::remove_file(&p).map_err(BuildError::io("remove", &p))?;
                pruned += 1;
                pruned_bytes += size;
            }
        }
    }
    staging.commit(&index_json)?;
    Ok(ApplySummary { added, pruned, pruned_bytes })
}

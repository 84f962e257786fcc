//! Updates between two releases: what a device holding OLD must download to get NEW
//! (`kiln diff`), a bundle of exactly that (`kiln bundle`), and applying it on the device
//! (`kiln apply`), which checks every byte and leaves the layout unchanged on any failure.

use crate::error::BuildError;
use crate::walk::{self, blob_path, read_index};
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

/// The bundle format this kiln writes and reads. Format 2 names the release a bundle builds
/// on (`base`); format 1 did not, so it cannot be checked against a layout and is refused.
const BUNDLE_FORMAT: u64 = 2;

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleManifest {
    bundle_format: u64,
    /// The release the bundle builds on: the sha256 of the `--have` layout's index.json, or
    /// `null` for a first install onto a layout that holds no image. Always written.
    base: Option<String>,
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

/// The release a layout holds, as a bundle names it: the sha256 of its index.json, or `None`
/// when that lists no image (a device's first install starts from such a layout).
fn release(dir: &Path) -> Result<(String, Option<String>), BuildError> {
    let (bytes, index) = read_index(dir)?;
    let digest = crate::digest::sha256_digest(&bytes);
    let base = (!index.manifests().is_empty()).then(|| digest.clone());
    Ok((digest, base))
}

/// Writes a bundle with what a device holding `have` lacks to hold `want`, for `platforms`
/// (empty: every platform; a device usually runs one, and needs only its blobs).
pub fn bundle(have: &Path, want: &Path, platforms: &[String], file: &Path) -> Result<BundleSummary, BuildError> {
    let (_, base) = release(have)?;
    let had = reachable(&held(have, platforms)?);
    let (index_bytes, _) = read_index(want)?;
    let needed = reachable(&images(want, platforms)?);
    type Blobs<'a> = Vec<(&'a String, &'a u64)>;
    let (provides, requires): (Blobs, Blobs) = needed
        .iter()
        .partition(|(d, _)| !had.contains_key(*d) || !blob_path(have, d).map(|p| p.is_file()).unwrap_or(false));
    let manifest = BundleManifest {
        bundle_format: BUNDLE_FORMAT,
        base,
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
        let io = || BuildError::io("write", file);
        let add = |tar: &mut tar::Builder<_>, name: &str, bytes: &[u8]| {
            tar.append_data(&mut tar_header(bytes.len() as u64), name, bytes)
        };
        add(&mut tar, BUNDLE_MANIFEST, &crate::canonical::to_vec(&manifest)).map_err(io())?;
        add(&mut tar, "index.json", &index_bytes).map_err(io())?;
        add(&mut tar, "oci-layout", crate::layout::OCI_LAYOUT).map_err(io())?;
        for (d, size) in &provides {
            append_blob(&mut tar, want, (d, **size), file)?;
        }
        let out = tar.into_inner().map_err(io())?;
        out.into_inner().map_err(|e| io()(e.into_error()))?;
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

/// Copies one blob of `want` into the bundle (`file`), hashed on the way: a blob whose bytes
/// are not the ones its name says is refused, and the bundle is not written.
fn append_blob<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    want: &Path,
    (digest, size): (&str, u64),
    file: &Path,
) -> Result<(), BuildError> {
    let src = blob_path(want, digest)?;
    let hex = walk::sha256_hex(digest).unwrap_or_default();
    walk::check_size(want, digest, size)?;
    let f = std::fs::File::open(&src).map_err(BuildError::io("open", &src))?;
    let mut r = walk::HashingReader::new(f.take(size));
    tar.append_data(&mut tar_header(size), format!("blobs/sha256/{hex}"), &mut r)
        .map_err(BuildError::io("write", file))?;
    let (actual, len) = r.finish();
    walk::check_read(want, digest, size, (&actual, len))
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

/// What a bundle's tar held, every blob already checked and in the staging directory.
struct Received {
    manifest: BundleManifest,
    index_json: Vec<u8>,
    blobs: BTreeSet<String>,
}

/// A JSON member of a bundle, refused unread when it is over [`walk::MAX_JSON`].
fn json_member(bundle: &Path, name: &str, entry: &mut impl Read, declared: u64) -> Result<Vec<u8>, BuildError> {
    if declared > walk::MAX_JSON {
        return Err(refuse(
            bundle,
            format!("{name} is {declared} bytes, more than the {} bytes kiln reads of a JSON document", walk::MAX_JSON),
        ));
    }
    let bytes = walk::read_capped(entry).map_err(|e| refuse(bundle, format!("{name}: {e}")))?.unwrap_or_default();
    if bytes.len() as u64 != declared {
        return Err(refuse(bundle, format!("{name} is truncated")));
    }
    Ok(bytes)
}

/// `kiln-bundle.json`, refused when its format is not the one this kiln reads or when it does
/// not say which release it builds on.
fn parse_manifest(bundle: &Path, bytes: &[u8]) -> Result<BundleManifest, BuildError> {
    let bad = |e: serde_json::Error| refuse(bundle, format!("{BUNDLE_MANIFEST}: {e}"));
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(bad)?;
    match v.get("bundle_format").and_then(serde_json::Value::as_u64) {
        Some(BUNDLE_FORMAT) => {}
        Some(n) => {
            return Err(refuse(bundle, format!("unknown bundle format {n} (this kiln reads format {BUNDLE_FORMAT})")));
        }
        None => return Err(refuse(bundle, format!("{BUNDLE_MANIFEST} has no bundle_format"))),
    }
    if v.get("base").is_none() {
        return Err(refuse(bundle, format!("{BUNDLE_MANIFEST} does not name the release it builds on")));
    }
    let m: BundleManifest = serde_json::from_value(v).map_err(bad)?;
    for d in m.base.iter().chain([&m.index_json]) {
        if walk::sha256_hex(d).is_none() {
            return Err(refuse(
                bundle,
                format!("{BUNDLE_MANIFEST} names {}, which is not a sha256 digest", walk::shown(d)),
            ));
        }
    }
    Ok(m)
}

/// Refuses a bundle made for another release than the one `layout` holds.
fn check_base(bundle: &Path, m: &BundleManifest, layout: (&str, Option<&str>)) -> Result<(), BuildError> {
    let (digest, held) = layout;
    let holds = match held {
        Some(d) => format!("release {d}"),
        None => "no image".to_string(),
    };
    let reason = match &m.base {
        Some(b) if held == Some(b.as_str()) => return Ok(()),
        None if held.is_none() => return Ok(()),
        // Applied again (a device that lost power after the switch and retries): the release
        // is already in place; the apply checks it again and changes nothing.
        _ if digest == m.index_json => return Ok(()),
        _ => format!("it builds on {}, and the layout holds {holds}", built_on(m)),
    };
    Err(refuse(bundle, reason))
}

fn built_on(m: &BundleManifest) -> String {
    match &m.base {
        Some(b) => format!("release {b}"),
        None => "a layout that holds no image (a first install)".into(),
    }
}

/// Reads the bundle member by member: every blob is streamed into the staging directory and
/// checked against its name, and no member may appear twice.
fn receive(
    bundle: &Path,
    layout: (&str, Option<&str>),
    staging: &crate::layout::Staging,
) -> Result<Received, BuildError> {
    let file = std::fs::File::open(bundle).map_err(BuildError::io("open", bundle))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let (mut manifest, mut index_json, mut blobs) = (None, None, BTreeSet::new());
    let mut seen = BTreeSet::new();
    for entry in archive.entries().map_err(|e| refuse(bundle, e.to_string()))? {
        let mut entry = entry.map_err(|e| refuse(bundle, format!("unreadable: {e}")))?;
        let name = entry.path().map_err(|e| refuse(bundle, e.to_string()))?.to_string_lossy().into_owned();
        if !seen.insert(name.clone()) {
            return Err(refuse(bundle, format!("it holds {} twice", walk::shown(&name))));
        }
        if !entry.header().entry_type().is_file() {
            return Err(refuse(bundle, format!("{} is not a regular file", walk::shown(&name))));
        }
        let declared = entry.header().size().map_err(|e| refuse(bundle, format!("{name}: {e}")))?;
        match name.as_str() {
            BUNDLE_MANIFEST => {
                let m = parse_manifest(bundle, &json_member(bundle, &name, &mut entry, declared)?)?;
                check_base(bundle, &m, layout)?;
                manifest = Some(m);
            }
            "index.json" => index_json = Some(json_member(bundle, &name, &mut entry, declared)?),
            "oci-layout" => {}
            n if n.starts_with("blobs/sha256/") => {
                let expected = format!("sha256:{}", &n["blobs/sha256/".len()..]);
                if walk::sha256_hex(&expected).is_none() {
                    return Err(refuse(bundle, format!("bad blob name {}", walk::shown(n))));
                }
                receive_blob(bundle, staging, &expected, &mut entry, declared)?;
                blobs.insert(expected);
            }
            other => return Err(refuse(bundle, format!("unexpected member {}", walk::shown(other)))),
        }
    }
    let manifest = manifest.ok_or_else(|| refuse(bundle, format!("no {BUNDLE_MANIFEST}")))?;
    let index_json = index_json.ok_or_else(|| refuse(bundle, "no index.json"))?;
    Ok(Received { manifest, index_json, blobs })
}

fn receive_blob(
    bundle: &Path,
    staging: &crate::layout::Staging,
    expected: &str,
    entry: &mut impl Read,
    declared: u64,
) -> Result<(), BuildError> {
    let blob = staging.write_blob(|w| {
        let n = std::io::copy(entry, w).map_err(|e| refuse(bundle, format!("{expected}: {e}")))?;
        if n != declared {
            return Err(refuse(bundle, format!("{expected} is truncated")));
        }
        Ok(())
    })?;
    if blob.digest != expected {
        return Err(refuse(bundle, format!("blob {expected} holds bytes with digest {}", blob.digest)));
    }
    Ok(())
}

/// Checks that the parts of a bundle agree: its index.json is the one its manifest records and
/// lists an image, and it carries exactly the blobs its manifest lists.
fn check_received(bundle: &Path, layout: &Path, r: &Received) -> Result<(), BuildError> {
    if crate::digest::sha256_digest(&r.index_json) != r.manifest.index_json {
        return Err(refuse(bundle, "index.json does not match the bundle's manifest"));
    }
    let index: oci_spec::image::ImageIndex = walk::parse_json(layout, "the bundle's index.json", &r.index_json)
        .map_err(|e| refuse(bundle, format!("its index.json cannot be read: {e}")))?;
    if index.manifests().is_empty() {
        return Err(refuse(bundle, "its index.json lists no image: applying it would empty the layout"));
    }
    let listed: BTreeSet<&String> = r.manifest.provides.iter().collect();
    if listed.len() != r.manifest.provides.len() || r.manifest.provides.len() != r.blobs.len() {
        return Err(refuse(
            bundle,
            format!("it should carry {} blobs and carries {}", r.manifest.provides.len(), r.blobs.len()),
        ));
    }
    if let Some(extra) = r.blobs.iter().find(|b| !listed.contains(b)) {
        return Err(refuse(bundle, format!("it carries {extra}, which {BUNDLE_MANIFEST} does not list")));
    }
    Ok(())
}

/// Applies a bundle to `layout`: the bundle must build on the release the layout holds, every
/// blob is checked against its digest, everything the new index needs must then be present,
/// and only then does the layout change, in one rename. Blobs the new index does not reach
/// (the previous release's) are left out, unless `keep_unused`: devices have small disks.
pub fn apply(bundle_file: &Path, layout: &Path, keep_unused: bool) -> Result<ApplySummary, BuildError> {
    // A crash between the two renames of a fallback swap parks the layout beside it.
    crate::layout::recover(layout)?;
    let (digest, held_release) = release(layout)?;
    let staging = crate::layout::Staging::new(layout)?;
    let received = receive(bundle_file, (&digest, held_release.as_deref()), &staging)?;
    check_received(bundle_file, layout, &received)?;
    let Received { manifest, index_json, blobs } = received;
    // The layout's own blobs, linked (or copied) into the staging directory: those the new
    // index reaches, or all of them with `keep_unused`. The new index's image indexes and
    // manifests may be the layout's, so they are linked first, and the walk follows.
    let staged = staging.path().to_path_buf();
    // The staging directory is walked as a layout, so it gets the files that make one.
    for (name, bytes) in [("index.json", &index_json[..]), ("oci-layout", crate::layout::OCI_LAYOUT)] {
        let p = staged.join(name);
        std::fs::write(&p, bytes).map_err(BuildError::io("write", &p))?;
    }
    let own = link_own(layout, &staging)?;
    check_needed(bundle_file, &staged, &manifest, &blobs)?;
    let (mut pruned, mut pruned_bytes) = (0, 0);
    if !keep_unused {
        // Image indexes of images the bundle does not update still name other platforms'
        // manifests: a blob is kept when anything in the new layout refers to it.
        let referenced = reachable(&held(&staged, &[])?);
        for (name, size) in &own {
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
    Ok(ApplySummary { added: blobs.len(), pruned, pruned_bytes })
}

/// Links (or copies) the layout's blobs into the staging directory; returns their names and
/// sizes.
fn link_own(layout: &Path, staging: &crate::layout::Staging) -> Result<Vec<(std::ffi::OsString, u64)>, BuildError> {
    let blob_dir = layout.join("blobs/sha256");
    let mut own = Vec::new();
    for e in std::fs::read_dir(&blob_dir).map_err(BuildError::io("read", &blob_dir))?.filter_map(Result::ok) {
        let (name, from) = (e.file_name(), e.path());
        own.push((name.clone(), e.metadata().map(|m| m.len()).unwrap_or(0)));
        let dest = staging.blob_dir().join(&name);
        if dest.exists() {
            continue;
        }
        if std::fs::hard_link(&from, &dest).is_err() {
            std::fs::copy(&from, &dest).map_err(BuildError::io("copy", &from))?;
        }
    }
    Ok(own)
}

/// Everything the new index reaches must be present in the staging directory and intact.
fn check_needed(
    bundle: &Path,
    staged: &Path,
    manifest: &BundleManifest,
    carried: &BTreeSet<String>,
) -> Result<(), BuildError> {
    let needed = reachable(
        &images(staged, &manifest.platforms)
            .map_err(|e| refuse(bundle, format!("the layout lacks what the bundle builds on: {e}")))?,
    );
    for digest in needed.keys() {
        let p = blob_path(staged, digest)?;
        let Ok(f) = std::fs::File::open(&p) else {
            return Err(refuse(
                bundle,
                format!("the layout lacks {digest}, which the bundle builds on (is this the right base?)"),
            ));
        };
        // What the bundle does not carry, the device must hold intact.
        if !carried.contains(digest) {
            let (hex, _) = crate::digest::sha256_reader(f).map_err(BuildError::io("read", &p))?;
            if format!("sha256:{hex}") != *digest {
                return Err(refuse(bundle, format!("the layout's {digest} is damaged")));
            }
        }
    }
    Ok(())
}

//! `kiln bundle`: one tar with exactly the blobs a device lacks, the index.json to install and
//! a manifest naming the release it builds on; and the reading of that manifest.

use super::{held, images, reachable, refuse, release};
use crate::error::UpdateError;
use crate::inputs::registry::{Options, Release};
use crate::oci::digest::Digest;
use crate::publish::TarPublisher;
use crate::store::{OCI_LAYOUT, Publisher};
use serde::Serialize;
use std::path::Path;

pub(super) const BUNDLE_MANIFEST: &str = "kiln-bundle.json";

/// The bundle format this kiln writes and reads. Format 2 names the release a bundle builds
/// on (`base`); format 1 did not, so it cannot be checked against a layout and is refused.
const BUNDLE_FORMAT: u64 = 2;

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BundleManifest {
    pub(super) bundle_format: u64,
    /// The release the bundle builds on: the sha256 of the `--have` layout's index.json, or
    /// `null` for a first install onto a layout that holds no image. Always written.
    pub(super) base: Option<Digest>,
    /// The platforms the bundle updates (`os/arch[/variant]`); empty: all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) platforms: Vec<String>,
    /// sha256 of the index.json the bundle installs.
    pub(super) index_json: Digest,
    /// Blobs the bundle carries.
    pub(super) provides: Vec<Digest>,
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

/// Writes a bundle with what a device holding `have` lacks to hold `want`, for `platforms`
/// (empty: every platform; a device usually runs one, and needs only its blobs).
pub fn bundle(
    (have, want): (&Release, &Release),
    opts: &Options,
    platforms: &[String],
    file: &Path,
) -> Result<BundleSummary, UpdateError> {
    let (have, want) = (have.open(opts)?, want.open(opts)?);
    let (have, want) = (have.as_ref(), want.as_ref());
    let (_, base) = release(have)?;
    let had = reachable(&held(have, platforms)?);
    let (index_bytes, _) = want.index()?;
    let needed = reachable(&images(want, platforms)?);
    type Blobs<'a> = Vec<(&'a Digest, &'a u64)>;
    let (provides, requires): (Blobs, Blobs) =
        needed.iter().partition(|(d, _)| !had.contains_key(*d) || !have.has_blob(d));
    let manifest = BundleManifest {
        bundle_format: BUNDLE_FORMAT,
        base,
        platforms: platforms.to_vec(),
        index_json: Digest::of(&index_bytes),
        provides: provides.iter().map(|(d, _)| (*d).clone()).collect(),
    };
    // The manifest comes first, so that `kiln apply` refuses a bundle for another release
    // before it reads a blob.
    let manifest_json = crate::oci::canonical::to_vec(&manifest);
    let heads = [(BUNDLE_MANIFEST, &manifest_json[..]), ("index.json", &index_bytes[..]), ("oci-layout", OCI_LAYOUT)];
    let tar = Box::new(TarPublisher::create(file, &heads)?);
    for (d, size) in &provides {
        tar.copy_blob(want, (d, **size))?;
    }
    tar.publish(&index_bytes)?;
    Ok(BundleSummary {
        file: file.display().to_string(),
        blobs: provides.len(),
        blob_bytes: provides.iter().map(|(_, s)| **s).sum(),
        requires: requires.len(),
        bytes: std::fs::metadata(file).map(|m| m.len()).unwrap_or(0),
    })
}

/// `kiln-bundle.json`, refused when its format is not the one this kiln reads or when it does
/// not say which release it builds on.
pub(super) fn parse_manifest(bundle: &Path, bytes: &[u8]) -> Result<BundleManifest, UpdateError> {
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
    // Digests are parsed before the rest, so a malformed one is named with the reason.
    let provides = v.get("provides").and_then(serde_json::Value::as_array).into_iter().flatten();
    for d in ["base", "index_json"].iter().filter_map(|k| v.get(k)).chain(provides).filter_map(|d| d.as_str()) {
        d.parse::<Digest>().map_err(|e| refuse(bundle, format!("{BUNDLE_MANIFEST} names the digest {e}")))?;
    }
    serde_json::from_value(v).map_err(bad)
}

//! `kiln bundle`: one tar with exactly the blobs a device lacks, the index.json to install and
//! a manifest naming the release it builds on; and the reading of that manifest.

use super::{held, images, reachable, refuse, release};
use crate::digest::Digest;
use crate::error::BuildError;
use crate::walk::{self, blob_path, read_index};
use serde::Serialize;
use std::io::Read;
use std::path::{Path, PathBuf};

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
    let (_, base) = release(have)?;
    let had = reachable(&held(have, platforms)?);
    let (index_bytes, _) = read_index(want)?;
    let needed = reachable(&images(want, platforms)?);
    type Blobs<'a> = Vec<(&'a Digest, &'a u64)>;
    let (provides, requires): (Blobs, Blobs) =
        needed.iter().partition(|(d, _)| !had.contains_key(*d) || !blob_path(have, d).is_file());
    let manifest = BundleManifest {
        bundle_format: BUNDLE_FORMAT,
        base,
        platforms: platforms.to_vec(),
        index_json: Digest::of(&index_bytes),
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
    (digest, size): (&Digest, u64),
    file: &Path,
) -> Result<(), BuildError> {
    let src = blob_path(want, digest);
    walk::check_size(want, digest, size)?;
    let f = std::fs::File::open(&src).map_err(BuildError::io("open", &src))?;
    let mut r = crate::digest::HashingReader::new(f.take(size));
    tar.append_data(&mut tar_header(size), digest.layout_path(), &mut r).map_err(BuildError::io("write", file))?;
    let (_, actual, len) = r.finish();
    walk::check_read(want, digest, size, (&actual, len))
}

/// `kiln-bundle.json`, refused when its format is not the one this kiln reads or when it does
/// not say which release it builds on.
pub(super) fn parse_manifest(bundle: &Path, bytes: &[u8]) -> Result<BundleManifest, BuildError> {
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

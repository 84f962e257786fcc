//! `kiln apply`: a bundle received into a staging directory, every byte checked, and the
//! layout switched in one rename, or left unchanged on any failure.

use super::bundle::{BUNDLE_MANIFEST, BundleManifest, parse_manifest};
use super::{held, images, reachable, refuse, release};
use crate::attest::keys::PublicKey;
use crate::attest::signing::Status;
use crate::error::UpdateError;
use crate::oci::digest::Digest;
use crate::store::{BlobSink, BlobSource, LayoutDir, OCI_LAYOUT, Staging, walk};
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::Path;

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
    blobs: BTreeSet<Digest>,
}

/// A JSON member of a bundle, refused unread when it is over [`walk::MAX_JSON`].
fn json_member(bundle: &Path, name: &str, entry: &mut impl Read, declared: u64) -> Result<Vec<u8>, UpdateError> {
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

/// Refuses a bundle made for another release than the one `layout` holds.
fn check_base(bundle: &Path, m: &BundleManifest, layout: (&Digest, Option<&Digest>)) -> Result<(), UpdateError> {
    let (digest, held) = layout;
    let holds = match held {
        Some(d) => format!("release {d}"),
        None => "no image".to_string(),
    };
    let reason = match &m.base {
        Some(b) if held == Some(b) => return Ok(()),
        None if held.is_none() => return Ok(()),
        // Applied again (a device that lost power after the switch and retries): the release
        // is already in place; the apply checks it again and changes nothing.
        _ if *digest == m.index_json => return Ok(()),
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
    (dir, layout): (&Path, (&Digest, Option<&Digest>)),
    staging: &dyn BlobSink,
) -> Result<Received, UpdateError> {
    let file = std::fs::File::open(bundle).map_err(UpdateError::io("open", bundle))?;
    let mut file = std::io::BufReader::new(file);
    // A bundle with deltas is a zstd-compressed tar.
    let zstd = std::io::BufRead::fill_buf(&mut file)
        .map_err(UpdateError::io("read", bundle))?
        .starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    let reader: Box<dyn Read> = if zstd {
        Box::new(zstd::stream::read::Decoder::with_buffer(file).map_err(UpdateError::io("read", bundle))?)
    } else {
        Box::new(file)
    };
    let mut archive = tar::Archive::new(reader);
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
                let expected = blob_member(bundle, n)?;
                receive_blob(bundle, staging, &expected, &mut entry, declared)?;
                blobs.insert(expected);
            }
            n if n.starts_with("deltas/sha256/") => {
                let m = manifest
                    .as_ref()
                    .ok_or_else(|| refuse(bundle, format!("a delta comes before {BUNDLE_MANIFEST}")))?;
                let layer = blob_member(bundle, &n.replacen("deltas/", "blobs/", 1))?;
                let e = m.deltas.iter().find(|e| e.layer == layer).ok_or_else(|| {
                    refuse(bundle, format!("it carries a delta for {layer}, which {BUNDLE_MANIFEST} does not list"))
                })?;
                super::delta_apply::receive_delta(bundle, (dir, e), staging, (&mut entry, declared))?;
                blobs.insert(layer);
            }
            other => return Err(refuse(bundle, format!("unexpected member {}", walk::shown(other)))),
        }
    }
    let manifest = manifest.ok_or_else(|| refuse(bundle, format!("no {BUNDLE_MANIFEST}")))?;
    let index_json = index_json.ok_or_else(|| refuse(bundle, "no index.json"))?;
    Ok(Received { manifest, index_json, blobs })
}

/// The digest a bundle's member `blobs/sha256/<hex>` is named by.
fn blob_member(bundle: &Path, name: &str) -> Result<Digest, UpdateError> {
    let bad = |why: &dyn std::fmt::Display| refuse(bundle, format!("bad blob name {} ({why})", walk::shown(name)));
    let hex = name.strip_prefix("blobs/sha256/").ok_or_else(|| bad(&"not under blobs/sha256/"))?;
    Digest::from_sha256_hex(hex).map_err(|e| bad(e.why()))
}

fn receive_blob(
    bundle: &Path,
    staging: &dyn BlobSink,
    expected: &Digest,
    entry: &mut impl Read,
    declared: u64,
) -> Result<(), UpdateError> {
    let blob = staging.write_blob(&mut |w| {
        let n = std::io::copy(entry, w).map_err(|e| refuse(bundle, format!("{expected}: {e}")))?;
        if n != declared {
            return Err(refuse(bundle, format!("{expected} is truncated")).into());
        }
        Ok(())
    })?;
    if blob.digest != *expected {
        return Err(refuse(bundle, format!("blob {expected} holds bytes with digest {}", blob.digest)));
    }
    Ok(())
}

/// Checks that the parts of a bundle agree: its index.json is the one its manifest records and
/// lists an image, and it carries exactly the blobs its manifest lists.
fn check_received(bundle: &Path, layout: &Path, r: &Received) -> Result<(), UpdateError> {
    if Digest::of(&r.index_json) != r.manifest.index_json {
        return Err(refuse(bundle, "index.json does not match the bundle's manifest"));
    }
    let index: oci_spec::image::ImageIndex = walk::parse_json(layout, "the bundle's index.json", &r.index_json)
        .map_err(|e| refuse(bundle, format!("its index.json cannot be read: {e}")))?;
    if index.manifests().is_empty() {
        return Err(refuse(bundle, "its index.json lists no image: applying it would empty the layout"));
    }
    let listed: BTreeSet<&Digest> =
        r.manifest.provides.iter().chain(r.manifest.deltas.iter().map(|d| &d.layer)).collect();
    let count = r.manifest.provides.len() + r.manifest.deltas.len();
    if listed.len() != count || count != r.blobs.len() {
        return Err(refuse(bundle, format!("it should carry {count} blobs and carries {}", r.blobs.len())));
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
/// With `require`, every image index and manifest the layout will hold must carry a
/// signature by that key, or nothing changes.
pub fn apply(
    bundle_file: &Path,
    layout: &Path,
    keep_unused: bool,
    require: Option<&PublicKey>,
) -> Result<ApplySummary, UpdateError> {
    // A crash between the two renames of a fallback swap parks the layout beside it.
    crate::store::recover(layout)?;
    let (digest, held_release) = release(&LayoutDir::new(layout))?;
    let staging = Staging::new(layout)?;
    let received = receive(bundle_file, (layout, (&digest, held_release.as_ref())), &staging)?;
    check_received(bundle_file, layout, &received)?;
    let Received { manifest, index_json, blobs } = received;
    let (pruned, pruned_bytes) =
        install(bundle_file, (layout, staging), (&index_json, &manifest.platforms), &blobs, (keep_unused, require))?;
    Ok(ApplySummary { added: blobs.len(), pruned, pruned_bytes })
}

/// Installs `index_json` into `layout` from `staging`, which holds the blobs `carried` (`what`
/// names where they came from in messages): the layout's own blobs are linked in, everything
/// the new index reaches for `platforms` must be present (and intact, where it is not
/// `carried`), what it does not reach is left out unless `keep_unused`, and the layout is
/// switched in one rename. Returns the blobs left out, and their bytes.
pub(super) fn install(
    what: &Path,
    (layout, staging): (&Path, Staging),
    (index_json, platforms): (&[u8], &[String]),
    carried: &BTreeSet<Digest>,
    (keep_unused, require): (bool, Option<&PublicKey>),
) -> Result<(usize, u64), UpdateError> {
    // The layout's own blobs, linked (or copied) into the staging directory: those the new
    // index reaches, or all of them with `keep_unused`. The new index's image indexes and
    // manifests may be the layout's, so they are linked first, and the walk follows.
    let staged = staging.path().to_path_buf();
    // The staging directory is walked as a layout, so it gets the files that make one.
    for (name, bytes) in [("index.json", index_json), ("oci-layout", OCI_LAYOUT)] {
        let p = staged.join(name);
        std::fs::write(&p, bytes).map_err(UpdateError::io("write", &p))?;
    }
    let own = link_own(layout, &staging)?;
    let staged = LayoutDir::new(&staged);
    check_needed(what, &staged, platforms, carried)?;
    if let Some(key) = require {
        check_signed(what, &staged, platforms, key)?;
    }
    let (mut pruned, mut pruned_bytes) = (0, 0);
    if !keep_unused {
        // Image indexes of images the bundle does not update still name other platforms'
        // manifests: a blob is kept when anything in the new layout refers to it.
        let mut referenced = reachable(&held(&staged, &[])?);
        referenced.extend(crate::attest::referrers::blobs(&staged)?);
        for (name, size) in &own {
            let digest = name.to_str().and_then(|n| Digest::from_sha256_hex(n).ok());
            if !digest.is_some_and(|d| referenced.contains_key(&d)) {
                let p = staging.blob_dir().join(name);
                std::fs::remove_file(&p).map_err(UpdateError::io("remove", &p))?;
                pruned += 1;
                pruned_bytes += size;
            }
        }
    }
    staging.commit(index_json)?;
    Ok((pruned, pruned_bytes))
}

/// Links (or copies) the layout's blobs into the staging directory; returns their names and
/// sizes.
fn link_own(layout: &Path, staging: &Staging) -> Result<Vec<(std::ffi::OsString, u64)>, UpdateError> {
    let blob_dir = layout.join("blobs/sha256");
    let mut own = Vec::new();
    if !blob_dir.exists() {
        return Ok(own);
    }
    for e in std::fs::read_dir(&blob_dir).map_err(UpdateError::io("read", &blob_dir))?.filter_map(Result::ok) {
        let (name, from) = (e.file_name(), e.path());
        own.push((name.clone(), e.metadata().map(|m| m.len()).unwrap_or(0)));
        let dest = staging.blob_dir().join(&name);
        if dest.exists() {
            continue;
        }
        if std::fs::hard_link(&from, &dest).is_err() {
            std::fs::copy(&from, &dest).map_err(UpdateError::io("copy", &from))?;
        }
    }
    Ok(own)
}

/// Every image index and platform manifest the new release holds must carry a signature by
/// `key`.
fn check_signed(
    what: &Path,
    staged: &dyn BlobSource,
    platforms: &[String],
    key: &PublicKey,
) -> Result<(), UpdateError> {
    let checked = crate::attest::signing::check(staged, key, (None, platforms))
        .map_err(|e| refuse(what, format!("its signatures cannot be read: {e}")))?;
    for c in checked {
        let why = match c.status {
            Status::Signed => continue,
            Status::Unsigned => "is not signed".to_string(),
            Status::Invalid(why) => format!("has a signature that does not hold: {why}"),
        };
        let s = c.subject;
        return Err(refuse(what, format!("{} {} {} {why} (key id {})", s.image, s.what, s.digest, key.key_id())));
    }
    Ok(())
}

/// Everything the new index reaches must be present in the staging directory and intact.
fn check_needed(
    bundle: &Path,
    staged: &dyn BlobSource,
    platforms: &[String],
    carried: &BTreeSet<Digest>,
) -> Result<(), UpdateError> {
    let lacks = |e: UpdateError| refuse(bundle, format!("the layout lacks what the bundle builds on: {e}"));
    let mut needed = reachable(&images(staged, platforms).map_err(lacks)?);
    needed.extend(crate::attest::referrers::blobs(staged).map_err(|e| lacks(e.into()))?);
    for digest in needed.keys() {
        let Ok(f) = staged.open_blob(digest) else {
            return Err(refuse(
                bundle,
                format!("the layout lacks {digest}, which the bundle builds on (is this the right base?)"),
            ));
        };
        // What the bundle does not carry, the device must hold intact.
        if !carried.contains(digest) {
            let p = staged.blob_name(digest);
            let (hex, _) = crate::oci::digest::sha256_reader(f).map_err(UpdateError::io("read", &p))?;
            if hex != digest.hex() {
                return Err(refuse(bundle, format!("the layout's {digest} is damaged")));
            }
        }
    }
    Ok(())
}

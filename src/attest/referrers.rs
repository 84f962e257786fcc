//! Artifacts that refer to a manifest (OCI 1.1 `subject`) in an OCI layout: signatures now,
//! SBOMs and provenance beside them. A layout lists each one in `index.json` with its
//! `artifactType`, the way `oras` and registries' referrers API list them, so a reader finds
//! what refers to a manifest without scanning every blob. Image walks skip these entries.

use crate::error::StoreError;
use crate::oci::canonical;
use crate::oci::digest::Digest;
use crate::store::walk::{Blob, parse_json};
use crate::store::{BlobSource, OCI_LAYOUT, cas};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;

pub const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
pub const EMPTY: &[u8] = b"{}";

/// One artifact a layout's `index.json` lists.
#[derive(Debug, Clone)]
pub struct Referrer {
    pub blob: Blob,
    pub artifact_type: String,
    /// The manifest it refers to.
    pub subject: Digest,
    /// The artifact's manifest.
    pub manifest: Value,
}

/// An artifact to attach: its artifact type and its manifest's bytes.
pub type Artifact = (String, Vec<u8>);

/// A descriptor of `bytes` with `media_type`.
pub fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": Digest::of(bytes), "size": bytes.len()})
}

/// An artifact manifest: an empty config, `layers` (descriptors), `subject` the descriptor of
/// the manifest it refers to.
pub fn artifact(artifact_type: &str, layers: Vec<Value>, subject: &Blob) -> Vec<u8> {
    canonical::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": artifact_type,
        "config": descriptor(EMPTY_TYPE, EMPTY),
        "layers": layers,
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
    }))
}

/// Every artifact `index.json` lists (entries with an `artifactType`), its manifest read and
/// checked; entries whose manifest names no subject are left out.
pub fn list(src: &dyn BlobSource) -> Result<Vec<Referrer>, StoreError> {
    let (bytes, _) = src.index()?;
    let index: Value = parse_json(src.location(), "index.json", &bytes)?;
    let mut out = Vec::new();
    for d in index.get("manifests").and_then(Value::as_array).into_iter().flatten() {
        let Some(kind) = d.get("artifactType").and_then(Value::as_str) else { continue };
        let digest: Digest = match d.get("digest").and_then(Value::as_str).map(str::parse) {
            Some(Ok(d)) => d,
            _ => continue,
        };
        let blob =
            Blob { digest, size: d.get("size").and_then(Value::as_u64).unwrap_or(0), media_type: MANIFEST_TYPE.into() };
        let manifest: Value = parse_json(src.location(), "an artifact manifest", &src.read_blob(&blob)?)?;
        let subject = manifest.pointer("/subject/digest").and_then(Value::as_str).and_then(|s| s.parse().ok());
        if let Some(subject) = subject {
            out.push(Referrer { blob, artifact_type: kind.to_string(), subject, manifest });
        }
    }
    Ok(out)
}

/// A blob of `r` that the artifact's layer `i` names, read and checked.
pub fn layer_bytes(src: &dyn BlobSource, r: &Referrer, i: usize) -> Result<(Value, Vec<u8>), StoreError> {
    let bad = |why: &str| StoreError::InvalidLayout { path: src.blob_name(&r.blob.digest), reason: why.into() };
    let layer =
        r.manifest.pointer(&format!("/layers/{i}")).cloned().ok_or_else(|| bad("the artifact has no such layer"))?;
    let digest: Digest = layer
        .get("digest")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("a layer without a digest"))?;
    let size = layer.get("size").and_then(Value::as_u64).ok_or_else(|| bad("a layer without a size"))?;
    let media_type = layer.get("mediaType").and_then(Value::as_str).unwrap_or_default().to_string();
    let bytes = src.read_blob(&Blob { digest, size, media_type })?;
    Ok((layer, bytes))
}

/// Adds artifacts to the layout at `dir`: their blobs first (each written whole, then renamed
/// into place), then `index.json` listing them, replaced in one rename; an artifact listed
/// already is not listed twice. A crash leaves the old layout or the new one.
pub fn attach(dir: &Path, artifacts: &[Artifact], blobs: &[Vec<u8>]) -> Result<usize, StoreError> {
    for b in blobs.iter().chain(artifacts.iter().map(|(_, m)| m)).chain([&EMPTY.to_vec()]) {
        let digest = Digest::of(b);
        if cas::put_blob(dir, &digest, b.len() as u64, &mut &b[..])? > 0 {
            // Readable by all, as the blobs `kiln build` writes are.
            readable(&crate::store::blob_path(dir, &digest))?;
        }
    }
    let index_path = dir.join("index.json");
    let src = crate::store::LayoutDir::new(dir);
    let (bytes, _) = src.index()?;
    let mut index: Value = parse_json(dir, "index.json", &bytes)?;
    let Some(list) = index.get_mut("manifests").and_then(Value::as_array_mut) else {
        return Err(StoreError::InvalidLayout { path: index_path, reason: "index.json has no manifests".into() });
    };
    let mut added = 0;
    for (kind, m) in artifacts {
        let digest = Digest::of(m).to_string();
        if list.iter().any(|d| d.get("digest").and_then(Value::as_str) == Some(digest.as_str())) {
            continue;
        }
        list.push(json!({"mediaType": MANIFEST_TYPE, "artifactType": kind, "digest": digest, "size": m.len()}));
        added += 1;
    }
    if added > 0 {
        write_index(dir, &canonical::to_vec(&index))?;
    }
    Ok(added)
}

/// Mode 0644: a layout's files are read by other users (runtimes, servers).
fn readable(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
        .map_err(StoreError::io("set permissions of", path))
}

/// Replaces `index.json` (and writes `oci-layout` if missing) by writing beside and renaming.
fn write_index(dir: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    if !dir.join("oci-layout").exists() {
        std::fs::write(dir.join("oci-layout"), OCI_LAYOUT).map_err(StoreError::io("write", dir.join("oci-layout")))?;
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(StoreError::io("create a file in", dir))?;
    tmp.write_all(bytes).map_err(StoreError::io("write", tmp.path().to_path_buf()))?;
    readable(tmp.path())?;
    tmp.as_file().sync_all().map_err(StoreError::io("write", tmp.path().to_path_buf()))?;
    tmp.persist(dir.join("index.json")).map_err(|e| StoreError::io("write", dir.join("index.json"))(e.error))?;
    Ok(())
}

/// Every blob of the artifacts `src`'s `index.json` lists: their manifests, configs and
/// layers, with their sizes.
pub fn blobs(src: &dyn BlobSource) -> Result<std::collections::BTreeMap<Digest, u64>, StoreError> {
    let mut out = std::collections::BTreeMap::new();
    for r in list(src)? {
        out.insert(r.blob.digest.clone(), r.blob.size);
        let config = r.manifest.get("config").into_iter();
        let layers = r.manifest.get("layers").and_then(Value::as_array).into_iter().flatten();
        for d in config.chain(layers) {
            let digest = d.get("digest").and_then(Value::as_str).and_then(|s| s.parse::<Digest>().ok());
            if let (Some(digest), Some(size)) = (digest, d.get("size").and_then(Value::as_u64)) {
                out.insert(digest, size);
            }
        }
    }
    Ok(out)
}

/// The artifacts a registry lists as referring to each of `subjects` (through its referrers
/// API or the referrers tag), their manifests read and checked.
pub fn from_registry(
    src: &crate::inputs::registry::RegistrySource,
    subjects: &[Digest],
) -> Result<Vec<Referrer>, StoreError> {
    let mut out = Vec::new();
    for subject in subjects {
        for (blob, kind) in src.referrers(subject)? {
            let blob = Blob { media_type: MANIFEST_TYPE.into(), ..blob };
            let manifest: Value = parse_json(src.location(), "an artifact manifest", &src.read_blob(&blob)?)?;
            let kind = kind.or_else(|| manifest.get("artifactType").and_then(Value::as_str).map(str::to_string));
            if let Some(artifact_type) = kind {
                out.push(Referrer { blob, artifact_type, subject: subject.clone(), manifest });
            }
        }
    }
    Ok(out)
}

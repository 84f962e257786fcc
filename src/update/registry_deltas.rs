//! Deltas through a registry. `kiln push --delta-from OLD` attaches to each new platform
//! manifest an OCI artifact (`artifactType` [`ARTIFACT_TYPE`], `subject` the manifest) whose
//! layers are the binary deltas of that manifest's layers against OLD's layers of the same
//! key, each described by a [`DeltaEntry`] in its annotation; registries without the
//! referrers API find it by the referrers tag (`sha256-HEX` of the manifest), which kiln
//! writes too. `kiln pull` looks the artifacts up and takes a delta instead of a layer when
//! the device holds the layer it applies to.

use super::delta::{DeltaEntry, worth_sending};
use super::{held, images, reachable};
use crate::error::{RegistryError, UpdateError};
use crate::inputs::registry::{Client, Options, RegistrySource, Release};
use crate::oci::digest::Digest;
use crate::oci::reference::Reference;
use crate::publish::registry::{push_blob, put_manifest};
use crate::store::{Blob, BlobSource, LayoutDir, walk};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// The artifact type of kiln's delta artifacts, and of each delta in one.
pub const ARTIFACT_TYPE: &str = "application/vnd.kiln.delta.v1";
const DELTA_TYPE: &str = "application/vnd.kiln.delta.v1+zstd";
/// The annotation of a delta layer that holds its [`DeltaEntry`] as JSON.
const ANNOTATION_DELTA: &str = "dev.kiln.delta";
const EMPTY: &[u8] = b"{}";
const EMPTY_TYPE: &str = "application/vnd.oci.empty.v1+json";
const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// What `--delta-from` attached.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeltaPushSummary {
    /// Artifacts pushed (one per platform manifest with deltas), deltas in them, their bytes
    /// and the bytes of the layers they stand for.
    pub artifacts: usize,
    pub deltas: usize,
    pub delta_bytes: u64,
    pub layer_bytes: u64,
}

fn registry_error(e: RegistryError) -> UpdateError {
    UpdateError::Store(crate::error::StoreError::Registry(Box::new(e)))
}

/// Pushes, for the images of the layout `dir` already pushed to `target`'s repository, the
/// deltas against `old` (a layout or a registry reference).
pub fn push_deltas(
    (dir, only): (&Path, &str),
    old: &Release,
    target: &Reference,
    opts: &Options,
) -> Result<DeltaPushSummary, UpdateError> {
    let (new, old) = (LayoutDir::new(dir), old.open(opts)?);
    let had = reachable(&held(old.as_ref(), &[])?);
    let lacking: BTreeMap<Digest, u64> =
        reachable(&images(&new, &[])?).into_iter().filter(|(d, _)| !had.contains_key(d)).collect();
    let deltas = worth_sending(old.as_ref(), &new, &[], &lacking)?;
    let mut summary = DeltaPushSummary::default();
    if deltas.is_empty() {
        return Ok(summary);
    }
    // The deltas and the empty config, as blobs of a scratch layout to push from.
    let scratch = tempfile::tempdir().map_err(UpdateError::io("create", "a temporary directory"))?;
    let blobs = LayoutDir::new(scratch.path());
    let put = |bytes: &[u8]| -> Result<Blob, UpdateError> {
        let digest = Digest::of(bytes);
        crate::store::cas::put_blob(scratch.path(), &digest, bytes.len() as u64, &mut &bytes[..])?;
        Ok(Blob { digest, size: bytes.len() as u64, media_type: String::new() })
    };
    let c = Client::new(target, opts);
    let repo = &target.repository;
    let empty = put(EMPTY)?;
    push_blob(&c, repo, &blobs, &empty, None).map_err(registry_error)?;
    for image in walk::images(&new, Some(only))? {
        for p in &image.platforms {
            let mine: Vec<&(DeltaEntry, Vec<u8>)> =
                deltas.iter().filter(|(e, _)| p.layers.iter().any(|l| l.digest == e.layer)).collect();
            if mine.is_empty() {
                continue;
            }
            let mut layers = Vec::new();
            for (e, patch) in &mine {
                let b = put(patch)?;
                push_blob(&c, repo, &blobs, &b, None).map_err(registry_error)?;
                let entry = String::from_utf8_lossy(&crate::oci::canonical::to_vec(e)).into_owned();
                layers.push(json!({"mediaType": DELTA_TYPE, "digest": b.digest, "size": b.size, "annotations": {ANNOTATION_DELTA: entry}}));
                summary.deltas += 1;
                summary.delta_bytes += b.size;
                summary.layer_bytes += e.size;
            }
            let artifact = json!({
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "artifactType": ARTIFACT_TYPE,
                "config": {"mediaType": EMPTY_TYPE, "digest": empty.digest, "size": empty.size},
                "layers": layers,
                "subject": {"mediaType": p.blob.media_type, "digest": p.blob.digest, "size": p.blob.size},
            });
            let bytes = crate::oci::canonical::to_vec(&artifact);
            let digest = Digest::of(&bytes);
            put_manifest(&c, repo, &digest.to_string(), MANIFEST_TYPE, &bytes).map_err(registry_error)?;
            let referrers = json!({
                "schemaVersion": 2,
                "mediaType": INDEX_TYPE,
                "manifests": [{"mediaType": MANIFEST_TYPE, "artifactType": ARTIFACT_TYPE, "digest": digest, "size": bytes.len()}],
            });
            let tag = format!("sha256-{}", p.blob.digest.hex());
            put_manifest(&c, repo, &tag, INDEX_TYPE, &crate::oci::canonical::to_vec(&referrers))
                .map_err(registry_error)?;
            summary.artifacts += 1;
        }
    }
    Ok(summary)
}

/// The deltas the registry holds for the manifests `subjects`, by the layer each rebuilds,
/// with the blob that carries it.
pub fn deltas_for(
    src: &RegistrySource,
    subjects: &[Digest],
) -> Result<BTreeMap<Digest, (DeltaEntry, Blob)>, UpdateError> {
    let mut out = BTreeMap::new();
    for subject in subjects {
        for (artifact, kind) in src.referrers(subject)? {
            if kind.as_deref() != Some(ARTIFACT_TYPE) {
                continue;
            }
            let m: Value = serde_json::from_slice(&src.read_blob(&artifact)?).unwrap_or_default();
            for l in m.get("layers").and_then(Value::as_array).into_iter().flatten() {
                let entry =
                    l.pointer(&format!("/annotations/{}", ANNOTATION_DELTA.replace('/', "~1"))).and_then(Value::as_str);
                let entry: Option<DeltaEntry> = entry.and_then(|e| serde_json::from_str(e).ok());
                let blob = (|| {
                    Some(Blob {
                        digest: l.get("digest")?.as_str()?.parse().ok()?,
                        size: l.get("size")?.as_u64()?,
                        media_type: DELTA_TYPE.into(),
                    })
                })();
                if let (Some(e), Some(b)) = (entry, blob) {
                    out.insert(e.layer.clone(), (e, b));
                }
            }
        }
    }
    Ok(out)
}

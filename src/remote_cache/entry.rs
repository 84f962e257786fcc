//! One entry of the registry cache: an OCI artifact manifest (empty config, one blob) tagged
//! by what it caches, read back with every field checked before the blob is fetched.

use crate::error::RegistryError;
use crate::inputs::registry::client::Client;
use crate::inputs::registry::source::fetch as fetch_manifest;
use crate::layer::{LayerBlob, Record};
use crate::oci::digest::Digest;
use crate::oci::reference::Reference;
use crate::publish::registry::{push_blob, put_manifest};
use crate::store::{Blob, LayoutDir, cas::put_blob};
use serde_json::{Value, json};

pub const BINARY_TYPE: &str = "application/vnd.dev.kiln.cache.binary.v1";
pub const LAYER_TYPE: &str = "application/vnd.dev.kiln.cache.layer.v1";
pub const BINARY_MEDIA: &str = "application/vnd.dev.kiln.binary.v1";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const EMPTY_MEDIA: &str = "application/vnd.oci.empty.v1+json";
const EMPTY: &[u8] = b"{}";
const STEP: &str = "dev.kiln.step";
const LAYER: &str = "dev.kiln.layer";
const UNSTRIPPED: &str = "dev.kiln.unstripped-size";
const DIFF_ID: &str = "dev.kiln.diff-id";
const TAR_SIZE: &str = "dev.kiln.tar-size";
/// The largest binary and layer kiln fetches from the cache: a manifest naming more is refused
/// before a byte of its blob is read.
const MAX_BINARY: u64 = 1 << 30;
const MAX_LAYER: u64 = 8 << 30;

/// The tag of a step's binary (step ids are 64 hex digits, so the tag is a valid one).
pub fn binary_tag(step: &str) -> String {
    format!("kiln-bin-{step}")
}

/// The tag of a layer, by its key in the local layer cache (kiln's executable and the id).
pub fn layer_tag(key: &str) -> String {
    format!("kiln-layer-{key}")
}

/// An entry's manifest, parsed.
pub struct Entry {
    manifest: Value,
}

/// The entry tagged `tag`, `None` when the repository has no such tag.
pub fn fetch(c: &Client, r: &Reference, tag: &str) -> Result<Option<Entry>, RegistryError> {
    match fetch_manifest(c, r, &format!("/v2/{}/manifests/{tag}", r.repository), true) {
        Ok((bytes, _)) => Ok(Some(Entry { manifest: serde_json::from_slice(&bytes).unwrap_or(Value::Null) })),
        Err(RegistryError::Refused { status: 404, .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Entry {
    fn annotation(&self, key: &str) -> Option<&str> {
        self.manifest.get("annotations")?.get(key)?.as_str()
    }

    /// The one blob of an entry of `kind` made for `id` (under `key`), and its annotations.
    fn blob(&self, kind: &str, key: &str, id: &str) -> Result<(Blob, &Value), String> {
        if self.manifest.get("artifactType").and_then(Value::as_str) != Some(kind) {
            return Err(format!("its manifest is not a {kind}"));
        }
        if self.annotation(key) != Some(id) {
            return Err(format!("its manifest names another {key} than {id}"));
        }
        let layers = self.manifest.get("layers").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        let [one] = layers else { return Err("its manifest does not name exactly one blob".into()) };
        let blob = Blob::from_json(one).ok_or("its blob's descriptor is not one")?;
        Ok((blob, one.get("annotations").unwrap_or(&Value::Null)))
    }

    /// The binary blob of step `id` and its size before stripping.
    pub fn binary(&self, id: &str) -> Result<(Blob, u64), String> {
        let (blob, ann) = self.blob(BINARY_TYPE, STEP, id)?;
        let unstripped = ann.get(UNSTRIPPED).and_then(Value::as_str).and_then(|s| s.parse().ok());
        let unstripped = unstripped.ok_or("its blob has no size before stripping")?;
        if blob.media_type != BINARY_MEDIA {
            return Err(format!("its blob is a {}, not a binary", blob.media_type));
        }
        if blob.size > MAX_BINARY {
            return Err(format!("its blob is {} bytes, more than a binary kiln takes from a cache", blob.size));
        }
        Ok((blob, unstripped))
    }

    /// The compressed layer `id` and the record the local layer cache keeps of it.
    pub fn layer(&self, id: &str) -> Result<(Blob, Record), String> {
        let (blob, ann) = self.blob(LAYER_TYPE, LAYER, id)?;
        if !(blob.media_type.ends_with("tar+gzip") || blob.media_type.ends_with("tar+zstd")) {
            return Err(format!("its blob is a {}, not a compressed layer", blob.media_type));
        }
        if blob.size > MAX_LAYER {
            return Err(format!("its blob is {} bytes, more than a layer kiln takes from a cache", blob.size));
        }
        let diff_id: Option<Digest> = ann.get(DIFF_ID).and_then(Value::as_str).and_then(|s| s.parse().ok());
        let tar_size: Option<u64> = ann.get(TAR_SIZE).and_then(Value::as_str).and_then(|s| s.parse().ok());
        let (Some(diff_id), Some(tar_size)) = (diff_id, tar_size) else {
            return Err("its blob does not say what tar it holds".into());
        };
        let record = Record::new(&blob.digest, blob.size, &diff_id, &blob.media_type, tar_size);
        Ok((blob, record))
    }
}

fn empty_config() -> Value {
    json!({"mediaType": EMPTY_MEDIA, "digest": Digest::of(EMPTY).to_string(), "size": EMPTY.len()})
}

fn manifest(kind: &str, key: (&str, &str), blob: Value) -> Vec<u8> {
    crate::oci::canonical::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": kind,
        "config": empty_config(),
        "layers": [blob],
        "annotations": { key.0: key.1 },
    }))
}

/// The manifest of step `id`'s binary.
pub fn binary_manifest(id: &str, blob: &Blob, unstripped: u64) -> Vec<u8> {
    let desc = json!({
        "mediaType": blob.media_type, "digest": blob.digest.to_string(), "size": blob.size,
        "annotations": { UNSTRIPPED: unstripped.to_string() },
    });
    manifest(BINARY_TYPE, (STEP, id), desc)
}

/// The manifest of layer `id`.
pub fn layer_manifest(id: &str, blob: &Blob, built: &LayerBlob) -> Vec<u8> {
    let desc = json!({
        "mediaType": blob.media_type, "digest": blob.digest.to_string(), "size": blob.size,
        "annotations": { DIFF_ID: built.diff_id.to_string(), TAR_SIZE: built.tar_size.to_string() },
    });
    manifest(LAYER_TYPE, (LAYER, id), desc)
}

/// Pushes an entry: its blob (from `src`), the empty config, then the manifest under `tag`.
pub fn push(
    c: &Client,
    r: &Reference,
    src: &LayoutDir,
    (blob, manifest): (&Blob, &[u8]),
    tag: &str,
) -> Result<(), RegistryError> {
    let empty = Blob { digest: Digest::of(EMPTY), size: EMPTY.len() as u64, media_type: EMPTY_MEDIA.into() };
    put_blob(crate::store::BlobSource::location(src), &empty.digest, empty.size, &mut &EMPTY[..])?;
    push_blob(c, &r.repository, src, blob, None)?;
    push_blob(c, &r.repository, src, &empty, None)?;
    put_manifest(c, &r.repository, tag, MANIFEST, manifest)
}

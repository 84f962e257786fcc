//! `kiln build --shard ID`: one shard of a plan (its compiles and layers, see
//! [`crate::plan::shard`]) written as an OCI layout whose `index.json` names one shard
//! manifest. That manifest is an OCI artifact: its config is the plan itself (so a shard says
//! which plan it belongs to, and `kiln merge` needs nothing else), its layers are the shard's
//! layer blobs, each annotated with its layer id, `diff_id` and tar size; its annotations name
//! the shard, every shard of the same cut, and the plan's digest.

use super::{BuildOptions, BuildSummary, Made, binaries, make};
use crate::error::{BuildError, ShardError};
use crate::layer::LayerBlob;
use crate::oci::digest::Digest;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::store::{Blob, BlobRef, BlobSink, Publisher, Staging};
use serde::Serialize;
use serde_json::{Value, json};

/// The shard manifest's `artifactType`.
pub const SHARD_TYPE: &str = "application/vnd.dev.kiln.shard.v1";
/// The media type of the plan, the shard manifest's config.
pub const PLAN_MEDIA: &str = "application/vnd.dev.kiln.plan.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const SHARD: &str = "dev.kiln.shard";
const SHARDS: &str = "dev.kiln.shards";
const PLAN: &str = "dev.kiln.plan";
const LAYER: &str = "dev.kiln.layer";
const DIFF_ID: &str = "dev.kiln.diff-id";
const TAR_SIZE: &str = "dev.kiln.tar-size";

/// What `kiln build --shard` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ShardSummary {
    pub id: String,
    /// Every shard of the same cut: what `kiln merge` needs.
    pub shards: Vec<String>,
    /// The plan's digest (sha256 of its canonical JSON).
    pub plan: String,
    /// The shard manifest's digest.
    pub manifest: String,
    /// Where the shard is: its layout.
    pub layout: String,
    /// `host/repository@sha256:…` once pushed (`--push`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

/// A shard manifest, read back or about to be written.
#[derive(Debug, Clone)]
pub struct ShardManifest {
    pub id: String,
    pub shards: Vec<String>,
    /// The plan blob (the manifest's config).
    pub plan: Blob,
    /// Each layer id with its blob.
    pub layers: Vec<(String, LayerBlob)>,
}

impl ShardManifest {
    /// The manifest's canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let layers: Vec<Value> = self
            .layers
            .iter()
            .map(|(id, l)| {
                json!({
                    "mediaType": l.media_type, "digest": l.blob.digest.to_string(), "size": l.blob.size,
                    "annotations": {
                        LAYER: id, DIFF_ID: l.diff_id.to_string(), TAR_SIZE: l.tar_size.to_string(),
                    },
                })
            })
            .collect();
        crate::oci::canonical::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": SHARD_TYPE,
            "config": {"mediaType": PLAN_MEDIA, "digest": self.plan.digest.to_string(), "size": self.plan.size},
            "layers": layers,
            "annotations": { SHARD: self.id, SHARDS: self.shards.join(" "), PLAN: self.plan.digest.to_string() },
        }))
    }

    /// A shard manifest from its bytes, or what is wrong with them.
    pub fn parse(bytes: &[u8]) -> Result<ShardManifest, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("its manifest is not JSON: {e}"))?;
        if v.get("artifactType").and_then(Value::as_str) != Some(SHARD_TYPE) {
            return Err(format!("its manifest's artifactType is not {SHARD_TYPE}"));
        }
        let ann = |k: &str| v.get("annotations").and_then(|a| a.get(k)).and_then(Value::as_str);
        let id = ann(SHARD).ok_or("its manifest names no shard")?.to_string();
        let shards: Vec<String> = ann(SHARDS).unwrap_or_default().split(' ').map(str::to_string).collect();
        if !shards.contains(&id) {
            return Err(format!("its manifest's shards ({}) leave out its own, {id}", shards.join(" ")));
        }
        let plan = v.get("config").and_then(Blob::from_json).ok_or("its manifest has no plan")?;
        if plan.media_type != PLAN_MEDIA || ann(PLAN) != Some(plan.digest.to_string().as_str()) {
            return Err("its manifest's plan is not a kiln plan, or not the one it names".into());
        }
        let mut layers = Vec::new();
        for l in v.get("layers").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
            let blob = Blob::from_json(l).ok_or("a layer's descriptor is not one")?;
            let la = |k: &str| l.get("annotations").and_then(|a| a.get(k)).and_then(Value::as_str);
            let (Some(layer), Some(diff_id), Some(tar_size)) = (
                la(LAYER),
                la(DIFF_ID).and_then(|d| d.parse::<Digest>().ok()),
                la(TAR_SIZE).and_then(|n| n.parse::<u64>().ok()),
            ) else {
                return Err(format!("layer {} does not say which layer of the plan it is", blob.digest));
            };
            let b = LayerBlob {
                blob: BlobRef { digest: blob.digest, size: blob.size },
                diff_id,
                media_type: blob.media_type,
                tar_size,
            };
            layers.push((layer.to_string(), b));
        }
        Ok(ShardManifest { id, shards, plan, layers })
    }
}

/// The `index.json` of a shard's layout: the shard manifest, named by the shard's id.
pub fn shard_index(id: &str, manifest: &BlobRef) -> Vec<u8> {
    crate::oci::canonical::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [{
            "mediaType": MANIFEST, "artifactType": SHARD_TYPE,
            "digest": manifest.digest.to_string(), "size": manifest.size,
            "annotations": { crate::oci::annotation::ANNOTATION_REF_NAME: id },
        }],
    }))
}

/// Builds the shard `id` of `plan` into a shard layout at `opts.out`.
pub fn build_shard(
    plan: &Plan,
    id: &str,
    opts: &BuildOptions<'_>,
    progress: &dyn Progress,
) -> Result<BuildSummary, BuildError> {
    let (shard, shards) = crate::plan::shard::find(plan, id).map_err(ShardError::Unknown)?;
    let _cache_lock = crate::lock::CacheLock::open(opts.cache);
    let staging: Box<dyn Publisher> = Box::new(Staging::new_with(opts.out, progress)?);
    let sink: &dyn BlobSink = &*staging;
    let Made { compiled, layers, hits } = make(plan, Some(&shard.layers), opts, sink, progress)?;
    let plan_bytes = plan.to_json().into_bytes();
    let plan_blob = sink.write_bytes(&plan_bytes)?;
    let manifest = ShardManifest {
        id: shard.id.clone(),
        shards,
        plan: Blob { digest: plan_blob.digest.clone(), size: plan_blob.size, media_type: PLAN_MEDIA.into() },
        layers: shard.layers.iter().filter_map(|l| Some((l.clone(), layers.get(l)?.clone()))).collect(),
    };
    let manifest_blob = sink.write_bytes(&manifest.to_bytes())?;
    let index_json = shard_index(&shard.id, &manifest_blob);
    let blob_bytes = sink.stored_bytes();
    staging.publish(&index_json)?;
    progress.finish();
    Ok(BuildSummary {
        layout: opts.out.display().to_string(),
        index_digest: crate::oci::digest::sha256_digest(&index_json),
        images: Vec::new(),
        layers: layers.len(),
        cached_layers: hits,
        compiled: compiled.values().filter(|c| !c.cached).count(),
        blob_bytes,
        binaries: binaries(plan, &compiled),
        cache: opts.remote.map(crate::remote_cache::RemoteCache::report),
        shard: Some(ShardSummary {
            id: shard.id,
            shards: manifest.shards,
            plan: plan_blob.digest.to_string(),
            manifest: manifest_blob.digest.to_string(),
            layout: opts.out.display().to_string(),
            reference: None,
        }),
        attestations: Vec::new(),
        documents: Vec::new(),
    })
}

/// Pushes the shard layout at `dir` into the repository `reference` names: its blobs, then
/// its shard manifest, all by digest, and no tag. Returns `host/repository@sha256:…`.
pub fn push_shard(
    dir: &std::path::Path,
    reference: &str,
    opts: &crate::inputs::registry::Options,
    progress: &dyn Progress,
) -> Result<String, BuildError> {
    use crate::publish::registry::{Client, push_blob, put_manifest};
    use crate::store::BlobSource;
    let target = crate::oci::reference::Reference::parse(reference).map_err(crate::error::RegistryError::from)?;
    if target.tag.is_some() || target.digest.is_some() || reference.contains("{image}") {
        return Err(crate::error::RegistryError::Reference(crate::oci::reference::ReferenceError {
            shown: reference.to_string(),
            why: "a shard goes to a repository by digest, untagged: name the repository alone".into(),
        })
        .into());
    }
    let layout = crate::store::LayoutDir::new(dir);
    let (_, index) = layout.index()?;
    let not_a_shard = |reason: &str| ShardError::NotAShard { what: dir.display().to_string(), reason: reason.into() };
    let [desc] = index.manifests().as_slice() else {
        return Err(not_a_shard("its index.json does not name exactly one manifest").into());
    };
    let digest = desc.digest().to_string().parse().map_err(|_| not_a_shard("its manifest's digest is not one"))?;
    let top = Blob { digest, size: desc.size(), media_type: MANIFEST.into() };
    let bytes = layout.read_blob(&top)?;
    let manifest = ShardManifest::parse(&bytes).map_err(|reason| not_a_shard(&reason))?;
    let c = Client::new(&target, opts);
    let blobs = std::iter::once(manifest.plan.clone()).chain(manifest.layers.iter().map(|(_, l)| Blob {
        digest: l.blob.digest.clone(),
        size: l.blob.size,
        media_type: l.media_type.clone(),
    }));
    let blobs: Vec<Blob> = blobs.collect();
    progress.start_transfer(blobs.len() as u64);
    for b in &blobs {
        let outcome = push_blob(&c, &target.repository, &layout, b, None)?;
        let sent = if outcome == crate::publish::registry::Outcome::Uploaded { b.size } else { 0 };
        progress.blob_done(if sent > 0 { "uploaded" } else { "present" }, &b.digest.to_string(), sent);
    }
    put_manifest(&c, &target.repository, &top.digest.to_string(), MANIFEST, &bytes)?;
    progress.finish();
    Ok(target.at(&top.digest).plain())
}

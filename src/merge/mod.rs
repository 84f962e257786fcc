//! `kiln merge`: the shards of a plan, built on separate runners, joined into the images a
//! single `kiln build` of the plan writes, digest for digest: the image configs, manifests
//! and indexes are written by the same code ([`crate::image`]) from the same plan, with the
//! shards' layers in place of layers built here.
//!
//! Every shard is opened and checked before anything is written ([`open::check`]); every
//! layer blob is checked against its digest, size and `diff_id` as it is copied into the
//! staged layout (or, for a push from registry shards, found in the shard's repository). On
//! any problem nothing is written to `--out` and nothing is pushed or tagged.

mod open;
mod source;

use crate::error::{BuildError, ShardError};
use crate::image::{self, BuiltImage};
use crate::inputs::registry::Options;
use crate::layer::LayerBlob;
use crate::progress::Progress;
use crate::publish::registry::PushSummary;
use crate::store::{BlobSink, LayoutDir, Publisher, Staging};
use serde::Serialize;
use source::{Merged, copy_checked};
use std::collections::BTreeMap;
use std::path::Path;

/// What `kiln merge` did.
#[derive(Debug, Clone, Serialize)]
pub struct MergeSummary {
    /// The plan's digest.
    pub plan: String,
    /// The shards merged, by id.
    pub shards: Vec<String>,
    /// The layout written (`--out`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    /// sha256 of the `index.json` a layout of the merged images has.
    pub index_digest: String,
    pub images: Vec<crate::build::ImageSummary>,
    pub pushed: Vec<PushSummary>,
}

/// Where the merged images go.
pub struct MergeTarget<'a> {
    /// The layout to write.
    pub out: Option<&'a Path>,
    /// The reference to push to (`{image}` for each image's name), and the tags.
    pub push: Option<&'a str>,
    pub tags: &'a [String],
    /// Where a merge that only pushes stages its layout (kiln's cache).
    pub work: &'a Path,
}

/// Merges the shards `args` names (layouts, registry references, or `--json` summaries).
pub fn merge(
    args: &[String],
    target: &MergeTarget<'_>,
    opts: &Options,
    progress: &dyn Progress,
) -> Result<MergeSummary, BuildError> {
    let shards: Vec<open::Opened> = args.iter().map(|a| open::open(a, opts)).collect::<Result<_, _>>()?;
    let (plan, layers) = open::check(&shards)?;
    if let Some(reference) = target.push {
        let names: Vec<String> = plan.images.iter().map(|i| i.name.clone()).collect();
        crate::publish::registry::check_targets(&names, reference, target.tags)?;
    }
    // Layers are copied (and checked) into the layout unless they only go from registry shards
    // to the registry: then their presence in the shards' repositories is checked instead.
    let copy_layers = target.out.is_some() || shards.iter().any(|s| s.reference.is_none());
    let scratch;
    let out = match target.out {
        Some(out) => out.to_path_buf(),
        None => {
            std::fs::create_dir_all(target.work).map_err(BuildError::io("create", target.work))?;
            scratch = tempfile::Builder::new()
                .prefix(".kiln-merge-")
                .tempdir_in(target.work)
                .map_err(BuildError::io("create a directory in", target.work))?;
            scratch.path().join("layout")
        }
    };
    let staging: Box<dyn Publisher> = Box::new(Staging::new_with(&out, progress)?);
    let sink: &dyn BlobSink = &*staging;
    progress.start(layers.len() as u64);
    let mut blobs: BTreeMap<String, LayerBlob> = BTreeMap::new();
    let names: BTreeMap<&str, &str> = plan
        .images
        .iter()
        .flat_map(|i| &i.platforms)
        .flat_map(|p| &p.layers)
        .map(|l| (l.id.as_str(), l.name.as_str()))
        .collect();
    for (id, (blob, i)) in &layers {
        let s = &shards[*i];
        if copy_layers {
            copy_checked(s.source.as_ref(), blob, sink).map_err(|reason| ShardError::Blob {
                shard: s.manifest.id.clone(),
                layer: id.clone(),
                reason,
            })?;
        } else if !s.source.has_blob(&blob.blob.digest) {
            let reason = format!("{} does not hold {}", s.name, blob.blob.digest);
            return Err(ShardError::Blob { shard: s.manifest.id.clone(), layer: id.clone(), reason }.into());
        }
        progress.layer_done(names.get(id.as_str()).copied().unwrap_or(id), blob.blob.size);
        blobs.insert(id.clone(), blob.clone());
    }
    let created = crate::plan::rfc3339(plan.epoch);
    let built: Vec<BuiltImage> =
        plan.images.iter().map(|i| image::write_image(i, &created, &blobs, sink)).collect::<Result<_, _>>()?;
    let index_json = image::layout_index(&built, target.tags, &[])?;
    staging.publish(&index_json)?;
    progress.finish();
    let pushed = match target.push {
        Some(reference) => {
            let merged = Merged::new(LayoutDir::new(&out), &shards, &layers);
            crate::publish::registry::push_release(&merged, reference, target.tags, &merged.mounts(), opts, progress)?
        }
        None => Vec::new(),
    };
    Ok(MergeSummary {
        plan: shards[0].manifest.plan.digest.to_string(),
        shards: shards.iter().map(|s| s.manifest.id.clone()).collect(),
        layout: target.out.map(|o| o.display().to_string()),
        index_digest: crate::oci::digest::sha256_digest(&index_json),
        images: crate::build::summary::images(&built),
        pushed,
    })
}

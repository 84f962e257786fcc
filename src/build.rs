//! Executes a plan: writes every distinct layer once (in parallel), then the images, then
//! swaps the finished layout into place. Nothing is visible at the output path until the
//! whole layout is written.

use crate::error::BuildError;
use crate::image::{self, BuiltImage};
use crate::layer::{self, LayerBlob};
use crate::layout::Staging;
use crate::plan::{LayerPlan, Plan};
use crate::progress::Progress;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

/// What a build wrote, as printed by `kiln build --json`.
#[derive(Debug, Clone, Serialize)]
pub struct BuildSummary {
    pub layout: String,
    /// sha256 of the layout's `index.json`: one digest for the whole build.
    pub index_digest: String,
    pub images: Vec<ImageSummary>,
    /// Distinct layers written.
    pub layers: usize,
    /// Bytes of all distinct blobs (layers, configs, manifests, indexes).
    pub blob_bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    pub name: String,
    pub digest: String,
    pub size: u64,
    pub platforms: BTreeMap<String, String>,
}

/// Builds `plan` (whose sources are relative to `root`) into the OCI layout at `out`.
pub fn build(plan: &Plan, root: &Path, out: &Path, progress: &dyn Progress) -> Result<BuildSummary, BuildError> {
    let staging = Staging::new(out)?;
    let mut unique: BTreeMap<&str, &LayerPlan> = BTreeMap::new();
    for image in &plan.images {
        for p in &image.platforms {
            for l in &p.layers {
                unique.entry(l.id.as_str()).or_insert(l);
            }
        }
    }
    progress.start(unique.len() as u64);
    let layers = build_layers(unique.values().copied().collect(), root, plan, &staging, progress)?;
    let created = crate::plan::rfc3339(plan.epoch);
    let built: Vec<BuiltImage> =
        plan.images.iter().map(|i| image::write_image(i, &created, &layers, &staging)).collect::<Result<_, _>>()?;
    let index_json = image::layout_index(&built)?;
    let blob_bytes = dir_bytes(&staging.blob_dir());
    staging.commit(&index_json)?;
    progress.finish();
    Ok(BuildSummary {
        layout: out.display().to_string(),
        index_digest: crate::digest::sha256_digest(&index_json),
        images: built
            .iter()
            .map(|b| ImageSummary {
                name: b.name.clone(),
                digest: b.index.digest.clone(),
                size: b.index.size,
                platforms: b.manifests.iter().map(|(p, m)| (p.to_string(), m.digest.clone())).collect(),
            })
            .collect(),
        layers: layers.len(),
        blob_bytes,
    })
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// Writes layers on as many threads as the machine has cores; results are keyed by layer id,
/// so the order threads finish in never reaches the output.
fn build_layers(
    todo: Vec<&LayerPlan>,
    root: &Path,
    plan: &Plan,
    staging: &Staging,
    progress: &dyn Progress,
) -> Result<BTreeMap<String, LayerBlob>, BuildError> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(todo.len().max(1));
    let queue = Mutex::new(todo.into_iter());
    let results: Mutex<BTreeMap<String, LayerBlob>> = Mutex::new(BTreeMap::new());
    let failure: Mutex<Option<BuildError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some(l) = next else { break };
                    if failure.lock().map(|f| f.is_some()).unwrap_or(true) {
                        break;
                    }
                    match layer::build_layer(l, root, plan.epoch, plan.compression, staging) {
                        Ok(blob) => {
                            progress.layer_done(&l.name, blob.blob.size);
                            if let Ok(mut r) = results.lock() {
                                r.insert(l.id.clone(), blob);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e);
                            }
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = failure.into_inner().ok().flatten() {
        return Err(e);
    }
    Ok(results.into_inner().unwrap_or_default())
}

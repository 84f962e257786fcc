//! Executes a plan: writes every distinct layer once (in parallel), then the images, then
//! swaps the finished layout into place. Nothing is visible at the output path until the
//! whole layout is written.

use crate::error::BuildError;
use crate::image::{self, BuiltImage};
use crate::layer::{self, Inputs, LayerBlob};
use crate::plan::{BuildStep, LayerPlan, Plan, Step};
use crate::progress::Progress;
use crate::remote_cache::RemoteCache;
use crate::store::{BlobSink, Publisher, Staging};
use crate::toolchain::Toolchain;
use crate::toolchain::cache::Compiled;
use std::collections::BTreeMap;

pub mod shard;
pub mod stamp;
pub(crate) mod summary;
use std::path::Path;
use std::sync::Mutex;
pub use summary::{AttestOptions, AttestationSummary, BinarySummary, BuildSummary, ImageSummary};

/// Where a build reads and writes.
pub struct BuildOptions<'a> {
    /// The recipe's directory: sources are relative to it.
    pub root: &'a Path,
    /// The OCI layout to write (replaced as a whole on success).
    pub out: &'a Path,
    /// kiln's cache (compiled binaries, cargo's target directory, compressed layers).
    pub cache: &'a Path,
    /// What runs the plan's build steps.
    pub toolchain: &'a dyn Toolchain,
    /// Tags the layout names each image by besides its name (`IMAGE:TAG` in `ref.name`).
    pub tags: &'a [String],
    /// SBOMs and provenance to write beside the images.
    pub attest: Option<AttestOptions<'a>>,
    /// A registry shared as a cache of binaries and layers (`--cache`).
    pub remote: Option<&'a RemoteCache>,
    /// The kiln executable's sha256, when the caller knows it: it keys the layer cache (which
    /// hashes the executable itself otherwise), and lets a build whose plan and output are as
    /// the last build left them return at once ([`stamp`]).
    pub kiln: Option<&'a str>,
}

/// Compiles what the plan asks for, each binary once, from the cache where it can (kiln's,
/// then the registry's). Rust steps run one after another (cargo uses every core and one
/// target directory); C and Go steps run beside them, each language on a thread of its own.
pub fn compile_all(
    plan: &Plan,
    (cache, remote): (&Path, Option<&RemoteCache>),
    toolchain: &dyn Toolchain,
    progress: &dyn Progress,
) -> Result<BTreeMap<String, Compiled>, BuildError> {
    let groups: Vec<Vec<Step<'_>>> = [
        plan.rust.iter().map(Step::Rust).collect::<Vec<_>>(),
        plan.c.iter().map(Step::C).collect(),
        plan.go.iter().map(Step::Go).collect(),
    ]
    .into_iter()
    .filter(|g| !g.is_empty())
    .collect();
    let results: Vec<Result<Vec<(String, Compiled)>, BuildError>> = std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .iter()
            .map(|g| s.spawn(|| compile_group(g, plan.epoch, (cache, remote), toolchain, progress)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    let mut done = BTreeMap::new();
    for r in results {
        done.extend(r?);
    }
    Ok(done)
}

/// One language's steps, in plan order; a Rust workspace's dependencies are fetched once.
/// Every binary ends up in the registry cache too, when there is one.
fn compile_group(
    steps: &[Step<'_>],
    epoch: u64,
    (cache, remote): (&Path, Option<&RemoteCache>),
    toolchain: &dyn Toolchain,
    progress: &dyn Progress,
) -> Result<Vec<(String, Compiled)>, BuildError> {
    let mut done = Vec::new();
    let mut fetched = std::collections::BTreeSet::new();
    for &step in steps {
        let c = match toolchain.cached(step, cache) {
            Some(c) => c,
            None => match remote.and_then(|r| r.binary(step)) {
                Some(c) => {
                    progress.note(&format!("took {} from the registry cache", step.describe()));
                    c
                }
                None => {
                    if let Step::Rust(b) = step
                        && fetched.insert(b.manifest.clone())
                    {
                        progress.note(&format!("fetching dependencies of {}", b.package));
                        toolchain.fetch(step)?;
                    }
                    progress.note(&format!("compiling {}", step.describe()));
                    toolchain.compile(step, cache, epoch)?
                }
            },
        };
        if let Some(r) = remote {
            r.put_binary(step, &c);
        }
        done.push((step.id().to_string(), c));
    }
    Ok(done)
}

/// The plan's distinct layers (only those `only` names, when given), in plan order.
fn distinct<'p>(plan: &'p Plan, only: Option<&[String]>) -> Vec<&'p LayerPlan> {
    let mut unique: BTreeMap<&str, &LayerPlan> = BTreeMap::new();
    for l in plan.images.iter().flat_map(|i| &i.platforms).flat_map(|p| &p.layers) {
        if only.is_none_or(|o| o.contains(&l.id)) {
            unique.entry(l.id.as_str()).or_insert(l);
        }
    }
    unique.into_values().collect()
}

/// What [`make`] made: binaries and layers, and how many came from where.
pub(crate) struct Made {
    pub compiled: BTreeMap<String, Compiled>,
    pub layers: BTreeMap<String, LayerBlob>,
    /// Layers taken from a cache.
    pub hits: usize,
}

/// Compiles the binaries the plan (cut to a shard's steps, when `only` names its layers)
/// needs and writes its distinct layers into `sink`.
pub(crate) fn make(
    plan: &Plan,
    only: Option<&[String]>,
    opts: &BuildOptions<'_>,
    sink: &dyn BlobSink,
    progress: &dyn Progress,
) -> Result<Made, BuildError> {
    let todo = distinct(plan, only);
    let compiled = match only {
        None => compile_all(plan, (opts.cache, opts.remote), opts.toolchain, progress)?,
        Some(_) => {
            let needed: Vec<&str> = todo.iter().flat_map(|l| &l.entries).filter_map(|e| e.build.as_deref()).collect();
            let mut cut = plan.clone();
            cut.rust.retain(|b| needed.contains(&b.id.as_str()));
            cut.c.retain(|b| needed.contains(&b.id.as_str()));
            cut.go.retain(|b| needed.contains(&b.id.as_str()));
            compile_all(&cut, (opts.cache, opts.remote), opts.toolchain, progress)?
        }
    };
    progress.start(todo.len() as u64);
    let store = crate::inputs::debian::store::file_store(opts.cache);
    let pulled = crate::store::cas::registry_cache(opts.cache);
    let inputs = Inputs { root: opts.root, compiled: &compiled, store: &store, pulled: &pulled };
    let cache = layer::LayerCache::new(opts.cache, opts.kiln);
    let hits = std::sync::atomic::AtomicUsize::new(0);
    let layers = build_layers(todo, &inputs, plan, (&cache, &hits, opts.remote), sink, progress)?;
    Ok(Made { compiled, layers, hits: hits.into_inner() })
}

/// Builds `plan` into the OCI layout at `opts.out`.
pub fn build(plan: &Plan, opts: &BuildOptions<'_>, progress: &dyn Progress) -> Result<BuildSummary, BuildError> {
    let _cache_lock = crate::lock::CacheLock::open(opts.cache);
    let key = stamp::key(plan, opts);
    if let Some(mut done) = key.as_deref().and_then(|k| stamp::done(opts.cache, opts.out, k)) {
        // The layout holds this very build already: every binary and layer is where it was.
        done.compiled = 0;
        done.cached_layers = done.layers;
        done.binaries.iter_mut().for_each(|b| b.cached = true);
        progress.note(&format!("{} is up to date", opts.out.display()));
        progress.finish();
        return Ok(done);
    }
    let out = opts.out;
    let staging: Box<dyn Publisher> = Box::new(Staging::new_with(out, progress)?);
    let sink: &dyn BlobSink = &*staging;
    let Made { compiled, layers, hits } = make(plan, None, opts, sink, progress)?;
    let created = crate::plan::rfc3339(plan.epoch);
    let built: Vec<BuiltImage> =
        plan.images.iter().map(|i| image::write_image(i, &created, &layers, sink)).collect::<Result<_, _>>()?;
    let attested = attest(plan, opts, (&compiled, &built), sink)?;
    let artifacts: Vec<(String, crate::store::BlobRef)> =
        attested.iter().map(|w| (w.artifact_type.clone(), w.manifest.clone())).collect();
    let index_json = image::layout_index(&built, opts.tags, &artifacts)?;
    let blob_bytes = sink.stored_bytes();
    staging.publish(&index_json)?;
    progress.finish();
    let summary = BuildSummary {
        layout: out.display().to_string(),
        index_digest: crate::oci::digest::sha256_digest(&index_json),
        images: summary::images(&built),
        layers: layers.len(),
        cached_layers: hits,
        compiled: compiled.values().filter(|c| !c.cached).count(),
        blob_bytes,
        binaries: binaries(plan, &compiled),
        cache: opts.remote.map(RemoteCache::report),
        shard: None,
        attestations: attested
            .iter()
            .map(|w| AttestationSummary {
                image: w.image.clone(),
                platform: w.platform.clone(),
                artifact_type: w.artifact_type.clone(),
                digest: w.manifest.digest.to_string(),
            })
            .collect(),
        documents: attested.into_iter().map(|w| (w.file, w.document)).collect(),
    };
    if let Some(k) = &key {
        stamp::record(opts.cache, opts.out, k, &summary);
    }
    Ok(summary)
}

/// Every compiled binary, in plan order.
pub(crate) fn binaries(plan: &Plan, compiled: &BTreeMap<String, Compiled>) -> Vec<BinarySummary> {
    plan.steps().filter_map(|step| compiled.get(step.id()).map(|c| summary::binary_summary(step, c))).collect()
}

/// Writes the SBOMs and provenance `opts` asks for; what went into each binary is asked of
/// the toolchain only for SBOMs.
fn attest(
    plan: &Plan,
    opts: &BuildOptions<'_>,
    (compiled, built): (&BTreeMap<String, Compiled>, &[BuiltImage]),
    sink: &dyn BlobSink,
) -> Result<Vec<crate::attest::write::Written>, BuildError> {
    let Some(a) = &opts.attest else { return Ok(Vec::new()) };
    let mut linked = BTreeMap::new();
    if a.wanted.sbom {
        for step in plan.steps() {
            if let Some(c) = compiled.get(step.id()) {
                linked.insert(step.id().to_string(), opts.toolchain.linked(step, c)?);
            }
        }
    }
    let g = crate::attest::collect::Gathered {
        plan,
        root: opts.root,
        compiled,
        linked: &linked,
        lock: a.lock.map(|(_, l)| l),
    };
    let inputs = crate::attest::provenance::Inputs { recipe: a.recipe, lock: a.lock };
    crate::attest::write::write(&g, a.wanted, &inputs, built, sink)
}

/// The layer from kiln's cache, else from the registry cache, when it holds exactly the tar
/// the plan makes (checked by unpacking it); anything else is a miss, and said to be one.
fn cached(
    l: &LayerPlan,
    inputs: &Inputs<'_>,
    epoch: u64,
    (cache, remote): (&layer::LayerCache, Option<&RemoteCache>),
    sink: &dyn BlobSink,
    progress: &dyn Progress,
) -> Result<Option<LayerBlob>, BuildError> {
    let mut tar = None;
    let mut attempt = |from_remote: bool| -> Result<Option<LayerBlob>, BuildError> {
        let Some(record) = cache.record(&l.id) else { return Ok(None) };
        let (diff_id, size) = match &tar {
            Some(t) => t,
            None => tar.insert(layer::tar_digest(l, inputs, epoch)?),
        };
        match cache.take(record, (diff_id, *size), sink) {
            Ok(hit) => Ok(Some(hit)),
            Err(why) if from_remote => {
                remote.inspect(|r| r.layer_rejected(&l.name, &why));
                progress.note(&format!("not using the registry's cached layer {}: {why}; building it again", l.name));
                Ok(None)
            }
            Err(why) => {
                progress.note(&format!("not using the cached layer {}: {why}; building it again", l.name));
                Ok(None)
            }
        }
    };
    if let Some(hit) = attempt(false)? {
        // A layer this machine had: the registry cache gets it too, when it lacks it.
        if let Some(r) = remote {
            r.put_layer(l, &hit, cache);
        }
        return Ok(Some(hit));
    }
    match remote {
        Some(r) if r.layer(l, cache) => {
            let hit = attempt(true)?;
            if hit.is_some() {
                r.layer_used();
            }
            Ok(hit)
        }
        _ => Ok(None),
    }
}

/// Writes layers on as many threads as the machine has cores; results are keyed by layer id,
/// so the order threads finish in never reaches the output.
fn build_layers(
    todo: Vec<&LayerPlan>,
    inputs: &Inputs<'_>,
    plan: &Plan,
    (cache, hits, remote): (&layer::LayerCache, &std::sync::atomic::AtomicUsize, Option<&RemoteCache>),
    sink: &dyn BlobSink,
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
                    match match &l.prebuilt {
                        Some(p) => layer::copy_prebuilt(p, inputs, sink),
                        None => match cached(l, inputs, plan.epoch, (cache, remote), sink, progress) {
                            Ok(Some(hit)) => {
                                hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                Ok(hit)
                            }
                            Ok(None) => {
                                layer::build_layer(l, inputs, plan.epoch, plan.compression, sink).inspect(|b| {
                                    cache.put(&l.id, b, sink);
                                    if let Some(r) = remote {
                                        r.put_layer(l, b, cache);
                                    }
                                })
                            }
                            Err(e) => Err(e.into()),
                        },
                    } {
                        Ok(blob) => {
                            progress.layer_done(&l.name, blob.blob.size);
                            if let Ok(mut r) = results.lock() {
                                r.insert(l.id.clone(), blob);
                            }
                        }
                        Err(e) => {
                            if let Ok(mut f) = failure.lock() {
                                f.get_or_insert(e.into());
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

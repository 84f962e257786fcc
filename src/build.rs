//! Executes a plan: writes every distinct layer once (in parallel), then the images, then
//! swaps the finished layout into place. Nothing is visible at the output path until the
//! whole layout is written.

use crate::error::BuildError;
use crate::image::{self, BuiltImage};
use crate::layer::{self, Inputs, LayerBlob};
use crate::plan::{BuildStep, LayerPlan, Plan, Step};
use crate::progress::Progress;
use crate::store::{BlobSink, Publisher, Staging};
use crate::toolchain::Toolchain;
use crate::toolchain::cache::Compiled;
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
    /// How many of them were taken from kiln's layer cache instead of being compressed again.
    pub cached_layers: usize,
    /// Bytes of all distinct blobs (layers, configs, manifests, indexes).
    pub blob_bytes: u64,
    /// Every compiled binary, in plan order.
    pub binaries: Vec<BinarySummary>,
    /// SBOMs and provenance written beside the images (`--sbom`, `--provenance`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<AttestationSummary>,
    /// The attestations' documents, by the file name `--sbom-out` gives each.
    #[serde(skip)]
    pub documents: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttestationSummary {
    pub image: String,
    pub platform: String,
    pub artifact_type: String,
    /// The artifact manifest, whose subject is the platform manifest.
    pub digest: String,
}

/// The attestations a build writes, and what they need beside the plan.
pub struct AttestOptions<'a> {
    pub wanted: crate::attest::write::Wanted,
    /// The recipe file's name and the sha256 of its bytes.
    pub recipe: (&'a str, &'a str),
    /// `kiln.lock`'s sha256 and contents, when the recipe has one.
    pub lock: Option<(&'a str, &'a crate::inputs::debian::lock::Lock)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BinarySummary {
    /// `rust`, `c` or `go`.
    pub language: String,
    /// The cargo package, the C program's name or the Go package.
    pub package: String,
    pub bin: String,
    pub platform: String,
    pub triple: String,
    pub linker: String,
    pub unstripped_bytes: u64,
    pub stripped_bytes: u64,
    pub sha256: String,
    /// Taken from kiln's cache: the compiler did not run.
    pub cached: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    pub name: String,
    pub digest: String,
    pub size: u64,
    pub platforms: BTreeMap<String, String>,
}

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
}

/// Compiles what the plan asks for, each binary once, from the cache where it can. Rust steps
/// run one after another (cargo uses every core and one target directory); C and Go steps run
/// beside them, each language on a thread of its own.
pub fn compile_all(
    plan: &Plan,
    cache: &Path,
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
        let handles: Vec<_> =
            groups.iter().map(|g| s.spawn(|| compile_group(g, plan.epoch, cache, toolchain, progress))).collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    });
    let mut done = BTreeMap::new();
    for r in results {
        done.extend(r?);
    }
    Ok(done)
}

/// One language's steps, in plan order; a Rust workspace's dependencies are fetched once.
fn compile_group(
    steps: &[Step<'_>],
    epoch: u64,
    cache: &Path,
    toolchain: &dyn Toolchain,
    progress: &dyn Progress,
) -> Result<Vec<(String, Compiled)>, BuildError> {
    let mut done = Vec::new();
    let mut fetched = std::collections::BTreeSet::new();
    for &step in steps {
        if let Some(c) = toolchain.cached(step, cache) {
            done.push((step.id().to_string(), c));
            continue;
        }
        if let Step::Rust(b) = step
            && fetched.insert(b.manifest.clone())
        {
            progress.note(&format!("fetching dependencies of {}", b.package));
            toolchain.fetch(step)?;
        }
        progress.note(&format!("compiling {}", step.describe()));
        done.push((step.id().to_string(), toolchain.compile(step, cache, epoch)?));
    }
    Ok(done)
}

/// Builds `plan` into the OCI layout at `opts.out`.
pub fn build(plan: &Plan, opts: &BuildOptions<'_>, progress: &dyn Progress) -> Result<BuildSummary, BuildError> {
    let _cache_lock = crate::lock::CacheLock::open(opts.cache);
    let compiled = compile_all(plan, opts.cache, opts.toolchain, progress)?;
    let out = opts.out;
    let staging: Box<dyn Publisher> = Box::new(Staging::new_with(out, progress)?);
    let sink: &dyn BlobSink = &*staging;
    let mut unique: BTreeMap<&str, &LayerPlan> = BTreeMap::new();
    for image in &plan.images {
        for p in &image.platforms {
            for l in &p.layers {
                unique.entry(l.id.as_str()).or_insert(l);
            }
        }
    }
    progress.start(unique.len() as u64);
    let store = crate::inputs::debian::store::file_store(opts.cache);
    let pulled = crate::store::cas::registry_cache(opts.cache);
    let inputs = Inputs { root: opts.root, compiled: &compiled, store: &store, pulled: &pulled };
    let cache = layer::LayerCache::new(opts.cache);
    let hits = std::sync::atomic::AtomicUsize::new(0);
    let layers = build_layers(unique.values().copied().collect(), &inputs, plan, (&cache, &hits), sink, progress)?;
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
    Ok(BuildSummary {
        layout: out.display().to_string(),
        index_digest: crate::oci::digest::sha256_digest(&index_json),
        images: built
            .iter()
            .map(|b| ImageSummary {
                name: b.name.clone(),
                digest: b.index.digest.to_string(),
                size: b.index.size,
                platforms: b.manifests.iter().map(|(p, m)| (p.to_string(), m.digest.to_string())).collect(),
            })
            .collect(),
        layers: layers.len(),
        cached_layers: hits.into_inner(),
        blob_bytes,
        binaries: plan.steps().filter_map(|step| compiled.get(step.id()).map(|c| binary_summary(step, c))).collect(),
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
    })
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

/// What the build summary says of one compiled binary.
fn binary_summary(step: Step<'_>, c: &Compiled) -> BinarySummary {
    let (package, triple, linker) = match step {
        Step::Rust(b) => (b.package.clone(), b.triple.clone(), b.linker.clone()),
        Step::C(b) => (b.name.clone(), b.target.clone(), b.compiler.clone()),
        Step::Go(b) => {
            let arm = b.goarm.as_ref().map(|v| format!(" GOARM={v}")).unwrap_or_default();
            (b.package.clone(), format!("GOARCH={}{arm}", b.goarch), b.go.clone())
        }
    };
    BinarySummary {
        language: step.language().to_string(),
        package,
        bin: step.bin().to_string(),
        platform: step.platform().to_string(),
        triple,
        linker,
        unstripped_bytes: c.unstripped,
        stripped_bytes: c.size,
        sha256: c.sha256.clone(),
        cached: c.cached,
    }
}

/// The layer from kiln's cache, when it holds exactly the tar the plan makes (checked by
/// unpacking it); anything else is a miss, and said to be one.
fn cached(
    l: &LayerPlan,
    inputs: &Inputs<'_>,
    epoch: u64,
    cache: &layer::LayerCache,
    sink: &dyn BlobSink,
    progress: &dyn Progress,
) -> Result<Option<LayerBlob>, BuildError> {
    let Some(record) = cache.record(&l.id) else { return Ok(None) };
    let (diff_id, size) = layer::tar_digest(l, inputs, epoch)?;
    match cache.take(record, (&diff_id, size), sink) {
        Ok(hit) => Ok(Some(hit)),
        Err(why) => {
            progress.note(&format!("not using the cached layer {}: {why}; building it again", l.name));
            Ok(None)
        }
    }
}

/// Writes layers on as many threads as the machine has cores; results are keyed by layer id,
/// so the order threads finish in never reaches the output.
fn build_layers(
    todo: Vec<&LayerPlan>,
    inputs: &Inputs<'_>,
    plan: &Plan,
    (cache, hits): (&layer::LayerCache, &std::sync::atomic::AtomicUsize),
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
                        None => match cached(l, inputs, plan.epoch, cache, sink, progress) {
                            Ok(Some(hit)) => {
                                hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                Ok(hit)
                            }
                            Ok(None) => layer::build_layer(l, inputs, plan.epoch, plan.compression, sink)
                                .inspect(|b| cache.put(&l.id, b, sink)),
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

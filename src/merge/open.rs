//! Reading the shards `kiln merge` is given, and checking them as a whole before anything is
//! written: one plan, one cut, every shard once, one blob per layer.

use crate::build::shard::{SHARD_TYPE, ShardManifest};
use crate::error::{BuildError, ShardError, StoreError};
use crate::inputs::registry::{Options, Release};
use crate::layer::LayerBlob;
use crate::oci::digest::HashingReader;
use crate::plan::Plan;
use crate::store::BlobSource;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The largest `kiln build --shard --json` summary `kiln merge` reads.
const MAX_SUMMARY: u64 = 16 << 20;

/// Each distinct layer of the plan, by id: its blob and the shard (by position) holding it.
pub type Holders = BTreeMap<String, (LayerBlob, usize)>;

/// One shard, opened.
pub struct Opened {
    /// As the command line gave it.
    pub name: String,
    pub source: Box<dyn BlobSource + Sync>,
    pub manifest: ShardManifest,
    /// Set for a shard in a registry.
    pub reference: Option<crate::oci::reference::Reference>,
}

fn not_a_shard(what: &str, reason: impl Into<String>) -> ShardError {
    ShardError::NotAShard { what: what.to_string(), reason: reason.into() }
}

/// What a `kiln build --shard --json` file points at: the pushed reference, else the layout.
fn from_summary(path: &Path) -> Result<String, ShardError> {
    let shown = path.display().to_string();
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SUMMARY).read_to_string(&mut text))
        .map_err(|e| not_a_shard(&shown, e.to_string()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| not_a_shard(&shown, format!("not JSON: {e}")))?;
    let shard =
        v.get("shard").ok_or_else(|| not_a_shard(&shown, "it is not what `kiln build --shard --json` prints"))?;
    let at = |k: &str| shard.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
    at("reference").or_else(|| at("layout")).ok_or_else(|| not_a_shard(&shown, "it names no layout or reference"))
}

/// Opens the shard `arg`: a layout, a registry reference, or a `--json` summary naming one.
pub fn open(arg: &str, opts: &Options) -> Result<Opened, BuildError> {
    let path = Path::new(arg);
    let target = if path.is_file() { from_summary(path)? } else { arg.to_string() };
    let release = Release::parse(&target);
    let reference = match &release {
        Release::Registry(r) if r.digest.is_none() => {
            return Err(not_a_shard(arg, "a shard in a registry is named by digest (HOST/REPOSITORY@sha256:…)").into());
        }
        Release::Registry(r) => Some(r.clone()),
        Release::Layout(dir) if !dir.join("index.json").is_file() => {
            return Err(not_a_shard(arg, format!("{} holds no index.json", dir.display())).into());
        }
        Release::Layout(_) => None,
    };
    let source = release.open(opts)?;
    let (_, index) = source.index()?;
    let mut found: Vec<crate::store::Blob> = index
        .manifests()
        .iter()
        .filter(|d| reference.is_some() || d.artifact_type().as_ref().is_some_and(|t| t.to_string() == SHARD_TYPE))
        .filter_map(|d| {
            Some(crate::store::Blob {
                digest: d.digest().to_string().parse().ok()?,
                size: d.size(),
                media_type: d.media_type().to_string(),
            })
        })
        .collect();
    let Some(top) = found.pop().filter(|_| found.is_empty()) else {
        return Err(not_a_shard(arg, "its index.json does not name exactly one shard manifest").into());
    };
    let bytes = source.read_blob(&top)?;
    let manifest = ShardManifest::parse(&bytes).map_err(|why| not_a_shard(arg, why))?;
    Ok(Opened { name: arg.to_string(), source, manifest, reference })
}

/// The plan a shard carries, read (up to [`crate::plan::MAX_PLAN_BYTES`]) and checked against
/// its digest.
fn plan_of(s: &Opened) -> Result<Plan, BuildError> {
    let blob = &s.manifest.plan;
    if blob.size > crate::plan::MAX_PLAN_BYTES {
        return Err(not_a_shard(&s.name, format!("its plan is {} bytes, more than kiln reads", blob.size)).into());
    }
    let mut r = HashingReader::new(s.source.open_blob(&blob.digest)?.take(blob.size + 1));
    let mut text = String::new();
    r.read_to_string(&mut text).map_err(StoreError::io("read", s.source.blob_name(&blob.digest)))?;
    let (_, digest, size) = r.finish();
    if digest != blob.digest || size != blob.size {
        return Err(not_a_shard(&s.name, format!("its plan blob is {digest}, not the {} it names", blob.digest)).into());
    }
    Ok(Plan::from_json(&text).map_err(|why| not_a_shard(&s.name, why))?)
}

/// Checks the shards belong together and make the whole plan; returns the plan and, for every
/// distinct layer of it, its blob and the shard (by position) that holds it.
pub fn check(shards: &[Opened]) -> Result<(Plan, Holders), BuildError> {
    let Some(first) = shards.first() else {
        return Err(ShardError::Shards { problem: "no shards given".into() }.into());
    };
    for s in &shards[1..] {
        if s.manifest.plan.digest != first.manifest.plan.digest {
            return Err(ShardError::OtherPlan {
                first: first.name.clone(),
                first_plan: first.manifest.plan.digest.to_string(),
                other: s.name.clone(),
                other_plan: s.manifest.plan.digest.to_string(),
            }
            .into());
        }
        if s.manifest.shards != first.manifest.shards {
            let problem = format!(
                "{} is one of the shards {}, {} one of {}: the plan was cut two ways",
                first.name,
                first.manifest.shards.join(" "),
                s.name,
                s.manifest.shards.join(" ")
            );
            return Err(ShardError::Shards { problem }.into());
        }
    }
    let mut given: BTreeMap<&str, &str> = BTreeMap::new();
    for s in shards {
        if let Some(before) = given.insert(&s.manifest.id, &s.name) {
            let problem = format!("shard {} is given twice: {before} and {}", s.manifest.id, s.name);
            return Err(ShardError::Shards { problem }.into());
        }
    }
    let missing: Vec<&str> =
        first.manifest.shards.iter().map(String::as_str).filter(|id| !given.contains_key(id)).collect();
    if !missing.is_empty() {
        let problem = format!(
            "shard{} {} of the plan {} missing (given: {})",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" },
            given.keys().copied().collect::<Vec<_>>().join(", ")
        );
        return Err(ShardError::Shards { problem }.into());
    }
    let plan = plan_of(first)?;
    let mut layers: Holders = BTreeMap::new();
    for (i, s) in shards.iter().enumerate() {
        for (id, blob) in &s.manifest.layers {
            match layers.get(id) {
                Some((other, j)) if other != blob => {
                    let problem = format!(
                        "shards {} and {} hold different blobs for layer {id} ({} and {})",
                        shards[*j].manifest.id, s.manifest.id, other.blob.digest, blob.blob.digest
                    );
                    return Err(ShardError::Shards { problem }.into());
                }
                Some(_) => {}
                None => {
                    layers.insert(id.clone(), (blob.clone(), i));
                }
            }
        }
    }
    for l in plan.images.iter().flat_map(|i| &i.platforms).flat_map(|p| &p.layers) {
        if !layers.contains_key(&l.id) {
            let problem = format!("no shard holds layer {} ({}) of the plan", l.id, l.name);
            return Err(ShardError::Shards { problem }.into());
        }
    }
    Ok((plan, layers))
}

//! What a build says it did: `kiln build --json`.

use crate::plan::{BuildStep, Step};
use crate::toolchain::cache::Compiled;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a build wrote, as printed by `kiln build --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildSummary {
    pub layout: String,
    /// sha256 of the layout's `index.json`: one digest for the whole build.
    pub index_digest: String,
    pub images: Vec<ImageSummary>,
    /// Distinct layers written.
    pub layers: usize,
    /// How many of them were taken from kiln's layer cache instead of being compressed again.
    pub cached_layers: usize,
    /// Binaries the compilers made in this build (the others came from a cache).
    pub compiled: usize,
    /// Bytes of all distinct blobs (layers, configs, manifests, indexes).
    pub blob_bytes: u64,
    /// Every compiled binary, in plan order.
    pub binaries: Vec<BinarySummary>,
    /// SBOMs and provenance written beside the images (`--sbom`, `--provenance`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attestations: Vec<AttestationSummary>,
    /// What the registry cache (`--cache`) gave and took.
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub cache: Option<crate::remote_cache::CacheReport>,
    /// The shard written, for `kiln build --shard`.
    #[serde(skip_serializing_if = "Option::is_none", skip_deserializing)]
    pub shard: Option<super::shard::ShardSummary>,
    /// The attestations' documents, by the file name `--sbom-out` gives each.
    #[serde(skip)]
    pub documents: Vec<(String, Vec<u8>)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageSummary {
    pub name: String,
    pub digest: String,
    pub size: u64,
    pub platforms: BTreeMap<String, String>,
}

/// What the build summary says of one compiled binary.
pub(crate) fn binary_summary(step: Step<'_>, c: &Compiled) -> BinarySummary {
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

/// What the summaries say of each image written.
pub(crate) fn images(built: &[crate::image::BuiltImage]) -> Vec<ImageSummary> {
    built
        .iter()
        .map(|b| ImageSummary {
            name: b.name.clone(),
            digest: b.index.digest.to_string(),
            size: b.index.size,
            platforms: b.manifests.iter().map(|(p, m)| (p.to_string(), m.digest.to_string())).collect(),
        })
        .collect()
}

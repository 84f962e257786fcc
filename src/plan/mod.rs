//! The plan: every decision kiln makes, as data.
//!
//! A plan is a pure function of the recipe, the content of the files it names and the build
//! epoch. `kiln plan` prints it (text or JSON); the later stages only execute it. Two plans that
//! are equal produce byte-identical images, so diffing plans explains any digest change.

mod check;
pub mod facts;
pub mod layering;
mod render;
mod resolve;
pub mod shard;
pub(crate) mod steps;
mod steps_check;

pub use crate::oci::config::{ConfigPlan, DEFAULT_PATH, DEFAULT_USER, UserSource};
pub use crate::oci::entry::{Entry, EntryKind, Prebuilt};
pub use check::{changes, plan_needs};
pub use render::render_text;
pub(crate) use resolve::c::c_readable;
pub use resolve::{PlanOptions, needs, resolve};
pub use steps::{CBuild, GoBuild, Step};

use crate::oci::platform::Platform;
use crate::recipe::Compression;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the plan's JSON form; bumped on any incompatible change.
pub const PLAN_FORMAT: u32 = 1;

/// Where the build epoch came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochSource {
    SourceDateEpoch,
    Recipe,
    Default,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub plan_format: u32,
    pub epoch: u64,
    pub epoch_source: EpochSource,
    pub compression: Compression,
    /// Where distroless bases' packages come from, when a recipe uses one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debian: Option<DebianPlan>,
    /// Binaries kiln compiles, each once, referenced by entries' `build`.
    pub rust: Vec<RustBuild>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub c: Vec<CBuild>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub go: Vec<GoBuild>,
    pub images: Vec<ImagePlan>,
}

/// The Debian release distroless bases are built from, as `kiln.lock` pins it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DebianPlan {
    pub mirror: String,
    pub suite: String,
    pub release: crate::inputs::debian::lock::ReleaseInfo,
}

/// One hermetic cargo build of one binary for one target. Its `id` hashes every input
/// (toolchain, flags, lockfile, sources), so a cached result with that id is reused as is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RustBuild {
    pub id: String,
    pub package: String,
    pub bin: String,
    /// `Cargo.toml`, relative to the recipe's directory.
    pub manifest: String,
    /// The cargo workspace root, relative to the recipe's directory.
    pub workspace: String,
    pub platform: Platform,
    pub triple: String,
    pub profile: String,
    pub features: Vec<String>,
    pub no_default_features: bool,
    /// `CARGO_ENCODED_RUSTFLAGS`, with `${workspace}`, `${cargo_home}`, `${sysroot}`,
    /// `${target_dir}` and `${linker}` standing for this machine's paths.
    pub rustflags: Vec<String>,
    /// Linker and its version.
    pub linker: String,
    /// The strip program run on the linked binary, and its version.
    pub strip: String,
    /// `rustc -vV` release, commit and LLVM version.
    pub rustc: String,
    pub cargo: String,
    pub lockfile_sha256: String,
    /// Files of the workspace hashed into `sources_sha256` (target, hidden and OCI layout
    /// directories left out).
    pub source_files: usize,
    pub sources_sha256: String,
    /// How the compile is cut off from the network.
    pub network: facts::Isolation,
    /// The base has no libc, so the binary must be statically linked.
    pub require_static: bool,
    /// The C compiler the build scripts get (`CC_<triple>`), with its version: only for a
    /// workspace whose `Cargo.lock` has the `cc` crate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub c_compiler: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImagePlan {
    pub name: String,
    pub base: String,
    /// Annotations put on the image index and on every manifest.
    pub annotations: BTreeMap<String, String>,
    pub platforms: Vec<PlatformPlan>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlatformPlan {
    pub platform: Platform,
    pub config: ConfigPlan,
    pub layers: Vec<LayerPlan>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerPlan {
    /// sha256 of the layer's entries and compression: equal ids mean byte-identical blobs.
    pub id: String,
    /// The layer's stable identity across releases (recorded in the image's annotations).
    pub key: String,
    pub name: String,
    /// Why the files are in this layer, and why it stands where it does.
    pub reason: String,
    pub volatility: layering::Volatility,
    /// What made the layer (shown by `kiln plan`; the image history holds the `key`).
    pub created_by: String,
    pub entries: Vec<Entry>,
    /// Set for a base image's layer, copied as it is instead of built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prebuilt: Option<Prebuilt>,
}

/// An epoch as the RFC 3339 time written to configs, history and annotations.
pub fn rfc3339(epoch: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch)).to_string()
}

/// A compiled artifact the plan asks for (a Rust, C or Go binary): what a
/// [`crate::toolchain::Toolchain`] runs. Its id hashes every input, so two steps with one id make the same bytes.
pub trait BuildStep {
    fn id(&self) -> &str;
    fn platform(&self) -> Platform;
    /// How progress and errors name the step: `demo (bin demo) for linux/amd64 (x86_64-…)`.
    fn describe(&self) -> String;
}

impl BuildStep for RustBuild {
    fn id(&self) -> &str {
        &self.id
    }

    fn platform(&self) -> Platform {
        self.platform
    }

    fn describe(&self) -> String {
        format!("{} (bin {}) for {} ({})", self.package, self.bin, self.platform, self.triple)
    }
}

/// The largest saved plan kiln reads, in bytes.
pub const MAX_PLAN_BYTES: u64 = 64 << 20;

impl Plan {
    /// The registry bases the plan's layers come from, each with its platforms.
    pub fn registry_bases(&self) -> Vec<(String, Vec<Platform>)> {
        let mut out: Vec<(String, Vec<Platform>)> = Vec::new();
        for i in &self.images {
            for p in &i.platforms {
                for r in p.layers.iter().filter_map(|l| l.prebuilt.as_ref()).filter_map(|b| b.registry.as_ref()) {
                    match out.iter_mut().find(|(o, _)| o == r) {
                        Some((_, have)) if !have.contains(&p.platform) => have.push(p.platform),
                        Some(_) => {}
                        None => out.push((r.clone(), vec![p.platform])),
                    }
                }
            }
        }
        out
    }

    /// The plan's canonical JSON (sorted keys, two-space indent, trailing newline).
    pub fn to_json(&self) -> String {
        crate::oci::canonical::to_pretty(self)
    }

    /// Every build step, in plan order: Rust, then C, then Go.
    pub fn steps(&self) -> impl Iterator<Item = Step<'_>> {
        let rust = self.rust.iter().map(Step::Rust);
        rust.chain(self.c.iter().map(Step::C)).chain(self.go.iter().map(Step::Go))
    }

    /// A plan read back from its JSON, or why it cannot be: not JSON, not a plan, or a plan
    /// of another format version.
    pub fn from_json(text: &str) -> Result<Plan, String> {
        #[derive(Deserialize)]
        struct Format {
            plan_format: u32,
        }
        let format: Format = serde_json::from_str(text).map_err(|e| format!("not a kiln plan: {e}"))?;
        if format.plan_format != PLAN_FORMAT {
            return Err(format!(
                "plan_format {} is not {PLAN_FORMAT}, the one this kiln reads; make the plan again with this kiln",
                format.plan_format
            ));
        }
        let plan: Plan = serde_json::from_str(text).map_err(|e| format!("not a kiln plan: {e}"))?;
        check::shape(&plan).map_err(|e| format!("not a plan kiln makes: {e}"))?;
        Ok(plan)
    }
}

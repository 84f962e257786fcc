//! Facts about this machine's toolchains, gathered in one explicit step before planning: the
//! Rust toolchain's probe, `cargo metadata` of every package a recipe or plan names, and the
//! linker and strip program of every target. Planning reads them as values (it spawns no
//! process); building reads the host paths it needs from them (the plan holds none).

use super::rust::{self as cargo, Missing, Package, Probe, Target};
use crate::codes::Code;
use crate::platform::Platform;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One `rust` build that planning or building will ask about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RustNeed {
    /// The cargo manifest, joined to the recipe's directory.
    pub manifest: PathBuf,
    pub package: String,
    pub platform: Platform,
    /// The recipe's `target` for this platform, if it names one.
    pub triple: Option<String>,
}

/// What was found, or what is missing, for each need.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The Rust toolchain that rustup picks in the recipe's directory; probed only when a
    /// need asks for it.
    pub probe: Option<Result<Probe, Missing>>,
    /// `cargo metadata` by (manifest, package).
    pub packages: BTreeMap<(PathBuf, String), Result<Package, Missing>>,
    /// Linker and strip program by (platform, the recipe's triple).
    pub targets: BTreeMap<(Platform, Option<String>), Result<Target, Missing>>,
}

/// Runs the probes `needs` call for, each once. `root` is where rustup looks for a
/// `rust-toolchain.toml`.
pub fn gather(root: &Path, needs: &[RustNeed]) -> Facts {
    let mut facts = Facts::default();
    if needs.is_empty() {
        return facts;
    }
    let probe = Probe::detect(root);
    for need in needs {
        let Ok(probe) = &probe else { break };
        let key = (need.manifest.clone(), need.package.clone());
        if need.manifest.is_file() && !facts.packages.contains_key(&key) {
            facts.packages.insert(key, cargo::find_package(probe, &need.manifest, &need.package));
        }
        let key = (need.platform, need.triple.clone());
        facts.targets.entry(key).or_insert_with(|| cargo::target(need.platform, need.triple.as_deref(), probe));
    }
    facts.probe = Some(probe);
    facts
}

impl Facts {
    /// The probe, or what stands for its absence when no need asked for it.
    pub fn probe(&self) -> Result<&Probe, Missing> {
        match &self.probe {
            Some(Ok(p)) => Ok(p),
            Some(Err(m)) => Err(m.clone()),
            None => Err(not_gathered("the Rust toolchain")),
        }
    }

    pub fn package(&self, manifest: &Path, package: &str) -> Result<&Package, Missing> {
        match self.packages.get(&(manifest.to_path_buf(), package.to_string())) {
            Some(Ok(p)) => Ok(p),
            Some(Err(m)) => Err(m.clone()),
            None => Err(not_gathered(&format!("package `{package}` of {}", manifest.display()))),
        }
    }

    pub fn target(&self, platform: Platform, triple: Option<&str>) -> Result<&Target, Missing> {
        match self.targets.get(&(platform, triple.map(str::to_string))) {
            Some(Ok(t)) => Ok(t),
            Some(Err(m)) => Err(m.clone()),
            None => Err(not_gathered(&format!("the {platform} target"))),
        }
    }
}

/// A fact planning asked for that the gathering step did not collect: a fault of kiln's, said
/// as a problem rather than a panic.
fn not_gathered(what: &str) -> Missing {
    Missing {
        code: Code::ToolchainNotGathered,
        message: format!("kiln did not look up {what} before planning"),
        help: "this is a fault in kiln; please report it with the recipe".into(),
    }
}

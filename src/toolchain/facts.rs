//! The explicit step that gathers facts about this machine's toolchains before planning: the
//! Rust toolchain's probe, `cargo metadata` of every package a recipe or plan names, the linker
//! and strip program of every target, zig when a workspace or a `c` node compiles C, and the go command for `go` nodes. Planning reads them
//! as values (it spawns no process); building reads the host paths it needs from them (the
//! plan holds none).

use super::rust::{self as cargo, Probe};
use crate::plan::facts::builds_c;
pub use crate::plan::facts::{Facts, Needs, RustNeed};
use std::path::Path;

/// Runs the probes `needs` call for, each once. `root` is where rustup looks for a
/// `rust-toolchain.toml`; `cargo_home` is cargo's home as the environment names it.
pub fn gather(root: &Path, cargo_home: &Path, needs: &Needs) -> Facts {
    let mut facts = Facts::default();
    if needs.go {
        facts.go = Some(super::go::probe());
    }
    if needs.zig {
        facts.zig = Some(super::zig::probe());
    }
    if needs.rust.is_empty() {
        if needs.go || needs.zig {
            facts.isolation = Some(super::Isolation::probe());
        }
        return facts;
    }
    let probe = Probe::detect(root, cargo_home);
    for need in &needs.rust {
        let Ok(probe) = &probe else { break };
        let key = (need.manifest.clone(), need.package.clone());
        if need.manifest.is_file() && !facts.packages.contains_key(&key) {
            facts.packages.insert(key, cargo::find_package(probe, &need.manifest, &need.package));
        }
        let key = (need.platform, need.triple.clone());
        facts.targets.entry(key).or_insert_with(|| cargo::target(need.platform, need.triple.as_deref(), probe));
    }
    // zig only for a workspace that compiles C: hashing it reads its 185 MB once.
    if facts.zig.is_none() && facts.packages.values().any(|p| p.as_ref().is_ok_and(|p| builds_c(&p.workspace_root))) {
        facts.zig = Some(super::zig::probe());
    }
    facts.isolation = Some(probe.as_ref().map(|p| p.isolation).unwrap_or_else(|_| super::Isolation::probe()));
    facts.probe = Some(probe);
    facts
}

//! The explicit step that gathers facts about this machine's toolchains before planning: the
//! Rust toolchain's probe, `cargo metadata` of every package a recipe or plan names, the linker
//! and strip program of every target, zig when a workspace or a `c` node compiles C, and the go command for `go` nodes. Planning reads them
//! as values (it spawns no process); building reads the host paths it needs from them (the
//! plan holds none).

use super::rust::{self as cargo, Probe};
use crate::plan::facts::builds_c;
pub use crate::plan::facts::{Facts, Needs, RustNeed};
use std::collections::{BTreeMap, BTreeSet};
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
    if let Ok(probe) = &probe {
        // `cargo metadata` and the linker and strip probes, side by side: each is a process.
        let packages: BTreeSet<_> = needs
            .rust
            .iter()
            .filter(|n| n.manifest.is_file())
            .map(|n| (n.manifest.clone(), n.package.clone()))
            .collect();
        let targets: BTreeSet<_> = needs.rust.iter().map(|n| (n.platform, n.triple.clone())).collect();
        let (packages, targets) = std::thread::scope(|s| {
            let found = s.spawn(|| {
                packages
                    .into_iter()
                    .map(|(m, p)| {
                        let found = cargo::find_package(probe, &m, &p);
                        ((m, p), found)
                    })
                    .collect::<BTreeMap<_, _>>()
            });
            let targets: BTreeMap<_, _> = targets
                .into_iter()
                .map(|(platform, triple)| {
                    let t = cargo::target(platform, triple.as_deref(), probe);
                    ((platform, triple), t)
                })
                .collect();
            (found.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), targets)
        });
        facts.packages = packages;
        facts.targets = targets;
    }
    // zig only for a workspace that compiles C: hashing it reads its 185 MB once.
    if facts.zig.is_none() && facts.packages.values().any(|p| p.as_ref().is_ok_and(|p| builds_c(&p.workspace_root))) {
        facts.zig = Some(super::zig::probe());
    }
    facts.isolation = Some(probe.as_ref().map(|p| p.isolation).unwrap_or_else(|_| super::Isolation::probe()));
    facts.probe = Some(probe);
    facts
}

//! What planning a recipe will ask of this machine's toolchains, gathered before planning.

use super::{PlanOptions, selected};
use crate::oci::platform::Platform;
use crate::plan::facts::{Needs, RustNeed};
use crate::recipe::{Content, Recipe, RustSpec};
use std::collections::BTreeSet;
use std::path::Path;

/// The toolchain facts planning will read: one need per `rust` node and platform, zig for
/// `c` nodes and the go command for `go` nodes, for [`crate::toolchain::facts::gather`] to
/// look up before [`resolve`].
pub fn needs(recipe: &Recipe, opts: &PlanOptions) -> Needs {
    let mut rust = BTreeSet::new();
    let mut needs = Needs::default();
    for (spec, platforms) in selected(recipe, opts) {
        for c in spec.contents.iter().filter(|_| !platforms.is_empty()) {
            match c {
                Content::Rust(r) => rust.extend(platforms.iter().map(|&p| rust_need(&opts.root, r, p))),
                Content::C(_) => needs.zig = true,
                Content::Go(_) => needs.go = true,
                _ => {}
            }
        }
    }
    needs.rust = rust.into_iter().collect();
    needs
}

fn rust_need(root: &Path, r: &RustSpec, platform: Platform) -> RustNeed {
    let manifest = r.manifest.as_ref().map_or("Cargo.toml", |m| m.value.as_str());
    RustNeed {
        manifest: root.join(manifest),
        package: r.package.value.clone(),
        platform,
        triple: r.targets.iter().find(|(p, _)| *p == platform).map(|(_, t)| t.value.clone()),
    }
}

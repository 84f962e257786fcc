//! The SBOM inventory of one image and platform, gathered from what the build already knows:
//! the plan's entries (files, and which build step made each binary), the compiled binaries,
//! what the toolchain found linked into them (crates, Go modules), the C sources a step
//! compiled, and the Debian packages `kiln.lock` pins for a distroless base.

use super::sbom::{BaseImage, Binary, Crate, DebPackage, FileItem, GoModule, Inventory, SourceFile};
use crate::inputs::debian::lock::Lock;
use crate::plan::{BuildStep, EntryKind, ImagePlan, Plan, PlatformPlan, Step};
use crate::toolchain::cache::Compiled;
use crate::toolchain::inventory::Linked;
use std::collections::BTreeMap;
use std::path::Path;

/// What the build hands the collector beside the plan.
pub struct Gathered<'a> {
    pub plan: &'a Plan,
    /// The recipe's directory (C sources are hashed from it).
    pub root: &'a Path,
    pub compiled: &'a BTreeMap<String, Compiled>,
    /// What each step's binary links, by step id.
    pub linked: &'a BTreeMap<String, Linked>,
    pub lock: Option<&'a Lock>,
}

/// Debian's name for a platform's architecture.
fn debian_arch(p: crate::oci::platform::Platform) -> &'static str {
    match p.arch() {
        "amd64" => "amd64",
        "arm64" => "arm64",
        _ => "armhf",
    }
}

fn base(image: &ImagePlan) -> Option<BaseImage> {
    (image.base != "scratch").then(|| BaseImage {
        reference: image.base.clone(),
        digest: image.base.split_once('@').map(|(_, d)| d.to_string()),
    })
}

/// The inventory of `image` on platform `p`.
pub fn inventory(g: &Gathered<'_>, image: &ImagePlan, p: &PlatformPlan) -> Inventory {
    let steps: BTreeMap<String, Step<'_>> = g.plan.steps().map(|s| (s.id().to_string(), s)).collect();
    let mut inv = Inventory {
        image: image.name.clone(),
        platform: p.platform.to_string(),
        created: crate::plan::rfc3339(g.plan.epoch),
        tool: format!("kiln {}", env!("CARGO_PKG_VERSION")),
        base: base(image),
        binaries: Vec::new(),
        crates: Vec::new(),
        go_modules: Vec::new(),
        c_sources: Vec::new(),
        debian: Vec::new(),
        files: Vec::new(),
    };
    let mut debs = BTreeMap::new();
    for e in p.layers.iter().filter(|l| l.prebuilt.is_none()).flat_map(|l| &l.entries) {
        if e.kind != EntryKind::File {
            continue;
        }
        if let Some(from) = e.from.as_deref().and_then(|f| f.strip_prefix("deb ")) {
            let mut parts = from.split(' ');
            if let (Some(name), Some(version)) = (parts.next(), parts.next()) {
                debs.insert(name.to_string(), version.to_string());
            }
            continue;
        }
        let step = e.build.as_deref().and_then(|id| steps.get(id).map(|s| (id, *s)));
        match (step, e.build.as_deref().and_then(|id| g.compiled.get(id))) {
            (Some((id, step)), Some(c)) => add_binary(g, &mut inv, (&e.path, id, step, c)),
            _ => {
                if let (Some(sha), Some(size)) = (&e.sha256, e.size) {
                    inv.files.push(FileItem { path: e.path.clone(), sha256: sha.clone(), size });
                }
            }
        }
    }
    for (name, version) in debs {
        let locked = g.lock.and_then(|l| l.find(&name, debian_arch(p.platform)));
        inv.debian.push(DebPackage {
            architecture: locked.map(|l| l.architecture.clone()).unwrap_or_else(|| debian_arch(p.platform).into()),
            sha256: locked.map(|l| l.sha256.clone()).unwrap_or_default(),
            source: locked.and_then(|l| l.source.clone()),
            name,
            version,
        });
    }
    inv
}

/// A compiled binary at `path`, with what went into it.
fn add_binary(g: &Gathered<'_>, inv: &mut Inventory, (path, id, step, c): (&str, &str, Step<'_>, &Compiled)) {
    let package = match step {
        Step::Rust(b) => b.package.clone(),
        Step::C(b) => b.name.clone(),
        Step::Go(b) => b.package.clone(),
    };
    inv.binaries.push(Binary {
        path: path.to_string(),
        sha256: c.sha256.clone(),
        language: step.language().into(),
        package,
        version: None,
    });
    if let Some(l) = g.linked.get(id) {
        inv.crates.extend(l.crates.iter().map(|k| Crate {
            name: k.name.clone(),
            version: k.version.clone(),
            license: k.license.clone(),
            source: k.source.clone(),
            checksum: k.checksum.clone(),
            binary: path.to_string(),
        }));
        inv.go_modules.extend(l.go.iter().map(|m| GoModule {
            path: m.path.clone(),
            version: m.version.clone(),
            sum: m.sum.clone(),
            binary: path.to_string(),
        }));
    }
    if let Step::C(b) = step {
        for src in &b.sources {
            let hashed = std::fs::File::open(g.root.join(src)).and_then(crate::oci::digest::sha256_reader);
            if let Ok((sha256, _)) = hashed {
                inv.c_sources.push(SourceFile { path: src.clone(), sha256, binary: path.to_string() });
            }
        }
    }
}

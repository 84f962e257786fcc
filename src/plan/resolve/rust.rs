//! The `rust` node: finds the cargo package and binary, checks the toolchain and the target,
//! hashes the workspace's sources and records one reproducible build per platform.

use super::{Placed, Resolver};
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::oci::platform::Platform;
use crate::plan::facts::Facts;
use crate::plan::facts::{self as cargo, Missing, Package, Probe, Target};
use crate::plan::{Entry, EntryKind, RustBuild};
use crate::recipe::RustSpec;
use miette::SourceSpan;
use std::path::{Path, PathBuf};

/// The cargo manifest a `rust` node builds: as the recipe names it, and joined to the root.
struct Manifest {
    rel: String,
    path: PathBuf,
    span: SourceSpan,
}

impl<'a> Resolver<'a> {
    fn missing(&mut self, span: SourceSpan, m: Missing) {
        let p = Problem::new(m.code, span, m.message.clone()).label("needed here").help(m.help);
        self.once(format!("{}:{}", m.code, m.message), span, p);
    }

    /// A `rust` node for one platform: finds the package and binary, checks the toolchain,
    /// hashes the inputs and records the build.
    pub(super) fn rust(&mut self, spec: &RustSpec, platform: Platform) -> Option<Placed> {
        let pkg_span = spec.package.span;
        let facts: &Facts = self.facts;
        let probe = facts.probe().map_err(|m| self.missing(pkg_span, m)).ok()?;
        let manifest = self.manifest(spec)?;
        let pkg = self.package(spec, &manifest)?;
        let bin = self.bin(spec, pkg)?;
        let lockfile_sha256 = self.lockfile(pkg_span, pkg)?;
        let triple_override = spec.targets.iter().find(|(p, _)| *p == platform).map(|(_, t)| t);
        let target_span = triple_override.map(|t| t.span).unwrap_or(pkg_span);
        let target = facts
            .target(platform, triple_override.map(|t| t.value.as_str()))
            .map_err(|m| self.missing(target_span, m))
            .ok()?;
        let (source_files, sources_sha256) = self.sources(pkg_span, pkg)?;
        let c = c_compiler(facts, pkg, target).map_err(|m| self.missing(pkg_span, m)).ok()?;
        let mut build = RustBuild {
            id: String::new(),
            package: spec.package.value.clone(),
            bin: bin.clone(),
            manifest: manifest.rel.clone(),
            workspace: relative(self.root, &pkg.workspace_root),
            platform,
            triple: target.triple.clone(),
            profile: spec.profile.clone(),
            features: spec.features.clone(),
            no_default_features: spec.no_default_features,
            rustflags: Vec::new(),
            linker: String::new(),
            strip: String::new(),
            rustc: String::new(),
            cargo: String::new(),
            lockfile_sha256,
            source_files,
            sources_sha256,
            network: probe.isolation,
            require_static: true,
            c_compiler: None,
        };
        machine(&mut build, probe, target, c);
        seal(&mut build, self.epoch);
        let dest = spec.dest.as_ref().map(|d| d.value.clone()).unwrap_or_else(|| format!("/usr/local/bin/{bin}"));
        let entry = binary_entry(dest, build.id.clone());
        let layer = (
            format!("rust {}/{bin}", spec.package.value),
            format!("kiln: rust {} --bin {bin} --target {}", spec.package.value, target.triple),
        );
        if !self.rust.iter().any(|b| b.id == build.id) {
            self.rust.push(build);
        }
        Some(Placed { entries: vec![entry], layer: Some(layer), share: None })
    }

    /// The node's cargo manifest, which must exist.
    fn manifest(&mut self, spec: &RustSpec) -> Option<Manifest> {
        let (rel, span) = match &spec.manifest {
            Some(m) => (m.value.clone(), m.span),
            None => ("Cargo.toml".to_string(), spec.package.span),
        };
        let path = self.root.join(&rel);
        if !path.is_file() {
            let m = Missing {
                code: Code::PlanMissingManifest,
                message: format!("no cargo manifest at `{rel}`"),
                help: format!(
                    "put the recipe beside Cargo.toml, or name it: `manifest \"path/Cargo.toml\"` (relative to {})",
                    self.root.display()
                ),
            };
            self.missing(span, m);
            return None;
        }
        Some(Manifest { rel, path, span })
    }

    /// The package the node names (from the facts' cargo_metadata), whose workspace must be
    /// inside the recipe's directory.
    fn package(&mut self, spec: &RustSpec, manifest: &Manifest) -> Option<&'a Package> {
        let facts: &'a Facts = self.facts;
        let pkg =
            facts.package(&manifest.path, &spec.package.value).map_err(|m| self.missing(spec.package.span, m)).ok()?;
        // The binary is made from the workspace's sources: they must all be the project's.
        let workspace = std::fs::canonicalize(&pkg.workspace_root).unwrap_or_else(|_| pkg.workspace_root.clone());
        if !workspace.starts_with(&self.real_root) {
            let m = Missing {
                code: Code::RecipeSourceOutside,
                message: format!(
                    "the cargo workspace of `{}` is {}, outside the recipe's directory",
                    manifest.rel,
                    workspace.display()
                ),
                help: format!(
                    "put kiln.kdl at the workspace root ({}) and name the package's manifest with `manifest`",
                    workspace.display()
                ),
            };
            self.missing(manifest.span, m);
            return None;
        }
        Some(pkg)
    }

    /// The binary to build: the one the node names, the package's only one, or its default-run.
    fn bin(&mut self, spec: &RustSpec, pkg: &Package) -> Option<String> {
        match &spec.bin {
            Some(b) if pkg.bins.contains(&b.value) => Some(b.value.clone()),
            Some(b) => {
                let m = Missing {
                    code: Code::PlanUnknownBin,
                    message: format!("package `{}` has no binary `{}`", spec.package.value, b.value),
                    help: format!("its binaries: {}", pkg.bins.join(", ")),
                };
                self.missing(b.span, m);
                None
            }
            None if pkg.bins.len() == 1 => Some(pkg.bins[0].clone()),
            None => match &pkg.default_run {
                Some(d) => Some(d.clone()),
                None => {
                    let m = Missing {
                        code: Code::PlanUnknownBin,
                        message: format!("package `{}` has {} binaries; say which", spec.package.value, pkg.bins.len()),
                        help: format!("add `bin \"NAME\"` with one of: {}", pkg.bins.join(", ")),
                    };
                    self.missing(spec.package.span, m);
                    None
                }
            },
        }
    }

    /// The sha256 of the workspace's Cargo.lock, which must exist: kiln builds with --locked.
    fn lockfile(&mut self, span: SourceSpan, pkg: &Package) -> Option<String> {
        let Ok(lock_sha) = lockfile_sha256(pkg) else {
            let m = Missing {
                code: Code::PlanMissingLockfile,
                message: format!("`{}` has no Cargo.lock", pkg.workspace_root.display()),
                help: format!(
                    "kiln builds with --locked: run `cargo generate-lockfile` in {} and commit Cargo.lock",
                    pkg.workspace_root.display()
                ),
            };
            self.missing(span, m);
            return None;
        };
        Some(lock_sha)
    }

    /// The number and hash of the workspace's source files, hashed once per workspace.
    fn sources(&mut self, span: SourceSpan, pkg: &Package) -> Option<(usize, String)> {
        if !self.sources.contains_key(&pkg.workspace_root) {
            match hash_workspace(pkg, self.cache_dir.as_deref(), self.fingerprints) {
                Ok(h) => {
                    self.sources.insert(pkg.workspace_root.clone(), h);
                }
                Err(e) => {
                    let m = Missing {
                        code: Code::PlanUnreadableSource,
                        message: format!("cannot read the sources of {}: {e}", pkg.workspace_root.display()),
                        help: "check the files' permissions".into(),
                    };
                    self.missing(span, m);
                    return None;
                }
            }
        }
        Some(self.sources[&pkg.workspace_root].clone())
    }
}

/// `path` relative to the recipe's directory (`.` for the directory itself), as the plan
/// records it: no host paths.
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let rel = path
        .strip_prefix(&root)
        .map(|r| r.to_string_lossy().into_owned())
        .unwrap_or_else(|_| path.to_string_lossy().into_owned());
    if rel.is_empty() { ".".into() } else { rel }
}

/// The sha256 of the workspace's Cargo.lock.
pub(crate) fn lockfile_sha256(pkg: &Package) -> std::io::Result<String> {
    std::fs::File::open(pkg.workspace_root.join("Cargo.lock"))
        .and_then(crate::oci::digest::sha256_reader)
        .map(|(s, _)| s)
}

/// The number and hash of the workspace's source files, cargo's target directory and kiln's
/// cache left out.
pub(crate) fn hash_workspace(
    pkg: &Package,
    cache_dir: Option<&Path>,
    fp: &crate::store::fingerprint::Fingerprints,
) -> std::io::Result<(usize, String)> {
    let mut skip = vec![pkg.target_directory.clone()];
    skip.extend(cache_dir.map(Path::to_path_buf));
    cargo::hash_sources(&pkg.workspace_root, &skip, fp)
}

/// The C compiler a build's scripts get, as the plan records it: none unless the workspace
/// compiles C ([`cargo::builds_c`]); zig for the musl targets, the target's gcc for glibc.
pub(crate) fn c_compiler(facts: &Facts, pkg: &Package, target: &Target) -> Result<Option<String>, Missing> {
    if !cargo::builds_c(&pkg.workspace_root) {
        return Ok(None);
    }
    if target.triple.contains("-musl") {
        let zig = facts.zig()?;
        let to = cargo::zig_target(&target.triple);
        Ok(Some(format!("zig cc {} (sha256 {}) -target {to}", zig.version, zig.sha256)))
    } else {
        Ok(Some(target.linker_desc.clone()))
    }
}

/// The fields of a build that describe this machine's toolchain for its target.
pub(crate) fn machine(build: &mut RustBuild, probe: &Probe, target: &Target, c_compiler: Option<String>) {
    build.c_compiler = c_compiler;
    build.rustflags = rustflags(target);
    build.linker = target.linker_desc.clone();
    build.strip = target.strip_desc.clone();
    build.rustc = probe.rustc_version.clone();
    build.cargo = probe.cargo_version.clone();
    build.network = probe.isolation;
}

/// Sets the build's id: the hash of kiln's version, the epoch and every other field.
pub(crate) fn seal(build: &mut RustBuild, epoch: u64) {
    build.id = String::new();
    build.id = crate::plan::steps::seal(&*build, epoch);
}

/// The target's link flags, and the host paths remapped to fixed ones.
fn rustflags(target: &Target) -> Vec<String> {
    let mut rustflags = target.link_flags.clone();
    for (var, to) in [
        ("workspace", "/kiln/src"),
        ("cargo_home", "/kiln/cargo"),
        ("sysroot", "/kiln/rust"),
        ("target_dir", "/kiln/target"),
    ] {
        rustflags.push(format!("--remap-path-prefix=${{{var}}}={to}"));
    }
    rustflags
}

/// The binary's entry: its bytes come from the build `id`.
pub(super) fn binary_entry(path: String, id: String) -> Entry {
    Entry {
        path,
        kind: EntryKind::File,
        mode: 0o755,
        uid: 0,
        gid: 0,
        size: None,
        sha256: None,
        source: None,
        content: None,
        target: None,
        build: Some(id),
        from: None,
    }
}

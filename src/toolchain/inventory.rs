//! What went into each compiled binary, for the SBOMs: the crates cargo links into a Rust
//! binary (`cargo metadata`, offline and locked, for the step's target and features, with
//! `Cargo.lock`'s checksums) and the modules the go command records in a Go binary
//! (`go version -m`). Kept in the toolchain stage because it runs cargo and go.

use crate::error::ToolchainError;
use crate::plan::RustBuild;
use crate::plan::facts::Facts;
use cargo_metadata::{CargoOpt, DependencyKind, MetadataCommand, PackageId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;
use std::process::Command;

/// A crate linked into a binary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LinkedCrate {
    pub name: String,
    pub version: String,
    pub license: Option<String>,
    /// `registry+https://…`, `git+…`; `None` for a crate of the workspace or a path.
    pub source: Option<String>,
    /// `Cargo.lock`'s sha256 of the crate's archive.
    pub checksum: Option<String>,
}

/// A module the go command linked into a binary.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct GoModule {
    pub path: String,
    pub version: String,
    /// `h1:…`, as `go.sum` holds it.
    pub sum: Option<String>,
}

/// What one step's binary links.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Linked {
    pub crates: Vec<LinkedCrate>,
    pub go: Vec<GoModule>,
}

fn failed(what: &str, reason: impl std::fmt::Display) -> ToolchainError {
    ToolchainError::Missing {
        what: what.to_string(),
        message: format!("cannot list what went into it: {reason}"),
        help: "run `kiln fetch` first: kiln lists a binary's dependencies offline".into(),
    }
}

/// `Cargo.lock`'s checksums by (name, version).
fn lock_checksums(lock: &str) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for block in lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            block.lines().find_map(|l| {
                let (k, v) = l.split_once(" = ")?;
                (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
            })
        };
        if let (Some(n), Some(v), Some(c)) = (field("name"), field("version"), field("checksum")) {
            out.insert((n, v), c);
        }
    }
    out
}

/// The crates linked into the binary of `step`: the package and everything its normal
/// dependencies reach for the step's target and features.
pub fn rust_crates(step: &RustBuild, root: &Path, facts: &Facts) -> Result<Vec<LinkedCrate>, ToolchainError> {
    let what = format!("{} (bin {}) for {}", step.package, step.bin, step.platform);
    let probe = facts.probe().map_err(|m| failed(&what, m.message))?;
    let mut cmd = MetadataCommand::new();
    cmd.cargo_path(&probe.cargo)
        .manifest_path(root.join(&step.manifest))
        .env("CARGO_HOME", &probe.cargo_home)
        .other_options(vec!["--locked".into(), "--offline".into(), "--filter-platform".into(), step.triple.clone()]);
    if step.no_default_features {
        cmd.features(CargoOpt::NoDefaultFeatures);
    }
    if !step.features.is_empty() {
        cmd.features(CargoOpt::SomeFeatures(step.features.clone()));
    }
    let meta = cmd.exec().map_err(|e| failed(&what, e.to_string().trim().to_string()))?;
    let resolve = meta.resolve.as_ref().ok_or_else(|| failed(&what, "cargo metadata resolved nothing"))?;
    let nodes: BTreeMap<&PackageId, &cargo_metadata::Node> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let start = meta
        .workspace_packages()
        .into_iter()
        .find(|p| p.name.as_str() == step.package)
        .map(|p| p.id.clone())
        .ok_or_else(|| failed(&what, format!("no package {} in the workspace", step.package)))?;
    let (mut seen, mut queue) = (BTreeSet::from([start.clone()]), VecDeque::from([start]));
    while let Some(id) = queue.pop_front() {
        let Some(node) = nodes.get(&id) else { continue };
        for d in &node.deps {
            let linked = d.dep_kinds.iter().any(|k| k.kind == DependencyKind::Normal);
            if linked && seen.insert(d.pkg.clone()) {
                queue.push_back(d.pkg.clone());
            }
        }
    }
    let lock = std::fs::read_to_string(root.join(&step.workspace).join("Cargo.lock")).unwrap_or_default();
    let sums = lock_checksums(&lock);
    let mut out: Vec<LinkedCrate> = meta
        .packages
        .iter()
        .filter(|p| seen.contains(&p.id))
        .map(|p| LinkedCrate {
            name: p.name.to_string(),
            version: p.version.to_string(),
            license: p.license.clone(),
            source: p.source.as_ref().map(|s| s.repr.clone()),
            checksum: sums.get(&(p.name.to_string(), p.version.to_string())).cloned(),
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The modules `go version -m` reads from the Go binary `binary` (replacements as they
/// replace); the main module is left out.
pub fn go_modules(binary: &Path, facts: &Facts) -> Result<Vec<GoModule>, ToolchainError> {
    let what = binary.display().to_string();
    let go = facts.go().map_err(|m| failed(&what, m.message))?;
    let out = Command::new(&go.path)
        .args(["version", "-m"])
        .arg(binary)
        .env("GOTOOLCHAIN", "local")
        .output()
        .map_err(|e| failed(&what, e))?;
    if !out.status.success() {
        return Err(failed(&what, String::from_utf8_lossy(&out.stderr).trim().to_string()));
    }
    Ok(parse_go_version_m(&String::from_utf8_lossy(&out.stdout)))
}

/// The `dep` lines (and the `=>` replacement after one) of `go version -m`.
fn parse_go_version_m(text: &str) -> Vec<GoModule> {
    let mut out: Vec<GoModule> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\t').map(str::trim).filter(|s| !s.is_empty()).collect();
        match f.as_slice() {
            ["dep", path, version, rest @ ..] => out.push(GoModule {
                path: path.to_string(),
                version: version.to_string(),
                sum: rest.first().map(|s| s.to_string()),
            }),
            ["=>", path, version, rest @ ..] => {
                if let Some(last) = out.last_mut() {
                    *last = GoModule {
                        path: path.to_string(),
                        version: version.to_string(),
                        sum: rest.first().map(|s| s.to_string()),
                    };
                }
            }
            _ => {}
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_version_m_lists_deps_and_their_replacements() {
        let text = "bin: go1.19.8\n\tpath\texample.com/agent\n\tmod\texample.com/agent\t(devel)\t\n\tdep\tgolang.org/x/text\tv0.3.0\th1:abc=\n\tdep\texample.com/old\tv1.0.0\n\t=>\texample.com/new\tv1.1.0\th1:def=\n\tbuild\tCGO_ENABLED=0\n";
        let m = parse_go_version_m(text);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0],
            GoModule { path: "example.com/new".into(), version: "v1.1.0".into(), sum: Some("h1:def=".into()) }
        );
        assert_eq!(m[1].path, "golang.org/x/text");
    }

    #[test]
    fn cargo_lock_checksums_by_name_and_version() {
        let lock = "version = 4\n\n[[package]]\nname = \"itoa\"\nversion = \"1.0.15\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"4a5f\"\n\n[[package]]\nname = \"hello\"\nversion = \"0.1.0\"\ndependencies = [\n \"itoa\",\n]\n";
        let sums = lock_checksums(lock);
        assert_eq!(sums.get(&("itoa".into(), "1.0.15".into())).map(String::as_str), Some("4a5f"));
        assert_eq!(sums.len(), 1);
    }
}

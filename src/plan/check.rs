//! A saved plan checked against this machine before it is built (`kiln build --plan`): every
//! input it recorded is looked at again (source files, Rust workspaces and lockfiles, the
//! toolchain of each build step), and any difference is named. Like a recipe, a plan may
//! name only files inside the recipe's directory.

use super::resolve::rust::{hash_workspace, lockfile_sha256, machine, relative, seal};
use super::{Plan, RustBuild};
use crate::toolchain::facts::{Facts, RustNeed};
use std::collections::BTreeSet;
use std::path::Path;

/// The toolchain facts building `plan` needs, for [`crate::toolchain::facts::gather`].
pub fn plan_needs(plan: &Plan, root: &Path) -> Vec<RustNeed> {
    let needs: BTreeSet<RustNeed> = plan
        .rust
        .iter()
        .map(|b| RustNeed {
            manifest: root.join(&b.manifest),
            package: b.package.clone(),
            platform: b.platform,
            triple: Some(b.triple.clone()),
        })
        .collect();
    needs.into_iter().collect()
}

/// What no longer matches between `plan` and the files and toolchains here, one line each;
/// empty when the plan can be built as it is.
pub fn changes(plan: &Plan, root: &Path, facts: &Facts, cache_dir: Option<&Path>) -> Vec<String> {
    let real_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let inside = |rel: &str| -> Result<std::path::PathBuf, String> {
        let path = root.join(rel);
        let real = std::fs::canonicalize(&path).map_err(|e| format!("`{rel}`: cannot read it: {e}"))?;
        match real.starts_with(&real_root) {
            true => Ok(real),
            false => Err(format!("`{rel}` is outside the recipe's directory ({})", real_root.display())),
        }
    };
    let mut out = Vec::new();
    for b in &plan.rust {
        if let Err(e) = inside(&b.manifest) {
            out.push(format!("rust build {}: {e}", b.package));
            continue;
        }
        rust_changes(b, plan.epoch, root, facts, cache_dir, &mut out);
    }
    let mut seen = BTreeSet::new();
    for layer in plan.images.iter().flat_map(|i| &i.platforms).flat_map(|p| &p.layers) {
        if let Some(p) = &layer.prebuilt
            && seen.insert(p.layout.clone())
            && let Err(e) = inside(&p.layout)
        {
            out.push(format!("base layout {e}"));
        }
        for e in &layer.entries {
            let (Some(source), Some(sha)) = (&e.source, &e.sha256) else { continue };
            if !seen.insert(source.clone()) {
                continue;
            }
            match inside(source).and_then(|p| {
                std::fs::File::open(&p).and_then(crate::digest::sha256_reader).map_err(|e| format!("`{source}`: {e}"))
            }) {
                Ok((now, size)) if now == *sha && Some(size) == e.size => {}
                Ok((now, size)) => out.push(format!(
                    "source `{source}`: recorded sha256:{sha} ({} bytes), now sha256:{now} ({size} bytes)",
                    e.size.unwrap_or(0)
                )),
                Err(e) => out.push(format!("source {e}")),
            }
        }
    }
    out
}

/// The differences between a recorded Rust build step and the same step made again here.
fn rust_changes(b: &RustBuild, epoch: u64, root: &Path, facts: &Facts, cache: Option<&Path>, out: &mut Vec<String>) {
    let what = format!("rust build {} (bin {}) for {}", b.package, b.bin, b.platform);
    let found = facts.probe().and_then(|probe| {
        let pkg = facts.package(&root.join(&b.manifest), &b.package)?;
        Ok((probe, pkg, facts.target(b.platform, Some(&b.triple))?))
    });
    let (probe, pkg, target) = match found {
        Ok(f) => f,
        Err(m) => return out.push(format!("{what}: {}", m.message)),
    };
    let mut now = b.clone();
    now.workspace = relative(root, &pkg.workspace_root);
    match lockfile_sha256(pkg) {
        Ok(sha) => now.lockfile_sha256 = sha,
        Err(e) => return out.push(format!("{what}: cannot read Cargo.lock: {e}")),
    }
    match hash_workspace(pkg, cache) {
        Ok((files, sha)) => (now.source_files, now.sources_sha256) = (files, sha),
        Err(e) => return out.push(format!("{what}: cannot read its sources: {e}")),
    }
    machine(&mut now, probe, target);
    seal(&mut now, epoch);
    let (was, is) = (serde_json::to_value(b), serde_json::to_value(&now));
    let (Ok(serde_json::Value::Object(was)), Ok(serde_json::Value::Object(is))) = (was, is) else { return };
    let mut differ = false;
    for (field, recorded) in &was {
        let current = is.get(field).unwrap_or(&serde_json::Value::Null);
        if field != "id" && recorded != current {
            differ = true;
            out.push(format!("{what}: {field} was {recorded}, is now {current}"));
        }
    }
    if !differ && b.id != now.id {
        out.push(format!("{what}: its id was {}, is now {} (another kiln version?)", b.id, now.id));
    }
}

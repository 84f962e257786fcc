//! A saved plan checked against this machine before it is built (`kiln build --plan`): every
//! input it recorded is looked at again (source files, Rust workspaces and lockfiles, the
//! toolchain of each build step), and any difference is named. Like a recipe, a plan may
//! name only files inside the recipe's directory.

use super::resolve::rust::{c_compiler, hash_workspace, lockfile_sha256, machine, relative, seal};
use super::{Plan, RustBuild};
use crate::plan::facts::{Facts, Needs, RustNeed};
use std::collections::BTreeSet;
use std::path::Path;

/// The toolchain facts building `plan` needs, for [`crate::toolchain::facts::gather`].
pub fn plan_needs(plan: &Plan, root: &Path) -> Needs {
    let rust: BTreeSet<RustNeed> = plan
        .rust
        .iter()
        .map(|b| RustNeed {
            manifest: root.join(&b.manifest),
            package: b.package.clone(),
            platform: b.platform,
            triple: Some(b.triple.clone()),
        })
        .collect();
    Needs { rust: rust.into_iter().collect(), zig: !plan.c.is_empty(), go: !plan.go.is_empty() }
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
    out.extend(super::steps_check::c_changes(plan, &real_root, facts, cache_dir));
    out.extend(super::steps_check::go_changes(plan, root, &real_root, facts, cache_dir));
    let mut seen = BTreeSet::new();
    for layer in plan.images.iter().flat_map(|i| &i.platforms).flat_map(|p| &p.layers) {
        if let Some(p) = &layer.prebuilt
            && p.registry.is_none()
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
                std::fs::File::open(&p)
                    .and_then(crate::oci::digest::sha256_reader)
                    .map_err(|e| format!("`{source}`: {e}"))
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
        let target = facts.target(b.platform, Some(&b.triple))?;
        Ok((probe, pkg, target, c_compiler(facts, pkg, target)?))
    });
    let (probe, pkg, target, c) = match found {
        Ok(f) => f,
        Err(m) => return out.push(format!("{what}: {}", m.message)),
    };
    let mut now = b.clone();
    now.workspace = relative(root, &pkg.workspace_root);
    match lockfile_sha256(pkg) {
        Ok(sha) => now.lockfile_sha256 = sha,
        Err(e) => return out.push(format!("{what}: cannot read Cargo.lock: {e}")),
    }
    match hash_workspace(pkg, cache, &Default::default()) {
        Ok((files, sha)) => (now.source_files, now.sources_sha256) = (files, sha),
        Err(e) => return out.push(format!("{what}: cannot read its sources: {e}")),
    }
    machine(&mut now, probe, target, c);
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

/// Checks that a plan read back is one kiln could have made: ids that hash what they stand
/// for, entries a layer can hold, values in the ranges a recipe allows. A saved plan is input
/// like a recipe; this keeps a hand-made or damaged one from reaching the layer writer.
pub fn shape(plan: &Plan) -> Result<(), String> {
    if plan.epoch > crate::recipe::MAX_EPOCH {
        return Err(format!("epoch {} is past {}", plan.epoch, crate::recipe::MAX_EPOCH));
    }
    match plan.compression {
        crate::recipe::Compression::Gzip { level, .. } if level > 9 => {
            return Err(format!("gzip level {level} is not 0-9"));
        }
        crate::recipe::Compression::Zstd { level, .. } if !(0..=19).contains(&level) => {
            return Err(format!("zstd level {level} is not 0-19"));
        }
        _ => {}
    }
    let mut steps = BTreeSet::new();
    for b in &plan.rust {
        let mut again = b.clone();
        seal(&mut again, plan.epoch);
        if again.id != b.id || !steps.insert(b.id.as_str()) {
            return Err(format!(
                "rust build {} for {}: its id does not hash its inputs, or is repeated",
                b.package, b.platform
            ));
        }
    }
    super::steps_check::shapes(plan, &mut steps)?;
    let mut names = BTreeSet::new();
    for image in &plan.images {
        if image.name.is_empty() || !names.insert(image.name.as_str()) {
            return Err(format!("image name `{}` is empty or repeated", image.name));
        }
        let mut platforms = BTreeSet::new();
        for p in &image.platforms {
            if !platforms.insert(p.platform) {
                return Err(format!("image `{}` lists {} twice", image.name, p.platform));
            }
            let mut ids = BTreeSet::new();
            for l in &p.layers {
                let what = format!("image `{}` {} layer `{}`", image.name, p.platform, l.name);
                if !ids.insert(l.id.as_str()) {
                    return Err(format!("{what}: its id {} is repeated", l.id));
                }
                layer_shape(l, plan, &steps).map_err(|e| format!("{what}: {e}"))?;
            }
        }
    }
    Ok(())
}

fn layer_shape(l: &super::LayerPlan, plan: &Plan, steps: &BTreeSet<&str>) -> Result<(), String> {
    if l.prebuilt.is_some() {
        return match l.entries.is_empty() {
            true => Ok(()),
            false => Err("a base layer lists entries".into()),
        };
    }
    for e in &l.entries {
        entry_shape(e, steps).map_err(|why| format!("entry `{}`: {why}", crate::diag::shown(&e.path)))?;
    }
    let identity: Vec<super::Entry> =
        l.entries.iter().cloned().map(|e| super::Entry { source: None, from: None, ..e }).collect();
    let id =
        crate::oci::digest::sha256_hex(&crate::oci::canonical::to_vec(&(&plan.compression, plan.epoch, &identity)));
    match id == l.id {
        true => Ok(()),
        false => Err(format!("its id {} does not hash its entries ({id})", l.id)),
    }
}

fn entry_shape(e: &super::Entry, steps: &BTreeSet<&str>) -> Result<(), String> {
    use super::EntryKind;
    let path = e.path.trim_end_matches('/');
    let parts_ok = path.split('/').skip(1).all(|c| !c.is_empty() && c != "." && c != "..");
    if !e.path.starts_with('/') || path.is_empty() || !parts_ok || e.path.contains('\0') {
        return Err("not an absolute, normal path".into());
    }
    if e.mode > 0o7777 {
        return Err(format!("mode {:o} is more than 7777", e.mode));
    }
    if (e.kind == EntryKind::Dir) != e.path.ends_with('/') {
        return Err("a directory's path ends in `/`, and only a directory's".into());
    }
    let hex =
        |s: &Option<String>| s.as_deref().is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let origins = [e.source.is_some(), e.content.is_some(), e.build.is_some(), e.from.is_some()];
    match e.kind {
        // A link copied from the project records where it was found (`source`), never contents.
        EntryKind::Dir if origins[..3].contains(&true) || e.sha256.is_some() => Err("only a file has contents".into()),
        EntryKind::Symlink if origins[1..3].contains(&true) || e.sha256.is_some() || e.size.is_some() => {
            Err("only a file has contents".into())
        }
        EntryKind::Symlink if e.target.as_deref().is_none_or(|t| t.is_empty() || t.contains('\0')) => {
            Err("a symlink needs a target".into())
        }
        EntryKind::File
            if origins[..3].iter().filter(|o| **o).count() + usize::from(origins[..3] == [false; 3] && origins[3])
                != 1
                || e.target.is_some() =>
        {
            Err("a file comes from one source, inline content, a build step or a base package".into())
        }
        EntryKind::File if e.build.as_deref().is_some_and(|b| !steps.contains(b)) => {
            Err("it is built by a step the plan does not have".into())
        }
        EntryKind::File if e.build.is_none() && (!hex(&e.sha256) || e.size.is_none()) => {
            Err("a file needs its sha256 and size".into())
        }
        EntryKind::File => match &e.content {
            Some(c)
                if Some(crate::oci::digest::sha256_hex(c.as_bytes())) != e.sha256 || Some(c.len() as u64) != e.size =>
            {
                Err("its sha256 or size is not that of its content".into())
            }
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

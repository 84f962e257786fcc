//! A saved plan's C and Go steps checked again (`kiln build --plan`): each step's inputs
//! hashed again and its compiler looked at again, and each id checked to hash its step.

use super::facts::Facts;
use super::resolve::c::c_inputs_hash;
use super::steps::seal;
use super::{CBuild, GoBuild, Plan};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;

/// A step as recorded and as made again here, field by field: one line per difference.
fn differences<T: Serialize>(what: &str, was: &T, is: &T, out: &mut Vec<String>) {
    let (Ok(serde_json::Value::Object(was)), Ok(serde_json::Value::Object(is))) =
        (serde_json::to_value(was), serde_json::to_value(is))
    else {
        return;
    };
    for (field, recorded) in &was {
        let current = is.get(field).unwrap_or(&serde_json::Value::Null);
        if field != "id" && recorded != current {
            out.push(format!("{what}: {field} was {recorded}, is now {current}"));
        }
    }
}

/// Paths a saved plan names must stay inside the recipe's directory.
fn inside(real_root: &Path, rel: &str) -> Result<(), String> {
    let real = std::fs::canonicalize(real_root.join(rel)).map_err(|e| format!("`{rel}`: {e}"))?;
    match real.starts_with(real_root) {
        true => Ok(()),
        false => Err(format!("`{rel}` is outside the recipe's directory")),
    }
}

/// What no longer matches for the plan's C steps.
pub(super) fn c_changes(plan: &Plan, real_root: &Path, facts: &Facts, cache: Option<&Path>) -> Vec<String> {
    let mut out = Vec::new();
    for b in &plan.c {
        let what = format!("C program {} for {}", b.name, b.platform);
        if let Some(e) = b.sources.iter().chain(&b.include).find_map(|p| inside(real_root, p).err()) {
            out.push(format!("{what}: {e}"));
            continue;
        }
        let mut now = b.clone();
        match facts.zig() {
            Ok(z) => now.compiler = format!("zig cc {} (sha256 {})", z.version, z.sha256),
            Err(m) => {
                out.push(format!("{what}: {}", m.message));
                continue;
            }
        }
        match c_inputs_hash(real_root, cache, &b.sources, &b.include, &Default::default()) {
            Ok((n, sha)) => (now.input_files, now.inputs_sha256) = (n, sha),
            Err(e) => {
                out.push(format!("{what}: cannot read its sources: {e}"));
                continue;
            }
        }
        differences(&what, b, &now, &mut out);
    }
    out
}

/// What no longer matches for the plan's Go steps.
pub(super) fn go_changes(
    plan: &Plan,
    root: &Path,
    real_root: &Path,
    facts: &Facts,
    cache: Option<&Path>,
) -> Vec<String> {
    let mut out = Vec::new();
    for b in &plan.go {
        let what = format!("Go program {} for {}", b.name, b.platform);
        if let Err(e) = inside(real_root, &b.module) {
            out.push(format!("{what}: {e}"));
            continue;
        }
        let mut now = b.clone();
        match facts.go() {
            Ok(g) => now.go = format!("{} (sha256 {})", g.version, g.sha256),
            Err(m) => {
                out.push(format!("{what}: {}", m.message));
                continue;
            }
        }
        let module = root.join(&b.module);
        let skip: Vec<_> = cache.and_then(|c| std::fs::canonicalize(c).ok()).into_iter().collect();
        match super::facts::hash_sources(
            &std::fs::canonicalize(&module).unwrap_or(module.clone()),
            &skip,
            &Default::default(),
        ) {
            Ok((n, sha)) => (now.source_files, now.sources_sha256) = (n, sha),
            Err(e) => {
                out.push(format!("{what}: cannot read its module: {e}"));
                continue;
            }
        }
        now.mod_mode = if module.join("vendor").is_dir() { "vendor" } else { "readonly" }.into();
        differences(&what, b, &now, &mut out);
    }
    out
}

/// Each C and Go step's id hashes the step, and no id is repeated; `steps` gathers the ids.
pub(super) fn shapes<'p>(plan: &'p Plan, steps: &mut BTreeSet<&'p str>) -> Result<(), String> {
    fn check<'p, T: Serialize + Clone>(
        b: &'p T,
        id: &'p str,
        clear: impl Fn(&mut T),
        what: String,
        epoch: u64,
        steps: &mut BTreeSet<&'p str>,
    ) -> Result<(), String> {
        let mut again = b.clone();
        clear(&mut again);
        if seal(&again, epoch) != id || !steps.insert(id) {
            return Err(format!("{what}: its id does not hash its inputs, or is repeated"));
        }
        Ok(())
    }
    for b in &plan.c {
        let what = format!("C program {} for {}", b.name, b.platform);
        check(b, &b.id, |s: &mut CBuild| s.id.clear(), what, plan.epoch, steps)?;
        c_step_shape(b)?;
    }
    for b in &plan.go {
        let what = format!("Go program {} for {}", b.name, b.platform);
        check(b, &b.id, |s: &mut GoBuild| s.id.clear(), what, plan.epoch, steps)?;
        let name_ok = !b.name.is_empty() && !b.name.contains(['/', '\0']) && b.name != "." && b.name != "..";
        let flags_ok =
            b.ldflags.starts_with(super::resolve::go::GO_LDFLAGS) && crate::recipe::go_ldflags_ok(&b.ldflags);
        let tags_ok =
            b.tags.iter().all(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || "._".contains(c)));
        let target_ok = b.target == "." || b.target.starts_with("./") && !b.target.split('/').any(|c| c == "..");
        if !name_ok || !flags_ok || !tags_ok || !target_ok || !["vendor", "readonly"].contains(&b.mod_mode.as_str()) {
            return Err(format!("Go program {:?}: not a name or module mode kiln records", b.name));
        }
    }
    Ok(())
}

/// A C step's name is a file name, and its paths stay relative and inside.
fn c_step_shape(b: &CBuild) -> Result<(), String> {
    let name_ok = !b.name.is_empty() && !b.name.contains(['/', '\0']) && b.name != "." && b.name != "..";
    let rel_ok = |p: &String| !p.is_empty() && !p.starts_with('/') && !p.split('/').any(|c| c == "..");
    if !name_ok || !b.sources.iter().chain(&b.include).all(rel_ok) {
        return Err(format!("C program {:?}: its name or paths are not ones kiln records", b.name));
    }
    for a in &b.args {
        let own = ["-static", "-g0", "-s", "-O2", super::resolve::c::ARMV7_CPU, super::resolve::c::PREFIX_MAP]
            .contains(&a.as_str());
        let ok = own
            || a.strip_prefix("-D").is_some_and(crate::recipe::c_define_ok)
            || a.strip_prefix("-l").is_some_and(crate::recipe::c_lib_ok)
            || crate::recipe::refused_c_flag(a).is_none();
        if !ok {
            return Err(format!("C program {:?}: argument {a:?} is not one kiln passes", b.name));
        }
    }
    Ok(())
}

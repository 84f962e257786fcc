//! A plan cut into shards, for builds spread over CI runners: a shard is a set of the plan's
//! distinct layers and the build steps their binaries come from. Steps whose binaries share a
//! layer stay in one shard, so no binary is compiled twice; a layer with no binary in it (base
//! files, copied sources) goes to one shard only. Cutting is a pure function of the plan, so
//! every runner given the same plan and shard id builds the same part, and `kiln merge` knows
//! from any one shard which others must be there.
//!
//! Shard ids say how the plan was cut: a platform (`linux-arm64`: by platform), a step
//! (`rust-api-linux-amd64`, and `files` for the layers without binaries: by step) or a count
//! (`2of3`: three shards balanced by an estimate of their work, some possibly empty).

use super::{BuildStep, Plan};
use crate::oci::platform::Platform;
use std::collections::BTreeMap;

/// How a plan is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// One shard per platform.
    Platform,
    /// One shard per step (steps sharing a layer together), and one for the other layers.
    Step,
    /// This many shards, balanced by estimated work.
    Count(usize),
}

/// The most shards `--shards` makes (GitLab runs at most 200 jobs of one matrix).
pub const MAX_SHARDS: usize = 200;

/// One part of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    pub id: String,
    /// The distinct layers it builds, by id, in plan order.
    pub layers: Vec<String>,
    /// The build steps those layers need, by id, in plan order.
    pub steps: Vec<String>,
}

/// Layers (by id, in plan order) and the steps connected through them.
struct Unit {
    layers: Vec<String>,
    steps: Vec<String>,
    platform: Platform,
}

/// The distinct layers in plan order, each with the platform that first uses it and the
/// build steps its entries name.
fn layers(plan: &Plan) -> Vec<(String, Platform, Vec<String>)> {
    let mut out: Vec<(String, Platform, Vec<String>)> = Vec::new();
    for p in plan.images.iter().flat_map(|i| &i.platforms) {
        for l in &p.layers {
            if out.iter().any(|(id, _, _)| *id == l.id) {
                continue;
            }
            let mut steps: Vec<String> = Vec::new();
            for b in l.entries.iter().filter_map(|e| e.build.as_ref()) {
                if !steps.contains(b) {
                    steps.push(b.clone());
                }
            }
            out.push((l.id.clone(), p.platform, steps));
        }
    }
    out
}

/// Groups the layers into units: those that share a step are one unit; a layer without steps
/// is a unit of its own. Units come in the order of their first layer.
fn units(plan: &Plan) -> Vec<Unit> {
    let mut units: Vec<Unit> = Vec::new();
    for (id, platform, steps) in layers(plan) {
        let joined: Vec<usize> = if steps.is_empty() {
            Vec::new()
        } else {
            (0..units.len()).filter(|&u| units[u].steps.iter().any(|s| steps.contains(s))).collect()
        };
        let Some((&first, rest)) = joined.split_first() else {
            units.push(Unit { layers: vec![id], steps, platform });
            continue;
        };
        for &u in rest.iter().rev() {
            let merged = units.remove(u);
            units[first].layers.extend(merged.layers);
            units[first].steps.extend(merged.steps);
        }
        units[first].layers.push(id);
        for s in steps {
            if !units[first].steps.contains(&s) {
                units[first].steps.push(s);
            }
        }
    }
    units
}

/// A rough figure for the work of a unit: compiles dominate, Rust's most.
fn cost(plan: &Plan, unit: &Unit) -> u64 {
    let steps: u64 = plan
        .steps()
        .filter(|s| unit.steps.iter().any(|u| u == s.id()))
        .map(|s| match s.language() {
            "rust" => 20,
            "go" => 6,
            _ => 3,
        })
        .sum();
    steps + unit.layers.len() as u64
}

/// Shards from units, each unit going to the shard `key` names; layers and steps in plan order.
fn gather(plan: &Plan, units: &[Unit], ids: &[String], key: impl Fn(usize, &Unit) -> usize) -> Vec<Shard> {
    let mut shards: Vec<Shard> =
        ids.iter().map(|id| Shard { id: id.clone(), layers: Vec::new(), steps: Vec::new() }).collect();
    for (i, u) in units.iter().enumerate() {
        let s = &mut shards[key(i, u)];
        s.layers.extend(u.layers.iter().cloned());
        s.steps.extend(u.steps.iter().cloned());
    }
    let all = layers(plan);
    let order: BTreeMap<&str, usize> = all.iter().enumerate().map(|(i, (id, _, _))| (id.as_str(), i)).collect();
    let steps: Vec<String> = plan.steps().map(|s| s.id().to_string()).collect();
    for s in &mut shards {
        s.layers.sort_by_key(|l| order.get(l.as_str()).copied().unwrap_or(usize::MAX));
        s.steps.sort_by_key(|id| steps.iter().position(|x| x == id).unwrap_or(usize::MAX));
    }
    shards
}

/// A platform as a shard id: `linux/arm/v7` is `linux-arm-v7`.
fn platform_id(p: Platform) -> String {
    p.as_str().replace('/', "-")
}

/// Cuts the plan as `scheme` says. By platform and by step, only shards with work in them;
/// by count, exactly that many.
pub fn shards(plan: &Plan, scheme: Scheme) -> Vec<Shard> {
    let units = units(plan);
    match scheme {
        Scheme::Platform => {
            let used: Vec<Platform> =
                Platform::ALL.into_iter().filter(|p| units.iter().any(|u| u.platform == *p)).collect();
            let ids: Vec<String> = used.iter().map(|p| platform_id(*p)).collect();
            gather(plan, &units, &ids, |_, u| used.iter().position(|p| *p == u.platform).unwrap_or(0))
        }
        Scheme::Step => {
            let mut ids: Vec<String> = Vec::new();
            let mut of_unit = Vec::new();
            for u in &units {
                let first = plan.steps().find(|s| u.steps.first().is_some_and(|f| f == s.id()));
                let id = match first {
                    Some(s) => {
                        let base: String = format!("{}-{}-{}", s.language(), s.bin(), platform_id(s.platform()))
                            .chars()
                            .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '_' { c } else { '-' })
                            .collect();
                        let (mut id, mut n) = (base.clone(), 1);
                        while ids.contains(&id) {
                            n += 1;
                            id = format!("{base}-{n}");
                        }
                        id
                    }
                    None => "files".to_string(),
                };
                if !ids.contains(&id) {
                    ids.push(id.clone());
                }
                of_unit.push(ids.iter().position(|x| *x == id).unwrap_or(0));
            }
            gather(plan, &units, &ids, |i, _| of_unit[i])
        }
        Scheme::Count(n) => {
            let n = n.clamp(1, MAX_SHARDS);
            let ids: Vec<String> = (1..=n).map(|i| format!("{i}of{n}")).collect();
            let mut order: Vec<usize> = (0..units.len()).collect();
            order.sort_by_key(|&i| std::cmp::Reverse(cost(plan, &units[i])));
            let mut load = vec![0u64; n];
            let mut bin = vec![0usize; units.len()];
            for i in order {
                let least = (0..n).min_by_key(|&b| (load[b], b)).unwrap_or(0);
                load[least] += cost(plan, &units[i]);
                bin[i] = least;
            }
            gather(plan, &units, &ids, |i, _| bin[i])
        }
    }
}

/// The scheme a shard id was made by.
pub fn scheme_of(id: &str) -> Scheme {
    let count = id.split_once("of").and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
    match count {
        Some((_, n)) => Scheme::Count(n),
        None if id.starts_with("linux-") => Scheme::Platform,
        None => Scheme::Step,
    }
}

/// The shard `id` and every shard of its scheme (by id), or why there is no such shard.
pub fn find(plan: &Plan, id: &str) -> Result<(Shard, Vec<String>), String> {
    let scheme = scheme_of(id);
    if let Scheme::Count(n) = scheme
        && !(1..=MAX_SHARDS).contains(&n)
    {
        return Err(format!("`{id}` counts {n} shards; kiln cuts a plan into 1 to {MAX_SHARDS}"));
    }
    let all = shards(plan, scheme);
    let ids: Vec<String> = all.iter().map(|s| s.id.clone()).collect();
    match all.into_iter().find(|s| s.id == id) {
        Some(s) => Ok((s, ids)),
        None => Err(format!("the plan has no shard `{id}`; cut that way its shards are {}", ids.join(", "))),
    }
}

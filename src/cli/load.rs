//! Reading, parsing and resolving the recipe into a plan, for `plan`, `build` and `fetch`:
//! every problem of the recipe, its lock and its files reported in one run.

use super::env::{cache_dir, recipe_root, source_date_epoch};
use super::{CliError, Failure, Select, read_recipe};
use kiln::diag::codes::Code;
use kiln::diag::{Problem, RecipeErrors};
use kiln::fingerprint::Fingerprints;
use kiln::oci::platform::Platform;
use kiln::plan::{Plan, PlanOptions};
use kiln::progress::Progress;
use kiln::recipe::Recipe;
use kiln::toolchain::facts::Facts;
use std::path::Path;
use std::sync::Arc;

/// The lock and unpacked packages distroless bases need, or the problems that stop them.
/// A missing lock is left to planning, which reports it at the `base` that needs it.
fn debian_inputs(
    recipe: &Recipe,
    select: &Select,
    platforms: &[Platform],
    progress: &dyn Progress,
) -> Result<Result<Option<kiln::base::DebianInputs>, Vec<Problem>>, Failure> {
    let needs = kiln::base::needs(recipe, platforms, &select.images);
    if needs.is_empty() {
        return Ok(Ok(None));
    }
    let lock_path = recipe_root(&select.file).join("kiln.lock");
    let lock = match kiln::inputs::debian::lock::Lock::read(&lock_path) {
        Ok(Some(lock)) => lock,
        Ok(None) => return Ok(Ok(None)),
        Err(source) => return Err(kiln::error::BuildError::io("read", lock_path)(source).into()),
    };
    let mut problems = Vec::new();
    let stale = |span, msg: String| {
        Problem::new(Code::PlanStaleLock, span, msg)
            .label("needs packages kiln.lock does not pin")
            .help("run `kiln lock` again to pin what the recipe asks for")
    };
    if lock.mirror != recipe.debian_mirror().trim_end_matches('/') || lock.suite != recipe.debian_suite() {
        problems.push(stale(
            needs[0].1,
            format!(
                "kiln.lock pins {} {}, the recipe asks for {} {}",
                lock.mirror,
                lock.suite,
                recipe.debian_mirror(),
                recipe.debian_suite()
            ),
        ));
    }
    let mut packages = Vec::new();
    for ((name, arch), span) in &needs {
        match lock.find(name, arch) {
            Some(p) => packages.push(p),
            None if problems.is_empty() => problems.push(stale(*span, format!("kiln.lock pins no {name} for {arch}"))),
            None => {}
        }
    }
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    let contents = kiln::inputs::debian::store::ensure(&cache_dir(), &packages, progress)?;
    Ok(Ok(Some(kiln::base::DebianInputs { lock, contents })))
}

/// The registry bases `kiln.lock` pins by tag (none without a lock).
fn pinned_bases(file: &Path) -> Result<std::collections::BTreeMap<String, String>, Failure> {
    let lock_path = recipe_root(file).join("kiln.lock");
    match kiln::inputs::debian::lock::Lock::read(&lock_path) {
        Ok(lock) => Ok(lock.map(|l| l.bases).unwrap_or_default()),
        Err(source) => Err(kiln::error::BuildError::io("read", lock_path)(source).into()),
    }
}

/// The `--platform` values parsed, and the `--image` names checked against the recipe (only
/// when the recipe parsed cleanly: a name may be missing because its node is broken).
fn selection(recipe: &Recipe, select: &Select, clean: bool) -> Result<Vec<Platform>, CliError> {
    let mut platforms = Vec::new();
    for p in &select.platforms {
        platforms.push(Platform::parse(p).ok_or_else(|| CliError::Platform(p.clone()))?);
    }
    for i in &select.images {
        if !recipe.images.iter().any(|r| &r.name.value == i) && clean {
            let names: Vec<&str> = recipe.images.iter().map(|r| r.name.value.as_str()).collect();
            return Err(CliError::Image(i.clone(), names.join(", ")));
        }
    }
    Ok(platforms)
}

/// A plan and the toolchain facts it was made with (building needs their host paths).
pub(crate) struct Loaded {
    pub plan: Plan,
    pub facts: Facts,
}

/// The fingerprints kept in kiln's cache for the recipe directory `root`.
fn fingerprints(root: &Path) -> Arc<Fingerprints> {
    Arc::new(Fingerprints::open(&cache_dir(), root, &super::env::current_dir()))
}

/// Reads, parses and resolves the recipe into a plan (laid out after `previous` when given):
/// gathers the inputs (Debian packages, toolchain facts) first, then plans.
pub(crate) fn load_plan(
    select: &Select,
    layering: &super::Layering,
    registry: &kiln::inputs::registry::Options,
    progress: &dyn Progress,
) -> Result<Loaded, Failure> {
    let text = read_recipe(&select.file)?;
    let name = select.file.display().to_string();
    let (recipe, mut problems) = kiln::recipe::parse_partial(&text);
    let fail = |problems| Failure::from(RecipeErrors::new(&name, &text, problems));
    let Some(mut recipe) = recipe else {
        return Err(fail(problems));
    };
    if let Some(identity) = &layering.compression {
        let c = kiln::recipe::Compression::parse(identity).ok_or_else(|| CliError::Compression(identity.clone()))?;
        let span = recipe.defaults.compression.as_ref().map_or(miette::SourceSpan::from(0..0), |c| c.span);
        recipe.defaults.compression = Some(kiln::recipe::Spanned::new(c, span));
    }
    let previous = layering.previous.as_deref();
    let platforms = selection(&recipe, select, problems.is_empty())?;
    let source_date_epoch = source_date_epoch()?;
    let pinned_bases = pinned_bases(&select.file)?;
    let bases = kiln::base::registry_needs(&recipe, &platforms, &select.images);
    let bases = kiln::inputs::registry::pull::through_lock(bases, &pinned_bases);
    kiln::inputs::registry::pull::pull_bases(&bases, &cache_dir(), registry, progress)?;
    let debian = match debian_inputs(&recipe, select, &platforms, progress)? {
        Ok(d) => d,
        Err(more) => {
            problems.extend(more);
            None
        }
    };
    let previous = match previous {
        Some(p) => Some(kiln::inspect::layer_keys(&kiln::inputs::registry::Release::parse(p), registry)?),
        None => None,
    };
    let mut opts = PlanOptions {
        previous,
        debian,
        root: recipe_root(&select.file),
        source_date_epoch,
        platforms,
        images: select.images.clone(),
        cache_dir: Some(cache_dir()),
        facts: Facts::default(),
        pinned_bases,
        fingerprints: fingerprints(&recipe_root(&select.file)),
    };
    opts.facts =
        kiln::toolchain::facts::gather(&opts.root, &super::env::cargo_home(), &kiln::plan::needs(&recipe, &opts));
    // Resolve even a recipe with problems, so file-system problems are reported in the same run.
    let resolved = kiln::plan::resolve(&recipe, &opts);
    opts.fingerprints.save();
    match resolved {
        Ok(plan) if problems.is_empty() => Ok(Loaded { plan, facts: opts.facts }),
        Ok(_) => Err(fail(problems)),
        Err(more) => {
            // A stale lock was reported already; planning sees no lock and would say so too.
            let stale = problems.iter().any(|p| p.code == Code::PlanStaleLock);
            problems.extend(more.into_iter().filter(|p| !(stale && p.code == Code::PlanMissingLock)));
            Err(fail(problems))
        }
    }
}

/// A plan saved by `kiln plan --json`, read back and checked against the recipe's directory
/// `root`: the Debian packages it was made with are unpacked again (from `kiln.lock`, which
/// must pin the same release), the toolchain facts gathered again, and every recorded input
/// compared with what is there now.
pub(crate) fn load_saved(
    file: &Path,
    (root, cache): (&Path, &Path),
    registry: &kiln::inputs::registry::Options,
    progress: &dyn Progress,
) -> Result<Loaded, Failure> {
    let bad = |reason: String| CliError::PlanFile { path: file.to_path_buf(), reason };
    let size = std::fs::metadata(file).map_err(|e| bad(e.to_string()))?.len();
    if size > kiln::plan::MAX_PLAN_BYTES {
        return Err(bad(format!("it is {size} bytes, more than the {} kiln reads", kiln::plan::MAX_PLAN_BYTES)).into());
    }
    let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
    let plan = Plan::from_json(&text).map_err(bad)?;
    let mut changes = Vec::new();
    if let Some(d) = &plan.debian {
        let lock_path = root.join("kiln.lock");
        match kiln::inputs::debian::lock::Lock::read(&lock_path) {
            Ok(Some(lock)) if lock.mirror == d.mirror && lock.suite == d.suite && lock.release == d.release => {
                let packages: Vec<_> = lock.packages.iter().collect();
                kiln::inputs::debian::store::ensure(cache, &packages, progress)?;
            }
            Ok(Some(lock)) => changes.push(format!(
                "kiln.lock pins {} {} {} ({}), the plan {} {} {} ({})",
                lock.mirror,
                lock.suite,
                lock.release.version,
                lock.release.date,
                d.mirror,
                d.suite,
                d.release.version,
                d.release.date
            )),
            Ok(None) => changes
                .push(format!("the plan's Debian packages are pinned by {}, which is missing", lock_path.display())),
            Err(source) => return Err(kiln::error::BuildError::io("read", lock_path)(source).into()),
        }
    }
    kiln::inputs::registry::pull::pull_bases(&plan.registry_bases(), cache, registry, progress)?;
    let facts = kiln::toolchain::facts::gather(root, &super::env::cargo_home(), &kiln::plan::plan_needs(&plan, root));
    changes.extend(kiln::plan::changes(&plan, root, &facts, Some(cache)));
    if !changes.is_empty() {
        return Err(CliError::StalePlan { path: file.to_path_buf(), changes }.into());
    }
    Ok(Loaded { plan, facts })
}

//! `kiln lock`: the Debian packages of the recipe's distroless bases resolved and pinned in
//! `kiln.lock` beside the recipe, and each registry base named by tag pinned to the digest the
//! tag names now.

use super::env::recipe_root;
use super::{Failure, progress, read_recipe};
use kiln::oci::reference::Reference;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(file: &Path, quiet: bool) -> Result<ExitCode, Failure> {
    let text = read_recipe(file)?;
    let name = file.display().to_string();
    let recipe = kiln::recipe::parse(&name, &text)?;
    let needs = kiln::base::needs(&recipe, &[], &[]);
    let tags: Vec<String> = kiln::base::registry_needs(&recipe, &[], &[])
        .into_iter()
        .map(|(r, _)| r)
        .filter(|r| Reference::parse(r).is_ok_and(|x| x.digest.is_none()))
        .collect();
    if needs.is_empty() && tags.is_empty() {
        if !quiet {
            println!("no image of {name} has a distroless base or a registry base by tag: nothing to lock");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let progress = progress::for_terminal(quiet);
    let mut lock = if needs.is_empty() {
        kiln::inputs::debian::lock::Lock::without_debian(recipe.debian_mirror(), recipe.debian_suite())
    } else {
        let wanted = needs.into_iter().map(|(w, _)| w).collect();
        kiln::inputs::debian::index::resolve(recipe.debian_mirror(), recipe.debian_suite(), &wanted, progress.as_ref())?
    };
    let opts = super::push::default_options();
    for t in &tags {
        let r = Reference::parse(t).map_err(kiln::error::RegistryError::from)?;
        let digest = kiln::inputs::registry::pull::resolve_tag(&r, &opts)?;
        lock.bases.insert(t.clone(), digest.to_string());
    }
    let path = recipe_root(file).join("kiln.lock");
    lock.write(&path)?;
    if !quiet {
        if !lock.packages.is_empty() {
            println!(
                "wrote {}: {} packages from {} {} (Debian {}, Release signature {})",
                path.display(),
                lock.packages.len(),
                lock.mirror,
                lock.suite,
                lock.release.version,
                lock.release.signature
            );
        }
        for (t, d) in &lock.bases {
            println!("pinned {t} to {d} in {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

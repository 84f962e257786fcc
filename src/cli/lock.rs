//! `kiln lock`: the Debian packages of the recipe's distroless bases resolved and pinned in
//! `kiln.lock` beside the recipe.

use super::env::recipe_root;
use super::{Failure, progress, read_recipe};
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(file: &Path, quiet: bool) -> Result<ExitCode, Failure> {
    let text = read_recipe(file)?;
    let name = file.display().to_string();
    let recipe = kiln::recipe::parse(&name, &text)?;
    let needs = kiln::base::needs(&recipe, &[], &[]);
    if needs.is_empty() {
        if !quiet {
            println!("no image of {name} has a distroless base: nothing to lock");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let progress = progress::for_terminal(quiet);
    let wanted = needs.into_iter().map(|(w, _)| w).collect();
    let lock = kiln::inputs::debian::index::resolve(
        recipe.debian_mirror(),
        recipe.debian_suite(),
        &wanted,
        progress.as_ref(),
    )?;
    let path = recipe_root(file).join("kiln.lock");
    lock.write(&path)?;
    if !quiet {
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
    Ok(ExitCode::SUCCESS)
}

//! `kiln fetch`: the dependencies of every Rust build, fetched once per cargo manifest, and
//! the modules of every Go build that has no `vendor/`, into kiln's cache.

use super::env::{cache_dir, recipe_root};
use super::load::load_plan;
use super::{Failure, Select, progress};
use kiln::plan::Step;
use kiln::toolchain::{Host, Toolchain};
use std::collections::BTreeSet;
use std::process::ExitCode;

pub(crate) fn run(select: &Select, quiet: bool) -> Result<ExitCode, Failure> {
    let progress = progress::for_terminal(quiet);
    let loaded = load_plan(select, &super::Layering::default(), &super::push::default_options(), progress.as_ref())?;
    let toolchain = Host { root: recipe_root(&select.file), facts: &loaded.facts };
    let mut seen = BTreeSet::new();
    for b in &loaded.plan.rust {
        if seen.insert(b.manifest.clone()) {
            progress.note(&format!("fetching dependencies of {}", b.package));
            toolchain.fetch(Step::Rust(b))?;
        }
    }
    for b in &loaded.plan.go {
        if seen.insert(b.module.clone()) {
            progress.note(&format!("fetching the modules of {}", b.module));
            toolchain.fetch_go(b, &cache_dir())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

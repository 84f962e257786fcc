//! `kiln fetch`: the dependencies of every Rust build, fetched once per cargo manifest.

use super::load::load_plan;
use super::{Failure, Select, progress};
use std::collections::BTreeSet;
use std::process::ExitCode;

pub(crate) fn run(select: &Select, quiet: bool) -> Result<ExitCode, Failure> {
    let progress = progress::for_terminal(quiet);
    let plan = load_plan(select, None, progress.as_ref())?;
    let mut seen = BTreeSet::new();
    for b in &plan.rust {
        if seen.insert(b.exec.manifest.clone()) {
            progress.note(&format!("fetching dependencies of {}", b.package));
            kiln::toolchain::rust::fetch(b)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

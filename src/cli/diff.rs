//! `kiln diff`: what a device holding one layout downloads to hold another; exit 1 over budget.

use super::{CliError, Failure, platform_names};
use kiln::inputs::registry::Release;
use std::process::ExitCode;

pub(crate) fn run(
    old: &str,
    new: &str,
    platforms: &[String],
    (json, delta): (bool, bool),
    budget: Option<String>,
) -> Result<ExitCode, Failure> {
    let platforms = platform_names(platforms)?;
    let budget = match budget {
        Some(b) => Some(kiln::update::parse_size(&b).ok_or(CliError::Size(b))?),
        None => None,
    };
    let (old, new) = (Release::parse(old), Release::parse(new));
    let report = kiln::update::diff((&old, &new), &super::push::default_options(), &platforms, (budget, delta))?;
    if json {
        print!("{}", kiln::oci::canonical::to_pretty(&report));
    } else {
        print!("{}", kiln::update::render_diff(&report));
    }
    Ok(if report.over_budget { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

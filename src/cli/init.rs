//! `kiln init`: a starting `kiln.kdl` for the project in the working directory, or with
//! `--ci` a CI workflow for it.

use super::Failure;
use super::env::current_dir;
use std::process::ExitCode;

pub(crate) fn run(template: Option<&str>, force: bool, ci: Option<&str>, quiet: bool) -> Result<ExitCode, Failure> {
    let written = match ci {
        Some(system) => kiln::init::init_ci(&current_dir(), system, force)?,
        None => kiln::init::init(&current_dir(), template, force)?,
    };
    if !quiet {
        println!("{written}");
    }
    Ok(ExitCode::SUCCESS)
}

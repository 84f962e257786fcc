//! `kiln init`: a starting `kiln.kdl` for the project in the working directory.

use super::Failure;
use super::env::current_dir;
use std::process::ExitCode;

pub(crate) fn run(template: Option<&str>, force: bool, quiet: bool) -> Result<ExitCode, Failure> {
    let written = kiln::init::init(&current_dir(), template, force)?;
    if !quiet {
        println!("{written}");
    }
    Ok(ExitCode::SUCCESS)
}

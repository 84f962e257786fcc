//! `kiln doctor`: what each platform needs for the project in the working directory; exit 1
//! when something is missing.

use super::Failure;
use super::env::current_dir;
use std::process::ExitCode;

pub(crate) fn run() -> Result<ExitCode, Failure> {
    let report = kiln::doctor::check(&current_dir(), &super::env::cargo_home());
    print!("{}", report.text);
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

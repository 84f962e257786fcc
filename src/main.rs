//! The `kiln` command line: parses arguments, runs the subcommand and renders its error.
//! Exit codes: 0 success, 1 a check failed, 2 an error (bad recipe, bad arguments, I/O).
//!
//! The command line is a module of this binary, not of the library: it prints and reads the
//! environment, and keeping it here leaves the library with no code that does either.

mod cli;

use clap::Parser;
use cli::{Cli, Failure};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli::run(cli) {
        Ok(code) => code,
        Err(Failure::Diagnostic(d)) => {
            eprint!("{}", cli::render::render(d.as_ref()));
            ExitCode::from(2)
        }
    }
}

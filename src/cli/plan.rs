//! `kiln plan`: the resolved plan, as text or JSON, on stdout.

use super::load::load_plan;
use super::{Failure, Layering, Select, progress};
use std::process::ExitCode;

pub(crate) fn run(select: &Select, layering: &Layering, json: bool, quiet: bool) -> Result<ExitCode, Failure> {
    let progress = progress::for_terminal(quiet);
    let plan =
        load_plan(select, layering.previous.as_deref(), &super::push::default_options(), progress.as_ref())?.plan;
    if json {
        print!("{}", plan.to_json());
    } else {
        print!("{}", kiln::plan::render_text(&plan));
    }
    Ok(ExitCode::SUCCESS)
}

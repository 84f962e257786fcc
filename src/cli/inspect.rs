//! `kiln inspect`: the images, platforms and layers of a layout, as text or JSON.

use super::Failure;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(dir: &Path, image: Option<&str>, json: bool) -> Result<ExitCode, Failure> {
    let report = kiln::inspect::inspect(dir, image)?;
    if json {
        print!("{}", kiln::oci::canonical::to_pretty(&report));
    } else {
        print!("{}", kiln::inspect::render_text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

//! `kiln bundle`: a tar with exactly the blobs a device holding `--have` lacks for `--want`.

use super::{Failure, platform_names};
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(
    have: &Path,
    want: &Path,
    output: &Path,
    platforms: &[String],
    quiet: bool,
) -> Result<ExitCode, Failure> {
    let s = kiln::update::bundle(have, want, &platform_names(platforms)?, output)?;
    if !quiet {
        println!(
            "wrote {}: {} blobs ({} bytes) a device holding {} lacks; {} bytes in all",
            s.file,
            s.blobs,
            s.blob_bytes,
            have.display(),
            s.bytes
        );
    }
    Ok(ExitCode::SUCCESS)
}

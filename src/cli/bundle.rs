//! `kiln bundle`: a tar with exactly the blobs a device holding `--have` lacks for `--want`.

use super::{Failure, platform_names};
use kiln::inputs::registry::Release;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(
    have: &str,
    want: &str,
    output: &Path,
    platforms: &[String],
    delta: bool,
    quiet: bool,
) -> Result<ExitCode, Failure> {
    let releases = (Release::parse(have), Release::parse(want));
    let opts = super::push::default_options();
    let s = kiln::update::bundle((&releases.0, &releases.1), &opts, (&platform_names(platforms)?, delta), output)?;
    if !quiet {
        println!(
            "wrote {}: {} blobs ({} bytes) a device holding {} lacks; {} bytes in all",
            s.file, s.blobs, s.blob_bytes, have, s.bytes
        );
        if s.deltas > 0 {
            println!(
                "  {} layer(s) as deltas: {} bytes for {} bytes of layers",
                s.deltas, s.delta_bytes, s.delta_layer_bytes
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `kiln apply`: a bundle applied to the device's layout, which is unchanged if anything fails.

use super::Failure;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(
    bundle: &Path,
    to: &Path,
    (keep_unused, require): (bool, Option<&Path>),
    quiet: bool,
) -> Result<ExitCode, Failure> {
    // The key is read before the bundle: a wrong key file changes nothing.
    let key = match require {
        Some(p) => Some(super::sign::public_key(p)?),
        None => None,
    };
    let s = kiln::update::apply(bundle, to, keep_unused, key.as_ref())?;
    if !quiet {
        println!(
            "applied {} to {}: {} blobs checked and in place; {} unused blobs ({} bytes) removed",
            bundle.display(),
            to.display(),
            s.added,
            s.pruned,
            s.pruned_bytes
        );
    }
    Ok(ExitCode::SUCCESS)
}

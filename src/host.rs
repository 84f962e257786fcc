//! Finding the host programs kiln runs (compilers, `strip`, `unshare`, `gpgv`) on `PATH`.
//! Shared by the stages that run one, so none of them has to import another for it.

use std::path::PathBuf;

/// Finds a program on PATH.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file())
}

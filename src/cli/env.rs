//! What kiln takes from the environment: the cache directory, cargo's home, the recipe's root
//! and `SOURCE_DATE_EPOCH`. Read here, once, and handed to the library as values.

use super::CliError;
use std::path::{Path, PathBuf};

/// kiln's cache: `KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`. Never a
/// directory beside the recipe unless asked for: a cloned repository could ship one.
pub(crate) fn cache_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v: &std::ffi::OsString| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = var("KILN_CACHE_DIR") {
        return d;
    }
    if let Some(d) = var("XDG_CACHE_HOME").filter(|d| d.is_absolute()) {
        return d.join("kiln");
    }
    match var("HOME") {
        Some(home) => home.join(".cache/kiln"),
        // No home to keep a cache in: a private directory for this user under the system's temp.
        None => std::env::temp_dir().join(format!("kiln-cache-{}", rustix::process::getuid().as_raw())),
    }
}

/// Cargo's home as cargo itself finds it: `CARGO_HOME`, else `~/.cargo`.
pub(crate) fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_else(|| PathBuf::from("/root/.cargo"))
}

/// The directory the recipe's paths are relative to: the recipe file's own.
pub(crate) fn recipe_root(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `SOURCE_DATE_EPOCH` when set and not empty; a value that is not a time kiln can write is an error.
pub(crate) fn source_date_epoch() -> Result<Option<u64>, CliError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => match v.trim().parse::<u64>() {
            Ok(e) if e <= kiln::recipe::MAX_EPOCH => Ok(Some(e)),
            _ => Err(CliError::Epoch(v)),
        },
        _ => Ok(None),
    }
}

/// The working directory, for the commands that act on the project kiln runs in.
pub(crate) fn current_dir() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// A program on PATH.
pub(crate) fn find_program(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|d| d.join(name)).find(|p| p.is_file())
}

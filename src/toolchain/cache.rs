//! kiln's cache of compiled binaries, one directory per build step id
//! (`<cache>/<language>/bin/<id>/<bin>` with `info.json`): a binary is checked (ELF machine,
//! static, stripped) before it is put there, written to a staging directory and renamed into
//! place, and used again only when its bytes still match what was recorded.

use crate::error::ToolchainError;
use crate::plan::{BuildStep, Step};
use std::path::{Path, PathBuf};

/// A binary ready to layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// Size as linked, before stripping.
    pub unstripped: u64,
    /// Taken from the cache; the compiler did not run.
    pub cached: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CacheInfo {
    sha256: String,
    size: u64,
    unstripped: u64,
}

fn bins(cache: &Path, step: Step<'_>) -> PathBuf {
    cache.join(step.language()).join("bin")
}

/// The cached binary for `step`, if one is there and intact.
pub fn cached(cache: &Path, step: Step<'_>) -> Option<Compiled> {
    let dir = bins(cache, step).join(step.id());
    let info: CacheInfo = serde_json::from_slice(&std::fs::read(dir.join("info.json")).ok()?).ok()?;
    let path = dir.join(step.bin());
    let (sha, size) = crate::oci::digest::sha256_reader(std::fs::File::open(&path).ok()?).ok()?;
    (sha == info.sha256 && size == info.size).then_some(Compiled {
        path,
        sha256: sha,
        size,
        unstripped: info.unstripped,
        cached: true,
    })
}

/// A staging directory beside the step's cache entry, for the binary being made.
pub fn staging(cache: &Path, step: Step<'_>) -> Result<tempfile::TempDir, ToolchainError> {
    let parent = bins(cache, step);
    std::fs::create_dir_all(&parent).map_err(ToolchainError::io("create", &parent))?;
    tempfile::Builder::new()
        .prefix(".kiln-")
        .tempdir_in(&parent)
        .map_err(ToolchainError::io("create a directory in", &parent))
}

/// Checks the stripped binary `staging/<bin>` for the step's platform (static when
/// `require_static`), records it and renames the staging directory into the cache.
pub fn store(
    cache: &Path,
    step: Step<'_>,
    staging: tempfile::TempDir,
    unstripped: u64,
    require_static: bool,
) -> Result<Compiled, ToolchainError> {
    let binary = staging.path().join(step.bin());
    let data = std::fs::read(&binary).map_err(ToolchainError::io("read", &binary))?;
    crate::toolchain::elf::check(&data, step.platform(), require_static)
        .map_err(|reason| ToolchainError::BadBinary { what: step.describe(), reason })?;
    let sha256 = crate::oci::digest::sha256_hex(&data);
    let info = CacheInfo { sha256: sha256.clone(), size: data.len() as u64, unstripped };
    let info_path = staging.path().join("info.json");
    std::fs::write(&info_path, crate::oci::canonical::to_vec(&info))
        .map_err(ToolchainError::io("write", &info_path))?;
    let dir = bins(cache, step).join(step.id());
    let _ = std::fs::remove_dir_all(&dir);
    let kept = staging.keep();
    std::fs::rename(&kept, &dir).map_err(ToolchainError::io("rename into", &dir))?;
    Ok(Compiled { path: dir.join(step.bin()), sha256, size: data.len() as u64, unstripped, cached: false })
}

//! `kiln.lock`: the Debian packages a recipe's bases use, pinned. Canonical JSON, sorted, so
//! the same resolution always writes the same bytes.

use serde::{Deserialize, Serialize};
use std::path::Path;

pub const LOCK_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub lock_format: u32,
    pub mirror: String,
    pub suite: String,
    pub release: ReleaseInfo,
    /// Sorted by name, then Debian architecture.
    pub packages: Vec<LockedPackage>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    pub codename: String,
    pub version: String,
    pub date: String,
    /// sha256 of the Release file the indexes were verified against.
    pub sha256: String,
    /// Whether and how the Release file's signature was checked.
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LockedPackage {
    pub name: String,
    /// The Debian architecture this entry was resolved for (amd64, arm64, armhf).
    pub debian_arch: String,
    pub version: String,
    /// The package's own architecture (`all` for architecture-independent packages).
    pub architecture: String,
    pub url: String,
    pub size: u64,
    pub sha256: String,
}

impl Lock {
    pub fn find(&self, name: &str, debian_arch: &str) -> Option<&LockedPackage> {
        self.packages.iter().find(|p| p.name == name && p.debian_arch == debian_arch)
    }

    pub fn read(path: &Path) -> std::io::Result<Option<Lock>> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(std::io::Error::other),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the lock beside its final name and renames it into place.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::fs::write(tmp.path(), crate::canonical::to_pretty(self))?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

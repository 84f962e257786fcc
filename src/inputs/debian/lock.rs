//! `kiln.lock`: the Debian packages a recipe's bases use, pinned. Canonical JSON, sorted, so
//! the same resolution always writes the same bytes.

use crate::error::InputsError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const LOCK_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub lock_format: u32,
    pub mirror: String,
    pub suite: String,
    pub release: ReleaseInfo,
    /// Sorted by name, then Debian architecture.
    pub packages: Vec<LockedPackage>,
    /// Registry bases named by tag, each pinned to the digest the tag named when
    /// `kiln lock` ran: `host/repository:tag` → `sha256:…`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bases: BTreeMap<String, String>,
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
    /// The Debian source package it was built from (locks written before kiln recorded it
    /// lack it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Lock {
    /// A lock that pins no Debian packages (a recipe with no distroless base): only bases.
    pub fn without_debian(mirror: &str, suite: &str) -> Lock {
        let release = ReleaseInfo {
            codename: String::new(),
            version: String::new(),
            date: String::new(),
            sha256: String::new(),
            signature: String::new(),
        };
        Lock {
            lock_format: LOCK_FORMAT,
            mirror: mirror.to_string(),
            suite: suite.to_string(),
            release,
            packages: Vec::new(),
            bases: BTreeMap::new(),
        }
    }

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

    /// Writes the lock in one step, with the mode a new file gets (see [`StagedFile`]).
    pub fn write(&self, path: &Path) -> Result<(), InputsError> {
        StagedFile::new(path, crate::oci::canonical::to_pretty(self).as_bytes(), None)?.commit()
    }
}

/// A file of the user's project (`kiln.lock`; `kiln init`'s `kiln.kdl` and `.gitignore`)
/// written in full beside its final name, not yet in place. It is created with mode 0666
/// less the umask, as an editor or `touch` would (tempfile's own default, 0600, would hide
/// the file from the user's group), or with `mode` when given; its bytes are on disk
/// (`fsync`, so a disk that fills up late is still reported) before [`StagedFile::commit`]
/// renames it over `path`, so a reader finds the old file or the new one, never a part of
/// one. Dropped uncommitted, it is removed.
pub(crate) struct StagedFile {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl StagedFile {
    pub(crate) fn new(path: &Path, bytes: &[u8], mode: Option<u32>) -> Result<StagedFile, InputsError> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".kiln-")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(InputsError::io("create a temporary file to write", path))?;
        // Through the plain file: tempfile's own writer would add the temporary name to errors.
        let write = |file: &mut std::fs::File| {
            file.write_all(bytes)?;
            if let Some(mode) = mode {
                file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            }
            file.sync_all()
        };
        write(tmp.as_file_mut()).map_err(InputsError::io("write", path))?;
        Ok(StagedFile { tmp, path: path.to_path_buf() })
    }

    /// Puts the file in place under its name.
    pub(crate) fn commit(self) -> Result<(), InputsError> {
        let StagedFile { tmp, path } = self;
        tmp.persist(&path).map_err(|e| InputsError::io("write", path)(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This process's umask, as Linux reports it.
    fn umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find_map(|l| l.strip_prefix("Umask:")).expect("Linux reports the umask");
        u32::from_str_radix(line.trim(), 8).unwrap()
    }

    fn lock() -> Lock {
        let release = ReleaseInfo {
            codename: "bookworm".into(),
            version: "12.11".into(),
            date: "Sat, 17 May 2025 09:00:00 UTC".into(),
            sha256: "00".repeat(32),
            signature: "not checked".into(),
        };
        Lock {
            lock_format: LOCK_FORMAT,
            mirror: "m".into(),
            suite: "s".into(),
            release,
            packages: Vec::new(),
            bases: BTreeMap::new(),
        }
    }

    #[test]
    fn the_lock_gets_the_mode_a_new_file_gets_and_is_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kiln.lock");
        // Replacing a lock written private (as kiln once did) does not keep that mode.
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        lock().write(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask(), "0666 less the umask ({:03o})", umask());
        assert_eq!(Lock::read(&path).unwrap(), Some(lock()));
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["kiln.lock"], "no temporary file is left");
    }
}

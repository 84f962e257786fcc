//! Which repository of a registry got each blob kiln pushed there, kept in kiln's cache
//! across runs, so that a push to another repository of that registry mounts a blob instead
//! of sending it again. A hint only says where to mount from: the registry checks that the
//! repository holds the blob, and a wrong or stale hint costs one request and an upload.

use crate::oci::digest::Digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The most blobs remembered per registry.
const MAX_HINTS: usize = 100_000;

fn file(cache: &Path, registry: &str) -> PathBuf {
    cache.join("registry/mounts").join(format!("{}.json", crate::oci::digest::sha256_hex(registry.as_bytes())))
}

/// What kiln remembers of `registry` (nothing when the file is missing or unreadable).
pub fn load(cache: &Path, registry: &str) -> BTreeMap<Digest, String> {
    let Ok(bytes) = std::fs::read(file(cache, registry)) else { return BTreeMap::new() };
    let Ok(raw) = serde_json::from_slice::<BTreeMap<String, String>>(&bytes) else { return BTreeMap::new() };
    raw.into_iter().filter_map(|(d, repo)| Some((d.parse().ok()?, repo))).take(MAX_HINTS).collect()
}

/// Remembers `hints` for `registry`, written beside the file and renamed over it; a failure
/// to write only loses the hints.
pub fn save(cache: &Path, registry: &str, hints: &BTreeMap<Digest, String>) {
    let path = file(cache, registry);
    let Some(dir) = path.parent() else { return };
    let raw: BTreeMap<String, &String> = hints.iter().take(MAX_HINTS).map(|(d, r)| (d.to_string(), r)).collect();
    let written = std::fs::create_dir_all(dir).and_then(|()| tempfile::NamedTempFile::new_in(dir)).and_then(|tmp| {
        std::fs::write(tmp.path(), serde_json::to_vec(&raw).unwrap_or_default())?;
        tmp.persist(&path).map(|_| ()).map_err(|e| e.error)
    });
    let _ = written;
}

#[cfg(test)]
mod tests {
    #[test]
    fn hints_survive_a_run_and_a_damaged_file_is_no_hints() {
        let dir = tempfile::tempdir().unwrap();
        let d = crate::oci::digest::Digest::of(b"layer");
        super::save(dir.path(), "reg.lan", &[(d.clone(), "team/api".to_string())].into());
        assert_eq!(super::load(dir.path(), "reg.lan").get(&d).map(String::as_str), Some("team/api"));
        assert!(super::load(dir.path(), "other.lan").is_empty());
        std::fs::write(super::file(dir.path(), "reg.lan"), "{not json").unwrap();
        assert!(super::load(dir.path(), "reg.lan").is_empty());
    }
}

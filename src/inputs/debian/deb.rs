//! Unpacking a `.deb` without dpkg: the `ar` archive's `data.tar.{xz,zst,gz}` becomes plan
//! entries, and every regular file's bytes go into kiln's content-addressed file store.
//! Maintainer scripts are never run; documentation, man pages and info are left out.

use crate::error::InputsError;
use crate::oci::entry::{Entry, EntryKind};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// Paths no image needs: documentation (except copyright files), manuals, info pages, bug and
/// lintian metadata.
pub fn is_doc(path: &str) -> bool {
    let p = path.trim_start_matches('/');
    if let Some(rest) = p.strip_prefix("usr/share/doc/") {
        let rest = rest.trim_end_matches('/');
        // The per-package directories stay, holding their copyright files.
        if rest.is_empty() || !rest.contains('/') {
            return false;
        }
        return !(rest.ends_with("/copyright") && rest.matches('/').count() == 1);
    }
    ["usr/share/man/", "usr/share/info/", "usr/share/lintian/", "usr/share/bug/"]
        .iter()
        .any(|d| p.starts_with(d) && p.len() > d.len())
}

/// Writes bytes into the file store under their sha256 (once), returning the hex digest.
pub fn store_bytes(store: &Path, bytes: &[u8]) -> Result<String, InputsError> {
    let sha = crate::oci::digest::sha256_hex(bytes);
    let dest = store.join(&sha);
    if !dest.is_file() {
        std::fs::create_dir_all(store).map_err(InputsError::io("create", store))?;
        let tmp = tempfile::NamedTempFile::new_in(store).map_err(InputsError::io("create a file in", store))?;
        std::fs::write(tmp.path(), bytes).map_err(InputsError::io("write", tmp.path()))?;
        tmp.persist(&dest).map_err(|e| InputsError::io("write", dest.clone())(e.error))?;
    }
    Ok(sha)
}

fn data_tar(deb: &[u8]) -> Result<(String, Vec<u8>), String> {
    let mut ar = ar::Archive::new(deb);
    while let Some(member) = ar.next_entry() {
        let mut member = member.map_err(|e| e.to_string())?;
        let name = String::from_utf8_lossy(member.header().identifier()).trim_end_matches('/').to_string();
        if name.starts_with("data.tar") {
            let mut raw = Vec::new();
            member.read_to_end(&mut raw).map_err(|e| e.to_string())?;
            let mut tar = Vec::new();
            match name.as_str() {
                "data.tar.xz" => liblzma::read::XzDecoder::new(&raw[..]).read_to_end(&mut tar),
                "data.tar.zst" => zstd::stream::read::Decoder::new(&raw[..]).and_then(|mut d| d.read_to_end(&mut tar)),
                "data.tar.gz" => flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut tar),
                "data.tar" => {
                    tar = raw;
                    Ok(0)
                }
                other => return Err(format!("unsupported member {other}")),
            }
            .map_err(|e| format!("{name}: {e}"))?;
            return Ok((name, tar));
        }
    }
    Err("no data.tar member".into())
}

/// Unpacks a `.deb`'s files into entries (`from` = `origin`), storing file contents in `store`.
pub fn unpack(deb: &[u8], store: &Path, origin: &str) -> Result<Vec<Entry>, InputsError> {
    let bad = |reason: String| InputsError::Debian { message: format!("cannot unpack {origin}: {reason}"), help: None };
    let (_, tar) = data_tar(deb).map_err(bad)?;
    let mut archive = tar::Archive::new(&tar[..]);
    let mut entries = Vec::new();
    let mut files: BTreeMap<String, (String, u64)> = BTreeMap::new();
    for item in archive.entries().map_err(|e| bad(e.to_string()))? {
        let mut item = item.map_err(|e| bad(e.to_string()))?;
        let h = item.header().clone();
        let raw_path = item.path().map_err(|e| bad(e.to_string()))?.to_string_lossy().into_owned();
        let rel = raw_path.trim_start_matches("./").trim_end_matches('/').to_string();
        if rel.is_empty() || rel == "." {
            continue;
        }
        let path = format!("/{rel}");
        if is_doc(&path) {
            continue;
        }
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let (uid, gid) = (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32);
        let mut e =
            Entry { from: Some(origin.to_string()), ..Entry::new(path.clone(), EntryKind::File, mode, uid, gid) };
        match h.entry_type() {
            tar::EntryType::Directory => {
                e.kind = EntryKind::Dir;
                e.path = format!("{path}/");
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut bytes = Vec::new();
                item.read_to_end(&mut bytes).map_err(|e| bad(e.to_string()))?;
                let sha = store_bytes(store, &bytes)?;
                files.insert(path.clone(), (sha.clone(), bytes.len() as u64));
                e.size = Some(bytes.len() as u64);
                e.sha256 = Some(sha);
            }
            tar::EntryType::Symlink => {
                e.kind = EntryKind::Symlink;
                e.mode = 0o777;
                e.target = h.link_name().ok().flatten().map(|t| t.to_string_lossy().into_owned());
            }
            tar::EntryType::Link => {
                // A hard link becomes a copy of the file it names.
                let target = h.link_name().ok().flatten().map(|t| t.to_string_lossy().into_owned()).unwrap_or_default();
                let key = format!("/{}", target.trim_start_matches("./").trim_start_matches('/'));
                let Some((sha, size)) = files.get(&key).cloned() else {
                    return Err(bad(format!("hard link {path} names {target}, which comes later or not at all")));
                };
                e.size = Some(size);
                e.sha256 = Some(sha);
            }
            _ => continue,
        }
        entries.push(e);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    #[test]
    fn docs_are_left_out_but_copyright_stays() {
        assert!(super::is_doc("/usr/share/doc/tzdata/changelog.Debian.gz"));
        assert!(!super::is_doc("/usr/share/doc/tzdata/copyright"));
        assert!(!super::is_doc("/usr/share/doc/tzdata/"));
        assert!(super::is_doc("/usr/share/man/man8/foo.8.gz"));
        assert!(!super::is_doc("/usr/share/zoneinfo/UTC"));
    }
}

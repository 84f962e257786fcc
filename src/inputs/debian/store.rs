//! The Debian side of kiln's cache: `.deb`s by sha256 (verified on every use, fetched again
//! when damaged), their unpacked entries, and the file store holding their contents.

use super::deb;
use super::lock::LockedPackage;
use crate::error::InputsError;
use crate::oci::entry::{Entry, EntryKind};
use crate::progress::Progress;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where file contents live, by sha256.
pub fn file_store(cache: &Path) -> PathBuf {
    cache.join("files")
}

fn deb_path(cache: &Path, p: &LockedPackage) -> PathBuf {
    cache.join("debs").join(format!("{}.deb", p.sha256))
}

/// Downloads a pinned `.deb` into the cache, checking size and sha256 before keeping it.
fn download(cache: &Path, p: &LockedPackage) -> Result<(), InputsError> {
    let dir = cache.join("debs");
    std::fs::create_dir_all(&dir).map_err(InputsError::io("create", &dir))?;
    let net = |reason: String| InputsError::Network { url: p.url.clone(), reason };
    let mut resp = ureq::get(&p.url).call().map_err(|e| net(e.to_string()))?;
    let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(InputsError::io("create a file in", &dir))?;
    let mut w = crate::oci::digest::HashingWriter::new(std::io::BufWriter::new(
        tmp.reopen().map_err(InputsError::io("open", tmp.path()))?,
    ));
    std::io::copy(&mut resp.body_mut().as_reader(), &mut w).map_err(|e| net(e.to_string()))?;
    let (buf, digest, size) = w.finish();
    buf.into_inner().map_err(|e| InputsError::io("write", tmp.path().to_path_buf())(e.into_error()))?.flush().ok();
    let actual = digest.hex().to_string();
    if actual != p.sha256 || size != p.size {
        return Err(InputsError::Integrity {
            what: format!("download of {}", p.url),
            expected: p.sha256.clone(),
            actual,
        });
    }
    let dest = deb_path(cache, p);
    tmp.persist(&dest).map_err(|e| InputsError::io("write", dest.clone())(e.error))?;
    Ok(())
}

/// The `.deb`'s bytes, verified; a damaged cached copy is fetched again, never used.
fn verified_deb(cache: &Path, p: &LockedPackage, progress: &dyn Progress) -> Result<Vec<u8>, InputsError> {
    let path = deb_path(cache, p);
    if let Ok(bytes) = std::fs::read(&path) {
        let actual = crate::oci::digest::sha256_hex(&bytes);
        if actual == p.sha256 {
            return Ok(bytes);
        }
        progress
            .note(&format!("cached {} does not match kiln.lock (sha256 {actual}); fetching it again", path.display()));
        std::fs::remove_file(&path).map_err(InputsError::io("remove", &path))?;
    }
    progress.note(&format!("fetching {}", p.url));
    download(cache, p)?;
    let bytes = std::fs::read(&path).map_err(InputsError::io("read", &path))?;
    let actual = crate::oci::digest::sha256_hex(&bytes);
    if actual != p.sha256 {
        return Err(InputsError::Integrity { what: path.display().to_string(), expected: p.sha256.clone(), actual });
    }
    Ok(bytes)
}

/// The CA bundle `update-ca-certificates` would write, built deterministically: every
/// certificate the package ships, sorted by path, each ending in a newline.
fn ca_bundle(entries: &[Entry], store: &Path) -> Result<(Vec<u8>, usize), InputsError> {
    let mut certs: Vec<&Entry> = entries
        .iter()
        .filter(|e| {
            e.kind == EntryKind::File && e.path.starts_with("/usr/share/ca-certificates/") && e.path.ends_with(".crt")
        })
        .collect();
    certs.sort_by(|a, b| a.path.cmp(&b.path));
    let mut bundle = Vec::new();
    for c in &certs {
        let sha = c.sha256.as_deref().unwrap_or_default();
        let p = store.join(sha);
        let mut bytes = std::fs::read(&p).map_err(InputsError::io("read", &p))?;
        let actual = crate::oci::digest::sha256_hex(&bytes);
        if actual != sha {
            return Err(InputsError::Integrity { what: p.display().to_string(), expected: sha.into(), actual });
        }
        if !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        bundle.extend(bytes);
    }
    Ok((bundle, certs.len()))
}

fn dir(path: &str, from: &str) -> Entry {
    Entry { from: Some(from.into()), ..Entry::dir(path, 0o755, 0, 0) }
}

/// What of a package goes into a base: ca-certificates contributes its generated bundle and
/// copyright only; tzdata leaves out the `right/` (leap second) zones and its scripts.
fn select(p: &LockedPackage, entries: Vec<Entry>, store: &Path) -> Result<Vec<Entry>, InputsError> {
    Ok(match p.name.as_str() {
        "ca-certificates" => {
            let (bundle, _) = ca_bundle(&entries, store)?;
            let sha = deb::store_bytes(store, &bundle)?;
            let from = format!("generated from ca-certificates {}", p.version);
            let mut out = vec![dir("/etc/", &from), dir("/etc/ssl/", &from), dir("/etc/ssl/certs/", &from)];
            let mut file = dir("/etc/ssl/certs/ca-certificates.crt", &from);
            file.kind = EntryKind::File;
            file.mode = 0o644;
            file.size = Some(bundle.len() as u64);
            file.sha256 = Some(sha);
            out.push(file);
            out.extend(entries.into_iter().filter(|e| e.path.starts_with("/usr/share/doc/")));
            out
        }
        "tzdata" => entries
            .into_iter()
            .filter(|e| {
                !e.path.starts_with("/usr/share/zoneinfo/right/")
                    && !e.path.starts_with("/usr/sbin/")
                    && !e.path.starts_with("/etc/")
            })
            .collect(),
        "libc6" => entries.into_iter().filter(|e| !e.path.contains("/gconv/")).collect(),
        _ => entries,
    })
}

/// Number of certificates ca-certificates ships (for checks and the plan).
pub fn certificate_count(entries: &[Entry]) -> usize {
    entries.iter().filter(|e| e.path.starts_with("/usr/share/ca-certificates/") && e.path.ends_with(".crt")).count()
}

/// Makes sure every pinned package is in the cache and unpacked; returns each package's
/// entries by (name, Debian architecture).
pub fn ensure(
    cache: &Path,
    packages: &[&LockedPackage],
    progress: &dyn Progress,
) -> Result<BTreeMap<(String, String), Vec<Entry>>, InputsError> {
    let store = file_store(cache);
    // Each .deb once (an `all` package serves every platform), fetched in turn, then unpacked
    // on every core: unpacking is most of the time once the .debs are cached.
    let mut unique: BTreeMap<&str, &LockedPackage> = BTreeMap::new();
    for p in packages {
        unique.entry(p.sha256.as_str()).or_insert(p);
    }
    let mut debs = Vec::new();
    for p in unique.values() {
        debs.push((*p, verified_deb(cache, p, progress)?));
    }
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1).min(debs.len().max(1));
    let queue = std::sync::Mutex::new(debs.into_iter());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                while let Some((p, bytes)) = queue.lock().ok().and_then(|mut q| q.next()) {
                    // Unpacked again from the verified .deb every time, never read back from the
                    // cache: a list of entries kept there could name files the package lacks.
                    let origin = format!("deb {} {} {}", p.name, p.version, p.architecture);
                    let entries = deb::unpack(&bytes, &store, &origin).and_then(|raw| select(p, raw, &store));
                    if let Ok(mut r) = results.lock() {
                        r.push((p.sha256.clone(), entries));
                    }
                }
            });
        }
    });
    let mut by_sha = BTreeMap::new();
    for (sha, entries) in results.into_inner().unwrap_or_default() {
        by_sha.insert(sha, entries?);
    }
    let mut out = BTreeMap::new();
    for p in packages {
        if let Some(entries) = by_sha.get(&p.sha256) {
            out.insert((p.name.clone(), p.debian_arch.clone()), entries.clone());
        }
    }
    Ok(out)
}

//! Resolving packages against a Debian mirror: the Release file (signature checked with gpgv
//! and Debian's archive keyring where both are installed), each architecture's Packages index
//! (verified against the Release file's sha256), and the entries kiln pins.

use super::lock::{LOCK_FORMAT, Lock, LockedPackage, ReleaseInfo};
use crate::error::InputsError;
use crate::progress::Progress;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

/// Downloads a URL into memory (indexes and Release files; up to 256 MiB).
pub fn get(url: &str) -> Result<Vec<u8>, InputsError> {
    let net = |reason: String| InputsError::Network { url: url.to_string(), reason };
    let mut resp = ureq::get(url).call().map_err(|e| net(e.to_string()))?;
    resp.body_mut().with_config().limit(256 << 20).read_to_vec().map_err(|e| net(e.to_string()))
}

/// The fields of a Release file kiln uses.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Release {
    pub codename: String,
    pub version: String,
    pub date: String,
    /// path → (sha256, size)
    pub sha256: BTreeMap<String, (String, u64)>,
}

pub fn parse_release(text: &str) -> Release {
    let mut r = Release::default();
    let mut in_sha = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(' ') {
            if in_sha {
                let f: Vec<&str> = rest.split_whitespace().collect();
                if let [sha, size, path] = f[..] {
                    r.sha256.insert(path.to_string(), (sha.to_string(), size.parse().unwrap_or(0)));
                }
            }
            continue;
        }
        in_sha = line.starts_with("SHA256:");
        if let Some((k, v)) = line.split_once(':') {
            match k {
                "Codename" => r.codename = v.trim().into(),
                "Version" => r.version = v.trim().into(),
                "Date" => r.date = v.trim().into(),
                _ => {}
            }
        }
    }
    r
}

/// One stanza of a Packages index, the fields kiln pins.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stanza {
    pub package: String,
    pub version: String,
    pub architecture: String,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// The source package, when it is named otherwise than the binary package (`Source:`,
    /// without the version it may carry).
    pub source: String,
}

/// Parses a Packages index, keeping only the packages named in `wanted`.
pub fn parse_packages(text: &str, wanted: &BTreeSet<&str>) -> BTreeMap<String, Stanza> {
    let mut out = BTreeMap::new();
    for para in text.split("\n\n") {
        let mut s = Stanza::default();
        for line in para.lines() {
            let Some((k, v)) = line.split_once(": ") else { continue };
            match k {
                "Package" => s.package = v.trim().into(),
                "Version" => s.version = v.trim().into(),
                "Architecture" => s.architecture = v.trim().into(),
                "Filename" => s.filename = v.trim().into(),
                "Size" => s.size = v.trim().parse().unwrap_or(0),
                "SHA256" => s.sha256 = v.trim().into(),
                "Source" => s.source = v.split_whitespace().next().unwrap_or_default().into(),
                _ => {}
            }
        }
        if wanted.contains(s.package.as_str()) {
            out.insert(s.package.clone(), s);
        }
    }
    out
}

/// Checks the Release file's detached signature with gpgv and Debian's archive keyring.
fn check_signature(release: &[u8], signature: &[u8]) -> Result<String, InputsError> {
    let keyring = std::path::Path::new(super::KEYRING);
    let Some(gpgv) = crate::host::which("gpgv") else {
        return Ok("not checked: gpgv is not installed".into());
    };
    if !keyring.is_file() {
        return Ok(format!("not checked: {} is not installed", keyring.display()));
    }
    let dir = tempfile::tempdir().map_err(InputsError::io("create", std::env::temp_dir()))?;
    let (r, s) = (dir.path().join("Release"), dir.path().join("Release.gpg"));
    std::fs::write(&r, release).map_err(InputsError::io("write", &r))?;
    std::fs::write(&s, signature).map_err(InputsError::io("write", &s))?;
    let out = std::process::Command::new(&gpgv)
        .arg("--keyring")
        .arg(keyring)
        .arg(&s)
        .arg(&r)
        .output()
        .map_err(InputsError::io("run", &gpgv))?;
    if !out.status.success() {
        return Err(InputsError::Debian {
            message: format!(
                "the Release file's signature does not verify: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            help: Some("the mirror served a Release file Debian did not sign; kiln wrote no lock".into()),
        });
    }
    Ok(format!("verified with gpgv against {}", keyring.display()))
}

/// Resolves `wanted` (package, Debian architecture) pairs into a lock.
pub fn resolve(
    mirror: &str,
    suite: &str,
    wanted: &BTreeSet<(String, String)>,
    progress: &dyn Progress,
) -> Result<Lock, InputsError> {
    let base = mirror.trim_end_matches('/');
    let release_url = format!("{base}/dists/{suite}/Release");
    progress.note(&format!("reading {release_url}"));
    let release_bytes = get(&release_url)?;
    let signature = check_signature(&release_bytes, &get(&format!("{release_url}.gpg"))?)?;
    let release = parse_release(&String::from_utf8_lossy(&release_bytes));
    let archs: BTreeSet<&str> = wanted.iter().map(|(_, a)| a.as_str()).collect();
    let mut packages = Vec::new();
    for arch in archs {
        let path = format!("main/binary-{arch}/Packages.gz");
        let (sha, size) = release.sha256.get(&path).cloned().ok_or_else(|| InputsError::Debian {
            message: format!("the Release file of {suite} lists no {path}"),
            help: Some(format!("is `{arch}` an architecture of {suite}?")),
        })?;
        let url = format!("{base}/dists/{suite}/{path}");
        progress.note(&format!("reading {url}"));
        let gz = get(&url)?;
        let actual = crate::oci::digest::sha256_hex(&gz);
        if actual != sha || gz.len() as u64 != size {
            return Err(InputsError::Integrity { what: url, expected: sha, actual });
        }
        let mut text = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut text)
            .map_err(InputsError::io("decompress", &path))?;
        let names: BTreeSet<&str> = wanted.iter().filter(|(_, a)| a == arch).map(|(n, _)| n.as_str()).collect();
        let found = parse_packages(&text, &names);
        for name in &names {
            let s = found.get(*name).ok_or_else(|| InputsError::Debian {
                message: format!("package `{name}` is not in {suite}/main for {arch}"),
                help: None,
            })?;
            packages.push(LockedPackage {
                name: s.package.clone(),
                debian_arch: arch.to_string(),
                version: s.version.clone(),
                architecture: s.architecture.clone(),
                url: format!("{base}/{}", s.filename),
                size: s.size,
                sha256: s.sha256.clone(),
                source: Some(if s.source.is_empty() { s.package.clone() } else { s.source.clone() }),
            });
        }
    }
    packages.sort();
    Ok(Lock {
        lock_format: LOCK_FORMAT,
        mirror: base.to_string(),
        suite: suite.to_string(),
        release: ReleaseInfo {
            codename: release.codename,
            version: release.version,
            date: release.date,
            sha256: crate::oci::digest::sha256_hex(&release_bytes),
            signature,
        },
        packages,
        bases: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_release_and_packages() {
        let r = parse_release(
            "Codename: bookworm\nVersion: 12.1\nDate: Sat\nMD5Sum:\n 00 1 x\nSHA256:\n abc 12 main/binary-amd64/Packages.gz\n",
        );
        assert_eq!((r.codename.as_str(), r.version.as_str()), ("bookworm", "12.1"));
        assert_eq!(r.sha256["main/binary-amd64/Packages.gz"], ("abc".to_string(), 12));
        assert!(!r.sha256.contains_key("x"));
        let wanted: BTreeSet<&str> = ["tzdata"].into_iter().collect();
        let p = parse_packages(
            "Package: bash\nVersion: 5\n\nPackage: tzdata\nVersion: 2024a\nArchitecture: all\nFilename: pool/t.deb\nSize: 10\nSHA256: ff\n",
            &wanted,
        );
        assert_eq!(p.len(), 1);
        assert_eq!(p["tzdata"].filename, "pool/t.deb");
        assert_eq!(p["tzdata"].size, 10);
    }
}

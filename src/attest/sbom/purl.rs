//! How both formats name where a component comes from: package URLs
//! (<https://github.com/package-url/purl-spec>, written as the reference library
//! packageurl-python writes them), download locations and licence expressions.

use super::{BaseImage, Crate};

/// `text` percent-encoded except for unreserved characters and `:` (as packageurl-python
/// quotes), and `/` too when `slash` (qualifier values).
fn encode(text: &str, slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => out.push(b as char),
            b'/' if slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `pkg:cargo/NAME@VERSION`.
pub(super) fn cargo(name: &str, version: &str) -> String {
    format!("pkg:cargo/{}@{}", encode(name, false), encode(version, false))
}

/// `pkg:golang/PATH@VERSION`, each segment of the module path encoded on its own.
pub(super) fn golang(path: &str, version: &str) -> String {
    let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(|s| encode(s, false)).collect();
    format!("pkg:golang/{}@{}", segments.join("/"), encode(version, false))
}

/// `pkg:deb/debian/NAME@VERSION?arch=ARCH`.
pub(super) fn deb(name: &str, version: &str, arch: &str) -> String {
    format!("pkg:deb/debian/{}@{}?arch={}", encode(name, false), encode(version, false), encode(arch, true))
}

/// The digest of a base: its recorded one, else the one its reference pins.
pub(super) fn base_digest(base: &BaseImage) -> Option<&str> {
    base.digest.as_deref().or_else(|| base.reference.split_once('@').map(|(_, d)| d))
}

/// `pkg:oci/NAME@DIGEST[?repository_url=REPO]` once the base's digest is known: NAME is the
/// last segment of its repository (or of the layout's directory), REPO the repository when the
/// reference names a registry. `None` without a digest, as the purl type needs one.
pub(super) fn oci(base: &BaseImage) -> Option<String> {
    let digest = base_digest(base)?;
    let (repo, registry) = match base.reference.strip_prefix("oci-layout:") {
        Some(dir) => (dir, false),
        None => {
            let repo = base.reference.split('@').next().unwrap_or_default();
            // A tag follows the last `:` after the last `/`; a registry's port precedes a `/`.
            let repo = match repo.rfind(':') {
                Some(i) if !repo[i..].contains('/') => &repo[..i],
                _ => repo,
            };
            let host = repo.split('/').next().unwrap_or_default();
            (repo, repo.contains('/') && (host.contains('.') || host.contains(':') || host == "localhost"))
        }
    };
    let name = repo.rsplit('/').find(|s| !s.is_empty())?.to_ascii_lowercase();
    let mut purl = format!("pkg:oci/{}@{}", encode(&name, false), encode(digest, false));
    if registry {
        purl.push_str("?repository_url=");
        purl.push_str(&encode(repo, true));
    }
    Some(purl)
}

/// Where a crate can be fetched, and whether that is a version-control location: the .crate
/// file for crates.io, `git+URL@REV` for a git source (SPDX's form), `None` for path crates
/// and registries whose download layout is not known here.
pub(super) fn crate_location(c: &Crate) -> Option<(String, bool)> {
    let source = c.source.as_deref()?;
    if source == "registry+https://github.com/rust-lang/crates.io-index"
        || source.trim_end_matches('/') == "sparse+https://index.crates.io"
    {
        let (name, version) = (encode(&c.name, false), encode(&c.version, false));
        return Some((format!("https://static.crates.io/crates/{name}/{name}-{version}.crate"), false));
    }
    let git = source.strip_prefix("git+")?;
    let (url, rev) = match git.split_once('#') {
        Some((url, rev)) => (url, Some(rev)),
        None => (git, None),
    };
    let url = url.split('?').next().unwrap_or_default();
    Some(match rev {
        Some(rev) => (format!("git+{url}@{rev}"), true),
        None => (format!("git+{url}"), true),
    })
}

/// The licence expression of a Cargo.toml as SPDX reads it: Cargo's legacy `/` becomes ` OR `;
/// `None` for an empty one or one with characters no SPDX expression has.
pub(super) fn license(expr: &str) -> Option<String> {
    let expr = expr.trim();
    let ok = |c: char| c.is_ascii_alphanumeric() || " .+-:()/".contains(c);
    if expr.is_empty() || !expr.chars().all(ok) {
        return None;
    }
    let parts: Vec<&str> = expr.split('/').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    Some(parts.join(" OR "))
}

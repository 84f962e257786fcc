//! Software Bills of Materials: what went into one image for one platform, written as SPDX 2.3
//! JSON and CycloneDX 1.6 JSON, the two formats scanners and registries read.
//!
//! The build fills an [`Inventory`] (the base, the binaries kiln compiled with the crates, Go
//! modules and C sources in them, the Debian packages of a distroless base, every file kiln
//! added); [`spdx`] and [`cyclonedx`] turn it into bytes and do nothing else, so each format can
//! be checked on its own against the tools that define it (`pyspdxtools`, cyclonedx-python-lib).
//!
//! Like every other document kiln writes, an SBOM is a pure function of its inputs: no clock (the
//! time is the build epoch's), no random UUIDs (the document namespace and the serial number are
//! derived from the sha256 of the inventory), every list sorted, the inventory's own order
//! ignored, and the bytes those of [`crate::oci::canonical`], ready to hash and push as a
//! referrer.

mod cyclonedx;
mod graph;
mod purl;
mod spdx;

#[cfg(test)]
mod tests;

use crate::oci::canonical;
use crate::oci::digest::hex;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

/// The media type of an SPDX JSON document.
pub const SPDX_TYPE: &str = "application/spdx+json";

/// The media type of a CycloneDX JSON document.
pub const CYCLONEDX_TYPE: &str = "application/vnd.cyclonedx+json";

/// Everything an SBOM of one image on one platform says, as the build found it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Inventory {
    /// The recipe's image name, e.g. `api`.
    pub image: String,
    /// The platform, e.g. `linux/arm/v7`.
    pub platform: String,
    /// RFC 3339 time of the build epoch (never the clock), e.g. `2023-11-14T22:13:20Z`.
    pub created: String,
    /// The tool and its version, e.g. `kiln 0.1.0`.
    pub tool: String,
    /// `None` for `scratch`.
    pub base: Option<BaseImage>,
    /// The programs kiln compiled into the image.
    pub binaries: Vec<Binary>,
    /// The Rust crates linked into a binary.
    pub crates: Vec<Crate>,
    /// The Go modules linked into a binary.
    pub go_modules: Vec<GoModule>,
    /// The C sources compiled into a binary.
    pub c_sources: Vec<SourceFile>,
    /// The packages a distroless base was made from (kiln.lock).
    pub debian: Vec<DebPackage>,
    /// Every regular file kiln put into the image's own layers.
    pub files: Vec<FileItem>,
}

/// The image an image starts from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaseImage {
    /// `distroless/static`, `registry.example/x@sha256:…` or `oci-layout:DIR`.
    pub reference: String,
    /// `sha256:…` of its manifest, when known.
    pub digest: Option<String>,
}

/// A program kiln compiled into the image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Binary {
    /// Its path in the image.
    pub path: String,
    /// Hex sha256 of the file.
    pub sha256: String,
    /// `rust`, `go` or `c`.
    pub language: String,
    pub package: String,
    pub version: Option<String>,
}

/// A Rust crate linked into a binary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Crate {
    pub name: String,
    pub version: String,
    /// The SPDX expression of its Cargo.toml.
    pub license: Option<String>,
    /// Its Cargo.lock source (`registry+…`, `sparse+…`, `git+…`); `None` for a path crate.
    pub source: Option<String>,
    /// Hex sha256 from Cargo.lock.
    pub checksum: Option<String>,
    /// The image path of the binary it is linked into.
    pub binary: String,
}

/// A Go module linked into a binary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoModule {
    pub path: String,
    pub version: String,
    /// Its go.sum hash, `h1:…`.
    pub sum: Option<String>,
    /// The image path of the binary it is linked into.
    pub binary: String,
}

/// A C source compiled into a binary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceFile {
    /// Relative to the recipe.
    pub path: String,
    /// Hex sha256 of the file.
    pub sha256: String,
    /// The image path of the binary it is compiled into.
    pub binary: String,
}

/// A Debian package a distroless base was made from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DebPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Hex sha256 of the .deb.
    pub sha256: String,
    /// Its source package.
    pub source: Option<String>,
}

/// A regular file kiln put into the image's own layers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileItem {
    pub path: String,
    /// Hex sha256 of the file.
    pub sha256: String,
    pub size: u64,
}

/// The SPDX 2.3 JSON document of `inv`, canonical bytes.
pub fn spdx(inv: &Inventory) -> Vec<u8> {
    canonical::to_vec(&spdx::document(inv))
}

/// The CycloneDX 1.6 JSON document of `inv`, canonical bytes.
pub fn cyclonedx(inv: &Inventory) -> Vec<u8> {
    canonical::to_vec(&cyclonedx::document(inv))
}

/// Sorts by canonical JSON and drops repeats, so the inventory's order never reaches output.
fn sorted<T: Serialize + Clone>(items: &[T]) -> Vec<T> {
    let mut keyed: Vec<(Vec<u8>, T)> = items.iter().map(|i| (canonical::to_vec(i), i.clone())).collect();
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    keyed.dedup_by(|a, b| a.0 == b.0);
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// The sha256 of the inventory's canonical JSON, its lists sorted first: what names the
/// document, the same for the same content whatever order the build listed it in.
fn fingerprint(inv: &Inventory) -> [u8; 32] {
    let normal = Inventory {
        binaries: sorted(&inv.binaries),
        crates: sorted(&inv.crates),
        go_modules: sorted(&inv.go_modules),
        c_sources: sorted(&inv.c_sources),
        debian: sorted(&inv.debian),
        files: sorted(&inv.files),
        ..inv.clone()
    };
    Sha256::digest(canonical::to_vec(&normal)).into()
}

/// `text` with every run of characters other than ASCII letters, digits and `.` turned into one
/// `-`, trimmed of `-` and cut to 64 characters: a readable part of an identifier or a URI.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out.chars().take(64).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// The identifier of one element of an SBOM: `KIND-LABEL-HASH`, where HASH is the first 16 hex
/// digits of the sha256 of the canonical JSON of `(kind, key)`, so equal keys get one id and
/// different keys different ones. Only letters, digits, `.` and `-`, as SPDX ids need.
fn element_id(kind: &str, label: &str, key: &impl Serialize) -> String {
    let digest = Sha256::digest(canonical::to_vec(&(kind, key)));
    let short = &hex(&digest)[..16];
    match slug(label) {
        label if label.is_empty() => format!("{kind}-{short}"),
        label => format!("{kind}-{label}-{short}"),
    }
}

/// The name and version of the tool, split at its first space (`kiln 0.1.0`).
fn tool_parts(tool: &str) -> (&str, Option<&str>) {
    match tool.trim().split_once(' ') {
        Some((name, version)) => (name, Some(version.trim())),
        None => (tool.trim(), None),
    }
}

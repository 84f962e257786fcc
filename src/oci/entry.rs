//! The files of an image as the plan lists them: one [`Entry`] per tar entry, and the layers
//! taken as they are from a base. Shared vocabulary: the plan holds these, and the stages that
//! gather facts for it (Debian packages, base layouts) and the layer writer make or read them,
//! without depending on the plan itself.

use crate::oci::digest::Digest;
use serde::Serialize;

/// A layer taken as it is from a base image in an OCI layout.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Prebuilt {
    /// The layout, relative to the recipe's directory (empty for a base from a registry).
    pub layout: String,
    /// The registry reference (`host/repository@sha256:…`) of a base pulled into kiln's cache,
    /// whose blobs are read from there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// The digest of the uncompressed tar, from the base's config.
    pub diff_id: Digest,
    pub created_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
}

/// One tar entry. `path` is absolute in the image; directories end in `/`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Entry {
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Hex sha256 of the file's content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Source file, relative to the recipe's directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Inline content from a `file` node.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The id of the [`crate::plan::RustBuild`] whose binary this file is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// Where a base file came from (`deb tzdata 2025b-0+deb12u1 all`, `generated`); its
    /// content is in kiln's file store under its sha256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

impl Entry {
    /// An entry with nothing but its path, kind, mode and owner; callers fill in the rest.
    pub fn new(path: impl Into<String>, kind: EntryKind, mode: u32, uid: u32, gid: u32) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode,
            uid,
            gid,
            size: None,
            sha256: None,
            source: None,
            content: None,
            target: None,
            build: None,
            from: None,
        }
    }

    /// A directory entry (`path` ends in `/`).
    pub fn dir(path: impl Into<String>, mode: u32, uid: u32, gid: u32) -> Entry {
        Entry::new(path, EntryKind::Dir, mode, uid, gid)
    }
}

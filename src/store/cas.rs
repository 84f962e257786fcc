//! kiln's cache of blobs pulled from registries: `blobs/sha256/HEX` under one directory,
//! each blob written to a temporary file and renamed only once its bytes are its digest's.
//! [`PulledImage`] reads one image of it as a release, so bases pulled from a registry are
//! walked as layouts are.

use super::layout_dir::blob_path;
use super::walk::check_read;
use super::{Blob, BlobSource, LayoutDir};
use crate::error::StoreError;
use crate::oci::annotation::ANNOTATION_REF_NAME;
use crate::oci::digest::{Digest, HashingWriter};
use oci_spec::image::{Descriptor, ImageIndex, MediaType};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Where pulled blobs are kept under kiln's cache.
pub fn registry_cache(cache: &Path) -> PathBuf {
    cache.join("registry")
}

/// Writes `r` as blob `digest` of the cache `dir` unless it is there; refuses bytes that are
/// not the digest's (or not `size` of them), leaving nothing.
pub fn put_blob(dir: &Path, digest: &Digest, size: u64, r: &mut dyn Read) -> Result<u64, StoreError> {
    let dest = blob_path(dir, digest);
    if std::fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == size) {
        return Ok(0);
    }
    let parent = dest.parent().unwrap_or(dir).to_path_buf();
    std::fs::create_dir_all(&parent).map_err(StoreError::io("create", &parent))?;
    let tmp = tempfile::NamedTempFile::new_in(&parent).map_err(StoreError::io("create a file in", &parent))?;
    let mut w = HashingWriter::new(std::io::BufWriter::new(tmp.as_file()));
    std::io::copy(&mut r.take(size + 1), &mut w).map_err(StoreError::io("write", tmp.path()))?;
    let (buf, actual, len) = w.finish();
    let mut file = buf.into_inner().map_err(|e| StoreError::io("write", tmp.path())(e.into_error()))?;
    file.flush().map_err(StoreError::io("write", tmp.path()))?;
    check_read(dir, digest, size, (&actual, len))?;
    tmp.persist(&dest).map_err(|e| StoreError::io("write", dest.clone())(e.error))?;
    Ok(len)
}

/// One image of the cache, named by its top blob: read as a release whose `index.json` names
/// only it.
#[derive(Debug, Clone)]
pub struct PulledImage {
    blobs: LayoutDir,
    top: Blob,
    name: String,
}

impl PulledImage {
    /// `top`: the image index or manifest, as its reference named it (`name`).
    pub fn new(dir: &Path, top: Blob, name: &str) -> PulledImage {
        PulledImage { blobs: LayoutDir::new(dir), top, name: name.to_string() }
    }
}

/// The `index.json` of a release that holds one image, `top`, named `name`: the bytes
/// `kiln build` writes for a layout of that image alone (docker's manifest list and manifest
/// stand as the OCI index and manifest they mirror).
pub fn one_image_index(dir: &Path, top: &Blob, name: &str) -> Result<(Vec<u8>, ImageIndex), StoreError> {
    let bad = |e: oci_spec::OciSpecError| StoreError::InvalidLayout { path: dir.to_path_buf(), reason: e.to_string() };
    let media_type = if top.media_type.contains("index") || top.media_type.contains("list") {
        MediaType::ImageIndex
    } else {
        MediaType::ImageManifest
    };
    let digest: oci_spec::image::Digest = top.digest.to_string().parse().map_err(bad)?;
    let mut desc = Descriptor::new(media_type, top.size, digest);
    desc.set_annotations(Some([(ANNOTATION_REF_NAME.to_string(), name.to_string())].into()));
    let index = oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![desc])
        .build()
        .map_err(bad)?;
    Ok((crate::oci::canonical::to_vec(&index), index))
}

/// The blobs are the cache's, read as a layout's are; only `index.json` is made up.
impl BlobSource for PulledImage {
    fn location(&self) -> &Path {
        self.blobs.location()
    }

    fn index(&self) -> Result<(Vec<u8>, ImageIndex), StoreError> {
        one_image_index(self.location(), &self.top, &self.name)
    }

    fn read_blob(&self, blob: &Blob) -> Result<Vec<u8>, StoreError> {
        self.blobs.read_blob(blob)
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, StoreError> {
        self.blobs.open_blob(digest)
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        self.blobs.has_blob(digest)
    }

    fn stored_size(&self, digest: &Digest) -> Option<u64> {
        self.blobs.stored_size(digest)
    }

    fn blob_name(&self, digest: &Digest) -> PathBuf {
        self.blobs.blob_name(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bytes_that_are_their_digests_take_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let good = Digest::of(b"layer");
        assert_eq!(put_blob(dir.path(), &good, 5, &mut &b"layer"[..]).unwrap(), 5);
        assert_eq!(put_blob(dir.path(), &good, 5, &mut &b"layer"[..]).unwrap(), 0, "kept once");
        let other = Digest::of(b"other");
        assert!(put_blob(dir.path(), &other, 5, &mut &b"fake!"[..]).is_err());
        assert!(put_blob(dir.path(), &other, 5, &mut &b"other and more"[..]).is_err(), "a longer stream is refused");
        assert!(!blob_path(dir.path(), &other).exists());
        let left: Vec<_> = std::fs::read_dir(dir.path().join("blobs/sha256")).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left");
    }
}

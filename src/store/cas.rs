//! kiln's cache of blobs pulled from registries: `blobs/sha256/HEX` under one directory,
//! each blob written to a temporary file and renamed only once its bytes are its digest's.
//! [`PulledImage`] reads one image of it as a release, so bases pulled from a registry are
//! walked as layouts are.

use super::layout_dir::blob_path;
use super::walk::{MAX_JSON, check_read, read_capped};
use super::{Blob, BlobSource};
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
    dir: PathBuf,
    top: Blob,
    name: String,
}

impl PulledImage {
    /// `top`: the image index or manifest, as its reference named it (`name`).
    pub fn new(dir: &Path, top: Blob, name: &str) -> PulledImage {
        PulledImage { dir: dir.to_path_buf(), top, name: name.to_string() }
    }
}

impl BlobSource for PulledImage {
    fn location(&self) -> &Path {
        &self.dir
    }

    fn index(&self) -> Result<(Vec<u8>, ImageIndex), StoreError> {
        let bad =
            |e: oci_spec::OciSpecError| StoreError::InvalidLayout { path: self.dir.clone(), reason: e.to_string() };
        // Docker's manifest list and manifest read as the OCI index and manifest they mirror.
        let media_type = if self.top.media_type.contains("index") || self.top.media_type.contains("list") {
            MediaType::ImageIndex
        } else {
            MediaType::ImageManifest
        };
        let digest: oci_spec::image::Digest = self.top.digest.to_string().parse().map_err(bad)?;
        let mut desc = Descriptor::new(media_type, self.top.size, digest);
        desc.set_annotations(Some([(ANNOTATION_REF_NAME.to_string(), self.name.clone())].into()));
        let index = oci_spec::image::ImageIndexBuilder::default()
            .schema_version(2u32)
            .manifests(vec![desc])
            .build()
            .map_err(bad)?;
        let bytes = serde_json::to_vec(&index).unwrap_or_default();
        Ok((bytes, index))
    }

    fn read_blob(&self, blob: &Blob) -> Result<Vec<u8>, StoreError> {
        let p = blob_path(&self.dir, &blob.digest);
        if blob.size > MAX_JSON {
            return Err(StoreError::TooLarge { path: p, size: blob.size, limit: MAX_JSON });
        }
        let f = std::fs::File::open(&p).map_err(StoreError::io("read", &p))?;
        let bytes = read_capped(f).map_err(StoreError::io("read", &p))?.unwrap_or_default();
        check_read(&self.dir, &blob.digest, blob.size, (&Digest::of(&bytes), bytes.len() as u64))?;
        Ok(bytes)
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, StoreError> {
        let p = blob_path(&self.dir, digest);
        Ok(Box::new(std::fs::File::open(&p).map_err(StoreError::io("open", &p))?))
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        blob_path(&self.dir, digest).is_file()
    }

    fn stored_size(&self, digest: &Digest) -> Option<u64> {
        std::fs::metadata(blob_path(&self.dir, digest)).ok().filter(|m| m.is_file()).map(|m| m.len())
    }

    fn blob_name(&self, digest: &Digest) -> PathBuf {
        blob_path(&self.dir, digest)
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

//! A layout on disk, read as a [`BlobSource`]: `oci-layout`, `index.json` and
//! `blobs/sha256/`, every JSON file refused unread when it is over [`MAX_JSON`].

use super::walk::{MAX_JSON, check_read, check_size, parse_json, read_capped};
use super::{Blob, BlobSource};
use crate::error::StoreError;
use crate::oci::digest::Digest;
use oci_spec::image::ImageIndex;
use std::io::Read;
use std::path::{Path, PathBuf};

/// An OCI image layout directory, to read.
#[derive(Debug, Clone)]
pub struct LayoutDir {
    dir: PathBuf,
}

impl LayoutDir {
    pub fn new(dir: &Path) -> LayoutDir {
        LayoutDir { dir: dir.to_path_buf() }
    }
}

/// Path of a blob in the layout at `dir`.
pub fn blob_path(dir: &Path, digest: &Digest) -> PathBuf {
    dir.join(digest.layout_path())
}

fn too_large(path: &Path, size: u64) -> StoreError {
    StoreError::TooLarge { path: path.to_path_buf(), size, limit: MAX_JSON }
}

/// A JSON file of a layout, refused unread when it is over [`MAX_JSON`].
fn read_json_file(path: &Path) -> Result<Vec<u8>, StoreError> {
    let f = std::fs::File::open(path).map_err(StoreError::io("read", path))?;
    let size = f.metadata().map_err(StoreError::io("read", path))?.len();
    if size > MAX_JSON {
        return Err(too_large(path, size));
    }
    match read_capped(f).map_err(StoreError::io("read", path))? {
        Some(bytes) => Ok(bytes),
        // It grew while it was read.
        None => Err(too_large(path, std::fs::metadata(path).map(|m| m.len()).unwrap_or(MAX_JSON + 1))),
    }
}

impl BlobSource for LayoutDir {
    fn location(&self) -> &Path {
        &self.dir
    }

    /// Refuses a directory that is not an OCI image layout before anything in it is read.
    fn index(&self) -> Result<(Vec<u8>, ImageIndex), StoreError> {
        if !self.dir.join("oci-layout").is_file() {
            return Err(StoreError::NotLayout { path: self.dir.clone() });
        }
        let bytes = read_json_file(&self.dir.join("index.json"))?;
        let index = parse_json(&self.dir, "index.json", &bytes)?;
        Ok((bytes, index))
    }

    fn read_blob(&self, blob: &Blob) -> Result<Vec<u8>, StoreError> {
        let p = blob_path(&self.dir, &blob.digest);
        if blob.size > MAX_JSON {
            return Err(too_large(&p, blob.size));
        }
        check_size(self, &blob.digest, blob.size)?;
        let bytes = read_json_file(&p)?;
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

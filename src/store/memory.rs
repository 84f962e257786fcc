//! A test double for both seams: blobs held in memory, written as a [`BlobSink`] and read back
//! as a [`BlobSource`], with no directory, lock or rename anywhere.

use super::walk::{MAX_JSON, check_read, invalid, parse_json};
use super::{Blob, BlobRef, BlobSink, BlobSource, Fill};
use crate::error::BuildError;
use crate::error::StoreError;
use crate::oci::digest::{Digest, HashingWriter};
use oci_spec::image::ImageIndex;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Default)]
pub(crate) struct Memory {
    blobs: Mutex<BTreeMap<Digest, Vec<u8>>>,
    index: Mutex<Option<Vec<u8>>>,
}

const WHERE: &str = "(memory)";

impl Memory {
    /// Makes `index_json` the release's `index.json`, as a publisher would.
    pub(crate) fn set_index(&self, index_json: &[u8]) {
        *self.index.lock().unwrap() = Some(index_json.to_vec());
    }

    fn get(&self, digest: &Digest) -> Option<Vec<u8>> {
        self.blobs.lock().unwrap().get(digest).cloned()
    }
}

impl BlobSink for Memory {
    fn write_blob(&self, fill: &mut Fill<'_>) -> Result<BlobRef, BuildError> {
        let mut w = HashingWriter::new(Vec::new());
        fill(&mut w)?;
        let (bytes, digest, size) = w.finish();
        self.blobs.lock().unwrap().insert(digest.clone(), bytes);
        Ok(BlobRef { digest, size })
    }

    fn write_bytes(&self, bytes: &[u8]) -> Result<BlobRef, BuildError> {
        self.write_blob(&mut |w| w.write_all(bytes).map_err(|e| StoreError::io("write", WHERE)(e).into()))
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        self.blobs.lock().unwrap().contains_key(digest)
    }

    fn copy_file_in(&self, digest: &Digest, src: &Path) -> Result<(), String> {
        let bytes = std::fs::read(src).map_err(|e| e.to_string())?;
        self.blobs.lock().unwrap().insert(digest.clone(), bytes);
        Ok(())
    }

    fn copy_file_out(&self, digest: &Digest, dest: &Path) -> std::io::Result<()> {
        std::fs::write(dest, self.get(digest).ok_or_else(|| std::io::Error::other("no such blob"))?)
    }

    fn location(&self) -> PathBuf {
        PathBuf::from(WHERE)
    }

    fn stored_bytes(&self) -> u64 {
        self.blobs.lock().unwrap().values().map(|b| b.len() as u64).sum()
    }
}

impl BlobSource for Memory {
    fn location(&self) -> &Path {
        Path::new(WHERE)
    }

    fn index(&self) -> Result<(Vec<u8>, ImageIndex), StoreError> {
        let bytes = self.index.lock().unwrap().clone().ok_or_else(|| invalid(Path::new(WHERE), "no index.json"))?;
        let index = parse_json(Path::new(WHERE), "index.json", &bytes)?;
        Ok((bytes, index))
    }

    fn read_blob(&self, blob: &Blob) -> Result<Vec<u8>, StoreError> {
        if blob.size > MAX_JSON {
            return Err(StoreError::TooLarge { path: self.blob_name(&blob.digest), size: blob.size, limit: MAX_JSON });
        }
        let bytes = self.get(&blob.digest).ok_or_else(|| invalid(Path::new(WHERE), "a blob is missing"))?;
        check_read(Path::new(WHERE), &blob.digest, blob.size, (&Digest::of(&bytes), bytes.len() as u64))?;
        Ok(bytes)
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, StoreError> {
        let bytes = self.get(digest).ok_or_else(|| invalid(Path::new(WHERE), format!("{digest} is missing")))?;
        Ok(Box::new(std::io::Cursor::new(bytes)))
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        BlobSink::has_blob(self, digest)
    }

    fn stored_size(&self, digest: &Digest) -> Option<u64> {
        self.get(digest).map(|b| b.len() as u64)
    }

    fn blob_name(&self, digest: &Digest) -> PathBuf {
        Path::new(WHERE).join(digest.layout_path())
    }
}

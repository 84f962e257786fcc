//! A release written as one tar instead of a directory: the members a format puts first
//! (`kiln bundle`: its manifest, `index.json`, `oci-layout`), then `blobs/sha256/HEX` as they
//! arrive. The tar is written to a temporary file beside its destination, which takes its
//! name only in [`Publisher::publish`]: dropped before that, nothing is left.

use crate::error::BuildError;
use crate::error::StoreError;
use crate::oci::digest::{Digest, HashingReader, HashingWriter};
use crate::store::walk::{check_read, check_size};
use crate::store::{BlobRef, BlobSink, BlobSource, Fill, Publisher};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

type Builder = tar::Builder<BufWriter<File>>;

/// A tar being written to `file`.
pub struct TarPublisher {
    file: PathBuf,
    tmp: tempfile::NamedTempFile,
    tar: Mutex<Builder>,
    /// `index.json` when the format writes it among the first members.
    index: Option<Vec<u8>>,
    /// Blobs written, with their sizes.
    blobs: Mutex<BTreeMap<Digest, u64>>,
}

/// A member's header: regular file, mode 0644, owner 0, time 0.
fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn poisoned(file: &Path) -> StoreError {
    StoreError::io("write", file.to_path_buf())(std::io::Error::other("a writer failed"))
}

impl TarPublisher {
    /// Starts the tar that will be `file`, with `heads` as its first members.
    pub fn create(file: &Path, heads: &[(&str, &[u8])]) -> Result<TarPublisher, StoreError> {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(StoreError::io("create a file in", &dir))?;
        let out = BufWriter::new(tmp.reopen().map_err(StoreError::io("open", tmp.path()))?);
        let mut tar = tar::Builder::new(out);
        for (name, bytes) in heads {
            tar.append_data(&mut header(bytes.len() as u64), name, *bytes).map_err(StoreError::io("write", file))?;
        }
        let index = heads.iter().find(|(n, _)| *n == "index.json").map(|(_, b)| b.to_vec());
        let blobs = Mutex::new(BTreeMap::new());
        Ok(TarPublisher { file: file.to_path_buf(), tmp, tar: Mutex::new(tar), index, blobs })
    }

    /// Appends `r`, `size` bytes, as blob `digest`, once.
    fn append(&self, digest: &Digest, size: u64, r: &mut dyn Read) -> Result<(), StoreError> {
        let mut tar = self.tar.lock().map_err(|_| poisoned(&self.file))?;
        tar.append_data(&mut header(size), digest.layout_path(), r).map_err(StoreError::io("write", &self.file))?;
        self.blobs.lock().map_err(|_| poisoned(&self.file))?.insert(digest.clone(), size);
        Ok(())
    }

    /// Appends a member that is not a blob (a bundle's deltas), once.
    pub fn append_member(&self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let mut tar = self.tar.lock().map_err(|_| poisoned(&self.file))?;
        tar.append_data(&mut header(bytes.len() as u64), name, bytes).map_err(StoreError::io("write", &self.file))
    }

    /// Copies one blob of `from` into the tar, hashed on the way: a blob whose bytes are not
    /// the ones its name says is refused, and the tar is not written.
    pub fn copy_blob(&self, from: &dyn BlobSource, (digest, size): (&Digest, u64)) -> Result<(), StoreError> {
        check_size(from, digest, size)?;
        let mut r = HashingReader::new(from.open_blob(digest)?.take(size));
        self.append(digest, size, &mut r)?;
        let (_, actual, len) = r.finish();
        check_read(from.location(), digest, size, (&actual, len))
    }
}

impl BlobSink for TarPublisher {
    /// A tar member's size comes before its bytes: the blob is held in a temporary file first.
    fn write_blob(&self, fill: &mut Fill<'_>) -> Result<BlobRef, BuildError> {
        let mut held = tempfile::tempfile().map_err(StoreError::io("create a file for", &self.file))?;
        let mut w = HashingWriter::new(BufWriter::new(&mut held));
        fill(&mut w)?;
        let (buf, digest, size) = w.finish();
        buf.into_inner().map_err(|e| StoreError::io("write", &self.file)(e.into_error()))?;
        held.rewind().map_err(StoreError::io("read", &self.file))?;
        if !self.has_blob(&digest) {
            self.append(&digest, size, &mut held)?;
        }
        Ok(BlobRef { digest, size })
    }

    fn write_bytes(&self, bytes: &[u8]) -> Result<BlobRef, BuildError> {
        self.write_blob(&mut |w| w.write_all(bytes).map_err(|e| StoreError::io("write", &self.file)(e).into()))
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        self.blobs.lock().is_ok_and(|b| b.contains_key(digest))
    }

    fn copy_file_in(&self, digest: &Digest, src: &Path) -> Result<(), String> {
        let mut f = File::open(src).map_err(|e| e.to_string())?;
        let size = f.metadata().map_err(|e| e.to_string())?.len();
        self.append(digest, size, &mut f).map_err(|e| e.to_string())
    }

    fn copy_file_out(&self, _: &Digest, _: &Path) -> std::io::Result<()> {
        Err(std::io::Error::other("a tar being written is not read back"))
    }

    fn location(&self) -> PathBuf {
        self.file.clone()
    }

    fn stored_bytes(&self) -> u64 {
        self.blobs.lock().map(|b| b.values().sum()).unwrap_or(0)
    }
}

impl Publisher for TarPublisher {
    /// Finishes the tar (with `index_json` last, unless it was among the first members, where
    /// it must be the same bytes) and gives it its name.
    fn publish(self: Box<Self>, index_json: &[u8]) -> Result<(), StoreError> {
        let TarPublisher { file, tmp, tar, index, .. } = *self;
        let io = || StoreError::io("write", &file);
        let mut tar = tar.into_inner().map_err(|_| poisoned(&file))?;
        match index {
            Some(announced) if announced != index_json => {
                return Err(StoreError::io("write", file)(std::io::Error::other(
                    "index.json differs from the one written first",
                )));
            }
            Some(_) => {}
            None => tar.append_data(&mut header(index_json.len() as u64), "index.json", index_json).map_err(io())?,
        }
        let out = tar.into_inner().map_err(io())?;
        out.into_inner().map_err(|e| io()(e.into_error()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
                .map_err(StoreError::io("set permissions of", tmp.path()))?;
        }
        tmp.persist(&file).map_err(|e| StoreError::io("write", file.clone())(e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(file: &Path) -> Vec<String> {
        let mut archive = tar::Archive::new(File::open(file).unwrap());
        archive.entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn blobs_follow_the_first_members_and_the_index_comes_last_unless_it_was_first() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.tar");
        let tar = Box::new(TarPublisher::create(&file, &[("oci-layout", crate::store::OCI_LAYOUT)]).unwrap());
        let blob = tar.write_bytes(b"{}").unwrap();
        tar.write_bytes(b"{}").unwrap();
        assert_eq!(tar.stored_bytes(), 2, "a blob written twice is one member");
        assert!(!file.exists(), "nothing is at the destination before it is published");
        tar.publish(b"{\"manifests\":[]}").unwrap();
        let blob = format!("blobs/sha256/{}", blob.digest.hex());
        assert_eq!(members(&file), ["oci-layout", blob.as_str(), "index.json"]);
    }

    #[test]
    fn a_tar_given_another_index_than_it_announced_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("out.tar");
        let tar = Box::new(TarPublisher::create(&file, &[("index.json", b"{}")]).unwrap());
        let e = tar.publish(b"{\"other\":1}").unwrap_err();
        assert!(e.to_string().contains("out.tar"), "{e}");
        assert!(!file.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "no temporary file is left");
    }
}

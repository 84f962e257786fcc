//! kiln's cache of compressed layers, by layer id.

use super::{LayerBlob, unpacked_digests};
use crate::oci::digest::Digest;
use crate::store::{BlobRef, BlobSink, blob_path};
use std::path::{Path, PathBuf};

/// Layers already compressed, by layer id, in kiln's cache: a record per layer under
/// `layers/` names its blob under `layers/blobs/sha256/`. A layer's id hashes everything its bytes
/// come from (each entry with its content digest, the compression, the epoch), and records
/// are keyed by the kiln executable too, so a hit holds the bytes this kiln would write. The
/// blob is checked against its digest before use; anything amiss is a miss.
pub struct LayerCache {
    dir: PathBuf,
    kiln: String,
}

/// What kiln's cache records of a layer it compressed.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Record {
    digest: Digest,
    size: u64,
    diff_id: Digest,
    media_type: String,
    tar_size: u64,
}

impl Record {
    pub fn new(digest: &Digest, size: u64, diff_id: &Digest, media_type: &str, tar_size: u64) -> Record {
        Record { digest: digest.clone(), size, diff_id: diff_id.clone(), media_type: media_type.to_string(), tar_size }
    }
}

impl LayerCache {
    /// The cache in `cache` for the kiln executable whose sha256 is `kiln` (hashed here when
    /// not given).
    pub fn new(cache: &Path, kiln: Option<&str>) -> LayerCache {
        // The executable's own digest: a kiln that writes layers differently never reads
        // another's records. Unreadable, it keys nothing, and every lookup misses.
        let kiln = kiln.map(str::to_string).unwrap_or_else(|| {
            std::env::current_exe()
                .and_then(std::fs::File::open)
                .and_then(crate::oci::digest::sha256_reader)
                .map(|(hex, _)| hex)
                .unwrap_or_default()
        });
        LayerCache { dir: cache.join("layers"), kiln }
    }

    /// The name layer `id` is kept under: the hash of kiln's executable and the id (`None`
    /// when kiln cannot read its own executable).
    pub fn key(&self, id: &str) -> Option<String> {
        (!self.kiln.is_empty()).then(|| crate::oci::digest::sha256_hex(format!("{} {id}", self.kiln).as_bytes()))
    }

    fn record_path(&self, id: &str) -> Option<PathBuf> {
        Some(self.dir.join(self.key(id)?))
    }

    /// The directory whose `blobs/sha256/` holds the cached layers.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record of cached layer `id`, when there is one.
    pub fn record(&self, id: &str) -> Option<Record> {
        serde_json::from_slice(&std::fs::read(self.record_path(id)?).ok()?).ok()
    }

    /// The cached layer of `record`, placed in the blob sink, once it is shown to hold
    /// exactly the tar the plan makes (`expected`: its sha256 and size) and its blob matches
    /// its digest; otherwise why it cannot be used. A record someone planted in the cache can
    /// name any blob, so nothing about it is trusted until the blob's own bytes say so.
    pub fn take(&self, record: Record, expected: (&Digest, u64), sink: &dyn BlobSink) -> Result<LayerBlob, String> {
        if record.diff_id != *expected.0 || record.tar_size != expected.1 {
            return Err("its record names other contents than the plan's".into());
        }
        let src = blob_path(&self.dir, &record.digest);
        let file = std::fs::File::open(&src).map_err(|e| format!("cannot open {}: {e}", src.display()))?;
        let (digest, size, diff_id, tar_size) =
            unpacked_digests(file, &record.media_type).map_err(|e| format!("cannot read {}: {e}", src.display()))?;
        if digest != record.digest || size != record.size {
            return Err(format!("its blob is damaged (digest {digest})"));
        }
        if diff_id != *expected.0 || tar_size != expected.1 {
            return Err(format!("its blob unpacks to {diff_id}, not the tar the plan makes"));
        }
        if !sink.has_blob(&digest) {
            sink.copy_file_in(&digest, &src)?;
        }
        let blob = BlobRef { digest: record.digest, size: record.size };
        Ok(LayerBlob { blob, diff_id: record.diff_id, media_type: record.media_type, tar_size: record.tar_size })
    }

    /// Keeps a layer just written to the blob sink. Best effort: a cache that cannot
    /// be written costs time on the next build, never a failed one.
    pub fn put(&self, id: &str, layer: &LayerBlob, sink: &dyn BlobSink) {
        if self.key(id).is_none() {
            return;
        }
        let dest = blob_path(&self.dir, &layer.blob.digest);
        let Some(parent) = dest.parent() else { return };
        if std::fs::create_dir_all(parent).is_err() {
            return;
        }
        let intact = std::fs::File::open(&dest)
            .and_then(crate::oci::digest::sha256_reader)
            .is_ok_and(|(h, n)| h == layer.blob.digest.hex() && n == layer.blob.size);
        if !intact {
            let Ok(tmp) = tempfile::NamedTempFile::new_in(parent) else { return };
            if sink.copy_file_out(&layer.blob.digest, tmp.path()).is_err() || tmp.persist(&dest).is_err() {
                return;
            }
        }
        let r = Record::new(&layer.blob.digest, layer.blob.size, &layer.diff_id, &layer.media_type, layer.tar_size);
        self.put_record(id, &r);
    }

    /// Records layer `id` as the blob `r` names (which [`LayerCache::take`] checks before use).
    /// Best effort, as [`LayerCache::put`].
    pub fn put_record(&self, id: &str, r: &Record) {
        let Some(record) = self.record_path(id) else { return };
        if std::fs::create_dir_all(&self.dir).is_ok()
            && let Ok(tmp) = tempfile::NamedTempFile::new_in(&self.dir)
            && std::fs::write(tmp.path(), serde_json::to_vec(r).unwrap_or_default()).is_ok()
        {
            let _ = tmp.persist(record);
        }
    }
}

//! The merged release as the registry push reads it: configs, manifests and indexes from the
//! layout just written, layers from the shards that hold them (a registry shard's layers are
//! mounted from its repository, or found there already, rather than sent again); and the
//! check every layer passes on its way into the layout.

use super::open::{Holders, Opened};
use crate::error::StoreError;
use crate::layer::LayerBlob;
use crate::oci::digest::{Digest, HashingReader, HashingWriter};
use crate::store::{Blob, BlobSink, BlobSource, LayoutDir};
use oci_spec::image::ImageIndex;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Reads a stream and writes what it reads to another, as it goes.
struct Tee<'a, R> {
    r: R,
    w: &'a mut dyn Write,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.r.read(buf)?;
        self.w.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Copies the layer `blob` from `src` into `sink`, checking in the same pass that its bytes
/// are its digest's and size, and that they unpack to its `diff_id`; or says what is wrong.
pub fn copy_checked(src: &dyn BlobSource, blob: &LayerBlob, sink: &dyn BlobSink) -> Result<(), String> {
    let mut unpacked = None;
    let written = sink.write_blob(&mut |w| {
        let name = src.blob_name(&blob.blob.digest);
        let io = |e| crate::error::BuildError::from(StoreError::io("read", name.clone())(e));
        let stream = src.open_blob(&blob.blob.digest)?;
        let mut tee = HashingReader::new(Tee { r: stream.take(blob.blob.size + 1), w });
        let mut tar = HashingWriter::new(std::io::sink());
        let mut decoder = crate::layer::decoder(&blob.media_type, &mut tee).map_err(io)?;
        std::io::copy(&mut decoder, &mut tar).map_err(io)?;
        drop(decoder);
        std::io::copy(&mut tee, &mut std::io::sink()).map_err(io)?;
        let (_, diff_id, _) = tar.finish();
        unpacked = Some(diff_id);
        Ok(())
    });
    let written = written.map_err(|e| e.to_string())?;
    if written.digest != blob.blob.digest || written.size != blob.blob.size {
        return Err(format!(
            "its bytes are {} ({} bytes), not the {} ({} bytes) its shard names",
            written.digest, written.size, blob.blob.digest, blob.blob.size
        ));
    }
    match unpacked {
        Some(d) if d == blob.diff_id => Ok(()),
        Some(d) => Err(format!("it unpacks to {d}, not the {} its shard names", blob.diff_id)),
        None => Err("it was not read".into()),
    }
}

/// The merged release: the written layout, and the shards for layers it does not hold.
pub struct Merged<'a> {
    layout: LayoutDir,
    shards: &'a [Opened],
    /// Layer digest -> the shard that holds it.
    holder: BTreeMap<Digest, usize>,
}

impl<'a> Merged<'a> {
    pub fn new(layout: LayoutDir, shards: &'a [Opened], layers: &Holders) -> Merged<'a> {
        let holder = layers.values().map(|(b, i)| (b.blob.digest.clone(), *i)).collect();
        Merged { layout, shards, holder }
    }

    /// Registry, blob and repository of each layer a registry shard holds: the push mounts
    /// them from there.
    pub fn mounts(&self) -> Vec<(String, Digest, String)> {
        self.holder
            .iter()
            .filter_map(|(d, i)| {
                let r = self.shards[*i].reference.as_ref()?;
                Some((r.registry.clone(), d.clone(), r.repository.clone()))
            })
            .collect()
    }

    fn shard(&self, digest: &Digest) -> Option<&dyn BlobSource> {
        let i = self.holder.get(digest)?;
        Some(self.shards[*i].source.as_ref())
    }
}

impl BlobSource for Merged<'_> {
    fn location(&self) -> &Path {
        self.layout.location()
    }

    fn index(&self) -> Result<(Vec<u8>, ImageIndex), StoreError> {
        self.layout.index()
    }

    fn read_blob(&self, blob: &Blob) -> Result<Vec<u8>, StoreError> {
        match self.shard(&blob.digest) {
            Some(s) if !self.layout.has_blob(&blob.digest) => s.read_blob(blob),
            _ => self.layout.read_blob(blob),
        }
    }

    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, StoreError> {
        match self.shard(digest) {
            Some(s) if !self.layout.has_blob(digest) => s.open_blob(digest),
            _ => self.layout.open_blob(digest),
        }
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        self.layout.has_blob(digest) || self.holder.contains_key(digest)
    }

    fn stored_size(&self, digest: &Digest) -> Option<u64> {
        self.layout.stored_size(digest).or_else(|| self.shard(digest)?.stored_size(digest))
    }

    fn blob_name(&self, digest: &Digest) -> PathBuf {
        match self.shard(digest) {
            Some(s) if !self.layout.has_blob(digest) => s.blob_name(digest),
            _ => self.layout.blob_name(digest),
        }
    }
}

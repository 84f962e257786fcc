//! Deterministic layers: a tar stream built only from the plan's entries, compressed.
//!
//! Headers come from the plan, never from the file system: sorted paths, explicit mode and
//! numeric owner, mtime = build epoch, no user or group names, no atime or ctime. The tar is
//! hashed (diff_id) and compressed in one pass; the compressed bytes are hashed as they are
//! written (digest). gzip has no name and no timestamp; zstd runs single-threaded. Both give
//! the same bytes for the same input and library version, which `Cargo.lock` pins.

use crate::digest::HashingWriter;
use crate::error::BuildError;
use crate::layout::{BlobRef, Staging};
use crate::plan::{Entry, EntryKind, LayerPlan};
use crate::recipe::Compression;
use crate::toolchain::rust::Compiled;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// A layer as written to the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    pub blob: BlobRef,
    /// sha256 of the uncompressed tar, for the config's `rootfs.diff_ids`.
    pub diff_id: String,
    pub media_type: String,
    /// Uncompressed tar size.
    pub tar_size: u64,
}

pub fn media_type(c: Compression) -> &'static str {
    match c {
        Compression::Gzip { .. } => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd { .. } => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// Reads a source and checks it against the sha256 and size the plan recorded.
struct Verified {
    inner: io::Take<std::fs::File>,
    hasher: Sha256,
}

impl Read for Verified {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn header(e: &Entry, epoch: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(e.mode);
    h.set_uid(e.uid.into());
    h.set_gid(e.gid.into());
    h.set_mtime(epoch);
    h.set_size(0);
    h.set_entry_type(match e.kind {
        EntryKind::Dir => tar::EntryType::Directory,
        EntryKind::File => tar::EntryType::Regular,
        EntryKind::Symlink => tar::EntryType::Symlink,
    });
    h
}

/// Where a layer's file contents come from: sources relative to the recipe's directory, and
/// binaries the toolchain stage produced, by build id.
pub struct Inputs<'a> {
    pub root: &'a Path,
    pub compiled: &'a BTreeMap<String, Compiled>,
    /// kiln's file store: base files by sha256.
    pub store: &'a Path,
}

/// Streams a file into the tar, checking it against the sha256 the plan or toolchain recorded.
fn append_verified<W: Write>(
    tar: &mut tar::Builder<W>,
    h: &mut tar::Header,
    path: &str,
    abs: &Path,
    size: u64,
    planned: &str,
) -> Result<(), BuildError> {
    h.set_size(size);
    let file = std::fs::File::open(abs).map_err(BuildError::io("open", abs))?;
    let mut r = Verified { inner: file.take(size), hasher: Sha256::new() };
    tar.append_data(h, path, &mut r).map_err(BuildError::io("read", abs))?;
    let read = crate::digest::hex(&r.hasher.finalize());
    if read != planned {
        return Err(BuildError::SourceChanged { path: abs.to_path_buf(), planned: planned.to_string(), read });
    }
    Ok(())
}

/// Writes the layer's tar stream to `w`; returns nothing but errors.
pub fn write_tar(layer: &LayerPlan, inputs: &Inputs<'_>, epoch: u64, w: impl Write) -> Result<(), BuildError> {
    let mut tar = tar::Builder::new(w);
    let out = PathBuf::from("layer tar stream");
    for e in &layer.entries {
        let path = e.path.trim_start_matches('/');
        let mut h = header(e, epoch);
        match e.kind {
            EntryKind::Dir => tar.append_data(&mut h, path, io::empty()).map_err(BuildError::io("write", &out))?,
            EntryKind::Symlink => {
                let target = e.target.as_deref().unwrap_or_default();
                tar.append_link(&mut h, path, target).map_err(BuildError::io("write", &out))?
            }
            EntryKind::File => match (&e.build, &e.source, &e.content) {
                (Some(id), _, _) => {
                    let c = inputs.compiled.get(id).ok_or_else(|| BuildError::InvalidLayout {
                        path: out.clone(),
                        reason: format!("binary {id} was not built"),
                    })?;
                    append_verified(&mut tar, &mut h, path, &c.path, c.size, &c.sha256)?;
                }
                (None, None, None) if e.from.is_some() && e.sha256.is_some() => {
                    let sha = e.sha256.clone().unwrap_or_default();
                    append_verified(&mut tar, &mut h, path, &inputs.store.join(&sha), e.size.unwrap_or(0), &sha)?;
                }
                (None, Some(src), _) => {
                    let planned = e.sha256.clone().unwrap_or_default();
                    append_verified(&mut tar, &mut h, path, &inputs.root.join(src), e.size.unwrap_or(0), &planned)?;
                }
                (None, None, content) => {
                    let bytes = content.as_deref().unwrap_or_default().as_bytes();
                    h.set_size(bytes.len() as u64);
                    tar.append_data(&mut h, path, bytes).map_err(BuildError::io("write", &out))?;
                }
            },
        }
    }
    tar.into_inner().map_err(BuildError::io("finish", &out))?;
    Ok(())
}

/// Copies a base image's layer into the staging blob store, checking its digest.
pub fn copy_prebuilt(p: &crate::plan::Prebuilt, root: &Path, staging: &Staging) -> Result<LayerBlob, BuildError> {
    let layout = root.join(&p.layout);
    let src = crate::walk::blob_path(&layout, &p.digest)?;
    let blob = staging.write_blob(|w| {
        let mut f = std::fs::File::open(&src).map_err(BuildError::io("open", &src))?;
        io::copy(&mut f, w).map_err(BuildError::io("copy", &src))?;
        Ok(())
    })?;
    if blob.digest != p.digest {
        return Err(BuildError::Integrity {
            what: src.display().to_string(),
            expected: p.digest.clone(),
            actual: blob.digest,
        });
    }
    Ok(LayerBlob { blob, diff_id: p.diff_id.clone(), media_type: p.media_type.clone(), tar_size: 0 })
}

/// Builds one layer into the staging blob store.
pub fn build_layer(
    layer: &LayerPlan,
    inputs: &Inputs<'_>,
    epoch: u64,
    compression: Compression,
    staging: &Staging,
) -> Result<LayerBlob, BuildError> {
    let mut diff = None;
    let blob = staging.write_blob(|w| {
        let out = PathBuf::from("layer");
        let (diff_id, tar_size) = match compression {
            Compression::Gzip { level } => {
                let gz =
                    flate2::GzBuilder::new().mtime(0).operating_system(255).write(w, flate2::Compression::new(level));
                let mut t = HashingWriter::new(gz);
                write_tar(layer, inputs, epoch, &mut t)?;
                let (gz, diff_id, n) = t.finish();
                gz.finish().map_err(BuildError::io("compress", &out))?;
                (diff_id, n)
            }
            Compression::Zstd { level } => {
                let mut z = zstd::stream::write::Encoder::new(w, level).map_err(BuildError::io("compress", &out))?;
                z.include_checksum(true).map_err(BuildError::io("compress", &out))?;
                let mut t = HashingWriter::new(z);
                write_tar(layer, inputs, epoch, &mut t)?;
                let (z, diff_id, n) = t.finish();
                z.finish().map_err(BuildError::io("compress", &out))?;
                (diff_id, n)
            }
        };
        diff = Some((diff_id, tar_size));
        Ok(())
    })?;
    let (diff_id, tar_size) = diff.unwrap_or_default();
    Ok(LayerBlob { blob, diff_id, media_type: media_type(compression).to_string(), tar_size })
}

/// Layers already compressed, by layer id, in kiln's cache: a record per layer under
/// `layers/` names its blob under `layers/blobs/sha256/`. A layer's id hashes everything its bytes
/// come from (each entry with its content digest, the compression, the epoch), and records
/// are keyed by the kiln executable too, so a hit holds the bytes this kiln would write. The
/// blob is checked against its digest before use; anything amiss is a miss.
pub struct LayerCache {
    dir: PathBuf,
    kiln: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    digest: String,
    size: u64,
    diff_id: String,
    media_type: String,
    tar_size: u64,
}

impl LayerCache {
    pub fn new(cache: &Path) -> LayerCache {
        // The executable's own digest: a kiln that writes layers differently never reads
        // another's records. Unreadable, it keys nothing, and every lookup misses.
        let kiln = std::env::current_exe()
            .and_then(std::fs::File::open)
            .and_then(crate::digest::sha256_reader)
            .map(|(hex, _)| hex)
            .unwrap_or_default();
        LayerCache { dir: cache.join("layers"), kiln }
    }

    fn record_path(&self, id: &str) -> Option<PathBuf> {
        (!self.kiln.is_empty())
            .then(|| self.dir.join(crate::digest::sha256_hex(format!("{} {id}", self.kiln).as_bytes())))
    }

    /// The cached layer `id`, placed in the staging blob store; `None` when there is none.
    pub fn get(&self, id: &str, staging: &Staging) -> Option<LayerBlob> {
        let r: Record = serde_json::from_slice(&std::fs::read(self.record_path(id)?).ok()?).ok()?;
        let src = crate::walk::blob_path(&self.dir, &r.digest).ok()?;
        let (hex, size) = crate::digest::sha256_reader(std::fs::File::open(&src).ok()?).ok()?;
        if format!("sha256:{hex}") != r.digest || size != r.size {
            return None;
        }
        // A copy, not a link: the layout's blobs and the cache's stay independent files.
        let dest = staging.blob_dir().join(&hex);
        if !dest.exists() {
            let tmp = tempfile::NamedTempFile::new_in(staging.blob_dir()).ok()?;
            std::fs::copy(&src, tmp.path()).ok()?;
            tmp.persist(&dest).ok()?;
        }
        let blob = BlobRef { digest: r.digest, size: r.size };
        Some(LayerBlob { blob, diff_id: r.diff_id, media_type: r.media_type, tar_size: r.tar_size })
    }

    /// Keeps a layer just written to the staging blob store. Best effort: a cache that cannot
    /// be written costs time on the next build, never a failed one.
    pub fn put(&self, id: &str, layer: &LayerBlob, staging: &Staging) {
        let Some(record) = self.record_path(id) else { return };
        let Ok(dest) = crate::walk::blob_path(&self.dir, &layer.blob.digest) else { return };
        let Some(parent) = dest.parent() else { return };
        if std::fs::create_dir_all(parent).is_err() {
            return;
        }
        let hex = layer.blob.digest.trim_start_matches("sha256:");
        let intact = std::fs::File::open(&dest)
            .and_then(crate::digest::sha256_reader)
            .is_ok_and(|(h, n)| h == hex && n == layer.blob.size);
        if !intact {
            let Ok(tmp) = tempfile::NamedTempFile::new_in(parent) else { return };
            let src = staging.blob_dir().join(hex);
            if std::fs::copy(&src, tmp.path()).is_err() || tmp.persist(&dest).is_err() {
                return;
            }
        }
        let r = Record {
            digest: layer.blob.digest.clone(),
            size: layer.blob.size,
            diff_id: layer.diff_id.clone(),
            media_type: layer.media_type.clone(),
            tar_size: layer.tar_size,
        };
        if let Ok(tmp) = tempfile::NamedTempFile::new_in(&self.dir)
            && std::fs::write(tmp.path(), serde_json::to_vec(&r).unwrap_or_default()).is_ok()
        {
            let _ = tmp.persist(record);
        }
    }
}

//! Deterministic layers: a tar stream built only from the plan's entries, compressed.
//!
//! Headers come from the plan, never from the file system: sorted paths, explicit mode and
//! numeric owner, mtime = build epoch, no user or group names, no atime or ctime. The tar is
//! hashed (diff_id) and compressed in one pass; the compressed bytes are hashed as they are
//! written (digest). gzip has no name and no timestamp. The parallel encoders (the default,
//! [`parallel`]) and the stream encoders give the same bytes for the same input and library
//! version, which `Cargo.lock` pins, on any number of cores.

use crate::error::LayerError;
use crate::oci::digest::{Digest, HashingWriter};
use crate::plan::{Entry, EntryKind, LayerPlan};
use crate::recipe::{Compression, Encoder};
use crate::store::{BlobRef, BlobSink, blob_path};
use crate::toolchain::rust::Compiled;

mod cache;
pub mod parallel;
pub use cache::{LayerCache, Record};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;

/// A layer as written to the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    pub blob: BlobRef,
    /// sha256 of the uncompressed tar, for the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
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
    /// Set when reading the source failed, so a failed append can say which side failed.
    failed: bool,
}

impl Read for Verified {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).inspect_err(|_| self.failed = true)?;
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
    /// The blobs of bases pulled from registries.
    pub pulled: &'a Path,
}

/// Streams a file into the tar, checking it against the sha256 the plan or toolchain recorded.
fn append_verified<W: Write>(
    (tar, out): (&mut tar::Builder<W>, &Path),
    h: &mut tar::Header,
    path: &str,
    abs: &Path,
    size: u64,
    planned: &str,
) -> Result<(), LayerError> {
    h.set_size(size);
    let file = std::fs::File::open(abs).map_err(LayerError::io("open", abs))?;
    let mut r = Verified { inner: file.take(size), hasher: Sha256::new(), failed: false };
    if let Err(e) = tar.append_data(h, path, &mut r) {
        return Err(match r.failed {
            true => LayerError::io("read", abs.to_path_buf())(e),
            false => LayerError::io("write", out.to_path_buf())(e),
        });
    }
    let read = crate::oci::digest::hex(&r.hasher.finalize());
    if read != planned {
        return Err(LayerError::SourceChanged { path: abs.to_path_buf(), planned: planned.to_string(), read });
    }
    Ok(())
}

/// Writes the layer's tar stream to `w`; returns nothing but errors.
/// `out` names what is written, for errors.
pub fn write_tar(
    layer: &LayerPlan,
    inputs: &Inputs<'_>,
    epoch: u64,
    w: impl Write,
    out: &Path,
) -> Result<(), LayerError> {
    let mut tar = tar::Builder::new(w);
    let out = out.to_path_buf();
    for e in &layer.entries {
        let path = e.path.trim_start_matches('/');
        let mut h = header(e, epoch);
        match e.kind {
            EntryKind::Dir => tar.append_data(&mut h, path, io::empty()).map_err(LayerError::io("write", &out))?,
            EntryKind::Symlink => {
                let target = e.target.as_deref().unwrap_or_default();
                tar.append_link(&mut h, path, target).map_err(LayerError::io("write", &out))?
            }
            EntryKind::File => match (&e.build, &e.source, &e.content) {
                (Some(id), _, _) => {
                    let c = inputs.compiled.get(id).ok_or_else(|| crate::error::StoreError::InvalidLayout {
                        path: out.clone(),
                        reason: format!("binary {id} was not built"),
                    })?;
                    append_verified((&mut tar, &out), &mut h, path, &c.path, c.size, &c.sha256)?;
                }
                (None, None, None) if e.from.is_some() && e.sha256.is_some() => {
                    let sha = e.sha256.clone().unwrap_or_default();
                    append_verified(
                        (&mut tar, &out),
                        &mut h,
                        path,
                        &inputs.store.join(&sha),
                        e.size.unwrap_or(0),
                        &sha,
                    )?;
                }
                (None, Some(src), _) => {
                    let planned = e.sha256.clone().unwrap_or_default();
                    append_verified(
                        (&mut tar, &out),
                        &mut h,
                        path,
                        &inputs.root.join(src),
                        e.size.unwrap_or(0),
                        &planned,
                    )?;
                }
                (None, None, content) => {
                    let bytes = content.as_deref().unwrap_or_default().as_bytes();
                    h.set_size(bytes.len() as u64);
                    tar.append_data(&mut h, path, bytes).map_err(LayerError::io("write", &out))?;
                }
            },
        }
    }
    tar.into_inner().map_err(LayerError::io("finish", &out))?;
    Ok(())
}

/// Copies a base image's layer into the blob sink, checking its digest.
pub fn copy_prebuilt(
    p: &crate::plan::Prebuilt,
    inputs: &Inputs<'_>,
    sink: &dyn BlobSink,
) -> Result<LayerBlob, LayerError> {
    let layout = if p.registry.is_some() { inputs.pulled.to_path_buf() } else { inputs.root.join(&p.layout) };
    let src = blob_path(&layout, &p.digest);
    let blob = sink.write_blob(&mut |w| {
        let mut f = std::fs::File::open(&src).map_err(LayerError::io("open", &src))?;
        io::copy(&mut f, w).map_err(LayerError::io("copy", &src))?;
        Ok(())
    })?;
    if blob.digest != p.digest {
        return Err(LayerError::Integrity {
            what: src.display().to_string(),
            expected: p.digest.to_string(),
            actual: blob.digest.to_string(),
        });
    }
    Ok(LayerBlob { blob, diff_id: p.diff_id.clone(), media_type: p.media_type.clone(), tar_size: 0 })
}

/// The sha256 and size of the tar [`write_tar`] makes for `layer`, without compressing it.
pub fn tar_digest(layer: &LayerPlan, inputs: &Inputs<'_>, epoch: u64) -> Result<(Digest, u64), LayerError> {
    let mut w = HashingWriter::new(io::sink());
    write_tar(layer, inputs, epoch, &mut w, Path::new("a tar stream to hash"))?;
    let (_, digest, size) = w.finish();
    Ok((digest, size))
}

/// A compressed layer's digest and size, and the digest and size of the tar inside it.
pub(crate) fn unpacked_digests(file: std::fs::File, media_type: &str) -> io::Result<(Digest, u64, Digest, u64)> {
    let mut blob = crate::oci::digest::HashingReader::new(io::BufReader::new(file));
    let mut tar = HashingWriter::new(io::sink());
    if media_type.ends_with("+gzip") {
        io::copy(&mut flate2::read::GzDecoder::new(&mut blob), &mut tar)?;
    } else if media_type.ends_with("+zstd") {
        io::copy(&mut zstd::stream::read::Decoder::new(&mut blob)?, &mut tar)?;
    } else {
        return Err(io::Error::other(format!("unknown media type {media_type}")));
    }
    io::copy(&mut blob, &mut io::sink())?;
    let (_, digest, size) = blob.finish();
    let (_, diff_id, tar_size) = tar.finish();
    Ok((digest, size, diff_id, tar_size))
}

/// The gzip stream of the stream encoder: no name, time 0, "unknown" system.
fn gzip<W: Write>(w: W, level: u32) -> flate2::write::GzEncoder<W> {
    flate2::GzBuilder::new().mtime(0).operating_system(255).write(w, flate2::Compression::new(level))
}

/// The zstd stream of every layer kiln writes: with a checksum; `workers` 0 for the stream
/// encoder, at least 1 for the parallel one (whose bytes do not depend on how many).
pub(crate) fn zstd_stream<'a, W: Write>(
    w: W,
    level: i32,
    workers: u32,
) -> io::Result<zstd::stream::write::Encoder<'a, W>> {
    let mut z = zstd::stream::write::Encoder::new(w, level)?;
    z.include_checksum(true)?;
    if workers > 0 {
        z.multithread(workers)?;
    }
    Ok(z)
}

/// A writer that compresses as `compression` says; [`Compressor::finish`] ends the stream.
pub enum Compressor<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Blocks(parallel::BlockGz<'static, W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    pub fn new(w: W, compression: Compression) -> io::Result<Compressor<W>> {
        // The pool is started only by the parallel encoders.
        Ok(match compression {
            Compression::Gzip { level, encoder: Encoder::Stream } => Compressor::Gzip(gzip(w, level)),
            Compression::Gzip { level, encoder: Encoder::Parallel } => {
                Compressor::Blocks(parallel::BlockGz::new(w, level, parallel::pool())?)
            }
            Compression::Zstd { level, encoder: Encoder::Stream } => Compressor::Zstd(zstd_stream(w, level, 0)?),
            Compression::Zstd { level, encoder: Encoder::Parallel } => {
                Compressor::Zstd(zstd_stream(w, level, parallel::zstd_workers(parallel::pool()))?)
            }
        })
    }

    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::Gzip(g) => g.finish(),
            Compressor::Blocks(b) => b.finish(),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::Gzip(g) => g.write(buf),
            Compressor::Blocks(b) => b.write(buf),
            Compressor::Zstd(z) => z.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::Gzip(g) => g.flush(),
            Compressor::Blocks(b) => b.flush(),
            Compressor::Zstd(z) => z.flush(),
        }
    }
}

/// Compresses a tar as [`build_layer`] does, so a tar rebuilt elsewhere (from a delta) gets
/// the same blob.
pub fn compress_into(tar: &mut dyn Read, compression: Compression, w: &mut dyn Write) -> io::Result<()> {
    let mut c = Compressor::new(w, compression)?;
    io::copy(tar, &mut c)?;
    c.finish().map(|_| ())
}

/// Builds one layer into the blob sink.
pub fn build_layer(
    layer: &LayerPlan,
    inputs: &Inputs<'_>,
    epoch: u64,
    compression: Compression,
    sink: &dyn BlobSink,
) -> Result<LayerBlob, LayerError> {
    let mut diff = None;
    let blob = sink.write_blob(&mut |w| {
        let out = sink.location().join(format!("(layer {})", layer.name));
        let c = Compressor::new(io::BufWriter::with_capacity(1 << 16, w), compression)
            .map_err(LayerError::io("compress", &out))?;
        let mut t = HashingWriter::new(io::BufWriter::with_capacity(1 << 16, c));
        write_tar(layer, inputs, epoch, &mut t, &out)?;
        let (c, diff_id, tar_size) = t.finish();
        // What fails here is writing the last compressed bytes (a full disk), not compressing.
        let c = c.into_inner().map_err(|e| LayerError::io("write", &out)(e.into_error()))?;
        c.finish().and_then(|mut w| w.flush()).map_err(LayerError::io("write", &out))?;
        diff = Some((diff_id, tar_size));
        Ok(())
    })?;
    let (diff_id, tar_size) = diff.ok_or_else(|| crate::error::StoreError::InvalidLayout {
        path: sink.location(),
        reason: format!("layer {} was written without its tar", layer.name),
    })?;
    Ok(LayerBlob { blob, diff_id, media_type: media_type(compression).to_string(), tar_size })
}

/// A decompressing reader for a layer of `media_type` (gzip, zstd or a plain tar).
pub(crate) fn decoder<'a>(media_type: &str, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    let r = io::BufReader::new(r);
    Ok(if media_type.ends_with("gzip") {
        Box::new(flate2::read::GzDecoder::new(r))
    } else if media_type.ends_with("zstd") {
        Box::new(zstd::stream::read::Decoder::with_buffer(r)?)
    } else {
        Box::new(r)
    })
}

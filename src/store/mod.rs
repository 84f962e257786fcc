//! Where a release's blobs go and where they are read back: one pair of seams, so that build,
//! image, layer and update code never name a directory, a tar or a registry.
//!
//! - [`BlobSink`]: where blobs are written while a release is assembled, hashed while they
//!   stream in.
//! - [`Publisher`]: makes a finished set of blobs and its `index.json` visible in one step.
//! - [`BlobSource`]: reads a release back (`index.json`, JSON blobs capped and checked, layers
//!   as streams); [`walk`] follows it image by image.
//!
//! Implementations today: [`Staging`] (a layout directory written beside the output and
//! swapped in atomically: a sink and a publisher), [`LayoutDir`] (a layout on disk: a source)
//! and, in [`crate::publish`], [`crate::publish::TarPublisher`] (a tar that receives blobs,
//! which `kiln bundle` writes).

mod beside;
pub mod cas;
pub mod fingerprint;
mod layout_dir;
#[cfg(test)]
pub(crate) mod memory;
mod staging;
pub mod walk;

pub(crate) use beside::recover;
pub use layout_dir::{LayoutDir, blob_path};
pub use staging::Staging;
pub use walk::Blob;

use crate::error::{BuildError, StoreError};
use crate::oci::digest::Digest;
use oci_spec::image::ImageIndex;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The `oci-layout` file of every layout kiln writes.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Digest and size of a written blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
}

/// What fills one blob: it writes the blob's bytes to the stream it is given.
pub type Fill<'a> = dyn FnMut(&mut dyn Write) -> Result<(), BuildError> + 'a;

/// Where a release's blobs are written while it is assembled. Shared by the threads that write
/// layers, so every method takes `&self`.
pub trait BlobSink: Sync {
    /// Streams a blob: `fill` writes it, the digest and size are taken on the way.
    fn write_blob(&self, fill: &mut Fill<'_>) -> Result<BlobRef, BuildError>;

    /// Writes a blob held in memory (configs, manifests, indexes).
    fn write_bytes(&self, bytes: &[u8]) -> Result<BlobRef, BuildError>;

    /// Whether the sink already holds `digest`.
    fn has_blob(&self, digest: &Digest) -> bool;

    /// Places the file `src`, already checked to hold `digest`, as that blob: how a layer from
    /// kiln's layer cache arrives. A copy, never a link: the sink's blobs and the cache's stay
    /// independent files.
    fn copy_file_in(&self, digest: &Digest, src: &Path) -> Result<(), String>;

    /// Copies blob `digest` out to the new file `dest`: how kiln's layer cache keeps a layer.
    fn copy_file_out(&self, digest: &Digest, dest: &Path) -> std::io::Result<()>;

    /// Where the blobs go, as messages name it.
    fn location(&self) -> PathBuf;

    /// Bytes of every blob written so far.
    fn stored_bytes(&self) -> u64;
}

/// Makes a finished set of blobs visible, with the `index.json` that names them, in one step:
/// before it returns nothing is visible, and a failure leaves what was there before.
pub trait Publisher: BlobSink {
    fn publish(self: Box<Self>, index_json: &[u8]) -> Result<(), StoreError>;
}

/// A release to read: its `index.json` and its blobs, each checked against its digest.
pub trait BlobSource {
    /// What messages name the release by (a layout's directory).
    fn location(&self) -> &Path;

    /// `index.json`, as bytes and parsed (every descriptor's digest checked).
    fn index(&self) -> Result<(Vec<u8>, ImageIndex), StoreError>;

    /// A JSON blob's bytes, refused unread when it is over [`MAX_JSON`] and refused when they
    /// do not match the descriptor's digest and size.
    fn read_blob(&self, blob: &Blob) -> Result<Vec<u8>, StoreError>;

    /// A blob as a stream, unchecked: the reader hashes what it reads.
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>, StoreError>;

    /// Whether the release holds `digest`.
    fn has_blob(&self, digest: &Digest) -> bool;

    /// The size of the blob as held, `None` when it is not held.
    fn stored_size(&self, digest: &Digest) -> Option<u64>;

    /// How messages name a blob of this release (a layout's `…/blobs/sha256/HEX`).
    fn blob_name(&self, digest: &Digest) -> PathBuf;
}

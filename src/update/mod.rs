//! Updates between two releases: what a device holding OLD must download to get NEW
//! (`kiln diff`), a bundle of exactly that (`kiln bundle`), and applying it on the device
//! (`kiln apply`), which checks every byte and leaves the layout unchanged on any failure.

mod apply;
mod bundle;
pub mod delta;
mod delta_apply;
mod diff;
mod patch;
mod pull;
pub mod registry_deltas;

pub use apply::{ApplySummary, apply};
pub use bundle::{BundleSummary, bundle};
pub use diff::{Blob, DiffReport, ImageDiff, PlatformDiff, diff, parse_size, render_diff};
pub use pull::{PullSummary, pull};

use crate::error::UpdateError;
use crate::oci::digest::Digest;
use crate::store::{BlobSource, walk};
use std::collections::BTreeMap;
use std::path::Path;

/// One platform's image: its manifest, config and layers as (digest, size).
#[derive(Debug, Clone)]
pub struct PlatformBlobs {
    pub platform: String,
    pub manifest: (Digest, u64),
    pub config: (Digest, u64),
    pub layers: Vec<(Digest, u64)>,
}

/// One named image of a layout.
#[derive(Debug, Clone)]
pub struct ImageBlobs {
    pub name: String,
    /// The image index, when the image is multi-platform.
    pub index: Option<(Digest, u64)>,
    pub platforms: Vec<PlatformBlobs>,
}

/// Every image of a release with the blobs it references, for `platforms` (empty: all). The
/// manifests of other platforms are not read: a device may hold only its own.
pub fn images(src: &dyn BlobSource, platforms: &[String]) -> Result<Vec<ImageBlobs>, UpdateError> {
    images_of(walk::images_for(src, None, platforms)?)
}

/// What a device's layout holds: platforms whose manifests it lacks are left out, as if the
/// image did not have them.
fn held(src: &dyn BlobSource, platforms: &[String]) -> Result<Vec<ImageBlobs>, UpdateError> {
    images_of(walk::images_present(src, None, platforms)?)
}

fn images_of(walked: Vec<walk::Image>) -> Result<Vec<ImageBlobs>, UpdateError> {
    let pair = |b: &walk::Blob| (b.digest.clone(), b.size);
    Ok(walked
        .into_iter()
        .map(|i| ImageBlobs {
            index: i.index.as_ref().map(|_| pair(&i.blob)),
            platforms: i
                .platforms
                .iter()
                .map(|p| PlatformBlobs {
                    platform: p.platform.clone(),
                    manifest: pair(&p.blob),
                    config: pair(&p.config),
                    layers: p.layers.iter().map(pair).collect(),
                })
                .collect(),
            name: i.name,
        })
        .collect())
}

/// Every blob a layout references, with its size.
pub fn reachable(images: &[ImageBlobs]) -> BTreeMap<Digest, u64> {
    let mut all = BTreeMap::new();
    for i in images {
        if let Some((d, s)) = &i.index {
            all.insert(d.clone(), *s);
        }
        for p in &i.platforms {
            for (d, s) in std::iter::once(&p.manifest).chain(std::iter::once(&p.config)).chain(p.layers.iter()) {
                all.insert(d.clone(), *s);
            }
        }
    }
    all
}

/// The release a layout holds, as a bundle names it: the sha256 of its index.json, or `None`
/// when that lists no image (a device's first install starts from such a layout).
fn release(src: &dyn BlobSource) -> Result<(Digest, Option<Digest>), UpdateError> {
    let (bytes, index) = src.index()?;
    let digest = Digest::of(&bytes);
    let base = (!index.manifests().is_empty()).then(|| digest.clone());
    Ok((digest, base))
}

/// A bundle refused, for `reason`: the layout is left as it was.
fn refuse(bundle: &Path, reason: impl Into<String>) -> UpdateError {
    UpdateError::BundleRefused { bundle: bundle.to_path_buf(), reason: reason.into() }
}

//! `kiln apply` of a layer a bundle carries as a delta: the device's layer of the same key
//! unpacked, the new tar rebuilt from the delta and checked against the image's diff_id, then
//! compressed as the image records and checked against the layer's digest. Only a layer whose
//! every byte is right reaches the staging directory.

use super::delta::{DeltaEntry, compress, compressor, parse_compression, rebuild, unpack};
use super::refuse;
use crate::error::UpdateError;
use crate::oci::digest::Digest;
use crate::store::{BlobSink, LayoutDir, walk};
use std::io::Read;
use std::path::Path;

/// Rebuilds the layer `e` names from the delta in `entry` (`declared` bytes) and the layout
/// `dir`'s layer `e.from`, into `staging`.
pub(super) fn receive_delta(
    bundle: &Path,
    (dir, e): (&Path, &DeltaEntry),
    staging: &dyn BlobSink,
    (entry, declared): (&mut dyn Read, u64),
) -> Result<(), UpdateError> {
    if declared > e.size {
        return Err(refuse(bundle, format!("its delta for {} is larger than the layer", e.layer)));
    }
    if e.tar_size > super::delta::MAX_TAR {
        return Err(refuse(bundle, format!("the layer {} it rebuilds is over 1 GiB", e.layer)));
    }
    let mut patch = Vec::new();
    entry
        .take(declared)
        .read_to_end(&mut patch)
        .map_err(|err| refuse(bundle, format!("its delta for {}: {err}", e.layer)))?;
    if patch.len() as u64 != declared {
        return Err(refuse(bundle, format!("its delta for {} is truncated", e.layer)));
    }
    let layout = LayoutDir::new(dir);
    if !crate::store::BlobSource::has_blob(&layout, &e.from) {
        return Err(refuse(
            bundle,
            format!("the layout lacks the layer {}, which the delta for {} applies to", e.from, e.layer),
        ));
    }
    let old = unpack(&layout, &walk::Blob { digest: e.from.clone(), size: 0, media_type: String::new() })?;
    let tar = rebuild(&old, &patch, e.method, e.tar_size)
        .map_err(|err| refuse(bundle, format!("its delta for {} does not apply: {err}", e.layer)))?;
    if tar.len() as u64 != e.tar_size || Digest::of(&tar) != e.diff_id {
        return Err(refuse(bundle, format!("its delta for {} rebuilds another tar than {}", e.layer, e.diff_id)));
    }
    let compression = parse_compression(&e.compression).ok_or_else(|| {
        refuse(bundle, format!("it records the compression {:?}, which kiln does not know", e.compression))
    })?;
    let blob = compress(&tar, compression).map_err(UpdateError::io("compress", staging.location()))?;
    if Digest::of(&blob) != e.layer {
        return Err(refuse(
            bundle,
            format!(
                "this kiln ({}) compresses the rebuilt layer {} into other bytes than {} did; make the bundle without --delta",
                compressor(),
                e.layer,
                e.compressor
            ),
        ));
    }
    staging.write_bytes(&blob)?;
    Ok(())
}

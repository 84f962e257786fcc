//! Binary deltas between layers, for `kiln bundle --delta`: a layer the device lacks is sent
//! as a patch against the layer of the same key on the device (zstd `--patch-from` or bsdiff,
//! whichever is smaller: see [`super::patch`]) when there is one and the patch is smaller
//! than the layer. `kiln apply`
//! unpacks the old layer, rebuilds the new tar from the patch, checks it against the image's
//! diff_id, compresses it as the image records (`dev.kiln.compression`) and checks the blob
//! against its digest before anything is committed.

use crate::error::UpdateError;
use crate::oci::digest::Digest;
use crate::recipe::Compression;
use crate::store::{BlobSource, walk};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{self, Read};

/// The most bytes of a tar a delta is made for or rebuilt into: a delta is made in memory.
pub const MAX_TAR: u64 = 1 << 30;

/// One layer a bundle carries as a delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaEntry {
    /// The layer the delta rebuilds, and its size.
    pub layer: Digest,
    pub size: u64,
    /// The layer of the same key the device holds, which the delta applies to.
    pub from: Digest,
    /// The rebuilt tar's sha256 (the image's diff_id) and size.
    pub diff_id: Digest,
    pub tar_size: u64,
    /// How the layer is compressed (`zstd;level=3`, `gzip;level=6`), and by what.
    pub compression: String,
    pub compressor: String,
    /// How the patch rebuilds the tar; left out for zstd, so that a kiln that knows only zstd
    /// patches reads the entry, and refuses one it cannot apply.
    #[serde(default, skip_serializing_if = "Method::is_zstd")]
    pub method: Method,
}

/// What compresses layers here, as a delta records it: a device with another compressor may
/// not rebuild the same bytes.
pub fn compressor() -> String {
    format!("kiln {} (zstd {})", env!("CARGO_PKG_VERSION"), zstd::zstd_safe::version_string())
}

/// `gzip;level=6;blocks=1MiB`, `zstd;level=3` and the like, as the image records it.
pub fn parse_compression(s: &str) -> Option<Compression> {
    Compression::parse(s)
}

pub use super::patch::{Method, make, rebuild};

/// A layer's tar, unpacked from its blob (gzip or zstd, told by its first bytes), at most
/// [`MAX_TAR`] bytes.
pub fn unpack(src: &dyn BlobSource, layer: &walk::Blob) -> Result<Vec<u8>, UpdateError> {
    let name = src.blob_name(&layer.digest);
    let mut r = io::BufReader::new(src.open_blob(&layer.digest)?);
    let magic = io::BufRead::fill_buf(&mut r).map_err(UpdateError::io("read", &name))?.get(..4).map(<[u8]>::to_vec);
    let mut out = Vec::new();
    let read = match magic.as_deref() {
        Some([0x28, 0xb5, 0x2f, 0xfd]) => {
            zstd::stream::read::Decoder::new(r).and_then(|d| d.take(MAX_TAR + 1).read_to_end(&mut out))
        }
        Some([0x1f, 0x8b, ..]) => flate2::read::GzDecoder::new(r).take(MAX_TAR + 1).read_to_end(&mut out),
        _ => r.take(MAX_TAR + 1).read_to_end(&mut out),
    };
    read.map_err(UpdateError::io("unpack", &name))?;
    if out.len() as u64 > MAX_TAR {
        return Err(UpdateError::io("unpack", &name)(io::Error::other("the layer's tar is over 1 GiB")));
    }
    Ok(out)
}

/// Compresses a tar as `kiln build` does for `compression`.
pub fn compress(tar: &[u8], compression: Compression) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    crate::layer::compress_into(&mut &tar[..], compression, &mut out)?;
    Ok(out)
}

/// For each layer of `want` that the device lacks (`needed` and not `held`), the layer of the
/// same key (same image, platform and layer key) the device holds in `have`.
pub fn pairs(
    have: &dyn BlobSource,
    want: &dyn BlobSource,
    platforms: &[String],
    lacking: &BTreeMap<Digest, u64>,
) -> Result<Vec<(walk::Blob, walk::Blob, Digest, String)>, UpdateError> {
    let had = walk::images_present(have, None, platforms)?;
    let mut out = Vec::new();
    let wanted = walk::images_for(want, None, platforms)?;
    let single = wanted.len() == 1;
    for image in wanted {
        let compression = image
            .index
            .as_ref()
            .and_then(|i| i.annotations().as_ref())
            .and_then(|a| a.get(crate::oci::annotation::ANNOTATION_COMPRESSION))
            .cloned()
            .unwrap_or_default();
        // The image of the same name; a release of one image against another of one image
        // (a registry names it after its repository) pairs them whatever their names.
        let same = had.iter().find(|o| o.name == image.name);
        let Some(old_image) = same.or_else(|| (had.len() == 1 && single).then(|| &had[0])) else { continue };
        for p in &image.platforms {
            let Some(old_p) = old_image.platforms.iter().find(|o| o.platform == p.platform) else { continue };
            let (keys, _) = image.layer_keys(want, p)?;
            let (old_keys, _) = old_image.layer_keys(have, old_p)?;
            let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&want.read_blob(&p.config)?)
                .map_err(|e| UpdateError::io("read", want.blob_name(&p.config.digest))(io::Error::other(e)))?;
            for (i, layer) in p.layers.iter().enumerate() {
                if !lacking.contains_key(&layer.digest) {
                    continue;
                }
                let Some(Some(key)) = keys.get(i) else { continue };
                let old = old_keys.iter().position(|k| k.as_ref() == Some(key)).and_then(|j| old_p.layers.get(j));
                let diff_id = config.rootfs().diff_ids().get(i).and_then(|d| d.parse().ok());
                if let (Some(old), Some(diff_id)) = (old, diff_id)
                    && have.has_blob(&old.digest)
                    && !out
                        .iter()
                        .any(|(_, n, _, _): &(walk::Blob, walk::Blob, Digest, String)| n.digest == layer.digest)
                {
                    out.push((old.clone(), layer.clone(), diff_id, compression.clone()));
                }
            }
        }
    }
    Ok(out)
}

/// The size of the delta each lacking layer would go as (only those with a layer of the same
/// key in `have`, and whose delta is smaller than the layer).
pub fn patch_sizes(
    have: &dyn BlobSource,
    want: &dyn BlobSource,
    platforms: &[String],
    lacking: &BTreeMap<Digest, u64>,
) -> Result<BTreeMap<Digest, u64>, UpdateError> {
    let mut out = BTreeMap::new();
    for (old, new, _, _) in pairs(have, want, platforms, lacking)? {
        let (_, patch) = make(&unpack(have, &old)?, &unpack(want, &new)?)
            .map_err(UpdateError::io("make a delta for", want.blob_name(&new.digest)))?;
        if (patch.len() as u64) < new.size {
            out.insert(new.digest, patch.len() as u64);
        }
    }
    Ok(out)
}

/// The deltas worth sending: for each layer the device lacks that has a layer of the same key
/// on the device, the patch between their tars, when it is smaller than the layer.
pub fn worth_sending(
    have: &dyn BlobSource,
    want: &dyn BlobSource,
    platforms: &[String],
    lacking: &BTreeMap<Digest, u64>,
) -> Result<Vec<(DeltaEntry, Vec<u8>)>, UpdateError> {
    let mut out = Vec::new();
    for (old, new, diff_id, compression) in pairs(have, want, platforms, lacking)? {
        if parse_compression(&compression).is_none() {
            continue;
        }
        let (old_tar, new_tar) = (unpack(have, &old)?, unpack(want, &new)?);
        if Digest::of(&new_tar) != diff_id {
            return Err(super::refuse(
                &want.blob_name(&new.digest),
                format!("its tar is not the diff_id {diff_id} its image records"),
            ));
        }
        let (method, patch) =
            make(&old_tar, &new_tar).map_err(UpdateError::io("make a delta for", want.blob_name(&new.digest)))?;
        if (patch.len() as u64) < new.size {
            let entry = DeltaEntry {
                layer: new.digest.clone(),
                size: new.size,
                from: old.digest.clone(),
                diff_id,
                tar_size: new_tar.len() as u64,
                compression,
                compressor: compressor(),
                method,
            };
            out.push((entry, patch));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressions_read_as_images_record_them() {
        use crate::recipe::Encoder::{Parallel, Stream};
        assert_eq!(parse_compression("zstd;level=3"), Some(Compression::Zstd { level: 3, encoder: Stream }));
        assert_eq!(parse_compression("gzip;level=6"), Some(Compression::Gzip { level: 6, encoder: Stream }));
        assert_eq!(parse_compression("zstd;level=3;workers"), Some(Compression::Zstd { level: 3, encoder: Parallel }));
        assert_eq!(
            parse_compression("gzip;level=9;blocks=1MiB"),
            Some(Compression::Gzip { level: 9, encoder: Parallel })
        );
        for c in [Compression::DEFAULT, Compression::Zstd { level: 19, encoder: Parallel }] {
            assert_eq!(parse_compression(&c.describe()), Some(c));
        }
        assert_eq!(parse_compression("gzip;level=6;workers"), None);
        assert_eq!(parse_compression("gzip;level=6;blocks=2MiB"), None);
    }
}

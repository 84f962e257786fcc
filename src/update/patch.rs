//! The two ways a delta can rebuild a layer's tar from the one the device holds, and the choice
//! between them: whichever patch is smaller.
//!
//! - `zstd` (`--patch-from`): the new tar compressed with the old tar as a prefix (level 19,
//!   long-distance matching, a window over both). Fast, and it works on tars of any size.
//! - `bsdiff`: Colin Percival's bsdiff (the `bsdiff` crate), its output compressed with zstd
//!   level 19. On compiled binaries, where a one-line change shifts addresses all over the code,
//!   it is often a third smaller (see `scripts/bench-deltas`); it needs 16 bytes of memory per
//!   byte of the old tar to make, so it is tried on tars up to [`BSDIFF_MAX_TAR`] only.

use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// The largest old tar a bsdiff patch is made against (making it takes 16 times as much memory).
pub const BSDIFF_MAX_TAR: usize = 32 << 20;

/// How a patch rebuilds a tar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    #[default]
    Zstd,
    Bsdiff,
}

impl Method {
    pub fn is_zstd(&self) -> bool {
        *self == Method::Zstd
    }
}

/// The window a zstd patch needs: both tars in view.
fn window_log(old: usize, new: usize) -> u32 {
    let span = (old + new).max(1 << 20) as u64;
    (64 - span.leading_zeros()).clamp(20, 31)
}

fn zstd_patch(old: &[u8], new: &[u8]) -> io::Result<Vec<u8>> {
    use zstd::stream::raw::CParameter;
    let mut z = zstd::stream::write::Encoder::with_ref_prefix(Vec::new(), 19, old)?;
    z.set_parameter(CParameter::WindowLog(window_log(old.len(), new.len())))?;
    z.set_parameter(CParameter::EnableLongDistanceMatching(true))?;
    z.set_pledged_src_size(Some(new.len() as u64))?;
    z.write_all(new)?;
    z.finish()
}

fn bsdiff_patch(old: &[u8], new: &[u8]) -> io::Result<Vec<u8>> {
    let mut raw = Vec::new();
    bsdiff::diff(old, new, &mut raw)?;
    zstd::bulk::compress(&raw, 19)
}

/// The smaller of the patches that rebuild `new` from `old`, and how it does.
pub fn make(old: &[u8], new: &[u8]) -> io::Result<(Method, Vec<u8>)> {
    let zstd = zstd_patch(old, new)?;
    if old.len() > BSDIFF_MAX_TAR {
        return Ok((Method::Zstd, zstd));
    }
    let bsdiff = bsdiff_patch(old, new)?;
    Ok(if bsdiff.len() < zstd.len() { (Method::Bsdiff, bsdiff) } else { (Method::Zstd, zstd) })
}

/// Rebuilds a tar from `old` and a patch, refusing one that would make more than `limit` bytes.
pub fn rebuild(old: &[u8], patch: &[u8], method: Method, limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    match method {
        Method::Zstd => {
            use zstd::stream::raw::DParameter;
            let mut d = zstd::stream::read::Decoder::with_ref_prefix(patch, old)?;
            d.set_parameter(DParameter::WindowLogMax(31))?;
            d.take(limit + 1).read_to_end(&mut out)?;
        }
        Method::Bsdiff => {
            // A bsdiff patch holds each new byte once (as a difference or as new data) and 24
            // bytes of control per run: more than that is not a patch for this layer.
            let mut raw = Vec::new();
            let bound = limit.saturating_mul(2).saturating_add(1 << 20);
            zstd::stream::read::Decoder::new(patch)?.take(bound + 1).read_to_end(&mut raw)?;
            if raw.len() as u64 > bound {
                return Err(io::Error::other("the patch is larger than any patch for the layer's tar"));
            }
            bsdiff::patch(old, &mut raw.as_slice(), &mut out)?;
        }
    }
    if out.len() as u64 > limit {
        return Err(io::Error::other("the patch rebuilds more than the layer's tar"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old() -> Vec<u8> {
        (0..400_000u32).flat_map(|i| (i.wrapping_mul(2_654_435_761) >> 7).to_le_bytes()).collect()
    }

    #[test]
    fn each_method_rebuilds_the_new_tar_and_refuses_a_cut_or_oversized_patch() {
        let old = old();
        let mut new = old.clone();
        new[123_456..123_470].copy_from_slice(b"a one-line fix");
        for (method, patch) in
            [(Method::Zstd, zstd_patch(&old, &new).unwrap()), (Method::Bsdiff, bsdiff_patch(&old, &new).unwrap())]
        {
            assert!(patch.len() < new.len() / 100, "{method:?}: patch {} of {}", patch.len(), new.len());
            assert_eq!(rebuild(&old, &patch, method, new.len() as u64).unwrap(), new, "{method:?}");
            assert!(rebuild(&old, &patch, method, 10).is_err(), "{method:?}: the limit holds");
            let cut = &patch[..patch.len() / 2];
            assert!(rebuild(&old, cut, method, new.len() as u64).is_err(), "{method:?}: a cut patch is refused");
        }
        let (method, patch) = make(&old, &new).unwrap();
        assert_eq!(rebuild(&old, &patch, method, new.len() as u64).unwrap(), new);
    }

    #[test]
    fn a_forged_bsdiff_patch_is_an_error_not_a_panic() {
        let old = old();
        // Control words that point past the old tar, claim huge lengths or seek before it.
        for control in [[u64::MAX, 0, 0], [0, 1 << 40, 0], [10, 0, (1 << 63) | 100], [old.len() as u64 + 1, 0, 0]] {
            let raw: Vec<u8> = control.iter().flat_map(|w| w.to_le_bytes()).chain([0u8; 64]).collect();
            let patch = zstd::bulk::compress(&raw, 3).unwrap();
            assert!(rebuild(&old, &patch, Method::Bsdiff, 1 << 20).is_err(), "{control:?}");
        }
        assert!(rebuild(&old, b"not zstd at all", Method::Bsdiff, 1 << 20).is_err());
    }
}

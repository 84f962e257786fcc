//! `kiln pull REF --to LAYOUT`: a device takes a release from a registry into its layout,
//! downloading only the blobs the layout lacks. Each blob goes into kiln's cache as it
//! arrives (checked against its digest before it takes its name), so a pull cut off midway
//! fetches only the rest on the next run; the layout switches in one rename once everything
//! the release needs is there and intact, as `kiln apply` does.

use super::apply::install;
use super::{images, reachable};
use crate::error::UpdateError;
use crate::inputs::registry::{Options, Release};
use crate::progress::Progress;
use crate::store::cas::{put_blob, registry_cache};
use crate::store::{BlobSink, BlobSource, LayoutDir, Staging};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// What a pull did.
#[derive(Debug, Clone, Serialize)]
pub struct PullSummary {
    /// The release's blobs for the platforms pulled.
    pub blobs: usize,
    /// Blobs downloaded in this run, and their bytes.
    pub downloaded: usize,
    pub downloaded_bytes: u64,
    /// Blobs an earlier, cut-off pull left in kiln's cache.
    pub resumed: usize,
    /// Blobs the layout held already.
    pub held: usize,
    /// Layers rebuilt from deltas the registry attached (`kiln push --delta-from`) against
    /// layers the layout holds, and the deltas' bytes.
    pub deltas: usize,
    pub delta_bytes: u64,
    /// Blobs the new release no longer uses, removed.
    pub pruned: usize,
}

/// Fetches one blob into the cache, again when the stream is cut (up to `tries` times).
fn fetch(
    want: &dyn BlobSource,
    (cas, digest, size): (&Path, &crate::oci::digest::Digest, u64),
    tries: u32,
) -> Result<u64, UpdateError> {
    let mut last = None;
    for _ in 0..tries.max(1) {
        let mut r = want.open_blob(digest)?;
        match put_blob(cas, digest, size, &mut r) {
            Ok(n) => return Ok(n),
            Err(e @ crate::error::StoreError::Io(_)) => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.map_or_else(
        || UpdateError::io("fetch", want.blob_name(digest))(std::io::Error::other("no try")),
        UpdateError::from,
    ))
}

/// Rebuilds a layer into `staging` from its delta `b` and the layout's layer `e.from`, checked
/// as `kiln apply` checks it; an error leaves the layer to be downloaded whole.
fn by_delta(
    want: &dyn BlobSource,
    (what, layout): (&Path, &Path),
    (e, b): (&super::delta::DeltaEntry, &crate::store::Blob),
    staging: &Staging,
) -> Result<(), UpdateError> {
    let mut r = want.open_blob(&b.digest)?;
    super::delta_apply::receive_delta(what, (layout, e), staging, (&mut r, b.size))
}

/// Pulls `release` (for `platforms`; empty: all) into the layout `layout`, created when it
/// does not exist.
pub fn pull(
    release: &Release,
    layout: &Path,
    (platforms, keep_unused): (&[String], bool),
    (opts, cache): (&Options, &Path),
    progress: &dyn Progress,
) -> Result<PullSummary, UpdateError> {
    crate::store::recover(layout)?;
    let want = release.open(opts)?;
    let want = want.as_ref();
    let (index_json, _) = want.index()?;
    let wanted = images(want, platforms)?;
    let needed = reachable(&wanted);
    let deltas = match release {
        Release::Registry(r) => {
            let src = crate::inputs::registry::RegistrySource::open(r, opts)
                .map_err(|e| UpdateError::Store(crate::error::StoreError::Registry(Box::new(e))))?;
            let subjects: Vec<_> =
                wanted.iter().flat_map(|i| i.platforms.iter().map(|p| p.manifest.0.clone())).collect();
            super::registry_deltas::deltas_for(&src, &subjects)?
        }
        Release::Layout(_) => Default::default(),
    };
    let what = PathBuf::from(match release {
        Release::Registry(r) => r.to_string(),
        Release::Layout(d) => d.display().to_string(),
    });
    let have = LayoutDir::new(layout);
    let cas = registry_cache(cache);
    let staging = Staging::new(layout)?;
    let (mut downloaded, mut downloaded_bytes, mut resumed, mut held) = (0, 0, 0, 0);
    let (mut delta_count, mut delta_bytes) = (0, 0);
    progress.start_transfer(needed.len() as u64);
    for (digest, size) in &needed {
        if have.stored_size(digest) == Some(*size) {
            held += 1;
            progress.blob_done("held", &digest.to_string(), 0);
            continue;
        }
        let cached = crate::store::blob_path(&cas, digest);
        if !cached.exists()
            && let Some((e, b)) = deltas.get(digest)
            // The artifact's word is the registry's: a delta is taken only for the size the
            // manifest gives the layer, and only when it is smaller than the layer.
            && e.size == *size
            && b.size < *size
            && have.has_blob(&e.from)
            && by_delta(want, (&what, layout), (e, b), &staging).is_ok()
        {
            delta_count += 1;
            delta_bytes += b.size;
            progress.blob_done("rebuilt from a delta", &digest.to_string(), b.size);
            continue;
        }
        let n = if std::fs::metadata(&cached).is_ok_and(|m| m.len() == *size) {
            resumed += 1;
            0
        } else {
            let n = fetch(want, (&cas, digest, *size), opts.tries)?;
            downloaded += 1;
            downloaded_bytes += n;
            n
        };
        staging
            .copy_file_in(digest, &cached)
            .map_err(|e| UpdateError::io("copy", cached.clone())(std::io::Error::other(e)))?;
        progress.blob_done(if n > 0 { "downloaded" } else { "from the cache" }, &digest.to_string(), n);
    }
    progress.finish();
    // Nothing counts as carried: every blob, the cache's too, is checked before the switch.
    let (pruned, _) =
        install(&what, (layout, staging), (&index_json, platforms), &BTreeSet::new(), (keep_unused, None))?;
    Ok(PullSummary {
        blobs: needed.len(),
        downloaded,
        downloaded_bytes,
        resumed,
        held,
        deltas: delta_count,
        delta_bytes,
        pruned,
    })
}

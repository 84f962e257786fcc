//! What the last build into an output wrote, so that a build with nothing changed leaves the
//! layout as it is and says what it holds, without reading a source or a blob.
//!
//! A stamp, kept in kiln's cache for each output path, holds the key of the build (a hash of
//! the whole plan, which names the digest of every input, the kiln executable's digest, the
//! tags and attestations asked for, and the output path), the summary that build printed and
//! what `stat` said of `index.json` and of every blob once it had written them. A later build
//! with the same key is done already when the output's `index.json` still hashes to the
//! stamp's index digest and it and every blob are still the very files kiln wrote: same size,
//! inode and times. A layout anything else wrote or touched since (a checkout, a copy, an
//! edit) fails that, since a file's change time is set by the kernel alone; so does anything
//! unreadable, and the build runs.

use super::BuildOptions;
use super::summary::BuildSummary;
use crate::plan::Plan;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize)]
struct Stamp {
    key: String,
    summary: BuildSummary,
    /// `index.json`, then every blob of the layout by hex digest, as `stat` saw them.
    files: Vec<(String, Seen)>,
}

/// What `stat` says of a file: size, inode, modification and change times (nanoseconds).
type Seen = (u64, u64, i128, i128);

fn seen(p: &Path) -> Option<Seen> {
    let m = std::fs::metadata(p).ok().filter(std::fs::Metadata::is_file)?;
    let s = crate::store::fingerprint::Stat::of(&m);
    Some((s.size, s.ino, s.mtime_ns, s.ctime_ns))
}

/// `index.json` and the blobs of the layout at `out`, as they are now.
fn files(out: &Path) -> Option<Vec<(String, Seen)>> {
    let mut files = vec![("index.json".to_string(), seen(&out.join("index.json"))?)];
    let blobs = out.join("blobs/sha256");
    let mut names: Vec<String> = Vec::new();
    for e in std::fs::read_dir(&blobs).ok()? {
        names.push(e.ok()?.file_name().into_string().ok()?);
    }
    names.sort();
    for n in names {
        let s = seen(&blobs.join(&n))?;
        files.push((n, s));
    }
    Some(files)
}

/// The key of building `plan` as `opts` says: `None` when there is none to trust (kiln's own
/// digest unknown) or the build must run anyway.
pub fn key(plan: &Plan, opts: &BuildOptions<'_>) -> Option<String> {
    let kiln = opts.kiln?;
    // A registry cache is told what the build used, and attestations come with documents a
    // stamp does not keep: those builds run.
    if opts.remote.is_some() || opts.attest.is_some() {
        return None;
    }
    // Hashed as serde writes it, without a canonical copy: the key is only ever compared
    // with keys the same kiln executable made.
    let mut w = crate::oci::digest::HashingWriter::new(std::io::sink());
    serde_json::to_writer(&mut w, &(plan, kiln, opts.tags, opts.out)).ok()?;
    Some(w.finish().1.hex().to_string())
}

/// The stamp of `out`: named by its path with the directory holding it resolved.
fn path(cache: &Path, out: &Path) -> PathBuf {
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let out = match (std::fs::canonicalize(parent), out.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => out.to_path_buf(),
    };
    let name = crate::oci::digest::sha256_hex(out.as_os_str().as_encoded_bytes());
    cache.join("builds").join(&name[..32])
}

/// The summary of the build `key` names, when the layout at `out` still holds what it wrote.
pub fn done(cache: &Path, out: &Path, key: &str) -> Option<BuildSummary> {
    let bytes = std::fs::read(path(cache, out)).ok()?;
    let stamp: Stamp = serde_json::from_slice(&bytes).ok()?;
    if stamp.key != key {
        return None;
    }
    let index = std::fs::read(out.join("index.json")).ok()?;
    if crate::oci::digest::sha256_digest(&index) != stamp.summary.index_digest {
        return None;
    }
    (files(out)? == stamp.files).then_some(stamp.summary)
}

/// Records that the layout at `out` holds what `summary` says. Best effort, as every cache.
pub fn record(cache: &Path, out: &Path, key: &str, summary: &BuildSummary) {
    let Some(files) = files(out) else { return };
    let stamp = Stamp { key: key.to_string(), summary: summary.clone(), files };
    let file = path(cache, out);
    let Some(dir) = file.parent() else { return };
    if std::fs::create_dir_all(dir).is_ok()
        && let Ok(tmp) = tempfile::NamedTempFile::new_in(dir)
        && std::fs::write(tmp.path(), serde_json::to_vec(&stamp).unwrap_or_default()).is_ok()
    {
        let _ = tmp.persist(file);
    }
}

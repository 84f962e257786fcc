//! A layer's tar entries as `kiln verify` compares them: every header field that reaches an
//! unpacked image (kind, mode, owner, mtime, link target) and the sha256 of each file's
//! content, in the order the tar holds them. The compressed blob is hashed while it is read
//! and refused when it is not the blob its descriptor names.

use crate::error::StoreError;
use crate::oci::digest::{Digest, HashingReader};
use crate::store::BlobSource;
use crate::store::walk::{self, Blob};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// The most entries verify reads of one layer: a layer listing more is refused rather than
/// held in memory.
pub const MAX_ENTRIES: usize = 1 << 20;

/// One tar entry's facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileFacts {
    /// `file`, `dir`, `symlink`, `hardlink` or the tar type's letter.
    pub kind: String,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
    /// Hex sha256 of a regular file's content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A link's target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// What one layer holds: its entries by path (`/etc/app.conf`, directories with a trailing
/// `/`), and the order of the tar.
#[derive(Debug, Clone, Default)]
pub struct LayerFiles {
    pub order: Vec<String>,
    pub files: BTreeMap<String, FileFacts>,
}

/// An entry's path as the image sees it: absolute, `./` and trailing slashes folded, with a
/// `/` at the end for a directory.
fn image_path(raw: &str, dir: bool) -> String {
    let rel = raw.trim_start_matches("./").trim_matches('/');
    if dir { format!("/{rel}/").replace("//", "/") } else { format!("/{rel}") }
}

fn kind(t: tar::EntryType) -> String {
    match t {
        t if t.is_file() => "file".into(),
        t if t.is_dir() => "dir".into(),
        t if t.is_symlink() => "symlink".into(),
        t if t.is_hard_link() => "hardlink".into(),
        other => format!("type {}", other.as_byte() as char),
    }
}

/// Streams the layer `blob` of `src` through its decompressor and tar, calling `each` with
/// every entry (its image path and facts, and the entry to read its content from), then
/// checks the blob's digest and size.
fn scan(
    src: &dyn BlobSource,
    blob: &Blob,
    each: &mut dyn FnMut(String, FileFacts, &mut dyn Read) -> io::Result<()>,
) -> Result<(), StoreError> {
    let name = src.blob_name(&blob.digest);
    let fail = |e: io::Error| StoreError::InvalidLayout { path: name.clone(), reason: format!("layer: {e}") };
    walk::check_size(src, &blob.digest, blob.size)?;
    let mut hashed = HashingReader::new(src.open_blob(&blob.digest)?);
    {
        let mut tar = tar::Archive::new(crate::layer::decoder(&blob.media_type, &mut hashed).map_err(fail)?);
        let mut count = 0usize;
        for item in tar.entries().map_err(fail)? {
            let mut item = item.map_err(fail)?;
            count += 1;
            if count > MAX_ENTRIES {
                return Err(fail(io::Error::other(format!("more than {MAX_ENTRIES} entries"))));
            }
            let h = item.header();
            let t = h.entry_type();
            let raw = String::from_utf8_lossy(&item.path_bytes()).into_owned();
            let facts = FileFacts {
                kind: kind(t),
                mode: h.mode().map_err(fail)? & 0o7777,
                uid: h.uid().map_err(fail)?,
                gid: h.gid().map_err(fail)?,
                mtime: h.mtime().map_err(fail)?,
                size: h.size().map_err(fail)?,
                sha256: None,
                target: item.link_name_bytes().map(|t| String::from_utf8_lossy(&t).into_owned()),
            };
            each(image_path(&raw, t.is_dir()), facts, &mut item).map_err(fail)?;
        }
        io::copy(&mut tar.into_inner(), &mut io::sink()).map_err(fail)?;
    }
    io::copy(&mut hashed, &mut io::sink()).map_err(fail)?;
    let (_, actual, len) = hashed.finish();
    walk::check_read(src.location(), &blob.digest, blob.size, (&actual, len))
}

/// Every entry of the layer `blob`, with each regular file's sha256.
pub fn read_layer(src: &dyn BlobSource, blob: &Blob) -> Result<LayerFiles, StoreError> {
    let mut out = LayerFiles::default();
    scan(src, blob, &mut |path, mut facts, content| {
        if facts.kind == "file" {
            facts.sha256 = Some(crate::oci::digest::sha256_reader(content)?.0);
        }
        out.order.push(path.clone());
        out.files.insert(path, facts);
        Ok(())
    })?;
    Ok(out)
}

/// `path` below `dir`, or `None` when the path would leave it (`..`) or names nothing.
fn below(dir: &Path, path: &str) -> Option<PathBuf> {
    let mut out = dir.to_path_buf();
    let mut any = false;
    for c in Path::new(path.trim_start_matches('/')).components() {
        match c {
            Component::Normal(n) => {
                out.push(n);
                any = true;
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    any.then_some(out)
}

/// Writes the regular files of layer `blob` named in `paths` below `dest` (as they sit in
/// the image), for a person to compare; returns how many were written. Paths that would
/// leave `dest` are skipped, and nothing is written through a link.
pub fn extract(src: &dyn BlobSource, blob: &Blob, paths: &BTreeSet<String>, dest: &Path) -> Result<usize, StoreError> {
    let mut written = 0;
    scan(src, blob, &mut |path, facts, content| {
        if facts.kind != "file" || !paths.contains(&path) {
            return Ok(());
        }
        let Some(to) = below(dest, &path) else { return Ok(()) };
        let parent_made = to.parent().is_some_and(|p| std::fs::create_dir_all(p).is_ok());
        if !parent_made || std::fs::symlink_metadata(&to).is_ok() {
            return Ok(());
        }
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&to)?;
        io::copy(content, &mut f)?;
        written += 1;
        Ok(())
    })?;
    Ok(written)
}

/// A layer's digest, for the messages of the comparison.
pub(crate) fn short(d: &Digest) -> String {
    format!("sha256:{}", d.short_hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_that_leave_the_report_directory_are_not_written() {
        let d = Path::new("/r");
        assert_eq!(below(d, "/usr/bin/x"), Some(PathBuf::from("/r/usr/bin/x")));
        assert_eq!(below(d, "./a/./b"), Some(PathBuf::from("/r/a/b")));
        assert_eq!(below(d, "/a/../../etc/passwd"), None);
        assert_eq!(below(d, "/"), None);
    }

    #[test]
    fn image_paths_fold_dots_and_slashes() {
        assert_eq!(image_path("./usr/bin/x", false), "/usr/bin/x");
        assert_eq!(image_path("usr/", true), "/usr/");
        assert_eq!(image_path("./", true), "/");
    }
}

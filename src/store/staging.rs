//! Writing an OCI image layout: a content-addressed blob store in a staging directory beside
//! the output, which takes the output's place in one atomic step once everything is written.
//!
//! Blobs are written to a temporary file, hashed while written and renamed to their digest, so
//! a crash never leaves a blob whose name lies about its content. The switch is one
//! `renameat2(RENAME_EXCHANGE)` of the staging directory and the output, so a crash leaves the
//! complete old layout or the complete new one at the output path, never neither. What a
//! killed run leaves beside the output is removed by the next run writing there (the locks
//! in [`crate::lock`] tell a dead run's leftovers from a live run's work).

use super::beside::{clean_beside, parent_and_name};
use super::{BlobRef, BlobSink, Fill, OCI_LAYOUT, Publisher};
use crate::error::BuildError;
use crate::error::StoreError;
use crate::lock;
use crate::oci::digest::{Digest, HashingWriter};
use crate::progress::Progress;
use rustix::fs::{CWD, RenameFlags};
use rustix::io::Errno;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// A layout being written. Dropped without [`Staging::commit`], it leaves nothing behind.
///
/// From [`Staging::new`] until it is dropped it holds the lock of its output (so that runs
/// writing one `--out` take turns) and the lock of its staging directory (so that other runs
/// know it is alive); see [`crate::lock`].
pub struct Staging {
    dir: PathBuf,
    out: PathBuf,
    /// Set when a failed swap left `out` missing and its old layout parked: the staging
    /// directory and its lock stay for the next run to repair.
    keep: bool,
    // Fields drop in this order: the staging lock after the directory, the output lock last.
    staging_lock: Option<lock::Held>,
    _output_lock: lock::Held,
}

impl Staging {
    /// Starts a layout that will replace `out`. Refuses an `out` that holds something other
    /// than an OCI layout, so a typo cannot wipe a source directory.
    pub fn new(out: &Path) -> Result<Staging, StoreError> {
        Staging::new_with(out, &crate::progress::Quiet)
    }

    /// [`Staging::new`], saying through `progress` when it waits for another kiln writing
    /// `out`. Waits up to ten minutes, then fails with `kiln::store::locked`.
    pub fn new_with(out: &Path, progress: &dyn Progress) -> Result<Staging, StoreError> {
        let (parent, name) = parent_and_name(out)?;
        std::fs::create_dir_all(&parent).map_err(StoreError::io("create", &parent))?;
        let output_lock = lock::lock_output(out, (&parent, &name), lock::OUTPUT_WAIT, progress)?;
        clean_beside(&parent, &name);
        if out.exists() {
            let is_layout = out.join("oci-layout").is_file();
            let is_empty = std::fs::read_dir(out).map(|mut d| d.next().is_none()).unwrap_or(false);
            if !is_layout && !is_empty {
                return Err(StoreError::OutputNotLayout { path: out.to_path_buf() });
            }
        }
        let (staging_lock, token) = lock::new_staging_lock(&parent, &name)?;
        let staging = Staging {
            dir: parent.join(format!("{}{token}", lock::STAGING_PREFIX)),
            out: out.to_path_buf(),
            keep: false,
            staging_lock: Some(staging_lock),
            _output_lock: output_lock,
        };
        std::fs::create_dir(&staging.dir).map_err(StoreError::io("create a staging directory in", &parent))?;
        let blobs = staging.blob_dir();
        std::fs::create_dir_all(&blobs).map_err(StoreError::io("create", &blobs))?;
        Ok(staging)
    }

    /// The staging directory itself (a layout once committed).
    pub fn path(&self) -> &Path {
        self.dir.as_path()
    }

    pub fn blob_dir(&self) -> PathBuf {
        self.dir.as_path().join("blobs/sha256")
    }

    /// Streams a blob: `fill` writes it, the digest is taken on the way.
    fn write_streamed(&self, fill: &mut Fill<'_>) -> Result<BlobRef, BuildError> {
        let dir = self.blob_dir();
        let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(StoreError::io("create a blob in", &dir))?;
        let file = tmp.reopen().map_err(StoreError::io("open", tmp.path()))?;
        let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        fill(&mut w)?;
        let (buf, digest, size) = w.finish();
        let file = buf.into_inner().map_err(|e| StoreError::io("write", tmp.path().to_path_buf())(e.into_error()))?;
        drop(file);
        let dest = self.dir.join(digest.layout_path());
        tmp.persist(&dest).map_err(|e| StoreError::io("rename a blob to", dest.clone())(e.error))?;
        set_read_only(&dest)?;
        Ok(BlobRef { digest, size })
    }

    /// Writes a blob held in memory (configs, manifests, indexes).
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<BlobRef, BuildError> {
        self.write_streamed(&mut |w| w.write_all(bytes).map_err(|e| StoreError::io("write", self.blob_dir())(e).into()))
    }

    /// Writes `index.json` and `oci-layout`, then swaps the staging directory into place.
    pub fn commit(self, index_json: &[u8]) -> Result<(), StoreError> {
        self.commit_with(index_json, true)
    }

    /// [`Staging::commit`]; `exchange: false` takes the fallback a file system without
    /// `RENAME_EXCHANGE` gets.
    fn commit_with(mut self, index_json: &[u8], exchange: bool) -> Result<(), StoreError> {
        let root = self.dir.as_path();
        for (name, bytes) in [("oci-layout", OCI_LAYOUT), ("index.json", index_json)] {
            let p = root.join(name);
            std::fs::write(&p, bytes).map_err(StoreError::io("write", &p))?;
            set_read_only(&p)?;
        }
        // Layout directories get fixed modes, whatever the umask.
        for d in [root.to_path_buf(), root.join("blobs"), root.join("blobs/sha256")] {
            set_mode(&d, 0o755)?;
        }
        sync_layout(root)?;
        let swapped = if std::fs::symlink_metadata(&self.out).is_err() {
            std::fs::rename(&self.dir, &self.out).map_err(StoreError::io("rename the new layout to", &self.out))
        } else if !exchange {
            self.swap_by_renames()
        } else {
            match rustix::fs::renameat_with(CWD, &self.dir, CWD, &self.out, RenameFlags::EXCHANGE) {
                // The old layout is now at the staging path, which the drop removes.
                Ok(()) => Ok(()),
                Err(Errno::INVAL | Errno::NOTSUP | Errno::NOSYS) => self.swap_by_renames(),
                Err(e) => Err(StoreError::io("swap the new layout with", self.out.clone())(e.into())),
            }
        };
        swapped?;
        // The switch itself reaches the disk before kiln says it is done.
        let (parent, _) = parent_and_name(&self.out)?;
        sync_path(&parent)
    }

    /// For file systems without `RENAME_EXCHANGE`: two renames, made recoverable. The old
    /// layout is parked at `.kiln-old-TOKEN`, which this run's staging lock covers, and that
    /// lock records the name of `out`. Should the run die between the renames, `out` is missing
    /// and the next run writing `out` finds the dead run's lock and renames the old layout back
    /// ([`clean_beside`]); after both, the parked layout is removed, now or by the next run.
    fn swap_by_renames(&mut self) -> Result<(), StoreError> {
        let old = self.parked();
        std::fs::rename(&self.out, &old).map_err(StoreError::io("move aside", &self.out))?;
        if let Err(e) = std::fs::rename(&self.dir, &self.out) {
            if std::fs::rename(&old, &self.out).is_err() {
                self.keep = true;
            }
            return Err(StoreError::io("rename the new layout to", self.out.clone())(e));
        }
        let _ = std::fs::remove_dir_all(&old);
        Ok(())
    }

    fn parked(&self) -> PathBuf {
        let token = lock::token_of(&self.dir, "").unwrap_or_default();
        self.dir.with_file_name(format!("{}{token}", lock::OLD_PREFIX))
    }
}

impl Drop for Staging {
    /// Removes the staging directory (after a swap, the old layout), then its lock.
    fn drop(&mut self) {
        if self.keep {
            if let Some(l) = self.staging_lock.take() {
                l.leave();
            }
            return;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        drop(self.staging_lock.take());
    }
}

impl BlobSink for Staging {
    fn write_blob(&self, fill: &mut Fill<'_>) -> Result<BlobRef, BuildError> {
        self.write_streamed(fill)
    }

    fn write_bytes(&self, bytes: &[u8]) -> Result<BlobRef, BuildError> {
        Staging::write_bytes(self, bytes)
    }

    fn has_blob(&self, digest: &Digest) -> bool {
        self.dir.join(digest.layout_path()).exists()
    }

    fn copy_file_in(&self, digest: &Digest, src: &Path) -> Result<(), String> {
        let dest = self.dir.join(digest.layout_path());
        let tmp = tempfile::NamedTempFile::new_in(self.blob_dir()).map_err(|e| e.to_string())?;
        std::fs::copy(src, tmp.path()).map_err(|e| e.to_string())?;
        tmp.persist(&dest).map_err(|e| e.to_string())?;
        Ok(())
    }

    fn copy_file_out(&self, digest: &Digest, dest: &Path) -> std::io::Result<()> {
        std::fs::copy(self.dir.join(digest.layout_path()), dest).map(|_| ())
    }

    fn location(&self) -> PathBuf {
        self.blob_dir()
    }

    fn stored_bytes(&self) -> u64 {
        std::fs::read_dir(self.blob_dir())
            .map(|d| d.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0)
    }
}

impl Publisher for Staging {
    /// [`Staging::commit`].
    fn publish(self: Box<Self>, index_json: &[u8]) -> Result<(), StoreError> {
        self.commit(index_json)
    }
}

/// Flushes a file's or a directory's data and metadata to the disk.
fn sync_path(p: &Path) -> Result<(), StoreError> {
    std::fs::File::open(p).and_then(|f| f.sync_all()).map_err(StoreError::io("flush to disk", p))
}

/// Every blob, `index.json`, `oci-layout` and the directories holding them, on the disk before
/// the layout is switched in: a device that loses power right after the switch finds a layout
/// whose files hold their bytes, not a renamed directory of empty files.
fn sync_layout(root: &Path) -> Result<(), StoreError> {
    let blobs = root.join("blobs/sha256");
    for e in std::fs::read_dir(&blobs).map_err(StoreError::io("read", &blobs))? {
        let e = e.map_err(StoreError::io("read", &blobs))?;
        sync_path(&e.path())?;
    }
    for p in [root.join("index.json"), root.join("oci-layout"), blobs, root.join("blobs"), root.to_path_buf()] {
        sync_path(&p)?;
    }
    Ok(())
}

fn set_mode(p: &Path, mode: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(StoreError::io("set permissions of", p))
}

fn set_read_only(p: &Path) -> Result<(), StoreError> {
    set_mode(p, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::recover;

    /// A directory holding a layout `out` whose index is `index`.
    fn layout_at(parent: &Path, index: &str) -> PathBuf {
        let out = parent.join("out");
        std::fs::create_dir_all(out.join("blobs/sha256")).unwrap();
        std::fs::write(out.join("oci-layout"), OCI_LAYOUT).unwrap();
        std::fs::write(out.join("index.json"), index).unwrap();
        out
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn the_fallback_swap_leaves_the_new_layout_and_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let out = layout_at(dir.path(), "old");
        Staging::new(&out).unwrap().commit_with(b"new", false).unwrap();
        assert_eq!(std::fs::read(out.join("index.json")).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["out"]);
    }

    #[test]
    fn a_crash_between_the_fallback_renames_is_repaired_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let out = layout_at(dir.path(), "old");
        let mut s = Staging::new(&out).unwrap();
        // The first rename, then the run dies: its staging lock stays, released.
        std::fs::rename(&out, s.parked()).unwrap();
        s.keep = true;
        drop(s);
        assert!(!out.exists());
        recover(&out).unwrap();
        assert_eq!(std::fs::read(out.join("index.json")).unwrap(), b"old", "the old layout is back");
        assert_eq!(names(dir.path()), ["out"]);
    }

    #[test]
    fn a_dead_run_writing_another_output_keeps_its_parked_layout_for_that_output() {
        let dir = tempfile::tempdir().unwrap();
        let other = layout_at(dir.path(), "other");
        let mut s = Staging::new(&other).unwrap();
        std::fs::rename(&other, s.parked()).unwrap();
        s.keep = true;
        let parked = s.parked();
        drop(s);
        drop(Staging::new(&dir.path().join("mine")).unwrap());
        assert!(parked.join("index.json").is_file(), "only a run writing `out` may put it back");
        drop(Staging::new(&other).unwrap());
        assert_eq!(names(dir.path()), ["out"]);
    }
}

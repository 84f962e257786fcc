//! Writing an OCI image layout: a content-addressed blob store in a temporary directory that
//! replaces the output directory in one rename once everything is written.
//!
//! Blobs are written to a temporary file, hashed while written and renamed to their digest, so
//! a crash never leaves a blob whose name lies about its content.

use crate::digest::HashingWriter;
use crate::error::BuildError;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// A layout being written. Dropped without [`Staging::commit`], it leaves nothing behind.
pub struct Staging {
    dir: tempfile::TempDir,
    out: PathBuf,
}

/// Digest and size of a written blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: String,
    pub size: u64,
}

impl Staging {
    /// Starts a layout that will replace `out`. Refuses an `out` that holds something other
    /// than an OCI layout, so a typo cannot wipe a source directory.
    pub fn new(out: &Path) -> Result<Staging, BuildError> {
        if out.exists() {
            let is_layout = out.join("oci-layout").is_file();
            let is_empty = std::fs::read_dir(out).map(|mut d| d.next().is_none()).unwrap_or(false);
            if !is_layout && !is_empty {
                return Err(BuildError::OutputNotLayout { path: out.to_path_buf() });
            }
        }
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(BuildError::io("create", &parent))?;
        let dir = tempfile::Builder::new()
            .prefix(".kiln-staging-")
            .tempdir_in(&parent)
            .map_err(BuildError::io("create a staging directory in", &parent))?;
        let blobs = dir.path().join("blobs/sha256");
        std::fs::create_dir_all(&blobs).map_err(BuildError::io("create", &blobs))?;
        Ok(Staging { dir, out: out.to_path_buf() })
    }

    /// The staging directory itself (a layout once committed).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn blob_dir(&self) -> PathBuf {
        self.dir.path().join("blobs/sha256")
    }

    /// Streams a blob: `fill` writes it, the digest is taken on the way.
    pub fn write_blob<F>(&self, fill: F) -> Result<BlobRef, BuildError>
    where
        F: FnOnce(&mut dyn Write) -> Result<(), BuildError>,
    {
        let dir = self.blob_dir();
        let tmp = tempfile::NamedTempFile::new_in(&dir).map_err(BuildError::io("create a blob in", &dir))?;
        let file = tmp.reopen().map_err(BuildError::io("open", tmp.path()))?;
        let mut w = HashingWriter::new(BufWriter::with_capacity(1 << 20, file));
        fill(&mut w)?;
        let (buf, digest, size) = w.finish();
        let file = buf.into_inner().map_err(|e| BuildError::Io {
            action: "write",
            path: tmp.path().to_path_buf(),
            source: e.into_error(),
        })?;
        drop(file);
        let hex = digest.trim_start_matches("sha256:");
        let dest = dir.join(hex);
        tmp.persist(&dest).map_err(|e| BuildError::Io {
            action: "rename a blob to",
            path: dest.clone(),
            source: e.error,
        })?;
        set_read_only(&dest)?;
        Ok(BlobRef { digest, size })
    }

    /// Writes a blob held in memory (configs, manifests, indexes).
    pub fn write_bytes(&self, bytes: &[u8]) -> Result<BlobRef, BuildError> {
        self.write_blob(|w| w.write_all(bytes).map_err(BuildError::io("write", self.blob_dir())))
    }

    /// Writes `index.json` and `oci-layout`, then swaps the staging directory into place.
    pub fn commit(self, index_json: &[u8]) -> Result<(), BuildError> {
        let root = self.dir.path();
        for (name, bytes) in [("oci-layout", OCI_LAYOUT), ("index.json", index_json)] {
            let p = root.join(name);
            std::fs::write(&p, bytes).map_err(BuildError::io("write", &p))?;
            set_read_only(&p)?;
        }
        // Layout directories get fixed modes, whatever the umask.
        for d in [root.to_path_buf(), root.join("blobs"), root.join("blobs/sha256")] {
            set_mode(&d, 0o755)?;
        }
        let staged = self.dir.keep();
        if self.out.exists() {
            let old = tempfile::Builder::new()
                .prefix(".kiln-old-")
                .tempdir_in(staged.parent().unwrap_or(Path::new(".")))
                .map_err(BuildError::io("create a directory beside", &self.out))?
                .keep();
            let old_layout = old.join("layout");
            std::fs::rename(&self.out, &old_layout).map_err(BuildError::io("move aside", &self.out))?;
            std::fs::rename(&staged, &self.out).map_err(BuildError::io("rename the new layout to", &self.out))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&staged, &self.out).map_err(BuildError::io("rename the new layout to", &self.out))?;
        }
        Ok(())
    }
}

fn set_mode(p: &Path, mode: u32) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(BuildError::io("set permissions of", p))
}

fn set_read_only(p: &Path) -> Result<(), BuildError> {
    set_mode(p, 0o644)
}

//! A cache shared through a registry (`--cache REF`), so that CI runners with empty local
//! caches skip the compiles and compressions another runner did: compiled binaries by build
//! step id and compressed layers by layer id, each an OCI artifact tagged in REF's repository
//! (`kiln-bin-<step id>`, `kiln-layer-<key>`).
//!
//! Nothing taken from it is trusted on its word. A blob is fetched into kiln's local cache only
//! when its bytes are its digest's; a binary is then checked as a freshly compiled one is (ELF
//! machine, static, stripped) and a layer as the local layer cache checks it (it must unpack
//! to exactly the tar the plan makes). What fails a check is reported and rebuilt, never used.
//! Storing is best effort: a cache that cannot be written costs the next runner time, never
//! this build. Whoever may push to the repository can put binaries into images built from it,
//! so pull requests should get another repository or read-only credentials (book: CI).

mod entry;

use crate::error::RegistryError;
use crate::inputs::registry::client::Client;
use crate::inputs::registry::{Options, pull};
use crate::layer::{LayerBlob, LayerCache};
use crate::oci::reference::Reference;
use crate::plan::{BuildStep, LayerPlan, Step};
use crate::store::{Blob, LayoutDir, cas::put_blob};
use crate::toolchain::cache::Compiled;
use entry::Entry;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What the cache gave and took in one build, for `kiln build --json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CacheReport {
    /// The repository, `host/repository`.
    pub repository: String,
    pub binaries_reused: usize,
    pub layers_reused: usize,
    pub binaries_stored: usize,
    pub layers_stored: usize,
    /// Entries found but not used, and why (damaged, or not what the plan makes): rebuilt.
    pub rejected: Vec<String>,
    /// Entries that could not be read or stored (the build went on without them).
    pub failed: Vec<String>,
}

/// A registry repository used as a shared cache.
pub struct RemoteCache {
    client: Client,
    target: Reference,
    /// kiln's local cache, where fetched blobs land and checked entries are kept.
    local: PathBuf,
    report: Mutex<CacheReport>,
}

impl RemoteCache {
    /// The cache at `reference` (a repository; a tag or digest in it is refused), its blobs
    /// passing through kiln's local cache `local`.
    pub fn open(reference: &str, opts: &Options, local: &Path) -> Result<RemoteCache, RegistryError> {
        let target = Reference::parse(reference)?;
        if target.tag.is_some() || target.digest.is_some() {
            return Err(RegistryError::Reference(crate::oci::reference::ReferenceError {
                shown: reference.to_string(),
                why: "--cache names a repository; kiln tags its entries itself, so leave out the tag or digest".into(),
            }));
        }
        let report = CacheReport { repository: target.repo_name(), ..CacheReport::default() };
        Ok(RemoteCache {
            client: Client::new(&target, opts),
            target,
            local: local.to_path_buf(),
            report: Mutex::new(report),
        })
    }

    /// What happened so far.
    pub fn report(&self) -> CacheReport {
        self.report.lock().map(|r| r.clone()).unwrap_or_default()
    }

    fn note(&self, f: impl FnOnce(&mut CacheReport)) {
        if let Ok(mut r) = self.report.lock() {
            f(&mut r);
        }
    }

    /// Where fetched binaries and the manifests kiln pushes are staged: a blob directory.
    fn staging(&self) -> PathBuf {
        self.local.join("remote")
    }

    /// The entry tagged `tag`, `None` when there is none (or it cannot be read: said so).
    fn lookup(&self, tag: &str) -> Option<Entry> {
        match entry::fetch(&self.client, &self.target, tag) {
            Ok(found) => found,
            Err(e) => {
                self.note(|r| r.failed.push(format!("reading {tag}: {e}")));
                None
            }
        }
    }

    /// Fetches `blob` into `dir` (checked against its digest), or says why it cannot be used.
    fn fetch(&self, blob: &Blob, dir: &Path, what: &str) -> Option<PathBuf> {
        match pull::blob(&self.client, &self.target, blob, dir) {
            Ok(_) => Some(crate::store::blob_path(dir, &blob.digest)),
            Err(e) => {
                self.note(|r| r.rejected.push(format!("{what}: {e}")));
                None
            }
        }
    }

    /// The binary of `step` from the cache, checked and kept in the local cache as if it had
    /// just been compiled; `None` when the cache lacks it or it fails a check.
    pub fn binary(&self, step: Step<'_>) -> Option<Compiled> {
        let tag = entry::binary_tag(step.id());
        let found = self.lookup(&tag)?;
        let what = format!("the cached binary of {}", step.describe());
        let (blob, unstripped) = match found.binary(step.id()) {
            Ok(b) => b,
            Err(why) => {
                self.note(|r| r.rejected.push(format!("{what}: {why}")));
                return None;
            }
        };
        let file = self.fetch(&blob, &self.staging(), &what)?;
        let kept = (|| {
            let staging = crate::toolchain::cache::staging(&self.local, step).map_err(|e| e.to_string())?;
            std::fs::copy(&file, staging.path().join(step.bin())).map_err(|e| e.to_string())?;
            let require_static = !matches!(step, Step::Rust(b) if !b.require_static);
            crate::toolchain::cache::store(&self.local, step, staging, unstripped, require_static)
                .map_err(|e| e.to_string())
        })();
        let _ = std::fs::remove_file(&file);
        match kept {
            Ok(c) => {
                self.note(|r| r.binaries_reused += 1);
                Some(Compiled { cached: true, ..c })
            }
            Err(why) => {
                self.note(|r| r.rejected.push(format!("{what}: {why}")));
                None
            }
        }
    }

    /// Puts the layer `l` from the cache into the local layer cache `layers`, where the build
    /// takes it (and checks it against the plan); whether it did.
    pub fn layer(&self, l: &LayerPlan, layers: &LayerCache) -> bool {
        let Some(key) = layers.key(&l.id) else { return false };
        let Some(found) = self.lookup(&entry::layer_tag(&key)) else { return false };
        let what = format!("the cached layer {}", l.name);
        let (blob, record) = match found.layer(&l.id) {
            Ok(b) => b,
            Err(why) => {
                self.note(|r| r.rejected.push(format!("{what}: {why}")));
                return false;
            }
        };
        if self.fetch(&blob, layers.dir(), &what).is_none() {
            return false;
        }
        layers.put_record(&l.id, &record);
        true
    }

    /// The layer taken from the cache was used (it passed the local layer cache's checks).
    pub fn layer_used(&self) {
        self.note(|r| r.layers_reused += 1);
    }

    /// The layer taken from the cache failed the local layer cache's checks.
    pub fn layer_rejected(&self, name: &str, why: &str) {
        self.note(|r| r.rejected.push(format!("the cached layer {name}: {why}")));
    }

    /// Stores the binary of `step` unless the cache holds it.
    pub fn put_binary(&self, step: Step<'_>, c: &Compiled) {
        let tag = entry::binary_tag(step.id());
        if self.lookup(&tag).is_some() {
            return;
        }
        let dir = self.staging();
        let stored = std::fs::File::open(&c.path)
            .map_err(|e| RegistryError::Store(crate::error::StoreError::io("read", c.path.clone())(e)))
            .and_then(|mut f| {
                let digest = format!("sha256:{}", c.sha256).parse().map_err(|_| {
                    RegistryError::Store(crate::error::StoreError::InvalidLayout {
                        path: c.path.clone(),
                        reason: "its recorded sha256 is not a digest".into(),
                    })
                })?;
                put_blob(&dir, &digest, c.size, &mut f)?;
                let blob = Blob { digest, size: c.size, media_type: entry::BINARY_MEDIA.into() };
                let manifest = entry::binary_manifest(step.id(), &blob, c.unstripped);
                let pushed = entry::push(&self.client, &self.target, &LayoutDir::new(&dir), (&blob, &manifest), &tag);
                // The local cache keeps the binary under its step; this copy was only for the upload.
                let _ = std::fs::remove_file(crate::store::blob_path(&dir, &blob.digest));
                pushed
            });
        match stored {
            Ok(()) => self.note(|r| r.binaries_stored += 1),
            Err(e) => self.note(|r| r.failed.push(format!("storing {tag}: {e}"))),
        }
    }

    /// Stores a layer just built (and kept in the local layer cache) unless the cache holds it.
    pub fn put_layer(&self, l: &LayerPlan, built: &LayerBlob, layers: &LayerCache) {
        let Some(key) = layers.key(&l.id) else { return };
        let tag = entry::layer_tag(&key);
        if !crate::store::blob_path(layers.dir(), &built.blob.digest).is_file() || self.lookup(&tag).is_some() {
            return;
        }
        let blob =
            Blob { digest: built.blob.digest.clone(), size: built.blob.size, media_type: built.media_type.clone() };
        let manifest = entry::layer_manifest(&l.id, &blob, built);
        match entry::push(&self.client, &self.target, &LayoutDir::new(layers.dir()), (&blob, &manifest), &tag) {
            Ok(()) => self.note(|r| r.layers_stored += 1),
            Err(e) => self.note(|r| r.failed.push(format!("storing {tag}: {e}"))),
        }
    }
}

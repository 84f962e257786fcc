//! Locks that let several kilns share an output directory's parent and a cache, and let a run
//! tell what a killed run left behind from what a live run is still writing.
//!
//! Every lock is a `flock(2)` on a small file. The kernel drops it when its holder dies, by
//! `kill -9` too, so a lock that can be taken belongs to no running kiln. The files hold the
//! holder's pid, for people. A lock file is only ever removed by a process holding its lock,
//! and whoever takes a lock checks afterwards that the file is still linked at its path (else
//! someone removed it in between and it takes the lock again): so two processes never both
//! believe they hold one lock.

use crate::error::StoreError;
use crate::progress::Progress;
use rustix::fs::FlockOperation;
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// How long a run waits for another one writing the same `--out`.
pub(crate) const OUTPUT_WAIT: Duration = Duration::from_secs(600);
/// How long a run waits for the cache while another kiln cleans it, before going on unlocked.
const CACHE_WAIT: Duration = Duration::from_secs(10);
/// Temporary files in the cache younger than this are kept even when no other kiln holds the
/// cache lock: `kiln plan`, and the planning part of `kiln build`, fetch Debian packages into
/// the cache before a build takes the lock.
const CACHE_TMP_AGE: Duration = Duration::from_secs(60);
/// The name of a staging directory: this prefix and a token; its lock adds `.lock`.
pub(crate) const STAGING_PREFIX: &str = ".kiln-staging-";
/// Where the fallback swap parks the old layout: this prefix and the staging token.
pub(crate) const OLD_PREFIX: &str = ".kiln-old-";
const LOCK_SUFFIX: &str = ".lock";

/// An exclusive lock on a file that is linked at `path`. Dropped, it removes the file (while
/// still holding the lock) and releases the lock.
pub(crate) struct Held {
    file: File,
    path: PathBuf,
    unlink: bool,
}

impl Held {
    /// Records `pid`, a newline and `extra` in the lock file.
    fn record(&mut self, extra: &[u8]) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.rewind()?;
        let mut text = format!("{}\n", std::process::id()).into_bytes();
        text.extend_from_slice(extra);
        self.file.write_all(&text)
    }

    /// What the holder recorded after its pid (for a staging lock: the name of its `--out`).
    pub(crate) fn extra(&self) -> Option<OsString> {
        let mut bytes = Vec::new();
        (&self.file).rewind().ok()?;
        (&self.file).read_to_end(&mut bytes).ok()?;
        let at = bytes.iter().position(|b| *b == b'\n')?;
        let rest = bytes.split_off(at + 1);
        (!rest.is_empty()).then(|| OsString::from_vec(rest))
    }

    /// Releases the lock but leaves the file, so that the next run finds a dead run's lock and
    /// repairs what it guards.
    pub(crate) fn leave(mut self) {
        self.unlink = false;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.unlink {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// One try at a lock file.
enum Attempt {
    Got(Held),
    /// Another process holds it.
    Busy,
    /// Taken, but the file had been removed meanwhile: open it again.
    Unlinked,
}

fn attempt(path: &Path, create: bool, op: FlockOperation) -> std::io::Result<Attempt> {
    let file =
        std::fs::OpenOptions::new().read(true).write(true).create(create).truncate(false).mode(0o644).open(path)?;
    match rustix::fs::flock(&file, op) {
        Ok(()) => {}
        Err(Errno::WOULDBLOCK) => return Ok(Attempt::Busy),
        Err(e) => return Err(e.into()),
    }
    Ok(if still_linked(&file, path) {
        Attempt::Got(Held { file, path: path.to_path_buf(), unlink: true })
    } else {
        Attempt::Unlinked
    })
}

fn still_linked(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// `<parent>/.<name>.kiln-lock`: the lock of an output directory sits beside it, because the
/// directory itself is swapped.
pub(crate) fn output_lock_path(parent: &Path, name: &OsStr) -> PathBuf {
    let mut file = OsString::from(".");
    file.push(name);
    file.push(".kiln-lock");
    parent.join(file)
}

/// Takes the lock of the output `out` (named `name` in `parent`), waiting up to `wait` for
/// another kiln writing it; says so through `progress` once when it has to wait.
pub(crate) fn lock_output(
    out: &Path,
    (parent, name): (&Path, &OsStr),
    wait: Duration,
    progress: &dyn Progress,
) -> Result<Held, StoreError> {
    let path = output_lock_path(parent, name);
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        match attempt(&path, true, FlockOperation::NonBlockingLockExclusive).map_err(StoreError::io("lock", &path))? {
            Attempt::Got(mut held) => {
                held.record(b"").map_err(StoreError::io("write", &path))?;
                return Ok(held);
            }
            Attempt::Unlinked => continue,
            Attempt::Busy if Instant::now() >= deadline => {
                return Err(StoreError::Locked {
                    path: out.to_path_buf(),
                    holder: holder(&path),
                    waited: humantime::format_duration(wait).to_string(),
                    lock: path,
                });
            }
            Attempt::Busy => {
                if !told {
                    progress.note(&format!("waiting for another kiln ({}) writing {}", holder(&path), out.display()));
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// `pid N` as recorded in a lock file, for messages.
fn holder(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match text.lines().next().and_then(|l| l.trim().parse::<u32>().ok()) {
        Some(pid) => format!("pid {pid}"),
        None => "pid unknown".to_string(),
    }
}

/// Creates and locks a new staging lock in `parent`, recording `out_name` for the run that
/// may have to repair a crash; returns it with its token. The lock exists (and is held) before
/// the staging directory does, so no other kiln ever sees a live staging directory unlocked.
pub(crate) fn new_staging_lock(parent: &Path, out_name: &OsStr) -> Result<(Held, String), StoreError> {
    loop {
        let (file, path) = tempfile::Builder::new()
            .prefix(STAGING_PREFIX)
            .suffix(LOCK_SUFFIX)
            .rand_bytes(12)
            .tempfile_in(parent)
            .and_then(|t| t.keep().map_err(|e| e.error))
            .map_err(StoreError::io("create a lock file in", parent))?;
        // Blocking: a run cleaning up may hold it for a moment, taking it for a dead run's.
        rustix::fs::flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| StoreError::io("lock", path.clone())(e.into()))?;
        if !still_linked(&file, &path) {
            continue;
        }
        let token = token_of(&path, LOCK_SUFFIX).unwrap_or_default();
        let mut held = Held { file, path, unlink: true };
        held.record(out_name.as_bytes()).map_err(StoreError::io("write", &held.path))?;
        return Ok((held, token));
    }
}

/// The token of a staging lock, staging directory or parked old layout named `path`.
pub(crate) fn token_of(path: &Path, suffix: &str) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let rest = name.strip_prefix(STAGING_PREFIX).or_else(|| name.strip_prefix(OLD_PREFIX))?;
    rest.strip_suffix(suffix).map(str::to_string)
}

pub(crate) fn staging_lock_path(parent: &Path, token: &str) -> PathBuf {
    parent.join(format!("{STAGING_PREFIX}{token}{LOCK_SUFFIX}"))
}

/// What a staging lock says about its run.
pub(crate) enum Probe {
    /// Its run is alive, or kiln cannot tell: leave everything of it alone.
    Live,
    /// No lock file: what carries its token belongs to no run.
    Gone,
    /// Its run is dead; the lock is now ours.
    Dead(Held),
}

pub(crate) fn probe(path: &Path) -> Probe {
    match attempt(path, false, FlockOperation::NonBlockingLockExclusive) {
        Ok(Attempt::Got(held)) => Probe::Dead(held),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Probe::Gone,
        Ok(Attempt::Busy | Attempt::Unlinked) | Err(_) => Probe::Live,
    }
}

/// A shared lock on `<cache>/.lock` for the length of a run. Only a run that could take it
/// exclusively (no other kiln uses the cache) cleans the temporary files that killed runs
/// left in the cache. Nothing here fails a build: a cache that cannot be locked is used
/// unlocked.
pub(crate) struct CacheLock {
    _file: Option<File>,
}

impl CacheLock {
    pub(crate) fn open(cache: &Path) -> CacheLock {
        let _ = std::fs::create_dir_all(cache);
        let Ok(file) =
            std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(cache.join(".lock"))
        else {
            return CacheLock { _file: None };
        };
        if rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
            sweep(cache, SystemTime::now());
        }
        // From exclusive (or nothing) to shared; waits while another kiln cleans.
        let deadline = Instant::now() + CACHE_WAIT;
        loop {
            match rustix::fs::flock(&file, FlockOperation::NonBlockingLockShared) {
                Ok(()) => return CacheLock { _file: Some(file) },
                Err(Errno::WOULDBLOCK) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                Err(_) => return CacheLock { _file: None },
            }
        }
    }
}

/// Removes what killed runs leave in the cache: `.tmp*` files and directories (written, then
/// renamed into place) and `.kiln-*` directories, anywhere under it, unless younger than
/// [`CACHE_TMP_AGE`].
fn sweep(cache: &Path, now: SystemTime) {
    let mut walk = walkdir::WalkDir::new(cache).min_depth(1).into_iter();
    while let Some(entry) = walk.next() {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy();
        let is_dir = entry.file_type().is_dir();
        if !(name.starts_with(".tmp") || (is_dir && name.starts_with(".kiln-"))) {
            continue;
        }
        let age = entry.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| now.duration_since(t).ok());
        if age.is_none_or(|a| a < CACHE_TMP_AGE) {
            continue;
        }
        if is_dir {
            walk.skip_current_dir();
            let _ = std::fs::remove_dir_all(entry.path());
        } else {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::Quiet;

    #[test]
    fn a_held_output_lock_makes_the_next_run_give_up_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let (parent, name) = (dir.path(), OsStr::new("out"));
        let out = parent.join("out");
        let first = lock_output(&out, (parent, name), OUTPUT_WAIT, &Quiet).unwrap();
        let e = lock_output(&out, (parent, name), Duration::from_millis(200), &Quiet).err().unwrap();
        let text = e.to_string();
        assert!(text.contains(&format!("pid {}", std::process::id())), "{text}");
        assert!(matches!(e, StoreError::Locked { .. }), "{e:?}");
        drop(first);
        assert!(!output_lock_path(parent, name).exists(), "the lock file is removed with the lock");
        let again = lock_output(&out, (parent, name), Duration::from_millis(200), &Quiet);
        assert!(again.is_ok(), "the lock is free once released");
    }

    #[test]
    fn a_dead_runs_staging_lock_can_be_taken_and_a_live_ones_cannot() {
        let dir = tempfile::tempdir().unwrap();
        let (live, token) = new_staging_lock(dir.path(), OsStr::new("out")).unwrap();
        let path = staging_lock_path(dir.path(), &token);
        assert!(matches!(probe(&path), Probe::Live));
        live.leave();
        match probe(&path) {
            Probe::Dead(held) => assert_eq!(held.extra().as_deref(), Some(OsStr::new("out"))),
            _ => panic!("a released lock belongs to no run"),
        }
        assert!(matches!(probe(&staging_lock_path(dir.path(), "none")), Probe::Gone));
    }

    #[test]
    fn the_cache_sweep_keeps_young_temporary_files_and_everything_else() {
        let cache = tempfile::tempdir().unwrap();
        let layers = cache.path().join("layers");
        std::fs::create_dir_all(layers.join(".kiln-x")).unwrap();
        for name in [".tmpA", "keep"] {
            std::fs::write(layers.join(name), b"x").unwrap();
        }
        sweep(cache.path(), SystemTime::now());
        assert!(layers.join(".tmpA").exists() && layers.join(".kiln-x").exists(), "young ones stay");
        sweep(cache.path(), SystemTime::now() + 2 * CACHE_TMP_AGE);
        assert!(!layers.join(".tmpA").exists() && !layers.join(".kiln-x").exists(), "old ones go");
        assert!(layers.join("keep").exists());
    }
}

//! What runs writing one output leave beside it, and putting it right: the directory holding
//! an output, the staging directories and parked layouts of dead runs (told from live ones by
//! the locks in [`crate::lock`]), and a layout a dead run parked and did not replace.

use crate::error::StoreError;
use crate::lock;
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// Puts back a layout that a run writing `out` parked and died before replacing (see
/// [`super::Staging`]'s fallback swap), for callers that look at `out` before [`super::Staging::new`].
pub(crate) fn recover(out: &Path) -> Result<(), StoreError> {
    let (parent, name) = parent_and_name(out)?;
    if std::fs::symlink_metadata(out).is_ok() || !parent.is_dir() {
        return Ok(());
    }
    let _lock = lock::lock_output(out, (&parent, &name), lock::OUTPUT_WAIT, &crate::progress::Quiet)?;
    clean_beside(&parent, &name);
    Ok(())
}

/// The directory holding `out`, and `out`'s name in it.
pub(super) fn parent_and_name(out: &Path) -> Result<(PathBuf, OsString), StoreError> {
    let Some(name) = out.file_name() else {
        return Err(StoreError::io("replace", out.to_path_buf())(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the output must be named by its last component",
        )));
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name.to_os_string()))
}

/// Removes what dead runs left in `parent`, the directory of the output `name`, whose lock the
/// caller holds: their staging directories, lock files and parked old layouts. A dead run's
/// parked layout whose output is missing is the only copy of that output: it is renamed back
/// when the output is `name`, and left for a run writing its own output otherwise. What carries
/// the token of a live run is not touched. `.kiln-old-*` without a lock file (made by kiln
/// before it locked) is left alone: it may be the only copy of a layout.
pub(super) fn clean_beside(parent: &Path, name: &OsStr) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    let tokens: BTreeSet<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let path = e.path();
            lock::token_of(&path, ".lock").or_else(|| lock::token_of(&path, "")).filter(|_| e.file_name() != *name)
        })
        .collect();
    for token in tokens {
        let staged = parent.join(format!("{}{token}", lock::STAGING_PREFIX));
        let parked = parent.join(format!("{}{token}", lock::OLD_PREFIX));
        match lock::probe(&lock::staging_lock_path(parent, &token)) {
            lock::Probe::Live => {}
            lock::Probe::Gone => {
                let _ = std::fs::remove_dir_all(&staged);
            }
            lock::Probe::Dead(held) => {
                if parked.exists() {
                    let target = held.extra().map(|n| parent.join(n));
                    match target {
                        Some(t) if std::fs::symlink_metadata(&t).is_err() => {
                            if t.file_name() != Some(name) || std::fs::rename(&parked, &t).is_err() {
                                held.leave();
                                continue;
                            }
                        }
                        _ => {
                            let _ = std::fs::remove_dir_all(&parked);
                        }
                    }
                }
                let _ = std::fs::remove_dir_all(&staged);
                drop(held);
            }
        }
    }
}

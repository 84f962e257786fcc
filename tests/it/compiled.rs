//! Compiled fixtures shared between tests. Compiling an example for three platforms takes
//! minutes; most tests that build one are about something else (attestations, CI jobs,
//! deltas, saved plans), and the binaries they need are the same. The first test to ask
//! builds the example once, into a kiln cache of its own under cargo's temporary directory
//! for integration tests; the others get a copy of that cache's compiled binaries (the
//! `bin/` directory of each language), so their builds take every binary from the cache and
//! compile nothing. kiln finds a binary there by its build step's id, which hashes every
//! input of the compile and no host path, so a copy of a project anywhere hits it.
//!
//! Tests about compiling (reproducibility from an empty cache, verify, the caches
//! themselves) keep empty caches of their own.

use crate::common::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// An example built once: its project copy (with the layout at `out/`) and its kiln cache.
pub struct Built {
    pub project: PathBuf,
    pub cache: PathBuf,
    /// What that build said (`--json`): every binary compiled, none from a cache.
    pub summary: serde_json::Value,
}

/// Where the fixtures of this test run live: emptied when the run first asks.
fn base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("compiled-fixtures");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// One example's build, made by the first test that asks for it.
type Once = Arc<OnceLock<&'static Built>>;

/// `examples/NAME` built once per test run with `kiln build -q --json --out out` (three
/// platforms), from an empty cache.
pub fn example(name: &str) -> &'static Built {
    static BUILT: OnceLock<Mutex<BTreeMap<String, Once>>> = OnceLock::new();
    let cell = {
        let mut all = BUILT.get_or_init(Default::default).lock().unwrap();
        all.entry(name.to_string()).or_default().clone()
    };
    cell.get_or_init(|| {
        let (project, cache) = (base().join(name).join(name), base().join(name).join("cache"));
        copy_project(&repo_root().join("examples").join(name), &project);
        let o = kiln()
            .current_dir(&project)
            .env("KILN_CACHE_DIR", &cache)
            .args(["build", "-q", "--json", "--out", "out"])
            .output()
            .unwrap();
        let summary = summary(&o);
        Box::leak(Box::new(Built { project, cache, summary }))
    })
}

/// Puts the binaries compiled for `examples/NAME` into the kiln cache `cache` (made if
/// missing), as a build of that example left them.
pub fn seed(name: &str, cache: &Path) {
    let built = example(name);
    for lang in ["rust", "go", "c"] {
        let bins = built.cache.join(lang).join("bin");
        if bins.is_dir() {
            copy_dir(&bins, &cache.join(lang).join("bin"));
        }
    }
}

/// Puts the toolchains' own caches from the build of `examples/NAME` into the kiln cache
/// `cache`: zig's (the C library it compiles once per target) and Go's build cache (the
/// standard library). Binaries are still compiled; what every compile shares is not.
pub fn seed_toolchains(name: &str, cache: &Path) {
    let built = example(name);
    for dir in ["zig", "go/build"] {
        let from = built.cache.join(dir);
        if from.is_dir() {
            copy_dir(&from, &cache.join(dir));
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        let kind = e.file_type().unwrap();
        if kind.is_dir() {
            copy_dir(&e.path(), &dest);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &dest).unwrap();
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

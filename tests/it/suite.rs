//! The integration tests stay one binary, `tests/it/main.rs`: a new `tests/*.rs` would be
//! linked as a test binary of its own after every change to the library, and a file in
//! `tests/it/` that main.rs does not declare is never compiled, so its tests never run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn tests_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// The entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn is_rust(p: &Path) -> bool {
    p.is_file() && p.extension().is_some_and(|e| e == "rs")
}

/// What Cargo would build as test binaries besides `it`: `tests/*.rs` and `tests/*/main.rs`.
fn other_test_binaries(tests: &Path) -> Vec<String> {
    entries(tests)
        .into_iter()
        .filter(|p| is_rust(p) || (p.join("main.rs").is_file() && !p.ends_with("it")))
        .map(|p| p.display().to_string())
        .collect()
}

/// The modules a `main.rs` declares (`mod name;` lines).
fn declared_modules(main: &str) -> BTreeSet<String> {
    main.lines().filter_map(|l| l.trim().strip_prefix("mod ")?.strip_suffix(';')).map(str::to_string).collect()
}

/// The module files of `dir` that `main` does not declare.
fn undeclared(dir: &Path, main: &str) -> Vec<String> {
    module_files(dir).difference(&declared_modules(main)).cloned().collect()
}

/// The modules the files of `dir` would be: `name.rs` and `name/mod.rs`, main.rs aside.
fn module_files(dir: &Path) -> BTreeSet<String> {
    let name = |p: &Path| p.file_stem().map(|s| s.to_string_lossy().into_owned());
    entries(dir)
        .into_iter()
        .filter(|p| (is_rust(p) && !p.ends_with("main.rs")) || p.join("mod.rs").is_file())
        .filter_map(|p| name(&p))
        .collect()
}

#[test]
fn every_integration_test_is_a_module_of_the_one_binary() {
    let tests = tests_dir();
    assert_eq!(
        other_test_binaries(&tests),
        Vec::<String>::new(),
        "integration tests go in tests/it/ as modules of one binary (see tests/it/main.rs)"
    );
    let main = std::fs::read_to_string(tests.join("it/main.rs")).unwrap();
    assert_eq!(
        undeclared(&tests.join("it"), &main),
        Vec::<String>::new(),
        "files in tests/it/ that main.rs does not declare are never compiled"
    );
}

#[test]
fn the_checks_find_a_second_binary_and_an_undeclared_module() {
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path();
    std::fs::create_dir_all(tests.join("it")).unwrap();
    std::fs::create_dir_all(tests.join("data")).unwrap();
    std::fs::create_dir_all(tests.join("other")).unwrap();
    std::fs::create_dir_all(tests.join("it/nested")).unwrap();
    for f in ["it/main.rs", "it/cli.rs", "it/forgotten.rs", "it/nested/mod.rs", "other/main.rs", "extra.rs"] {
        std::fs::write(tests.join(f), "").unwrap();
    }
    std::fs::write(tests.join("data/case.kdl"), "").unwrap();
    let found = other_test_binaries(tests);
    let names: Vec<&str> = found.iter().map(|p| p.rsplit('/').next().unwrap()).collect();
    assert_eq!(names, ["extra.rs", "other"]);
    let main = "//! docs\nmod cli;\n    mod nested;\nmod common {\n}\n";
    assert_eq!(undeclared(&tests.join("it"), main), ["forgotten"]);
}

//! Determinism is a feature: the same recipe and sources give the same bytes whatever the
//! directory, umask, time zone, clock and user of the build.

use crate::common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const RECIPE: &str = r#"kiln 1
defaults {
    platforms "linux/amd64" "linux/arm64" "linux/arm/v7"
}
image "app" {
    base "scratch"
    copy "assets/" "/usr/share/app/"
    copy "dist/{arch}/app" "/usr/local/bin/app"
    file "/etc/app.conf" "level = 3\n"
    entrypoint "/usr/local/bin/app"
}
image "zapp" {
    base "scratch"
    platforms "linux/arm64"
    copy "assets/" "/srv/"
}
"#;

/// Writes the same fixture into `dir`, readable by every user.
fn populate(dir: &Path) {
    let w = |rel: &str, content: &[u8], mode: u32| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    w("kiln.kdl", RECIPE.as_bytes(), 0o644);
    w("assets/a.txt", b"alpha\n", 0o644);
    w("assets/b/c.json", b"{\"k\": 1}\n", 0o644);
    w("assets/run.sh", b"#!/bin/sh\n", 0o755);
    for arch in ["amd64", "arm64", "arm"] {
        w(&format!("dist/{arch}/app"), format!("binary for {arch}").as_bytes(), 0o755);
    }
    for d in walk_dirs(dir) {
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

fn walk_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    for e in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        if e.path().is_dir() {
            out.extend(walk_dirs(&e.path()));
        }
    }
    out
}

fn blob_names(layout: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn same_digests_across_directory_umask_timezone_clock_and_user() {
    let faketime = require("faketime");
    let setpriv = require("setpriv");
    let a = tempfile::Builder::new().prefix("kiln-repro-a-").tempdir().unwrap();
    let b = tempfile::Builder::new().prefix("kiln-repro-b-other-name-").tempdir().unwrap();
    populate(a.path());
    let deep = b.path().join("somewhere/else");
    std::fs::create_dir_all(&deep).unwrap();
    populate(&deep);
    std::fs::set_permissions(b.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // The second build runs as `nobody`, so it needs a copy of kiln it can execute. `cp` writes
    // it, not this process: a file the test binary held open for writing could still be open
    // in a child another test's thread is starting, and executing it would fail (ETXTBSY).
    let bin = b.path().join("kiln");
    run(Command::new("cp").arg(env!("CARGO_BIN_EXE_kiln")).arg(&bin));
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();

    let first = Command::new("sh")
        .current_dir(a.path())
        .env("TZ", "UTC")
        .env_remove("SOURCE_DATE_EPOCH")
        .arg("-c")
        .arg(format!("umask 022 && exec '{}' build -q --json --out out", env!("CARGO_BIN_EXE_kiln")))
        .output()
        .unwrap();
    let second = Command::new(&setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .current_dir(&deep)
        .env("TZ", "Asia/Kathmandu")
        .env("HOME", &deep)
        .env_remove("SOURCE_DATE_EPOCH")
        .arg(&faketime)
        .arg("2031-05-05 12:34:56")
        .arg("sh")
        .arg("-c")
        .arg(format!("umask 077 && exec '{}' build -q --json -f kiln.kdl --out ../../layout", bin.display()))
        .output()
        .unwrap();
    let (s1, s2): (Value, Value) = (summary(&first), summary(&second));
    assert_eq!(s1["index_digest"], s2["index_digest"], "index.json differs:\n{s1}\n{s2}");
    assert_eq!(s1["images"], s2["images"]);
    assert_eq!(blob_names(&a.path().join("out")), blob_names(&b.path().join("layout")));
    // The second build really ran as nobody.
    let meta = std::fs::metadata(b.path().join("layout/index.json")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534);
}

#[test]
fn rebuilding_gives_the_same_layout_and_changing_one_file_changes_one_layer() {
    let f = Fixture::new();
    populate(f.path());
    let mut s1 = summary(&f.build());
    let mut s2 = summary(&f.build());
    // The rebuild takes every layer from the layer cache; the first compressed them all.
    assert_eq!(s1["cached_layers"], 0, "{s1}");
    assert_eq!(s2["cached_layers"], s2["layers"], "{s2}");
    s1.as_object_mut().unwrap().remove("cached_layers");
    s2.as_object_mut().unwrap().remove("cached_layers");
    assert_eq!(s1, s2, "a rebuild is byte-identical");
    f.write_mode("dist/arm/app", "a new arm binary", 0o755);
    let s3 = summary(&f.build());
    assert_eq!(s3["cached_layers"].as_u64().unwrap() + 1, s3["layers"].as_u64().unwrap(), "one layer rebuilt: {s3}");
    let p = |s: &Value, k: &str| s["images"][0]["platforms"][k].clone();
    assert_eq!(p(&s1, "linux/amd64"), p(&s3, "linux/amd64"), "amd64 untouched");
    assert_eq!(p(&s1, "linux/arm64"), p(&s3, "linux/arm64"), "arm64 untouched");
    assert_ne!(p(&s1, "linux/arm/v7"), p(&s3, "linux/arm/v7"), "arm/v7 rebuilt");
    assert_eq!(s1["images"][1], s3["images"][1], "the other image is untouched");
}

#[test]
fn source_date_epoch_wins_over_the_recipe_epoch() {
    let f = Fixture::new();
    populate(f.path());
    f.recipe(&RECIPE.replace("defaults {", "defaults {\n    epoch 1000"));
    let plan = |sde: Option<&str>| {
        let mut c = kiln();
        c.current_dir(f.path()).args(["plan", "--json"]);
        if let Some(v) = sde {
            c.env("SOURCE_DATE_EPOCH", v);
        }
        serde_json::from_str::<Value>(&run(&mut c)).unwrap()
    };
    let p = plan(None);
    assert_eq!((p["epoch"].as_u64(), p["epoch_source"].as_str()), (Some(1000), Some("recipe")));
    let p = plan(Some("1700000000"));
    assert_eq!((p["epoch"].as_u64(), p["epoch_source"].as_str()), (Some(1700000000), Some("source_date_epoch")));
    let o = kiln().current_dir(f.path()).env("SOURCE_DATE_EPOCH", "yesterday").args(["plan"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("SOURCE_DATE_EPOCH"), "{}", stderr(&o));
    let o = kiln().current_dir(f.path()).env("SOURCE_DATE_EPOCH", "99999999999999").args(["plan"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "an epoch past year 9999 is refused, not a crash: {}", stderr(&o));
}

#[test]
fn a_damaged_layer_cache_is_not_trusted() {
    let f = Fixture::new();
    populate(f.path());
    let fresh = summary(&f.build());
    let fresh_blobs = blob_names(&f.out());
    // Every cached layer blob truncated or overwritten, as a full disk or a stray edit would.
    let cached = f.cache_path().join("layers/blobs/sha256");
    let mut damaged = 0;
    for (i, e) in std::fs::read_dir(&cached).unwrap().enumerate() {
        let p = e.unwrap().path();
        let mut bytes = std::fs::read(&p).unwrap();
        if i % 2 == 0 {
            bytes.truncate(bytes.len() / 2);
        } else {
            bytes[0] ^= 0xff;
        }
        std::fs::write(&p, bytes).unwrap();
        damaged += 1;
    }
    assert_eq!(damaged, fresh["layers"].as_u64().unwrap(), "every layer was cached");
    // No layout to find up to date: every layer comes from the cache or is built again.
    std::fs::remove_dir_all(f.out()).unwrap();
    let again = summary(&f.build());
    assert_eq!(again["cached_layers"], 0, "{again}");
    assert_eq!(again["index_digest"], fresh["index_digest"]);
    assert_eq!(blob_names(&f.out()), fresh_blobs);
    // The layers compressed again replaced the damaged entries.
    let third = summary(&f.build());
    assert_eq!(third["cached_layers"], third["layers"], "{third}");
    assert_eq!(third["index_digest"], fresh["index_digest"]);
}

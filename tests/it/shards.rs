//! CI at scale: a plan cut into shards (`kiln plan --matrix`), each built by `kiln build
//! --shard` as a separate process in a working copy, HOME and kiln cache of its own, against
//! one local registry (distribution), then joined by `kiln merge`: the index the registry
//! serves (read by skopeo) must be the one a single `kiln build` writes. A second sharded run
//! with empty local caches takes every binary and layer from the registry cache; a cache blob
//! damaged in the registry's storage is rebuilt, not used. And `kiln merge` refuses shards of
//! another plan, a missing shard and a damaged blob, writing and tagging nothing.

use crate::common::{cargo_home, copy_project, kiln, repo_root, require, run, rustup_home, stderr};
use crate::servers::Registry;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A runner: a working copy of an example, and a HOME and kiln cache of its own (empty).
struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new(example: &str) -> Runner {
        let dir = tempfile::tempdir().unwrap();
        copy_project(&repo_root().join("examples").join(example), &dir.path().join("project"));
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Runner { dir }
    }

    fn project(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    fn kiln(&self) -> Command {
        let mut c = kiln();
        c.current_dir(self.project())
            .env("HOME", self.dir.path().join("home"))
            .env("KILN_CACHE_DIR", self.dir.path().join("cache"))
            .env("CARGO_HOME", cargo_home())
            .env("RUSTUP_HOME", rustup_home());
        c
    }
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

fn skopeo_raw(reference: &str) -> String {
    run(Command::new(require("skopeo")).args(["inspect", "--raw", "--tls-verify=false", reference]))
}

/// Builds every shard of `matrix` in a runner of its own; returns where each `--json` went.
fn build_shards(plan: &Path, matrix: &[Value], registry: &Registry, out: &Path) -> Vec<(PathBuf, Value)> {
    matrix
        .iter()
        .map(|m| {
            let id = m["KILN_SHARD"].as_str().unwrap();
            let r = Runner::new("polyglot");
            // Binaries are compiled (or taken from the registry); zig's C library and Go's
            // standard library, which every compile shares, come from a first build.
            crate::compiled::seed_toolchains("polyglot", &r.dir.path().join("cache"));
            // Outside the working copy: a file in it would be one of the Rust workspace's sources.
            let plan_copy = r.dir.path().join("plan.json");
            std::fs::copy(plan, &plan_copy).unwrap();
            let shards = format!("{}/ci/shards", registry.addr());
            let cache = format!("{}/ci/cache", registry.addr());
            let text = run(r
                .kiln()
                .args(["build", "-q", "--plan"])
                .arg(&plan_copy)
                .args(["--shard", id, "--json"])
                .args(["--push", &shards, "--cache", &cache]));
            let file = out.join(format!("{id}.json"));
            std::fs::write(&file, &text).unwrap();
            (file, json(&text))
        })
        .collect()
}

/// The tags of `repo`, as skopeo lists them (distribution answers 404 for a repository with none).
fn tags(registry: &Registry, repo: &str) -> Vec<String> {
    let o = Command::new(require("skopeo"))
        .args(["list-tags", "--tls-verify=false", &format!("docker://{}/{repo}", registry.addr())])
        .output()
        .unwrap();
    if !o.status.success() {
        assert!(stderr(&o).contains("404"), "skopeo list-tags: {}", stderr(&o));
        return Vec::new();
    }
    let v = json(&String::from_utf8_lossy(&o.stdout));
    v["Tags"].as_array().map(|t| t.iter().map(|x| x.as_str().unwrap().to_string()).collect()).unwrap_or_default()
}

fn merge(files: &[PathBuf], registry: &Registry, tag: &str) -> String {
    let r = Runner::new("polyglot");
    let target = format!("{}/ci/polyglot:{tag}", registry.addr());
    run(r.kiln().arg("merge").args(files).args(["-q", "--push", &target]));
    sha256(skopeo_raw(&format!("docker://{target}")).as_bytes())
}

#[test]
fn shards_built_apart_merge_into_the_single_run_image_and_the_registry_cache_skips_every_compile() {
    let registry = Registry::start();
    // One `kiln build` of the example, as skopeo reads its layout (shared with the CI files' tests).
    let want = sha256(crate::ci_files::reference_index().as_bytes());

    let planner = Runner::new("polyglot");
    let plan_json = run(planner.kiln().args(["plan", "--json"]));
    let plan_file = planner.dir.path().join("plan.json");
    std::fs::write(&plan_file, &plan_json).unwrap();
    let matrix = json(&run(planner.kiln().args(["plan", "--matrix", "--plan"]).arg(&plan_file)));
    let matrix = matrix.as_array().unwrap().clone();
    let ids: Vec<&str> = matrix.iter().map(|m| m["KILN_SHARD"].as_str().unwrap()).collect();
    assert_eq!(ids, ["linux-amd64", "linux-arm64", "linux-arm-v7"]);

    let first_dir = tempfile::tempdir().unwrap();
    let first = build_shards(&plan_file, &matrix, &registry, first_dir.path());
    for (_, s) in &first {
        assert_eq!(s["compiled"], 3, "each platform compiles its Rust, Go and C program: {s}");
        assert_eq!(s["cache"]["binaries_stored"], 3, "{s}");
        assert!(s["shard"]["reference"].as_str().unwrap().contains("/ci/shards@sha256:"), "{s}");
    }
    let files: Vec<PathBuf> = first.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(tags(&registry, "ci/shards"), Vec::<String>::new(), "shards are pushed by digest, untagged");
    // A merge missing a shard pushes and tags nothing.
    let r = Runner::new("polyglot");
    let target = format!("{}/ci/polyglot:refused", registry.addr());
    let o = r.kiln().arg("merge").args(&files[..2]).args(["--push", &target]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("kiln::merge::shards"), "{}", stderr(&o));
    assert_eq!(tags(&registry, "ci/polyglot"), Vec::<String>::new(), "a refused merge tags nothing");
    assert_eq!(merge(&files, &registry, "1"), want, "sharded and single-run index digests differ");

    // Runners whose local caches hold no binary or layer: every compile and compression comes
    // from the registry.
    let second_dir = tempfile::tempdir().unwrap();
    let second = build_shards(&plan_file, &matrix, &registry, second_dir.path());
    for (_, s) in &second {
        assert_eq!(s["compiled"], 0, "{s}");
        assert_eq!(s["cache"]["binaries_reused"], 3, "{s}");
        assert_eq!(s["cache"]["layers_reused"], s["layers"], "{s}");
        assert_eq!(s["cache"]["rejected"], Value::Array(vec![]), "{s}");
    }
    let files: Vec<PathBuf> = second.iter().map(|(f, _)| f.clone()).collect();
    assert_eq!(merge(&files, &registry, "2"), want);

    // Damage the cached arm64 Rust binary in the registry's storage: it is rebuilt, not used.
    let plan = json(&plan_json);
    let step = plan["rust"].as_array().unwrap().iter().find(|b| b["platform"] == "linux/arm64").unwrap();
    let entry =
        json(&skopeo_raw(&format!("docker://{}/ci/cache:kiln-bin-{}", registry.addr(), step["id"].as_str().unwrap())));
    let blob = entry["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let data = registry.storage().join(format!("docker/registry/v2/blobs/sha256/{}/{blob}/data", &blob[..2]));
    let mut bytes = std::fs::read(&data).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let third_dir = tempfile::tempdir().unwrap();
    let arm64 = [matrix[1].clone()];
    let third = build_shards(&plan_file, &arm64, &registry, third_dir.path());
    let s = &third[0].1;
    assert_eq!(s["compiled"], 1, "the damaged binary is compiled again, the others are reused: {s}");
    let rejected = s["cache"]["rejected"].to_string();
    assert!(rejected.contains("api") && rejected.contains("does not match its digest"), "{rejected}");
    let files = [second[0].0.clone(), third[0].0.clone(), second[2].0.clone()];
    assert_eq!(merge(&files, &registry, "3"), want);
}

/// Shards of examples/hello (no compiles), as layouts: by platform, from `plan`.
fn hello_shards(r: &Runner, plan: &str, prefix: &str) -> Vec<PathBuf> {
    ["linux-amd64", "linux-arm64", "linux-arm-v7"]
        .iter()
        .map(|id| {
            let out = r.dir.path().join(format!("{prefix}-{id}"));
            run(r.kiln().args(["build", "-q", "--plan", plan, "--shard", id, "--out"]).arg(&out));
            out
        })
        .collect()
}

fn refused(r: &Runner, args: &[&Path], code: &str) {
    let out = r.dir.path().join("merged");
    let o = r.kiln().arg("merge").args(args).arg("--out").arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains(code), "{code}: {}", stderr(&o));
    assert!(!out.exists(), "nothing is written when merge refuses");
}

#[test]
fn merge_refuses_another_plan_a_missing_shard_and_a_damaged_blob_writing_nothing() {
    let r = Runner::new("hello");
    std::fs::write(r.project().join("a.json"), run(r.kiln().args(["plan", "--json"]))).unwrap();
    let b = run(r.kiln().args(["plan", "--json"]).env("SOURCE_DATE_EPOCH", "1700000000"));
    std::fs::write(r.project().join("b.json"), b).unwrap();
    let a = hello_shards(&r, "a.json", "a");
    let b = hello_shards(&r, "b.json", "b");
    let joined = r.dir.path().join("joined");
    run(r.kiln().arg("merge").args(&a).arg("--out").arg(&joined));
    let single = r.dir.path().join("single");
    run(r.kiln().args(["build", "-q", "--plan", "a.json", "--out"]).arg(&single));
    assert_eq!(std::fs::read(joined.join("index.json")).unwrap(), std::fs::read(single.join("index.json")).unwrap());

    refused(&r, &[&a[0], &b[1], &a[2]], "kiln::merge::other_plan");
    refused(&r, &[&a[0], &a[2]], "kiln::merge::shards");
    refused(&r, &[&a[0], &a[1], &a[1], &a[2]], "kiln::merge::shards");
    refused(&r, &[&a[0], &a[1], &r.project()], "kiln::merge::not_a_shard");
    // A layer blob of a shard flipped on disk.
    let manifest: Value = {
        let index = json(&std::fs::read_to_string(a[1].join("index.json")).unwrap());
        let d = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
        json(&std::fs::read_to_string(a[1].join("blobs/sha256").join(d)).unwrap())
    };
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:");
    let file = a[1].join("blobs/sha256").join(layer);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();
    refused(&r, &[&a[0], &a[1], &a[2]], "kiln::merge::blob");

    let o = r.kiln().args(["build", "--plan", "a.json", "--shard", "linux-s390x"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("kiln::shard::unknown") && stderr(&o).contains("linux-arm-v7"), "{}", stderr(&o));
}

#[test]
fn the_matrix_cuts_by_platform_by_step_and_into_n_shards() {
    let r = Runner::new("polyglot");
    let ids = |args: &[&str]| -> Vec<String> {
        let m = json(&run(r.kiln().args(["plan", "--matrix"]).args(args)));
        m.as_array().unwrap().iter().map(|e| e["KILN_SHARD"].as_str().unwrap().to_string()).collect()
    };
    let by_step = ids(&["--by", "step"]);
    assert_eq!(by_step.len(), 9, "{by_step:?}");
    for want in ["rust-api-linux-amd64", "go-agent-linux-arm64", "c-probe-linux-arm-v7"] {
        assert!(by_step.iter().any(|i| i == want), "{want} in {by_step:?}");
    }
    assert_eq!(ids(&["--shards", "2"]), ["1of2", "2of2"]);
    assert_eq!(ids(&["--shards", "12"]).len(), 12, "by count, exactly that many (some empty)");
    for bad in [&["--shards", "0"][..], &["--by", "image"]] {
        let o = r.kiln().args(["plan", "--matrix"]).args(bad).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr(&o));
    }
}

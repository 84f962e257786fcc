//! Saved plans: `kiln plan --json` reads back to the same bytes, `kiln build --plan` writes the
//! digests a build from the recipe writes, a plan whose inputs changed is refused, a plan
//! holds no host path, and planning needs no network once the inputs are fetched.

use crate::common::*;
use std::path::Path;
use std::process::{Command, Output};

fn kiln_in(dir: &Path, cache: &Path) -> Command {
    let mut c = kiln();
    c.current_dir(dir).env("KILN_CACHE_DIR", cache);
    c
}

fn plan_json(dir: &Path, cache: &Path) -> String {
    run(kiln_in(dir, cache).args(["plan", "-q", "--json"]))
}

fn index_digest(o: &Output) -> String {
    summary(o)["index_digest"].as_str().unwrap().to_string()
}

/// Every example, and a project made from every template.
fn projects(cache: &Path) -> Vec<(String, tempfile::TempDir)> {
    let mut out = Vec::new();
    for example in ["hello", "hello-rust", "hello-c", "hello-go"] {
        let dir = tempfile::tempdir().unwrap();
        copy_project(&repo_root().join("examples").join(example), dir.path());
        out.push((format!("examples/{example}"), dir));
    }
    let prebuilt = tempfile::tempdir().unwrap();
    for arch in ["amd64", "arm64", "arm"] {
        let bin = prebuilt.path().join("dist").join(arch);
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("app"), format!("#!/bin/sh\necho {arch}\n")).unwrap();
    }
    run(kiln_in(prebuilt.path(), cache).args(["init", "--template", "prebuilt"]));
    out.push(("templates/prebuilt".into(), prebuilt));
    let rust = tempfile::tempdir().unwrap();
    copy_project(&repo_root().join("examples/hello-rust"), rust.path());
    std::fs::remove_file(rust.path().join("kiln.kdl")).unwrap();
    run(kiln_in(rust.path(), cache).args(["init", "--template", "rust-scratch"]));
    out.push(("templates/rust-scratch".into(), rust));
    // `kiln init` picks the template from what it finds: go.mod, or C sources.
    for template in ["go-scratch", "c-scratch"] {
        let dir = tempfile::tempdir().unwrap();
        if template == "go-scratch" {
            copy_project(&repo_root().join("examples/hello-go"), dir.path());
            std::fs::remove_file(dir.path().join("kiln.kdl")).unwrap();
        } else {
            std::fs::create_dir_all(dir.path().join("src")).unwrap();
            std::fs::create_dir_all(dir.path().join("include")).unwrap();
            std::fs::write(dir.path().join("include/answer.h"), "#define ANSWER 42\n").unwrap();
            let main =
                "#include <stdio.h>\n#include \"answer.h\"\nint main(void) { printf(\"%d\\n\", ANSWER); return 0; }\n";
            std::fs::write(dir.path().join("src/main.c"), main).unwrap();
        }
        run(kiln_in(dir.path(), cache).arg("init"));
        let recipe = std::fs::read_to_string(dir.path().join("kiln.kdl")).unwrap();
        assert!(
            recipe.contains(&format!("// kiln template: one {}", if template == "go-scratch" { "Go" } else { "C" })),
            "{recipe}"
        );
        out.push((format!("templates/{template}"), dir));
    }
    // Links inside a copied tree stay links; the plan records where each was found.
    let links = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(links.path().join("site/css")).unwrap();
    std::fs::write(links.path().join("site/index.html"), "<p>hi</p>\n").unwrap();
    std::os::unix::fs::symlink("index.html", links.path().join("site/home.html")).unwrap();
    std::os::unix::fs::symlink("/etc/ssl", links.path().join("site/css/ssl")).unwrap();
    let recipe = "kiln 1\nimage \"links\" {\n    base \"scratch\"\n    copy \"site/\" \"/srv/www/\"\n}\n";
    std::fs::write(links.path().join("kiln.kdl"), recipe).unwrap();
    out.push(("a tree with links".into(), links));
    out
}

#[test]
fn saved_plans_read_back_to_the_same_bytes_and_build_to_the_same_digests() {
    let cache = tempfile::tempdir().unwrap();
    // The examples' binaries as their first builds compiled them (shared by the tests).
    for example in ["hello-rust", "hello-c", "hello-go"] {
        crate::compiled::seed(example, cache.path());
        crate::compiled::seed_toolchains(example, cache.path());
    }
    for (name, dir) in projects(cache.path()) {
        let json = plan_json(dir.path(), cache.path());
        let plan = kiln::plan::Plan::from_json(&json).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(plan.to_json(), json, "{name}: the plan read back serialises to other bytes");
        assert_eq!(kiln::plan::Plan::from_json(&plan.to_json()).unwrap(), plan, "{name}");
        // Outside the project: in a Rust workspace, a new file changes the sources' hash.
        let saved = tempfile::tempdir().unwrap();
        let plan_file = saved.path().join("plan.json");
        std::fs::write(&plan_file, &json).unwrap();
        let plan_file = plan_file.to_str().unwrap();
        let built = index_digest(
            &kiln_in(dir.path(), cache.path()).args(["build", "-q", "--json", "-o", "a"]).output().unwrap(),
        );
        let args = ["build", "-q", "--json", "--plan", plan_file, "-o", "b"];
        let from_plan = summary(&kiln_in(dir.path(), cache.path()).args(args).output().unwrap());
        assert_eq!(from_plan["index_digest"], built.as_str(), "{name}: build --plan wrote another index");
        for image in from_plan["images"].as_array().unwrap() {
            oci_validate(&dir.path().join("b"), image["name"].as_str().unwrap());
        }
        if !name.starts_with("examples/") {
            continue;
        }
        // A cache without binaries: the plan alone, with the project's files, makes the same
        // image (zig's C library and Go's standard library, compiled once, are there).
        let empty = tempfile::tempdir().unwrap();
        for example in ["hello-c", "hello-go"] {
            crate::compiled::seed_toolchains(example, empty.path());
        }
        let args = ["build", "-q", "--json", "--plan", plan_file, "-o", "c"];
        assert_eq!(index_digest(&kiln_in(dir.path(), empty.path()).args(args).output().unwrap()), built, "{name}");
    }
}

/// `kiln build --plan` refused: exit 2, the error code and words, and no layout written.
fn refused(dir: &Path, cache: &Path, code: &str, words: &str) {
    let o = kiln_in(dir, cache).args(["build", "-q", "--plan", "plan.json", "-o", "refused"]).output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(code) && err.contains(words), "expected {code} and `{words}` in:\n{err}");
    assert!(!dir.join("refused").exists(), "a refused plan wrote a layout");
}

#[test]
fn a_plan_whose_inputs_changed_or_that_is_not_a_plan_is_refused() {
    let f = Fixture::new();
    copy_project(&repo_root().join("examples/hello"), f.path());
    let json = plan_json(f.path(), f.cache_path());
    f.write("plan.json", &json);
    let source = "site/index.html";
    assert!(json.contains(&format!("\"source\": \"{source}\"")), "the example copies {source}");
    let original = std::fs::read(f.path().join(source)).unwrap();
    f.write(source, "changed\n");
    refused(f.path(), f.cache_path(), "kiln::plan::stale", &format!("source `{source}`: recorded"));
    f.write(source, &original);
    // A plan may name only files of the recipe's directory, as a recipe may.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), &original).unwrap();
    let rel = format!("../{}/secret", outside.path().file_name().unwrap().to_string_lossy());
    assert_eq!(outside.path().parent(), f.path().parent(), "both in the temporary directory");
    f.write("plan.json", json.replace(&format!("\"source\": \"{source}\""), &format!("\"source\": \"{rel}\"")));
    refused(f.path(), f.cache_path(), "kiln::plan::stale", "outside the recipe's directory");
    f.write("plan.json", json.replace("\"plan_format\": 1", "\"plan_format\": 99"));
    refused(f.path(), f.cache_path(), "kiln::cli::plan_file", "plan_format 99 is not 1");
    f.write("plan.json", "{\"images\": ");
    refused(f.path(), f.cache_path(), "kiln::cli::plan_file", "not a kiln plan");
    f.write("plan.json", &json);
    assert!(kiln_in(f.path(), f.cache_path()).args(["build", "-q", "--plan", "plan.json"]).status().unwrap().success());
}

#[test]
fn a_rust_plan_holds_no_host_path() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .unwrap_or_else(|| Path::new(&std::env::var_os("HOME").unwrap()).join(".rustup").into_os_string());
    let mut plans = Vec::new();
    for dir in [&a, &b] {
        let project = dir.path().join("some/where/hello-rust");
        copy_project(&repo_root().join("examples/hello-rust"), &project);
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut c = kiln_in(&project, &dir.path().join("cache"));
        c.env("HOME", &home).env("CARGO_HOME", home.join("cargo")).env("RUSTUP_HOME", &rustup_home);
        plans.push(run(c.args(["plan", "-q", "--json"])));
    }
    assert!(!plans[0].contains(&*a.path().to_string_lossy()), "the plan names its directory:\n{}", plans[0]);
    assert_eq!(plans[0], plans[1], "plans made in two places differ");
}

#[test]
fn planning_a_distroless_rust_image_needs_no_network_once_fetched() {
    let unshare = require("unshare");
    let f = Fixture::new();
    copy_project(&repo_root().join("examples/hello-rust"), f.path());
    let recipe = std::fs::read_to_string(f.recipe_path()).unwrap();
    f.recipe(&recipe.replace("base \"scratch\"", "base \"distroless/static\""));
    assert!(std::fs::read_to_string(f.recipe_path()).unwrap().contains("distroless/static"));
    run(kiln_in(f.path(), f.cache_path()).args(["lock", "-q"]));
    let online = plan_json(f.path(), f.cache_path());
    // A distroless plan (generated, package and inline files) reads back as it was written.
    assert_eq!(kiln::plan::Plan::from_json(&online).unwrap().to_json(), online);
    let mut offline = Command::new(unshare);
    offline.arg("--net").arg(env!("CARGO_BIN_EXE_kiln")).args(["plan", "-q", "--json"]);
    offline.current_dir(f.path()).env("KILN_CACHE_DIR", f.cache_path()).env_remove("SOURCE_DATE_EPOCH");
    assert_eq!(run(&mut offline), online, "planning without a network gave another plan");
}

#[test]
fn a_damaged_or_hand_made_plan_is_refused_before_anything_is_built() {
    use serde_json::{Value, json};
    let f = Fixture::new();
    copy_project(&repo_root().join("examples/hello"), f.path());
    let plan: Value = serde_json::from_str(&plan_json(f.path(), f.cache_path())).unwrap();
    let first = |p: &mut Value| p["images"][0]["platforms"][0]["layers"][0].clone();
    type Edit = Box<dyn Fn(&mut Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        ("epoch 18446744073709551615 is past", Box::new(|p| p["epoch"] = json!(u64::MAX))),
        ("gzip level 99 is not 0-9", Box::new(|p| p["compression"] = json!({"algorithm": "gzip", "level": 99}))),
        ("its id", Box::new(|p| p["images"][0]["platforms"][0]["layers"][0]["entries"][0]["mode"] = json!(0o700))),
        (
            "is repeated",
            Box::new(move |p| {
                let l = first(p);
                p["images"][0]["platforms"][0]["layers"].as_array_mut().unwrap().push(l);
            }),
        ),
        (
            "is empty or repeated",
            Box::new(|p| {
                let i = p["images"][0].clone();
                p["images"].as_array_mut().unwrap().push(i);
            }),
        ),
        (
            "not an absolute, normal path",
            Box::new(|p| p["images"][0]["platforms"][0]["layers"][0]["entries"][0]["path"] = json!("/srv/../../etc/")),
        ),
        (
            "a symlink needs a target",
            Box::new(|p| {
                let e = json!({"path": "/x", "kind": "symlink", "mode": 511, "uid": 0, "gid": 0});
                p["images"][0]["platforms"][0]["layers"][0]["entries"].as_array_mut().unwrap().push(e);
            }),
        ),
        (
            "a file comes from one source",
            Box::new(|p| {
                let e = json!({"path": "/y", "kind": "file", "mode": 420, "uid": 0, "gid": 0, "size": 0,
                "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"});
                p["images"][0]["platforms"][0]["layers"][0]["entries"].as_array_mut().unwrap().push(e);
            }),
        ),
    ];
    for (words, edit) in edits {
        let mut p = plan.clone();
        edit(&mut p);
        f.write("../plan-edited.json", serde_json::to_string(&p).unwrap());
        let o = kiln_in(f.path(), f.cache_path())
            .args(["build", "-q", "--plan", "../plan-edited.json", "-o", "refused"])
            .output()
            .unwrap();
        // miette wraps long messages: read them as one line.
        let err = stderr(&o).replace("\n  | ", " ");
        assert_eq!(o.status.code(), Some(2), "{words}: {err}");
        assert!(err.contains("kiln::cli::plan_file") && err.contains(words), "expected `{words}` in:\n{err}");
        assert!(!f.path().join("refused").exists(), "{words}: a refused plan wrote a layout");
    }
}

//! `kiln verify`: every example rebuilds identically from fresh copies under varied
//! conditions; builds that let the clock or the umask in are named down to the file and the
//! build step; a published layout is checked against a rebuild, and diffoscope agrees with
//! what kiln calls identical.

use crate::common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn verify(recipe: &Path, extra: &[&str]) -> Output {
    kiln().arg("verify").arg("--json").arg("-f").arg(recipe).args(extra).output().expect("run kiln verify")
}

fn report(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", stdout(o), stderr(o)))
}

/// Asserts the recipe rebuilds identically, and that the second build was varied.
fn reproducible(recipe: &Path) -> Value {
    reproducible_with(recipe, &[])
}

/// [`reproducible`], with more arguments for `kiln verify`.
fn reproducible_with(recipe: &Path, extra: &[&str]) -> Value {
    let o = verify(recipe, extra);
    let r = report(&o);
    assert_eq!(o.status.code(), Some(0), "kiln verify {}: {r:#}\n{}", recipe.display(), stderr(&o));
    assert_eq!(r["reproducible"], true);
    assert_eq!(r["comparison"]["images"], serde_json::json!([]));
    assert!(r["comparison"]["layers_compared"].as_u64().unwrap() > 0, "{r:#}");
    let varied: Vec<&str> = r["variations"].as_array().unwrap().iter().map(|v| v["what"].as_str().unwrap()).collect();
    for what in ["directory", "working directory", "umask", "TZ", "locale (LANG, LC_ALL)", "HOME and TMPDIR"] {
        assert!(varied.contains(&what), "{what} not varied: {varied:?}");
    }
    let order = r["variations"].as_array().unwrap().iter().find(|v| v["what"] == "file-system order").unwrap();
    assert!(order["second"].as_str().unwrap().contains("disorderfs"), "directory order through disorderfs: {order}");
    r
}

#[test]
fn the_static_site_example_is_reproducible() {
    reproducible(&root().join("examples/hello/kiln.kdl"));
}

#[test]
fn the_rust_example_is_reproducible() {
    let r = reproducible(&root().join("examples/hello-rust/kiln.kdl"));
    assert_eq!(r["comparison"]["platforms_compared"], 3);
}

#[test]
fn the_c_example_is_reproducible() {
    // One platform (zig compiles its C library once per target, from the empty caches
    // verify builds with): the polyglot example below verifies C on all three.
    let r = reproducible_with(&root().join("examples/hello-c/kiln.kdl"), &["--platform", "linux/arm/v7"]);
    assert_eq!(r["comparison"]["platforms_compared"], 1);
}

#[test]
fn the_go_example_is_reproducible() {
    reproducible(&root().join("examples/hello-go/kiln.kdl"));
}

#[test]
fn the_polyglot_example_is_reproducible() {
    let r = reproducible(&root().join("examples/polyglot/kiln.kdl"));
    assert_eq!(r["comparison"]["layers_compared"], 9, "three binaries on three platforms: {r:#}");
}

#[test]
fn a_fleet_with_shared_layers_is_reproducible() {
    let f = Fixture::new();
    let mut recipe = String::from("kiln 1\ndefaults {\n    platforms \"linux/amd64\" \"linux/arm64\"\n}\n");
    for (i, name) in ["api", "worker", "docs"].iter().enumerate() {
        recipe.push_str(&format!(
            "image \"{name}\" {{\n    base \"scratch\"\n    copy \"assets/\" \"/usr/share/assets/\"\n    copy \"{name}.conf\" \"/etc/{name}.conf\"\n}}\n"
        ));
        f.write(&format!("{name}.conf"), format!("id = {i}\n"));
    }
    f.recipe(&recipe);
    for n in 0..4 {
        let body: String = (0..2000).map(|k| format!("{:08x}", (k * 2654435761u64 + n) % 4294967291)).collect();
        f.write(&format!("assets/part-{n}.txt"), body);
    }
    let r = reproducible(&f.recipe_path());
    assert_eq!(r["comparison"]["images_compared"], 3);
}

#[test]
fn builds_that_let_the_clock_or_the_umask_in_are_named_down_to_the_file_and_build_step() {
    let fixture = root().join("tests/data/verify-leaky");
    let dir = tempfile::tempdir().unwrap();
    let report_dir = dir.path().join("report");
    let o = verify(&fixture.join("kiln.kdl"), &["--report", report_dir.to_str().unwrap()]);
    let r = report(&o);
    assert_eq!(o.status.code(), Some(1), "{r:#}\n{}", stderr(&o));
    assert_eq!(r["reproducible"], false);
    let images = r["comparison"]["images"].as_array().unwrap();
    let names: Vec<&str> = images.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["clock", "umask"], "the steady image is identical: {r:#}");
    for (image, layer) in [("clock", 2), ("umask", 1)] {
        let i = images.iter().find(|i| i["name"] == image).unwrap();
        let p = &i["platforms"][0];
        assert_eq!(p["platform"], "linux/amd64");
        assert_eq!(p["fields"], serde_json::json!([]), "only the layer differs: {p:#}");
        let l = &p["layers"].as_array().unwrap()[0];
        assert_eq!(l["position"], layer);
        assert_eq!(l["key"], format!("rust {image}/{image}"));
        let file = &l["files"].as_array().unwrap()[0];
        assert_eq!(file["path"], format!("/usr/local/bin/{image}"));
        assert_eq!(file["differences"], serde_json::json!(["content"]));
        assert_eq!(
            file["made_by"],
            format!("build step {image} (bin {image}) for linux/amd64 (x86_64-unknown-linux-musl)")
        );
        assert_ne!(file["first"]["sha256"], file["second"]["sha256"]);
        assert_eq!(l["files"].as_array().unwrap().len(), 1, "nothing else in the layer differs: {l:#}");
    }
    // The report holds both sides of each differing file; they run, and say what leaked in.
    let at = |image: &str, layer: u32, side: &str| {
        let p = report_dir.join(format!("{image}/linux-amd64/layer-{layer}/{side}/usr/local/bin/{image}"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        run(&mut std::process::Command::new(&p))
    };
    assert_eq!(at("umask", 1, "first"), "data.txt had mode 644 when this was built\n");
    assert_eq!(at("umask", 1, "second"), "data.txt had mode 600 when this was built\n");
    assert_ne!(at("clock", 2, "first"), at("clock", 2, "second"));
    let mode = std::fs::metadata(&report_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755, "the report directory is for people to read");
    let saved: Value = serde_json::from_slice(&std::fs::read(report_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(saved["files_written"], 4);
    assert_eq!(saved["comparison"], r["comparison"]);
    // The text report says the same for people.
    let text = kiln().arg("verify").arg("-f").arg(fixture.join("kiln.kdl")).output().unwrap();
    assert_eq!(text.status.code(), Some(1));
    let text = stdout(&text);
    assert!(text.contains("NOT reproducible"), "{text}");
    assert!(text.contains("/usr/local/bin/umask: content differs"), "{text}");
    assert!(text.contains("made by: build step umask (bin umask) for linux/amd64"), "{text}");
}

#[test]
fn a_published_layout_is_checked_against_a_rebuild_and_diffoscope_agrees() {
    let diffoscope = require("diffoscope");
    let recipe = root().join("examples/hello/kiln.kdl");
    let dir = tempfile::tempdir().unwrap();
    let (published, rebuilt) = (dir.path().join("published"), dir.path().join("rebuilt"));
    let cache = tempfile::tempdir().unwrap();
    let build = |out: &Path, epoch: Option<&str>| {
        let mut c = kiln();
        c.env("KILN_CACHE_DIR", cache.path()).arg("build").arg("-q").arg("-f").arg(&recipe).arg("--out").arg(out);
        if let Some(e) = epoch {
            c.env("SOURCE_DATE_EPOCH", e);
        }
        run(&mut c);
    };
    build(&published, None);
    let o = verify(&recipe, &["--against", published.to_str().unwrap(), "--out", rebuilt.to_str().unwrap()]);
    let r = report(&o);
    assert_eq!(o.status.code(), Some(0), "{r:#}\n{}", stderr(&o));
    assert_eq!(r["against"], published.to_str().unwrap());
    // diffoscope, which unpacks the gzip layers and their tars, finds the two layouts the same.
    let d = std::process::Command::new(&diffoscope)
        .arg("--exclude-directory-metadata=recursive")
        .arg(&published)
        .arg(&rebuilt)
        .output()
        .unwrap();
    assert_eq!(d.status.code(), Some(0), "diffoscope found differences:\n{}\n{}", stdout(&d), stderr(&d));

    // A layout built at another time (SOURCE_DATE_EPOCH) differs in its config's creation
    // time and in every file's mtime; verify names both.
    let other = dir.path().join("other-epoch");
    build(&other, Some("1000000000"));
    let o = verify(&recipe, &["--against", other.to_str().unwrap()]);
    let r = report(&o);
    assert_eq!(o.status.code(), Some(1), "{r:#}");
    let p = &r["comparison"]["images"][0]["platforms"][0];
    let fields: Vec<(&str, &str)> = p["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["document"].as_str().unwrap(), f["path"].as_str().unwrap()))
        .collect();
    assert!(fields.contains(&("config", "/created")), "{fields:?}");
    let files = p["layers"][0]["files"].as_array().unwrap();
    assert!(!files.is_empty());
    for f in files {
        assert_eq!(f["differences"], serde_json::json!(["mtime"]), "{f:#}");
        assert_eq!(f["first"]["mtime"], 1000000000);
    }
    let d = std::process::Command::new(&diffoscope)
        .arg("--exclude-directory-metadata=recursive")
        .arg(&other)
        .arg(&rebuilt)
        .output()
        .unwrap();
    assert_eq!(d.status.code(), Some(1), "diffoscope sees the difference too:\n{}", stderr(&d));
}

#[test]
fn a_broken_recipe_or_an_unreadable_layout_is_an_error_not_a_verdict() {
    let f = Fixture::new();
    f.recipe("kiln 1\nimage \"x\" {\n    base \"scratch\"\n    colour \"blue\"\n}\n");
    let o = verify(&f.recipe_path(), &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("colour"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    f.recipe("kiln 1\nimage \"x\" {\n    base \"scratch\"\n    file \"/etc/x\" \"x\\n\"\n}\n");
    std::fs::create_dir_all(f.path().join("junk")).unwrap();
    std::fs::write(f.path().join("junk/oci-layout"), "{").unwrap();
    std::fs::write(f.path().join("junk/index.json"), "not json").unwrap();
    let o = verify(&f.recipe_path(), &["--against", f.path().join("junk").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("index.json"), "{}", stderr(&o));
}

#[test]
fn an_image_pushed_to_a_registry_is_verified_by_its_reference() {
    let reg = crate::servers::Registry::start();
    let recipe = root().join("examples/hello/kiln.kdl");
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let layout = dir.path().join("out");
    run(kiln()
        .env("KILN_CACHE_DIR", cache.path())
        .arg("build")
        .arg("-q")
        .arg("-f")
        .arg(&recipe)
        .arg("--out")
        .arg(&layout));
    let reference = format!("{}/hello:1", reg.addr());
    let pushed: Value = serde_json::from_str(&run(kiln()
        .env("KILN_CACHE_DIR", cache.path())
        .env("DOCKER_CONFIG", dir.path().join("no-docker-config"))
        .arg("push")
        .arg("-q")
        .arg("--json")
        .arg(&layout)
        .arg(&reference)))
    .unwrap();
    let by_digest = pushed["pushed"][0]["reference"].as_str().unwrap().to_string();
    assert!(by_digest.contains("@sha256:"), "{pushed}");
    let o = verify(&recipe, &["--against", &by_digest]);
    let r = report(&o);
    assert_eq!(o.status.code(), Some(0), "{r:#}\n{}", stderr(&o));
    assert_eq!(r["comparison"]["platforms_compared"], 3);
    // Another image under the same name is named as the difference.
    let other = Fixture::new();
    other.recipe(&std::fs::read_to_string(&recipe).unwrap().replace("Hello from kiln.", "Hello from elsewhere."));
    for f in [
        "site/index.html",
        "site/style.css",
        "dist/amd64/build-info.txt",
        "dist/arm64/build-info.txt",
        "dist/arm/build-info.txt",
    ] {
        other.write(f, std::fs::read(root().join("examples/hello").join(f)).unwrap());
    }
    run(kiln().current_dir(other.path()).env("KILN_CACHE_DIR", cache.path()).args(["build", "-q", "--out", "out"]));
    let o = kiln()
        .env("KILN_CACHE_DIR", cache.path())
        .env("DOCKER_CONFIG", dir.path().join("no-docker-config"))
        .arg("push")
        .arg("-q")
        .arg("--json")
        .arg(other.path().join("out"))
        .arg(format!("{}/hello:2", reg.addr()))
        .output()
        .unwrap();
    let second: Value = summary(&o);
    let o = verify(&recipe, &["--against", second["pushed"][0]["reference"].as_str().unwrap()]);
    let r = report(&o);
    assert_eq!(o.status.code(), Some(1), "{r:#}");
    let files = &r["comparison"]["images"][0]["platforms"][0]["layers"][0]["files"];
    assert_eq!(files[0]["path"], "/etc/hello/motd", "{r:#}");
    assert_eq!(files[0]["differences"], serde_json::json!(["content"]));
}

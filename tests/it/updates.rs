//! Small updates: a recipe of several images and three platforms, rebuilt after one binary's
//! source changes or one image gains a file. `kiln diff` must report exactly the layers that
//! changed (checked against the blob sizes skopeo reports), and a bundle applied to the old
//! layout must give the new layout, or be refused with the old layout intact.

use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const RECIPE: &str = r#"kiln 1
defaults {
    platforms "linux/amd64" "linux/arm64" "linux/arm/v7"
}
image "api" {
    base "scratch"
    copy "assets/" "/srv/assets/"
    rust "fleet" {
        bin "api"
    }
    file "/etc/api.conf" "port = 8080\n"
    entrypoint "/usr/local/bin/api"
}
image "worker" {
    base "scratch"
    copy "assets/" "/srv/assets/"
    rust "fleet" {
        bin "worker"
    }
    entrypoint "/usr/local/bin/worker"
}
image "docs" {
    base "scratch"
    copy "assets/" "/srv/assets/"
}
"#;

struct Fleet {
    f: Fixture,
    cache: tempfile::TempDir,
}

impl Fleet {
    fn new() -> Fleet {
        let f = Fixture::new();
        f.recipe(RECIPE)
            .write(
                "Cargo.toml",
                "[package]\nname = \"fleet\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
            )
            .write("src/bin/api.rs", "fn main() {\n    println!(\"api v1\");\n}\n")
            .write("src/bin/worker.rs", "fn main() {\n    println!(\"worker v1\");\n}\n");
        for i in 0..20 {
            f.write(&format!("assets/page{i}.html"), format!("<h1>page {i}</h1>\n").repeat(50));
        }
        run(Command::new("cargo").current_dir(f.path()).args(["generate-lockfile", "--offline", "-q"]));
        Fleet { f, cache: tempfile::tempdir().unwrap() }
    }

    fn build(&self, out: &str, previous: Option<&str>) -> Value {
        let mut c = kiln();
        c.current_dir(self.f.path())
            .env("KILN_CACHE_DIR", self.cache.path())
            .args(["build", "-q", "--json", "--out", out]);
        if let Some(p) = previous {
            c.args(["--previous", p]);
        }
        summary(&c.output().unwrap())
    }

    fn path(&self, p: &str) -> std::path::PathBuf {
        self.f.path().join(p)
    }

    /// `kiln bundle --have OLD --want NEW -o update.tar`; returns the bundle's path.
    fn bundle(&self, old: &str, new: &str) -> std::path::PathBuf {
        let file = self.path("update.tar");
        run(kiln()
            .args(["bundle", "--have"])
            .arg(self.path(old))
            .arg("--want")
            .arg(self.path(new))
            .arg("-o")
            .arg(&file));
        file
    }

    fn diff(&self, old: &str, new: &str) -> Value {
        serde_json::from_str(&run(kiln().args(["diff", "--json"]).arg(self.path(old)).arg(self.path(new)))).unwrap()
    }
}

fn platforms_of<'a>(d: &'a Value, image: &str) -> &'a Vec<Value> {
    d["images"].as_array().unwrap().iter().find(|i| i["name"] == image).unwrap()["platforms"].as_array().unwrap()
}

/// (manifest digest, manifest size) of one platform, as skopeo reads it.
fn manifest_of(layout: &Path, image: &str, platform: &str) -> Value {
    let index = skopeo_raw(layout, image);
    let m = index["manifests"].as_array().unwrap().iter().find(|m| {
        let p = &m["platform"];
        let name = match p["variant"].as_str() {
            Some(v) => format!("linux/{}/{v}", p["architecture"].as_str().unwrap()),
            None => format!("linux/{}", p["architecture"].as_str().unwrap()),
        };
        name == platform
    });
    m.unwrap().clone()
}

#[test]
fn one_changed_binary_moves_one_layer_per_platform_and_a_bundle_carries_exactly_that() {
    let fleet = Fleet::new();
    fleet.build("v1", None);
    fleet.f.write("src/bin/api.rs", "fn main() {\n    println!(\"api v2\");\n}\n");
    fleet.build("v2", Some("v1"));
    let d = fleet.diff("v1", "v2");

    let single = tempfile::tempdir().unwrap();
    for p in platforms_of(&d, "api") {
        let platform = p["platform"].as_str().unwrap();
        assert_eq!(p["added"].as_array().unwrap().len(), 1, "{platform}: {p}");
        assert_eq!(p["removed"].as_array().unwrap().len(), 1, "{platform}: {p}");
        // The figures agree with what skopeo reads from the new layout.
        let m = manifest_of(&fleet.path("v2"), "api", platform);
        let (arch, variant) = match platform {
            "linux/arm/v7" => ("arm", Some("v7")),
            other => (other.trim_start_matches("linux/"), None),
        };
        let one = single_platform(&fleet.path("v2"), "api", arch, variant, &single.path().join(arch));
        let manifest = skopeo_raw(&one, "api");
        let added = &p["added"][0];
        let layer = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["digest"] == added["digest"])
            .expect("the added layer is in the manifest");
        assert_eq!(layer["size"], added["size"]);
        let config = manifest["config"]["size"].as_u64().unwrap();
        let expected = added["size"].as_u64().unwrap() + config + m["size"].as_u64().unwrap();
        let download = p["download_bytes"].as_u64().unwrap();
        // A device on this platform downloads the image index too.
        let index = skopeo_index_size(&fleet.path("v2"), "api");
        assert_eq!(download, expected + index, "{platform}");
        assert_eq!(p["metadata_bytes"].as_u64().unwrap(), download - added["size"].as_u64().unwrap(), "{platform}");
        assert!(
            config + m["size"].as_u64().unwrap() <= 2048,
            "{platform}: at most 2 kB of manifest and config: {config} + {}",
            m["size"]
        );
    }
    for image in ["worker", "docs"] {
        for p in platforms_of(&d, image) {
            assert_eq!(p["added"].as_array().unwrap().len(), 0, "{image} {}: {p}", p["platform"]);
            assert_eq!(p["download_bytes"], 0, "{image} is unchanged");
        }
    }

    // A budget gate for CI.
    let over =
        kiln().arg("diff").arg(fleet.path("v1")).arg(fleet.path("v2")).args(["--budget", "1kB"]).output().unwrap();
    assert_eq!(over.status.code(), Some(1), "{}", stdout(&over));
    let within =
        kiln().arg("diff").arg(fleet.path("v1")).arg(fleet.path("v2")).args(["--budget", "10MiB"]).output().unwrap();
    assert_eq!(within.status.code(), Some(0));

    // The bundle carries exactly the new blobs; applied to v1 it gives v2.
    let bundle = fleet.bundle("v1", "v2");
    let members = run(Command::new("tar").arg("-tf").arg(&bundle));
    let blobs = members.lines().filter(|l| l.starts_with("blobs/")).count();
    // Per platform the new layer, config and manifest; and api's new image index.
    let new_blobs: usize =
        platforms_of(&d, "api").iter().map(|p| p["added"].as_array().unwrap().len() + 2).sum::<usize>() + 1;
    assert_eq!(blobs, new_blobs, "{members}");
    let device = fleet.path("device");
    copy_dir(&fleet.path("v1"), &device);
    run(kiln().arg("apply").arg(&bundle).arg("--to").arg(&device));
    assert_eq!(std::fs::read(device.join("index.json")).unwrap(), std::fs::read(fleet.path("v2/index.json")).unwrap());
    // What v1 had and v2 no longer uses is gone: the device holds exactly v2's blobs.
    assert!(listing(&device) == listing(&fleet.path("v2")), "the device layout is not v2's");
    let one = single_platform(&device, "api", "arm64", None, &single.path().join("device-arm64"));
    oci_validate(&one, "api");
    let root = umoci_unpack(&one, "api", &single.path().join("bundle")).join("rootfs");
    let out = run(Command::new(require("qemu-aarch64-static")).arg(root.join("usr/local/bin/api")));
    assert_eq!(out, "api v2\n");
}

/// The blobs of one platform of every image in a layout: image indexes, and that platform's
/// manifests, configs and layers.
fn platform_blobs(layout: &Path, arch: &str) -> std::collections::BTreeSet<String> {
    let blob = |d: &Value| -> Value {
        let hex = d["digest"].as_str().unwrap().trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let top: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut out = std::collections::BTreeSet::new();
    for image in top["manifests"].as_array().unwrap() {
        out.insert(image["digest"].as_str().unwrap().to_string());
        for m in blob(image)["manifests"].as_array().unwrap() {
            if m["platform"]["architecture"] != arch {
                continue;
            }
            out.insert(m["digest"].as_str().unwrap().to_string());
            let manifest = blob(m);
            out.insert(manifest["config"]["digest"].as_str().unwrap().to_string());
            for l in manifest["layers"].as_array().unwrap() {
                out.insert(l["digest"].as_str().unwrap().to_string());
            }
        }
    }
    out
}

fn blob_names(layout: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
        .collect()
}

#[test]
fn a_device_holding_one_platform_gets_a_bundle_of_that_platform() {
    let fleet = Fleet::new();
    fleet.build("v1", None);
    fleet.f.write("src/bin/api.rs", "fn main() {\n    println!(\"api v2\");\n}\n");
    fleet.build("v2", None);
    // An arm64 device: v1's index.json and only the blobs arm64 uses.
    let device = fleet.path("device");
    copy_dir(&fleet.path("v1"), &device);
    let arm64 = platform_blobs(&device, "arm64");
    for b in blob_names(&device).difference(&arm64) {
        std::fs::remove_file(device.join("blobs/sha256").join(b.trim_start_matches("sha256:"))).unwrap();
    }
    // inspect reads what the device holds and names what it does not.
    let report: Value =
        serde_json::from_str(&run(kiln().args(["inspect", "--json", "--image", "api"]).arg(&device))).unwrap();
    let api = &report["images"][0];
    assert_eq!(api["platforms"].as_array().unwrap().len(), 1, "{api}");
    assert_eq!(api["platforms"][0]["platform"], "linux/arm64");
    assert_eq!(api["absent"], serde_json::json!(["linux/amd64", "linux/arm/v7"]), "{api}");
    let d: Value = serde_json::from_str(&run(kiln()
        .args(["diff", "--json", "--platform", "linux/arm64"])
        .arg(&device)
        .arg(fleet.path("v2"))))
    .unwrap();
    let file = fleet.path("arm64.tar");
    let out = run(kiln()
        .args(["bundle", "--platform", "linux/arm64", "--have"])
        .arg(&device)
        .arg("--want")
        .arg(fleet.path("v2"))
        .arg("-o")
        .arg(&file));
    // The new layer, config and manifest of api on arm64, and api's new image index: exactly
    // what diff says the device downloads.
    let members = run(Command::new("tar").arg("-tf").arg(&file));
    let blobs: Vec<&str> = members.lines().filter(|l| l.starts_with("blobs/")).collect();
    assert_eq!(blobs.len(), 4, "{members}");
    let blob_bytes: u64 = blobs.iter().map(|b| std::fs::metadata(fleet.path("v2").join(b)).unwrap().len()).sum();
    let api = platforms_of(&d, "api");
    assert_eq!(api.len(), 1, "{d}");
    assert_eq!(api[0]["download_bytes"].as_u64().unwrap(), blob_bytes, "{d}\n{out}");
    assert_eq!(d["total_bytes"].as_u64().unwrap(), blob_bytes, "{d}");
    // The whole-fleet bundle is larger: it carries every platform.
    let all = fleet.bundle("v1", "v2");
    assert!(std::fs::metadata(&all).unwrap().len() > std::fs::metadata(&file).unwrap().len() * 2);

    // An all-platform bundle needs what this device does not hold, and is refused.
    let before = listing(&device);
    let o = kiln().arg("apply").arg(&all).arg("--to").arg(&device).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("lacks"), "{}", stderr(&o));
    assert!(listing(&device) == before, "a refused bundle changed the layout");

    run(kiln().arg("apply").arg(&file).arg("--to").arg(&device));
    assert_eq!(std::fs::read(device.join("index.json")).unwrap(), std::fs::read(fleet.path("v2/index.json")).unwrap());
    assert_eq!(blob_names(&device), platform_blobs(&fleet.path("v2"), "arm64"), "v2's arm64 blobs, nothing else");
    let work = tempfile::tempdir().unwrap();
    let one = single_platform(&device, "api", "arm64", None, &work.path().join("one"));
    oci_validate(&one, "api");
    let root = umoci_unpack(&one, "api", &work.path().join("bundle")).join("rootfs");
    let ran = run(Command::new(require("qemu-aarch64-static")).arg(root.join("usr/local/bin/api")));
    assert_eq!(ran, "api v2\n");
}

/// The size of an image's index, from the layout's index.json as skopeo would resolve it.
fn skopeo_index_size(layout: &Path, image: &str) -> u64 {
    let raw =
        run(Command::new(require("skopeo")).args(["inspect", "--raw", &format!("oci:{}:{image}", layout.display())]));
    raw.len() as u64
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().filter_map(Result::ok) {
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect();
    out.push(("index.json".into(), std::fs::read(dir.join("index.json")).unwrap()));
    out.sort();
    out
}

#[test]
fn damaged_bundles_are_refused_and_the_layout_is_left_alone() {
    let fleet = Fleet::new();
    fleet.build("v1", None);
    fleet.f.write("src/bin/worker.rs", "fn main() {\n    println!(\"worker v2\");\n}\n");
    fleet.build("v2", None);
    let bundle = fleet.bundle("v1", "v2");
    let bytes = std::fs::read(&bundle).unwrap();
    let device = fleet.path("device");
    copy_dir(&fleet.path("v1"), &device);
    let before = listing(&device);

    let truncated = fleet.path("truncated.tar");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let tampered = fleet.path("tampered.tar");
    let mut t = bytes.clone();
    let i = t.len() - 4096;
    t[i] ^= 0xff;
    std::fs::write(&tampered, t).unwrap();
    for bad in [&truncated, &tampered] {
        let o = kiln().arg("apply").arg(bad).arg("--to").arg(&device).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{}: {}", bad.display(), stderr(&o));
        assert!(
            stderr(&o).contains("refusing bundle") && stderr(&o).contains("kiln::update::refused"),
            "{}",
            stderr(&o)
        );
        assert!(listing(&device) == before, "{} changed the layout", bad.display());
    }
    // A bundle made for another base is refused too, naming both releases.
    let empty = Fixture::new();
    empty.recipe("kiln 1\nimage \"x\" {\n    base \"scratch\"\n    file \"/x\" \"x\"\n}\n");
    summary(&empty.build());
    let o = kiln().arg("apply").arg(&bundle).arg("--to").arg(empty.out()).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let release = |layout: &Path| {
        let hex = run(Command::new("sha256sum").arg(layout.join("index.json")));
        format!("sha256:{}", &hex[..64])
    };
    let (v1, other) = (release(&fleet.path("v1")), release(&empty.out()));
    let err = stderr(&o).replace("\n  | ", " ");
    assert!(err.contains(&format!("it builds on release {v1}")) && err.contains(&other), "{}", stderr(&o));
    // The intact bundle applies; with --keep-unused, v1's blobs stay beside v2's.
    run(kiln().arg("apply").arg(&bundle).arg("--to").arg(&device).arg("--keep-unused"));
    assert_eq!(std::fs::read(device.join("index.json")).unwrap(), std::fs::read(fleet.path("v2/index.json")).unwrap());
    let kept = blob_names(&device);
    assert!(kept.is_superset(&blob_names(&fleet.path("v1"))) && kept.is_superset(&blob_names(&fleet.path("v2"))));
}

#[test]
fn a_file_added_to_one_image_changes_only_that_image() {
    let fleet = Fleet::new();
    let v1 = fleet.build("v1", None);
    fleet.f.recipe(&RECIPE.replace(
        "    copy \"assets/\" \"/srv/assets/\"\n}\n",
        "    copy \"assets/\" \"/srv/assets/\"\n    file \"/srv/robots.txt\" \"User-agent: *\\n\"\n}\n",
    ));
    let v2 = fleet.build("v2", None);
    let digest = |s: &Value, name: &str| {
        s["images"].as_array().unwrap().iter().find(|i| i["name"] == name).unwrap()["digest"].clone()
    };
    assert_eq!(digest(&v1, "api"), digest(&v2, "api"));
    assert_eq!(digest(&v1, "worker"), digest(&v2, "worker"));
    assert_ne!(digest(&v1, "docs"), digest(&v2, "docs"));
    let d = fleet.diff("v1", "v2");
    for p in platforms_of(&d, "docs") {
        assert_eq!((p["added"].as_array().unwrap().len(), p["removed"].as_array().unwrap().len()), (1, 0), "{p}");
    }
    // The assets, which all three images copy, are one blob they share on every platform.
    let report: Value = serde_json::from_str(&run(kiln().args(["inspect", "--json"]).arg(fleet.path("v2")))).unwrap();
    let assets = report["images"][0]["platforms"][0]["layers"][0]["digest"].as_str().unwrap().to_string();
    assert_eq!(report["images"][0]["platforms"][0]["layers"][0]["key"], "shared api,docs,worker");
    assert_eq!(report["layers"][&assets]["used_by"].as_array().unwrap().len(), 9);
}

#[test]
fn previous_keeps_the_layer_order_of_the_last_release() {
    let fleet = Fleet::new();
    fleet.f.write("extra/readme.txt", "extra\n").write("more/readme.txt", "more\n");
    let (extra, more) = ("    copy \"extra/\" \"/srv/extra/\"\n", "    copy \"more/\" \"/srv/more/\"\n");
    let docs = "image \"docs\" {\n    base \"scratch\"\n    copy \"assets/\" \"/srv/assets/\"\n";
    let two = RECIPE.replace(docs, &format!("{docs}{extra}{more}"));
    fleet.f.recipe(&two);
    fleet.build("v1", None);
    fleet.f.recipe(&two.replace(&format!("{extra}{more}"), &format!("{more}{extra}")));
    fleet.build("v2", None);
    fleet.build("v3", Some("v1"));
    let keys = |out: &str| layer_keys(&fleet.path(out), "docs", "amd64");
    let shared = "shared api,docs,worker";
    assert_eq!(keys("v1"), [shared, "copy extra/ /srv/extra/", "copy more/ /srv/more/"]);
    assert_eq!(
        keys("v2"),
        [shared, "copy more/ /srv/more/", "copy extra/ /srv/extra/"],
        "recipe order without --previous"
    );
    assert_eq!(keys("v3"), keys("v1"), "--previous keeps the last release's order");
    let d = fleet.diff("v1", "v3");
    assert_eq!(d["total_bytes"], 0, "nothing to download: {d}");
}

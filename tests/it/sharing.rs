//! File-level sharing across the images of a recipe: five images over three platforms whose
//! data directories overlap file by file (one large file in all five, some in pairs or threes,
//! some in one image alone). The layout must store each distinct file about once, every image
//! must unpack (umoci) to exactly its own directory, and a file added to or changed in one
//! image must leave the images that do not hold it as they were.

use crate::common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const IMAGES: [&str; 5] = ["svc1", "svc2", "svc3", "svc4", "svc5"];

fn recipe(layers: &str) -> String {
    let mut r =
        format!("kiln 1\n{layers}defaults {{\n    platforms \"linux/amd64\" \"linux/arm64\" \"linux/arm/v7\"\n}}\n");
    for name in IMAGES {
        r += &format!("image \"{name}\" {{\n    base \"scratch\"\n    copy \"{name}/\" \"/srv/data/\"\n}}\n");
    }
    r
}

/// Writes each image's data directory: (file, images holding it, bytes).
fn fleet() -> Fixture {
    let f = Fixture::new();
    f.recipe(&recipe(""));
    let files: [(&str, &[usize], usize); 8] = [
        ("models/all.bin", &[1, 2, 3, 4, 5], 1 << 20),
        ("maps/pair12.bin", &[1, 2], 200 << 10),
        ("maps/pair23.bin", &[2, 3], 200 << 10),
        ("maps/pair45.bin", &[4, 5], 200 << 10),
        ("odd.bin", &[1, 3, 5], 150 << 10),
        // Too small for a layer of its own: stays in each image's own layer.
        ("small14.txt", &[1, 4], 2 << 10),
        ("LICENSE", &[1, 2, 3, 4, 5], 1 << 10),
        ("own.bin", &[], 100 << 10),
    ];
    for (n, (path, holders, len)) in files.iter().enumerate() {
        for i in 1..=5usize {
            if holders.is_empty() {
                f.write(&format!("svc{i}/{path}"), noise(*len, 100 + i as u64));
            } else if holders.contains(&i) {
                f.write(&format!("svc{i}/{path}"), noise(*len, n as u64));
            }
        }
    }
    for i in 1..=5 {
        f.write(&format!("svc{i}/name.txt"), format!("svc{i}\n"));
    }
    f
}

/// Each distinct file (path and content) counted once.
fn ideal_bytes(root: &Path) -> u64 {
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for name in IMAGES {
        for (rel, bytes) in tree_files(&root.join(name)) {
            if seen.insert((rel, bytes.clone())) {
                total += bytes.len() as u64;
            }
        }
    }
    total
}

/// Every file below a directory, by relative path, sorted.
fn tree_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn stored_bytes(layout: &Path) -> u64 {
    layout_files(layout).iter().map(|(_, b)| b.len() as u64).sum()
}

fn build(f: &Fixture, out: &str, extra: &[&str]) -> Value {
    let mut c = kiln();
    c.current_dir(f.path()).env("KILN_CACHE_DIR", f.cache_path()).args(["build", "-q", "--json", "--out", out]);
    summary(&c.args(extra).output().unwrap())
}

fn digests(s: &Value) -> BTreeMap<String, String> {
    let images = s["images"].as_array().expect("images in the summary");
    images.iter().map(|i| (i["name"].as_str().unwrap().into(), i["digest"].as_str().unwrap().into())).collect()
}

fn changed(a: &Value, b: &Value) -> Vec<String> {
    let (a, b) = (digests(a), digests(b));
    IMAGES.iter().filter(|n| a[**n] != b[**n]).map(|n| n.to_string()).collect()
}

#[test]
fn a_fleet_stores_each_shared_file_once_and_each_image_unpacks_to_its_own_files() {
    let f = fleet();
    let v1 = build(&f, "v1", &[]);
    let ideal = ideal_bytes(f.path());
    let stored = stored_bytes(&f.path().join("v1"));
    // The same fleet with sharing turned off stores every image's copy on its own.
    let alone = Fixture::new();
    copy_project(f.path(), alone.path());
    alone.recipe(&recipe("layers {\n    share-min 1099511627776\n}\n"));
    build(&alone, "v1", &[]);
    let unshared = stored_bytes(&alone.path().join("v1"));
    eprintln!("fleet: ideal {ideal} B, stored {stored} B, without file sharing {unshared} B");
    assert!(unshared as f64 > 2.0 * ideal as f64, "the fleet's images overlap: {unshared} against {ideal}");
    assert!((stored as f64) <= 1.05 * ideal as f64, "stored {stored} B against an ideal of {ideal} B");

    // Each image, unpacked by umoci from its arm/v7 and amd64 manifests, holds exactly its files.
    let tmp = tempfile::tempdir().unwrap();
    for name in IMAGES {
        for (arch, variant) in [("amd64", None), ("arm", Some("v7"))] {
            let single =
                single_platform(&f.path().join("v1"), name, arch, variant, &tmp.path().join(format!("{name}-{arch}")));
            let bundle = umoci_unpack(&single, name, &tmp.path().join(format!("{name}-{arch}-bundle")));
            let unpacked = tree_files(&bundle.join("rootfs/srv/data"));
            assert_eq!(unpacked, tree_files(&f.path().join(name)), "{name} {arch}");
        }
    }

    // Which layers are shared, by whom, and why: the recorded layer plan and kiln inspect.
    let keys = layer_keys(&f.path().join("v1"), "svc1", "arm64");
    assert_eq!(
        keys,
        ["shared svc1,svc2,svc3,svc4,svc5", "shared svc1,svc3,svc5", "shared svc1,svc2", "copy svc1/ /srv/data/"]
    );
    let report: Value =
        serde_json::from_str(&run(kiln().args(["inspect", "--json"]).arg(f.path().join("v1")))).unwrap();
    let layers = report["images"][0]["platforms"][0]["layers"].as_array().unwrap();
    let pair = layers.iter().find(|l| l["key"] == "shared svc1,svc2").expect("a layer svc1 and svc2 share");
    assert!(pair["why"].as_str().unwrap().contains("the images svc1, svc2 all hold"), "{pair}");
    let used_by = report["layers"][pair["digest"].as_str().unwrap()]["used_by"].as_array().unwrap();
    assert_eq!(used_by.len(), 6, "two images on three platforms: {used_by:?}");
    assert!(!keys.iter().any(|k| k.contains("svc4") && !k.contains("svc5")), "small14.txt is too small to share");

    // An image built alone gets the layers it has in the fleet.
    let one = build(&f, "one", &["--image", "svc3"]);
    assert_eq!(digests(&one)["svc3"], digests(&v1)["svc3"]);

    // A file added to one image changes that image only; a file changed in one image of a
    // pair changes the pair only. --previous keeps the order of the last release.
    f.write("svc3/maps/new.bin", noise(40 << 10, 77));
    let v2 = build(&f, "v2", &["--previous", "v1"]);
    assert_eq!(changed(&v1, &v2), ["svc3"]);
    let d: Value =
        serde_json::from_str(&run(kiln().args(["diff", "--json"]).arg(f.path().join("v1")).arg(f.path().join("v2"))))
            .unwrap();
    let svc3 = d["images"].as_array().unwrap().iter().find(|i| i["name"] == "svc3").unwrap();
    for p in svc3["platforms"].as_array().unwrap() {
        assert_eq!((p["added"].as_array().unwrap().len(), p["removed"].as_array().unwrap().len()), (1, 1), "{p}");
    }
    f.write("svc4/maps/pair45.bin", noise(200 << 10, 78));
    let v3 = build(&f, "v3", &["--previous", "v2"]);
    assert_eq!(changed(&v2, &v3), ["svc4", "svc5"]);
    assert_eq!(layer_keys(&f.path().join("v3"), "svc1", "amd64"), keys, "svc1 is untouched");
}

#[test]
fn shared_layers_take_at_most_half_the_budget_and_drop_their_smallest_groups() {
    let f = fleet();
    f.recipe(&recipe("layers {\n    budget 4\n}\n"));
    let plan: Value = serde_json::from_str(&run(kiln().current_dir(f.path()).args(["plan", "--json"]))).unwrap();
    let keys = |image: &str| -> Vec<String> {
        let i = plan["images"].as_array().unwrap().iter().find(|i| i["name"] == image).unwrap();
        i["platforms"][0]["layers"].as_array().unwrap().iter().map(|l| l["key"].as_str().unwrap().to_string()).collect()
    };
    // svc1 is in three groups over 16 KiB, two over the cap: the smallest (odd.bin, 150 KiB)
    // is left unshared. svc2 is then in three too: of its two pairs of 200 KiB, the first by
    // name goes.
    assert_eq!(keys("svc1"), ["shared svc1,svc2,svc3,svc4,svc5", "copy svc1/ /srv/data/"]);
    assert_eq!(keys("svc2"), ["shared svc1,svc2,svc3,svc4,svc5", "shared svc2,svc3", "copy svc2/ /srv/data/"]);
    assert_eq!(keys("svc5"), ["shared svc1,svc2,svc3,svc4,svc5", "shared svc4,svc5", "copy svc5/ /srv/data/"]);
}

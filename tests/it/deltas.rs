//! `kiln bundle --delta`: a one-line change in a Rust service ships as a binary delta against
//! the layer the device holds, and `kiln apply` rebuilds exactly the new layout (every blob
//! and index.json byte for byte), which oci-image-tool and umoci accept; a tampered delta, or
//! one applied to a layout without the old layer, is refused and the layout is unchanged.

use crate::common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// hello-rust for arm64 in `compression`, built as v1 into `v1/` and, after a one-line change
/// to its message, as v2 into `v2/`.
fn two_releases(compression: &str) -> Fixture {
    let f = Fixture::new();
    copy_project(&repo_root().join("examples/hello-rust"), f.path());
    // v1's binary as the first build of the example compiled it; v2's is compiled here.
    crate::compiled::seed("hello-rust", f.cache_path());
    let recipe = std::fs::read_to_string(f.recipe_path()).unwrap();
    f.recipe(&recipe.replace("compression \"gzip\" level=6", compression));
    let build = |out: &str| {
        summary(
            &f.build_cmd()
                .args(["--platform", "linux/arm64", "--output", &format!("oci-layout={out}")])
                .output()
                .unwrap(),
        )
    };
    build("v1");
    let main = f.path().join("src/main.rs");
    let src = std::fs::read_to_string(&main).unwrap().replace("hello from {name}", "hello again from {name}");
    std::fs::write(&main, src).unwrap();
    build("v2");
    f
}

fn bundle(f: &Fixture, have: &str, out: &str, delta: bool) -> u64 {
    let mut c = kiln();
    c.current_dir(f.path()).args(["bundle", "--have", have, "--want", "v2", "-o", out, "--platform", "linux/arm64"]);
    if delta {
        c.arg("--delta");
    }
    run(&mut c);
    std::fs::metadata(f.path().join(out)).unwrap().len()
}

fn apply(f: &Fixture, bundle: &str, to: &str) -> std::process::Output {
    kiln().current_dir(f.path()).args(["apply", bundle, "--to", to]).output().unwrap()
}

#[test]
fn a_one_line_change_ships_as_a_delta_that_rebuilds_the_exact_layout() {
    for compression in ["compression \"gzip\" level=6", "compression \"zstd\" level=3"] {
        let f = two_releases(compression);
        let whole = bundle(&f, "v1", "whole.tar", false);
        let delta = bundle(&f, "v1", "delta.tar", true);
        eprintln!("{compression}: whole-layer bundle {whole} bytes, delta bundle {delta} bytes");
        assert!(delta * 20 <= whole, "{compression}: the delta bundle is {delta} bytes, the whole one {whole}");
        // kiln diff says both, and --delta's --budget is on what a delta bundle sends.
        let diff = |args: &[&str]| {
            kiln()
                .current_dir(f.path())
                .args(["diff", "v1", "v2", "--platform", "linux/arm64"])
                .args(args)
                .output()
                .unwrap()
        };
        let report = summary(&diff(&["--json", "--delta"]));
        let (all, with) = (report["total_bytes"].as_u64().unwrap(), report["total_delta_bytes"].as_u64().unwrap());
        assert!(with * 20 <= all, "{compression}: {with} bytes with deltas, {all} without");
        assert_eq!(report["images"][0]["platforms"][0]["delta_download_bytes"].as_u64(), Some(with));
        let budget = format!("{}", (with + all) / 2);
        assert_eq!(diff(&["--budget", &budget, "--delta"]).status.code(), Some(0));
        assert_eq!(diff(&["--budget", &budget]).status.code(), Some(1));

        run(Command::new("cp").arg("-a").arg(f.path().join("v1")).arg(f.path().join("device")));
        let o = apply(&f, "delta.tar", "device");
        assert!(o.status.success(), "{compression}: {}", stderr(&o));
        assert!(
            layout_files(&f.path().join("device")) == layout_files(&f.path().join("v2")),
            "{compression}: not the new layout"
        );
        // oci-image-tool and umoci read gzip layers; a zstd release is read by skopeo.
        if compression.contains("gzip") {
            let device = f.path().join("device").display().to_string();
            let out = run(Command::new(require("oci-image-tool")).args([
                "validate",
                "--type",
                "image",
                "--ref",
                "name=hello-rust",
                &device,
            ]));
            assert!(out.contains("Validation succeeded"), "{out}");
            let single = tempfile::tempdir().unwrap();
            let layout =
                single_platform(&f.path().join("device"), "hello-rust", "arm64", None, &single.path().join("l"));
            umoci_unpack(&layout, "hello-rust", &single.path().join("bundle"));
        } else {
            skopeo_raw(&f.path().join("device"), "hello-rust");
        }
    }
}

#[test]
fn a_tampered_delta_or_a_missing_old_layer_is_refused_and_the_layout_kept() {
    let f = two_releases("compression \"zstd\" level=3");
    bundle(&f, "v1", "delta.tar", true);
    // A delta bundle is a zstd-compressed tar; its plain tar is a bundle too.
    let packed = std::fs::read(f.path().join("delta.tar")).unwrap();
    assert_eq!(packed[..4], [0x28, 0xb5, 0x2f, 0xfd], "a delta bundle is compressed");
    let plain =
        Command::new(require("zstd")).args(["-d", "-c"]).arg(f.path().join("delta.tar")).output().unwrap().stdout;
    let manifest: Value = {
        let mut a = tar::Archive::new(&plain[..]);
        let mut e =
            a.entries().unwrap().map(Result::unwrap).find(|e| e.path().unwrap().ends_with("kiln-bundle.json")).unwrap();
        let mut s = String::new();
        std::io::Read::read_to_string(&mut e, &mut s).unwrap();
        serde_json::from_str(&s).unwrap()
    };
    let entry = &manifest["deltas"][0];
    assert_eq!(manifest["bundle_format"], 3);
    assert!(entry["compressor"].as_str().unwrap().contains("zstd"), "{entry}");

    // A byte of the delta flipped inside a well-formed tar; the compressed bundle flipped and
    // cut short.
    let name = format!("deltas/sha256/{}", entry["layer"].as_str().unwrap().trim_start_matches("sha256:"));
    let at = plain.windows(name.len()).position(|w| w == name.as_bytes()).unwrap() + 512 + 40;
    let mut flipped = plain.clone();
    flipped[at] ^= 0xff;
    std::fs::write(f.path().join("flipped.tar"), flipped).unwrap();
    let mut packed_flipped = packed.clone();
    let mid = packed.len() / 2;
    packed_flipped[mid] ^= 0xff;
    std::fs::write(f.path().join("packed-flipped.tar"), packed_flipped).unwrap();
    std::fs::write(f.path().join("cut.tar"), &packed[..packed.len() * 2 / 3]).unwrap();
    for bad in ["flipped.tar", "packed-flipped.tar", "cut.tar"] {
        run(Command::new("rm").arg("-rf").arg(f.path().join("device")));
        run(Command::new("cp").arg("-a").arg(f.path().join("v1")).arg(f.path().join("device")));
        let before = layout_files(&f.path().join("device"));
        let o = apply(&f, bad, "device");
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains("kiln::update::refused"), "{bad}: {}", stderr(&o));
        assert!(layout_files(&f.path().join("device")) == before, "{bad}: the layout changed");
    }

    // A device that lacks the old layer the delta applies to.
    run(Command::new("rm").arg("-rf").arg(f.path().join("device")));
    run(Command::new("cp").arg("-a").arg(f.path().join("v1")).arg(f.path().join("device")));
    let from = entry["from"].as_str().unwrap().trim_start_matches("sha256:");
    std::fs::remove_file(f.path().join("device/blobs/sha256").join(from)).unwrap();
    let before = layout_files(&f.path().join("device"));
    let o = apply(&f, "delta.tar", "device");
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o).split_whitespace().filter(|w| *w != "|").collect::<Vec<_>>().join(" ");
    assert!(err.contains(&format!("lacks the layer sha256:{from}")), "{err}");
    assert!(layout_files(&f.path().join("device")) == before, "the layout changed");
}

#[test]
fn deltas_through_a_registry_reach_a_device_that_pulls() {
    use crate::servers::Registry;
    let f = two_releases("compression \"gzip\" level=6");
    let reg = Registry::start();
    let cmd = |args: &[&str]| {
        let o = kiln().current_dir(f.path()).env("KILN_CACHE_DIR", f.cache_path()).args(args).output().unwrap();
        summary(&o)
    };
    let (v1, v2) = (format!("{}/kiln/hello-rust:1", reg.addr()), format!("{}/kiln/hello-rust:2", reg.addr()));
    cmd(&["push", "--json", "v1", &v1]);
    let pushed = cmd(&["push", "--json", "v2", &v2, "--delta-from", &v1]);
    assert_eq!(pushed["deltas"][0]["deltas"], 1, "{pushed}");
    // skopeo sees release 2 as it was built.
    let raw = run(Command::new(require("skopeo")).args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{v2}"),
    ]));
    let index: Value = serde_json::from_slice(&std::fs::read(f.path().join("v2/index.json")).unwrap()).unwrap();
    use sha2::Digest;
    assert_eq!(
        format!("sha256:{:x}", sha2::Sha256::digest(raw.as_bytes())),
        index["manifests"][0]["digest"].as_str().unwrap()
    );

    // A device on release 1 pulls release 2: the changed layer comes as its delta.
    let device = tempfile::tempdir().unwrap();
    let to = device.path().join("layout").display().to_string();
    let pull = |r: &str, cache: &Path| {
        let o = kiln()
            .current_dir(f.path())
            .env("KILN_CACHE_DIR", cache)
            .args(["pull", "--json", r, "--to", &to])
            .output()
            .unwrap();
        summary(&o)
    };
    pull(&v1, device.path());
    // The changed layer: the one large blob of release 2 that release 1 lacks.
    let old: Vec<String> = layout_files(&f.path().join("v1")).into_iter().map(|(n, _)| n).collect();
    let (layer, _) =
        layout_files(&f.path().join("v2")).into_iter().find(|(n, b)| !old.contains(n) && b.len() > 10_000).unwrap();
    let before = reg.requests().len();
    let s = pull(&v2, &device.path().join("cache"));
    assert_eq!(s["deltas"], 1, "{s}");
    let sent = s["downloaded_bytes"].as_u64().unwrap() + s["delta_bytes"].as_u64().unwrap();
    let whole: u64 = pushed["pushed"][0]["uploaded_bytes"].as_u64().unwrap();
    assert!(sent * 20 <= whole, "the device got {sent} bytes, the layers are {whole}");
    assert!(
        layout_files(&device.path().join("layout")) == layout_files(&f.path().join("v2")),
        "the device does not hold release 2"
    );
    let layer_gets = reg.requests()[before..].iter().filter(|e| e.method == "GET" && e.path.ends_with(&layer)).count();
    assert_eq!(layer_gets, 0, "the device downloaded the whole layer too:\n{}", reg.log());
}

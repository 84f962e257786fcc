//! The golden digest: `examples/hello` must build to exactly this `index.json` digest. It
//! changes only on purpose (a format change, a new dependency version); regenerate it with
//!
//!     KILN_BLESS=1 cargo test --test it golden::
//!
//! and say why in the commit message. The test also has skopeo and oci-image-tool read the
//! layout, so the digest recorded here is always one those tools accepted.

use crate::common::*;
use std::path::PathBuf;

#[test]
fn hello_example_matches_its_golden_digest() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let golden = root.join("tests/golden/hello.index-digest");
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("out");
    let o = kiln()
        .args(["build", "-q", "--json", "-f"])
        .arg(root.join("examples/hello/kiln.kdl"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let s = summary(&o);

    // Outside tools accept the layout and agree on the image digest.
    let index = skopeo_raw(&out, "hello");
    assert_eq!(index["manifests"].as_array().unwrap().len(), 3);
    let inspected =
        run(std::process::Command::new(require("skopeo")).args(["inspect", &format!("oci:{}:hello", out.display())]));
    let inspected: serde_json::Value = serde_json::from_str(&inspected).unwrap();
    assert_eq!(inspected["Digest"], s["images"][0]["digest"], "skopeo resolves the image index kiln reported");
    for (arch, variant) in [("amd64", None), ("arm64", None), ("arm", Some("v7"))] {
        let single = single_platform(&out, "hello", arch, variant, &work.path().join(arch));
        oci_validate(&single, "hello");
    }

    let digest = s["index_digest"].as_str().unwrap().to_string();
    if std::env::var_os("KILN_BLESS").is_some() {
        std::fs::write(&golden, format!("{digest}\n")).unwrap();
        eprintln!("wrote {digest} to {}", golden.display());
        return;
    }
    let expected = std::fs::read_to_string(&golden)
        .expect("golden digest file; create it with KILN_BLESS=1 cargo test --test it golden::");
    assert_eq!(
        digest,
        expected.trim(),
        "examples/hello no longer builds to its golden digest. If the change is on purpose, run \
         `KILN_BLESS=1 cargo test --test it golden::` and say why in the commit message."
    );
}

//! SBOMs and provenance: `kiln build --sbom --provenance` attaches to every platform manifest
//! an SPDX 2.3 and a CycloneDX 1.6 document (validated by pyspdxtools and cyclonedx-python-lib's
//! JSON schema) and an in-toto SLSA provenance statement; they list the crates, Go modules
//! and C sources that went in, the layout stays an image skopeo and oci-image-tool read, the
//! whole release is reproducible, and `kiln sign` signs the statements as DSSE envelopes that
//! securesystemslib verifies.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn json_file(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Builds an example with every attestation into `dir/out`, the documents into `dir/docs`.
/// `kiln build --sbom-out` of `examples/EXAMPLE`, its binaries taken from a first build's
/// cache (the documents are the subject here, not the compiles).
fn build_attested(example: &str, dir: &Path, cache: &Path) -> Value {
    crate::compiled::seed(example, cache);
    summary(
        &kiln()
            .env("KILN_CACHE_DIR", cache)
            .arg("build")
            .arg("-q")
            .arg("--json")
            .arg("-f")
            .arg(root().join(format!("examples/{example}/kiln.kdl")))
            .arg("--out")
            .arg(dir.join("out"))
            .arg("--sbom-out")
            .arg(dir.join("docs"))
            .output()
            .unwrap(),
    )
}

fn validate_spdx(file: &Path) {
    let o = Command::new(require("pyspdxtools")).arg("-i").arg(file).output().unwrap();
    let said = format!("{}{}", stdout(&o), stderr(&o));
    assert!(o.status.success() && said.trim().is_empty(), "pyspdxtools rejects {}:\n{said}", file.display());
}

const CYCLONEDX_CHECK: &str = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read(), all_errors=True)
if errors:
    print(errors)
    sys.exit(1)
"#;

fn validate_cyclonedx(file: &Path) {
    let o = Command::new("python3").arg("-c").arg(CYCLONEDX_CHECK).arg(file).output().unwrap();
    assert!(o.status.success(), "the CycloneDX 1.6 schema rejects {}:\n{}{}", file.display(), stdout(&o), stderr(&o));
}

/// `(name, version)` pairs.
type Listed = Vec<(String, String)>;

/// `(name, version)` of every SPDX package and every CycloneDX component.
fn listed(docs: &Path, stem: &str) -> (Listed, Listed) {
    let spdx = json_file(&docs.join(format!("{stem}.spdx.json")));
    let cdx = json_file(&docs.join(format!("{stem}.cdx.json")));
    let pair = |v: &Value, n: &str, ver: &str| {
        (v[n].as_str().unwrap_or("").to_string(), v[ver].as_str().unwrap_or("").to_string())
    };
    (
        spdx["packages"].as_array().unwrap().iter().map(|p| pair(p, "name", "versionInfo")).collect(),
        cdx["components"].as_array().unwrap().iter().map(|c| pair(c, "name", "version")).collect(),
    )
}

/// The versions `Cargo.lock` pins for `names`.
fn locked(lock: &Path, names: &[&str]) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(lock).unwrap();
    names
        .iter()
        .map(|n| {
            let block = text.split("[[package]]").find(|b| b.contains(&format!("name = \"{n}\""))).unwrap();
            let v = block.lines().find_map(|l| l.strip_prefix("version = ")).unwrap().trim_matches('"');
            (n.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn a_rust_image_carries_valid_sboms_naming_its_crates_and_a_provenance_statement() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let s = build_attested("hello-rust", dir.path(), cache.path());
    assert_eq!(s["attestations"].as_array().unwrap().len(), 9, "three documents on each of three platforms: {s:#}");
    let docs = dir.path().join("docs");
    let mode = |p: &Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777;
    assert_eq!(mode(&docs.join("hello-rust.linux-amd64.spdx.json")), 0o644, "the documents are readable by all");
    let crates = locked(&root().join("examples/hello-rust/Cargo.lock"), &["itoa", "ryu", "hello-rust"]);
    for platform in ["linux-amd64", "linux-arm64", "linux-arm-v7"] {
        let stem = format!("hello-rust.{platform}");
        validate_spdx(&docs.join(format!("{stem}.spdx.json")));
        validate_cyclonedx(&docs.join(format!("{stem}.cdx.json")));
        let (spdx, cdx) = listed(&docs, &stem);
        for c in &crates {
            assert!(spdx.contains(c), "SPDX {platform} lacks {c:?}: {spdx:?}");
            assert!(cdx.contains(c), "CycloneDX {platform} lacks {c:?}: {cdx:?}");
        }
    }
    // The provenance names the manifest it speaks of, the recipe's and the lock file's digests.
    let layout = dir.path().join("out");
    let index = skopeo_raw(&layout, "hello-rust");
    let arm64 =
        index["manifests"].as_array().unwrap().iter().find(|m| m["platform"]["architecture"] == "arm64").unwrap();
    let p = json_file(&docs.join("hello-rust.linux-arm64.provenance.json"));
    assert_eq!(p["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(p["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(
        format!("sha256:{}", p["subject"][0]["digest"]["sha256"].as_str().unwrap()),
        arm64["digest"].as_str().unwrap()
    );
    let deps = p["predicate"]["buildDefinition"]["resolvedDependencies"].as_array().unwrap();
    let digest_of = |name: &str| deps.iter().find(|d| d["name"] == name).map(|d| d["digest"]["sha256"].clone());
    let sha = |f: &str| format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(std::fs::read(root().join(f)).unwrap()));
    assert_eq!(digest_of("recipe"), Some(Value::from(sha("examples/hello-rust/kiln.kdl"))));
    assert_eq!(digest_of("Cargo.lock"), Some(Value::from(sha("examples/hello-rust/Cargo.lock"))));
    assert!(
        deps.iter()
            .any(|d| d["name"] == "rustc" && d["annotations"]["version"].as_str().unwrap().starts_with("rustc "))
    );

    // inspect names them; the layout is still an image for skopeo and oci-image-tool.
    let inspected: Value = serde_json::from_str(&run(kiln().arg("inspect").arg("--json").arg(&layout))).unwrap();
    for p in inspected["images"][0]["platforms"].as_array().unwrap() {
        let kinds: Vec<&str> = p["attached"].as_array().unwrap().iter().map(|a| a["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["SBOM (SPDX)", "SBOM (CycloneDX)", "in-toto statement"], "{p:#}");
    }
    let one = single_platform(&layout, "hello-rust", "arm64", None, &dir.path().join("one"));
    oci_validate(&one, "hello-rust");

    // The attestations are as reproducible as the images: a build elsewhere with another
    // cache writes the same index.json (that the binaries reproduce, verify:: checks).
    let (dir2, cache2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let again = build_attested("hello-rust", dir2.path(), cache2.path());
    assert_eq!(again["index_digest"], s["index_digest"]);
}

#[test]
fn go_and_c_images_list_their_modules_and_sources() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build_attested("polyglot", dir.path(), cache.path());
    let docs = dir.path().join("docs");
    validate_spdx(&docs.join("polyglot.linux-arm-v7.spdx.json"));
    validate_cyclonedx(&docs.join("polyglot.linux-arm-v7.cdx.json"));
    let (spdx, _) = listed(&docs, "polyglot.linux-arm-v7");
    let names: Vec<&str> = spdx.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"probe/probe.c"), "the C source is listed: {names:?}");
    assert!(names.contains(&"api") && names.contains(&"./agent") && names.contains(&"probe"), "{names:?}");

    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    build_attested("hello-go", dir.path(), cache.path());
    let docs = dir.path().join("docs");
    validate_spdx(&docs.join("hello-go.linux-amd64.spdx.json"));
    validate_cyclonedx(&docs.join("hello-go.linux-amd64.cdx.json"));
    let (spdx, cdx) = listed(&docs, "hello-go.linux-amd64");
    let vendored = ("example.com/greet".to_string(), "v1.0.0".to_string());
    assert!(spdx.contains(&vendored), "the vendored module, as go version -m reads it: {spdx:?}");
    assert!(cdx.contains(&vendored), "{cdx:?}");
}

const DSSE_CHECK: &str = r#"
import json, sys
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey
key = SSlibKey.from_crypto(load_pem_public_key(open(sys.argv[1], "rb").read()), keyid=sys.argv[3], scheme="ecdsa-sha2-nistp256")
envelope = Envelope.from_dict(json.load(open(sys.argv[2])))
envelope.verify([key], 1)
print(envelope.payload_type, json.loads(envelope.payload)["predicateType"])
"#;

#[test]
fn signing_wraps_each_provenance_statement_in_a_dsse_envelope_that_securesystemslib_verifies() {
    let (dir, cache) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let f = Fixture::new();
    f.recipe("kiln 1\ndefaults {\n    platforms \"linux/amd64\" \"linux/arm64\"\n}\nimage \"site\" {\n    base \"scratch\"\n    copy \"www/\" \"/srv/www/\"\n}\n");
    f.write("www/index.html", "<p>hello</p>\n");
    let layout = dir.path().join("out");
    run(kiln()
        .current_dir(f.path())
        .env("KILN_CACHE_DIR", cache.path())
        .args(["build", "-q", "--provenance", "--out"])
        .arg(&layout));
    run(kiln().current_dir(dir.path()).args(["keygen", "-q", "--out", "k"]));
    let (key, public) = (dir.path().join("k.key"), dir.path().join("k.pub"));
    let signed: Value =
        serde_json::from_str(&run(kiln().arg("sign").arg(&layout).arg("--key").arg(&key).arg("--json"))).unwrap();
    assert_eq!(signed["added"], 5, "index, two manifests and two statements: {signed:#}");
    let key_id = signed["key_id"].as_str().unwrap();
    let index = json_file(&layout.join("index.json"));
    let blob = |d: &str| layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    let envelopes: Vec<PathBuf> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["artifactType"] == "application/vnd.dsse.envelope.v1+json")
        .map(|m| blob(json_file(&blob(m["digest"].as_str().unwrap()))["layers"][0]["digest"].as_str().unwrap()))
        .collect();
    assert_eq!(envelopes.len(), 2);
    for e in &envelopes {
        let out = run(Command::new("python3").arg("-c").arg(DSSE_CHECK).arg(&public).arg(e).arg(key_id));
        assert_eq!(out.trim(), "application/vnd.in-toto+json https://slsa.dev/provenance/v1");
    }
    let o = kiln().arg("verify-signature").arg(&layout).arg("--key").arg(&public).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("in-toto statement on manifest linux/arm64"), "{}", stdout(&o));
    // Another key's public half verifies none of the envelopes.
    run(kiln().current_dir(dir.path()).args(["keygen", "-q", "--out", "other"]));
    let other = Command::new("python3")
        .arg("-c")
        .arg(DSSE_CHECK)
        .arg(dir.path().join("other.pub"))
        .arg(&envelopes[0])
        .arg(key_id)
        .output()
        .unwrap();
    assert!(!other.status.success());
}

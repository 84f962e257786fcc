//! Signatures: `kiln keygen`, `kiln sign` and `kiln verify-signature` on a layout, each
//! signature checked with openssl and its payload read as cosign defines it; a signed layout
//! still reads in skopeo; `kiln apply --require-signature` takes a signed bundle and refuses an
//! unsigned, wrongly signed or altered one without touching the layout.

use crate::common::*;
use base64::Engine as _;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

const RECIPE: &str = r#"kiln 1
defaults {
    platforms "linux/amd64" "linux/arm64" "linux/arm/v7"
}
image "app" {
    base "scratch"
    copy "etc/" "/etc/app/"
    copy "dist/{arch}/app" "/usr/local/bin/app"
}
"#;

fn project(version: &str) -> Fixture {
    let f = Fixture::new();
    f.recipe(RECIPE).write("etc/app.conf", format!("version = {version}\n"));
    for arch in ["amd64", "arm64", "arm"] {
        f.write_mode(&format!("dist/{arch}/app"), format!("app {version} for {arch}"), 0o755);
    }
    f
}

fn json_file(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    run(kiln().current_dir(dir).args(["keygen", "-q", "--out", name]));
    (dir.join(format!("{name}.key")), dir.join(format!("{name}.pub")))
}

fn check(layout: &Path, key: &Path) -> std::process::Output {
    kiln().arg("verify-signature").arg(layout).arg("--key").arg(key).arg("--json").output().unwrap()
}

#[test]
fn every_index_and_manifest_is_signed_as_cosign_stores_it_and_openssl_verifies_each() {
    let f = project("1");
    let layout = f.out();
    summary(&f.build());
    let (key, public) = keygen(f.path(), "release");
    let o = check(&layout, &public);
    assert_eq!(o.status.code(), Some(1), "an unsigned layout fails the check");
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r["subjects"].as_array().unwrap().iter().all(|s| s["status"] == "unsigned"), "{r:#}");

    let signed: Value =
        serde_json::from_str(&run(kiln().arg("sign").arg(&layout).arg("--key").arg(&key).arg("--json"))).unwrap();
    assert_eq!(signed["added"], 4, "the image index and three manifests: {signed:#}");
    let o = check(&layout, &public);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    // Signing leaves the layout readable by other users, as kiln build writes it.
    let mode = |p: &Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777;
    assert_eq!(mode(&layout.join("index.json")), 0o644);
    for b in std::fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        assert_eq!(mode(&b.unwrap().path()), 0o644);
    }

    // Each signature, read as cosign stores it, verifies with openssl over its payload, and
    // the payload names the digest of what it signs.
    let index = json_file(&layout.join("index.json"));
    let sigs: Vec<&Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["artifactType"] == "application/vnd.dev.cosign.artifact.sig.v1+json")
        .collect();
    assert_eq!(sigs.len(), 4);
    let work = tempfile::tempdir().unwrap();
    let mut subjects = Vec::new();
    for d in sigs {
        let m = json_file(&blob(&layout, d["digest"].as_str().unwrap()));
        assert_eq!(m["config"]["mediaType"], "application/vnd.oci.empty.v1+json");
        let layer = &m["layers"][0];
        assert_eq!(layer["mediaType"], "application/vnd.dev.cosign.simplesigning.v1+json");
        let payload_path = blob(&layout, layer["digest"].as_str().unwrap());
        let payload = json_file(&payload_path);
        let subject = m["subject"]["digest"].as_str().unwrap();
        assert_eq!(payload["critical"]["image"]["docker-manifest-digest"], subject);
        assert_eq!(payload["critical"]["type"], "cosign container image signature");
        assert_eq!(payload["critical"]["identity"]["docker-reference"], "app");
        let sig = base64::engine::general_purpose::STANDARD
            .decode(layer["annotations"]["dev.cosignproject.cosign/signature"].as_str().unwrap())
            .unwrap();
        let sig_path = work.path().join("sig.der");
        std::fs::write(&sig_path, sig).unwrap();
        let out = run(Command::new(require("openssl"))
            .args(["dgst", "-sha256", "-verify"])
            .arg(&public)
            .arg("-signature")
            .arg(&sig_path)
            .arg(&payload_path));
        assert_eq!(out.trim(), "Verified OK");
        subjects.push(subject.to_string());
    }
    subjects.sort();
    let mut expected: Vec<String> = skopeo_raw(&layout, "app")["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    expected.push(index["manifests"][0]["digest"].as_str().unwrap().to_string());
    expected.sort();
    assert_eq!(subjects, expected, "the signatures cover the image index and every manifest");

    // The layout still reads as an image: skopeo copies a platform out of it, oci-image-tool
    // validates that.
    let one = single_platform(&layout, "app", "arm64", None, &work.path().join("one"));
    oci_validate(&one, "app");

    // Signing again with the same key adds nothing (the signatures are deterministic); another
    // key's public half does not verify them.
    let again: Value =
        serde_json::from_str(&run(kiln().arg("sign").arg(&layout).arg("--key").arg(&key).arg("--json"))).unwrap();
    assert_eq!(again["added"], 0);
    let (_, other) = keygen(f.path(), "other");
    let o = check(&layout, &other);
    assert_eq!(o.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(r["subjects"].as_array().unwrap().iter().all(|s| s["status"] == "invalid"), "{r:#}");
}

#[test]
fn keys_from_openssl_sign_and_unusable_keys_are_named_without_their_contents() {
    let f = project("1");
    summary(&f.build());
    let dir = f.path();
    let openssl = require("openssl");
    run(Command::new(&openssl).current_dir(dir).args([
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "ossl.key",
    ]));
    run(Command::new(&openssl).current_dir(dir).args(["pkey", "-in", "ossl.key", "-pubout", "-out", "ossl.pub"]));
    run(kiln().arg("sign").arg(f.out()).arg("--key").arg(dir.join("ossl.key")));
    assert_eq!(check(&f.out(), &dir.join("ossl.pub")).status.code(), Some(0));

    // A key kiln generated is one openssl reads.
    let (key, public) = keygen(dir, "mine");
    run(Command::new(&openssl).arg("pkey").arg("-in").arg(&key).arg("-noout"));
    run(Command::new(&openssl).arg("pkey").arg("-pubin").arg("-in").arg(&public).arg("-noout"));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let o = kiln().current_dir(dir).args(["keygen", "--out", "mine"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "keygen does not replace a key");

    // An RSA key and an encrypted key are refused by what they are, their bytes never shown.
    run(Command::new(&openssl).current_dir(dir).args([
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:1024",
        "-out",
        "rsa.key",
    ]));
    run(Command::new(&openssl).current_dir(dir).args([
        "pkey",
        "-in",
        "ossl.key",
        "-aes-128-cbc",
        "-passout",
        "pass:secret",
        "-out",
        "enc.key",
    ]));
    for (file, says) in [("rsa.key", "RSA"), ("enc.key", "encrypted")] {
        let o = kiln().arg("sign").arg(f.out()).arg("--key").arg(dir.join(file)).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("kiln::attest::key") && err.contains(says) && err.contains(file), "{err}");
        let pem = std::fs::read_to_string(dir.join(file)).unwrap();
        let body = pem.lines().nth(1).unwrap();
        assert!(!err.contains(body), "the key's contents are not printed: {err}");
    }
}

/// Builds `f` into a new layout `name` beside it.
fn build_to(f: &Fixture, out: &Path) {
    run(kiln()
        .current_dir(f.path())
        .env("KILN_CACHE_DIR", f.cache_path())
        .arg("build")
        .arg("-q")
        .arg("--out")
        .arg(out));
}

fn bundle(have: &Path, want: &Path, file: &Path) {
    run(kiln().arg("bundle").arg("--have").arg(have).arg("--want").arg(want).arg("-o").arg(file));
}

fn apply(bundle: &Path, device: &Path, key: &Path) -> std::process::Output {
    kiln().arg("apply").arg(bundle).arg("--to").arg(device).arg("--require-signature").arg(key).output().unwrap()
}

/// Rewrites the arm64 manifest of `layout` (an annotation added), and the image index and
/// index.json above it, keeping every signature: a release altered after it was signed.
fn alter_after_signing(layout: &Path) {
    let put = |v: &Value| -> (String, usize) {
        let bytes = serde_json::to_vec(v).unwrap();
        let hex = format!("{:x}", <sha2::Sha256 as sha2::Digest>::digest(&bytes));
        std::fs::write(layout.join("blobs/sha256").join(&hex), &bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let mut index = json_file(&layout.join("index.json"));
    let image_digest = index["manifests"][0]["digest"].as_str().unwrap().to_string();
    let mut image = json_file(&blob(layout, &image_digest));
    let entry = image["manifests"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["platform"]["architecture"] == "arm64")
        .unwrap();
    let mut manifest = json_file(&blob(layout, entry["digest"].as_str().unwrap()));
    manifest["annotations"]["evil"] = Value::from("yes");
    let (d, size) = put(&manifest);
    entry["digest"] = Value::from(d);
    entry["size"] = Value::from(size);
    let (d, size) = put(&image);
    index["manifests"][0]["digest"] = Value::from(d);
    index["manifests"][0]["size"] = Value::from(size);
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn a_device_applies_only_bundles_signed_by_its_fleet_key_and_keeps_its_layout_otherwise() {
    let (v1, v2) = (project("1"), project("2"));
    let work = tempfile::tempdir().unwrap();
    let w = |n: &str| work.path().join(n);
    let (key, public) = keygen(work.path(), "fleet");
    let (other_key, _) = keygen(work.path(), "other");
    build_to(&v1, &w("v1"));
    run(kiln().arg("sign").arg(w("v1")).arg("--key").arg(&key));
    build_to(&v2, &w("v2"));
    for (name, signer) in [("v2-signed", Some(&key)), ("v2-unsigned", None), ("v2-other", Some(&other_key))] {
        run(Command::new("cp").arg("-r").arg(w("v2")).arg(w(name)));
        if let Some(k) = signer {
            run(kiln().arg("sign").arg(w(name)).arg("--key").arg(k));
        }
    }
    run(Command::new("cp").arg("-r").arg(w("v2-signed")).arg(w("v2-altered")));
    alter_after_signing(&w("v2-altered"));

    run(Command::new("cp").arg("-r").arg(w("v1")).arg(w("device")));
    let before = std::fs::read(w("device/index.json")).unwrap();
    for (name, says) in [
        ("v2-unsigned", "is not signed"),
        ("v2-other", "does not verify with this key"),
        ("v2-altered", "is not signed"),
    ] {
        let file = w(&format!("{name}.tar"));
        bundle(&w("v1"), &w(name), &file);
        let o = apply(&file, &w("device"), &public);
        assert_eq!(o.status.code(), Some(2), "{name} is refused: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("kiln::update::refused") && err.contains(says), "{name}: {err}");
        assert_eq!(std::fs::read(w("device/index.json")).unwrap(), before, "{name} left the layout as it was");
    }
    // A blob changed inside the signed release's bundle (same size, one byte flipped) is
    // refused too, before the signatures are even read.
    bundle(&w("v1"), &w("v2-signed"), &w("flipped.tar"));
    let flip = r#"
import sys, tarfile, io
src, dst = sys.argv[1], sys.argv[2]
with tarfile.open(src) as t, tarfile.open(dst, "w", format=tarfile.PAX_FORMAT) as out:
    done = False
    for m in t.getmembers():
        data = t.extractfile(m).read() if m.isfile() else None
        if data is not None and not done and m.name.startswith("blobs/") and m.size > 100:
            data = bytes([data[0] ^ 1]) + data[1:]
            done = True
        out.addfile(m, io.BytesIO(data) if data is not None else None)
assert done
"#;
    run(Command::new("python3").arg("-c").arg(flip).arg(w("flipped.tar")).arg(w("flipped2.tar")));
    let o = apply(&w("flipped2.tar"), &w("device"), &public);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("kiln::update::refused"), "{}", stderr(&o));
    assert_eq!(std::fs::read(w("device/index.json")).unwrap(), before, "the layout is as it was");

    // The altered release names what changed after signing.
    let o = apply(&w("v2-altered.tar"), &w("device"), &public);
    assert!(stderr(&o).contains("app image index"), "{}", stderr(&o));

    // The signed release goes in, and the device holds its signatures.
    bundle(&w("v1"), &w("v2-signed"), &w("v2-signed.tar"));
    let o = apply(&w("v2-signed.tar"), &w("device"), &public);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(w("device/index.json")).unwrap(), std::fs::read(w("v2-signed/index.json")).unwrap());
    assert_eq!(check(&w("device"), &public).status.code(), Some(0));
    skopeo_raw(&w("device"), "app");
}

#[test]
fn signatures_travel_to_a_registry_and_are_checked_and_made_there() {
    let reg = crate::servers::Registry::start();
    let f = project("1");
    summary(&f.build());
    let (key, public) = keygen(f.path(), "release");
    run(kiln().arg("sign").arg(f.out()).arg("--key").arg(&key));
    let push = |layout: &Path, reference: &str| -> Value {
        let o = kiln()
            .env("KILN_CACHE_DIR", f.cache_path())
            .env("DOCKER_CONFIG", f.path().join("no-docker-config"))
            .arg("push")
            .arg("-q")
            .arg("--json")
            .arg(layout)
            .arg(reference)
            .output()
            .unwrap();
        summary(&o)["pushed"][0].clone()
    };
    let signed = push(&f.out(), &format!("{}/app:signed", reg.addr()));
    assert_eq!(signed["attached"], 4, "{signed:#}");
    let reference = signed["reference"].as_str().unwrap();
    let o = check(Path::new(reference), &public);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // distribution 2.8 has no referrers API: the referrers tag lists the signature, as skopeo reads it.
    let manifest = reference.split_once('@').unwrap().1;
    let tag = format!("docker://{}/app:sha256-{}", reg.addr(), manifest.trim_start_matches("sha256:"));
    let raw: Value = serde_json::from_str(&run(Command::new(require("skopeo")).args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &tag,
    ])))
    .unwrap();
    assert_eq!(raw["manifests"][0]["artifactType"], "application/vnd.dev.cosign.artifact.sig.v1+json", "{raw:#}");

    // An unsigned image in the registry fails the check until kiln signs it there.
    let plain = project("2");
    summary(&plain.build());
    let unsigned = push(&plain.out(), &format!("{}/app:plain", reg.addr()));
    let reference = unsigned["reference"].as_str().unwrap();
    assert_eq!(unsigned["attached"], 0);
    assert_eq!(check(Path::new(reference), &public).status.code(), Some(1));
    let s: Value =
        serde_json::from_str(&run(kiln().arg("sign").arg(reference).arg("--key").arg(&key).arg("--json"))).unwrap();
    assert_eq!(s["added"], 4, "{s:#}");
    let o = check(Path::new(reference), &public);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    // An image pushed with its provenance, unsigned: kiln sign in the registry signs the
    // statements too, as DSSE envelopes beside them.
    let attested = project("3");
    run(kiln().current_dir(attested.path()).env("KILN_CACHE_DIR", attested.cache_path()).args([
        "build",
        "-q",
        "--provenance",
        "--out",
        "out",
    ]));
    let pushed = push(&attested.out(), &format!("{}/app:attested", reg.addr()));
    assert_eq!(pushed["attached"], 3, "one statement per platform: {pushed:#}");
    let reference = pushed["reference"].as_str().unwrap();
    assert_eq!(check(Path::new(reference), &public).status.code(), Some(1));
    let s: Value =
        serde_json::from_str(&run(kiln().arg("sign").arg(reference).arg("--key").arg(&key).arg("--json"))).unwrap();
    assert_eq!(s["added"], 7, "index, three manifests, three statements: {s:#}");
    let o = check(Path::new(reference), &public);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("in-toto statement on manifest linux/arm/v7"), "{}", stdout(&o));
}

//! The SBOM writers checked with tools nobody here wrote (DESIGN.md, house rule 10): SPDX
//! documents with `pyspdxtools`, the SPDX project's validator; CycloneDX documents with
//! cyclonedx-python-lib's strict 1.6 JSON schema, their purls with packageurl-python.
//! `scripts/install-deps test` installs both.

use super::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

const INSTALL: &str = "run `scripts/install-deps test` (it installs the PyPI packages spdx-tools and \
                       cyclonedx-python-lib[json-validation]) and run them again";

fn h(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

fn krate(name: &str, version: &str, license: Option<&str>, source: Option<&str>, binary: &str) -> Crate {
    Crate {
        name: name.into(),
        version: version.into(),
        license: license.map(Into::into),
        source: source.map(Into::into),
        checksum: source.filter(|s| s.starts_with("registry+")).map(|_| h(name.len() as u8)),
        binary: binary.into(),
    }
}

fn go(path: &str, version: &str, sum: Option<&str>) -> GoModule {
    GoModule {
        path: path.into(),
        version: version.into(),
        sum: sum.map(Into::into),
        binary: "/usr/local/bin/agent".into(),
    }
}

fn deb(name: &str, version: &str, arch: &str, n: u8, source: Option<&str>) -> DebPackage {
    DebPackage {
        name: name.into(),
        version: version.into(),
        architecture: arch.into(),
        sha256: h(n),
        source: source.map(Into::into),
    }
}

fn binary(path: &str, n: u8, language: &str, package: &str, version: Option<&str>) -> Binary {
    Binary {
        path: path.into(),
        sha256: h(n),
        language: language.into(),
        package: package.into(),
        version: version.map(Into::into),
    }
}

fn file(path: &str, n: u8, size: u64) -> FileItem {
    FileItem { path: path.into(), sha256: h(n), size }
}

const CRATES_IO: Option<&str> = Some("registry+https://github.com/rust-lang/crates.io-index");
const API: &str = "/usr/local/bin/api";
const MIGRATE: &str = "/usr/local/bin/api-migrate";

/// An image with two Rust binaries sharing crates, a Go and a C binary, on a distroless base.
fn sample() -> Inventory {
    let git = Some("git+https://github.com/example/tinyjson?rev=4f2a1b#4f2a1b9c0d3e5f60718293a4b5c6d7e8f9a0b1c2");
    Inventory {
        image: "api".into(),
        platform: "linux/arm/v7".into(),
        created: "2023-11-14T22:13:20Z".into(),
        tool: "kiln 0.1.0".into(),
        base: Some(BaseImage { reference: "distroless/static".into(), digest: Some(format!("sha256:{}", h(1))) }),
        binaries: vec![
            binary(API, 2, "rust", "api", Some("0.3.1")),
            binary(MIGRATE, 3, "rust", "api-migrate", Some("0.3.1")),
            binary("/usr/local/bin/agent", 4, "go", "example.com/agent/cmd/agent", None),
            binary("/usr/local/bin/probe", 5, "c", "probe", None),
        ],
        crates: vec![
            krate("serde", "1.0.193", Some("MIT OR Apache-2.0"), CRATES_IO, API),
            krate("serde", "1.0.193", Some("MIT OR Apache-2.0"), CRATES_IO, MIGRATE),
            krate("libc", "0.2.151", Some("MIT OR Apache-2.0"), CRATES_IO, API),
            krate(
                "wasi",
                "0.11.0+wasi-snapshot-preview1",
                Some("Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT"),
                CRATES_IO,
                API,
            ),
            krate("ring", "0.17.7", None, CRATES_IO, API),
            krate("tinyjson", "2.5.1", Some("MIT/Apache-2.0"), git, API),
            krate("api-core", "0.1.0", None, None, API),
            krate("api-core", "0.1.0", None, None, MIGRATE),
        ],
        go_modules: vec![
            go(
                "github.com/prometheus/client_golang",
                "v1.18.0",
                Some("h1:HzFfmkOzH5Q8L8G+kSJKUx5dtG87sewO+FoDDqP5Tbk="),
            ),
            go("github.com/BurntSushi/toml", "v1.3.2", Some("h1:o7IhLm0Msx3BaB+n3Ag7L8EVlByGnpq14C4YWiu/gL8=")),
            go("golang.org/x/sys", "v0.15.0", None),
        ],
        c_sources: ["tools/probe/main.c", "tools/probe/net.c"]
            .iter()
            .zip(6u8..)
            .map(|(p, n)| SourceFile { path: (*p).into(), sha256: h(n), binary: "/usr/local/bin/probe".into() })
            .collect(),
        debian: vec![
            deb("base-files", "12.4+deb12u5", "armhf", 10, None),
            deb("ca-certificates", "20230311", "all", 11, None),
            deb("libc6", "2.36-9+deb12u7", "armhf", 12, Some("glibc")),
            deb("libcap2", "1:2.66-4", "armhf", 13, None),
            deb("tzdata", "2024a-0+deb12u1", "all", 14, None),
        ],
        files: vec![
            file(API, 2, 4_812_344),
            file(MIGRATE, 3, 2_001_112),
            file("/usr/local/bin/agent", 4, 7_340_032),
            file("/usr/local/bin/probe", 5, 61_440),
            file("/etc/api/config.toml", 20, 312),
            file("/etc/api/tls/ca.pem", 21, 1_204),
        ],
    }
}

/// A `scratch` image with one binary and nothing else.
fn scratch() -> Inventory {
    Inventory {
        image: "tiny".into(),
        platform: "linux/amd64".into(),
        created: "1970-01-01T00:00:00Z".into(),
        tool: "kiln".into(),
        base: None,
        binaries: vec![binary("/hello", 9, "c", "hello", None)],
        crates: vec![],
        go_modules: vec![],
        c_sources: vec![],
        debian: vec![],
        files: vec![],
    }
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// Runs a validator; fails the test, saying how to install it, when it cannot be run.
fn run(program: &str, args: &[&str]) -> Output {
    let output = match Command::new(program).args(args).output() {
        Ok(output) => output,
        Err(e) => panic!("these tests check kiln's SBOMs with `{program}`, which could not be run ({e}); {INSTALL}"),
    };
    // pyenv's shims and the script below exit with 127 and 3 when the tool is missing.
    if matches!(output.status.code(), Some(127) | Some(3)) {
        panic!(
            "the validator run by `{program}` is not installed ({}); {INSTALL}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    output
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn the_same_inventory_gives_the_same_bytes_in_any_order() {
    let inv = sample();
    assert_eq!(spdx(&inv), spdx(&sample()));
    assert_eq!(cyclonedx(&inv), cyclonedx(&sample()));

    let mut shuffled = sample();
    shuffled.binaries.reverse();
    shuffled.crates.reverse();
    shuffled.go_modules.rotate_left(1);
    shuffled.debian.reverse();
    shuffled.files.reverse();
    shuffled.c_sources.reverse();
    assert_eq!(spdx(&shuffled), spdx(&inv), "the inventory's order does not reach the SPDX document");
    assert_eq!(cyclonedx(&shuffled), cyclonedx(&inv), "nor the CycloneDX one");

    let mut changed = sample();
    changed.crates[2].version = "0.2.152".into();
    let (a, b) = (json(&spdx(&inv)), json(&spdx(&changed)));
    assert_ne!(a["documentNamespace"], b["documentNamespace"], "another inventory, another namespace");
    let (a, b) = (json(&cyclonedx(&inv)), json(&cyclonedx(&changed)));
    assert_ne!(a["serialNumber"], b["serialNumber"], "another inventory, another serial number");
    let mut later = sample();
    later.created = "2023-11-14T22:13:21Z".into();
    assert_ne!(spdx(&later), spdx(&inv));
    assert_ne!(cyclonedx(&later), cyclonedx(&inv));
}

#[test]
fn the_spdx_documents_are_valid_by_pyspdxtools() {
    let dir = tempfile::tempdir().unwrap();
    for (name, inv) in [("api", sample()), ("scratch", scratch())] {
        let path = write(dir.path(), &format!("{name}.spdx.json"), &spdx(&inv));
        let out = run("pyspdxtools", &["-i", &path]);
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(
            out.status.success() && said.trim().is_empty(),
            "pyspdxtools -i {path} finds the {name} document invalid ({}):\n{said}",
            out.status
        );
    }
}

/// Validates argv[1] against CycloneDX 1.6's strict JSON schema and checks that every purl is
/// as packageurl-python writes it; prints each problem and exits 1, or 3 when a library is
/// missing.
const CYCLONEDX_CHECK: &str = r#"
import json, sys
try:
    import jsonschema
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    from packageurl import PackageURL
except ImportError as e:
    print(f"cyclonedx-python-lib[json-validation] is missing: {e}", file=sys.stderr)
    sys.exit(3)
text = open(sys.argv[1]).read()
errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text, all_errors=True) or []
# The message and where it is, without the schema jsonschema's own text quotes in full.
problems = [f"{e.data.message} at {e.data.json_path}" for e in errors]
for c in json.loads(text).get("components", []):
    p = c.get("purl")
    if p is not None and PackageURL.from_string(p).to_string() != p:
        problems.append(f"purl {p} reads back as {PackageURL.from_string(p).to_string()}")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
"#;

#[test]
fn the_cyclonedx_documents_are_valid_by_the_strict_1_6_schema() {
    let dir = tempfile::tempdir().unwrap();
    for (name, inv) in [("api", sample()), ("scratch", scratch())] {
        let path = write(dir.path(), &format!("{name}.cdx.json"), &cyclonedx(&inv));
        let out = run("python3", &["-c", CYCLONEDX_CHECK, &path]);
        assert!(
            out.status.success(),
            "cyclonedx-python-lib finds the {name} document {path} invalid ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// (name, version) of every crate, module and Debian package of the sample.
fn expected(inv: &Inventory) -> BTreeSet<(String, String)> {
    let crates = inv.crates.iter().map(|c| (c.name.clone(), c.version.clone()));
    let modules = inv.go_modules.iter().map(|m| (m.path.clone(), m.version.clone()));
    let debs = inv.debian.iter().map(|d| (d.name.clone(), d.version.clone()));
    crates.chain(modules).chain(debs).collect()
}

fn listed(items: &Value, version: &str) -> BTreeSet<(String, String)> {
    let items = items.as_array().unwrap();
    items.iter().filter_map(|p| Some((p["name"].as_str()?.to_string(), p[version].as_str()?.to_string()))).collect()
}

#[test]
fn both_list_every_crate_module_and_debian_package_with_its_version() {
    let inv = sample();
    let want = expected(&inv);
    let spdx = json(&spdx(&inv));
    let cdx = json(&cyclonedx(&inv));
    let (in_spdx, in_cdx) = (listed(&spdx["packages"], "versionInfo"), listed(&cdx["components"], "version"));
    let missing: Vec<_> = want.difference(&in_spdx).collect();
    assert!(missing.is_empty(), "the SPDX document lacks {missing:?}");
    let missing: Vec<_> = want.difference(&in_cdx).collect();
    assert!(missing.is_empty(), "the CycloneDX document lacks {missing:?}");

    // A crate linked into two binaries is listed once, a file that is a binary not again.
    let names = |v: &Value| v.as_array().unwrap().iter().filter(|p| p["name"] == "serde").count();
    assert_eq!((names(&spdx["packages"]), names(&cdx["components"])), (1, 1));
    let spdx_files: Vec<&str> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["primaryPackagePurpose"] == "FILE")
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(spdx_files, ["/etc/api/config.toml", "/etc/api/tls/ca.pem"]);
}

#[test]
fn spdx_ids_are_valid_unique_and_every_relationship_names_one() {
    let doc = json(&spdx(&sample()));
    let ids: Vec<&str> = doc["packages"].as_array().unwrap().iter().map(|p| p["SPDXID"].as_str().unwrap()).collect();
    for id in &ids {
        let rest = id.strip_prefix("SPDXRef-").unwrap();
        assert!(!rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-'), "{id}");
    }
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len());
    let mut kinds = BTreeSet::new();
    for r in doc["relationships"].as_array().unwrap() {
        for end in [&r["spdxElementId"], &r["relatedSpdxElement"]] {
            let end = end.as_str().unwrap();
            assert!(end == "SPDXRef-DOCUMENT" || unique.contains(end), "{end} is no package");
        }
        kinds.insert(r["relationshipType"].as_str().unwrap());
    }
    assert_eq!(kinds, BTreeSet::from(["CONTAINS", "DESCENDANT_OF", "DESCRIBES", "GENERATED_FROM", "STATIC_LINK"]));
    let links = doc["relationships"].as_array().unwrap().iter().filter(|r| r["relationshipType"] == "STATIC_LINK");
    assert_eq!(links.count(), 8 + 3, "8 crate links (serde and api-core twice), 3 module links");
}

#[test]
fn cyclonedx_refs_are_unique_and_the_graph_names_only_them() {
    let doc = json(&cyclonedx(&sample()));
    let mut refs: Vec<&str> =
        doc["components"].as_array().unwrap().iter().map(|c| c["bom-ref"].as_str().unwrap()).collect();
    refs.push(doc["metadata"]["component"]["bom-ref"].as_str().unwrap());
    let unique: BTreeSet<&str> = refs.iter().copied().collect();
    assert_eq!(unique.len(), refs.len());
    for d in doc["dependencies"].as_array().unwrap() {
        assert!(unique.contains(d["ref"].as_str().unwrap()));
        for on in d["dependsOn"].as_array().unwrap() {
            assert!(unique.contains(on.as_str().unwrap()), "{on} is no component");
        }
    }
    let serial = doc["serialNumber"].as_str().unwrap();
    let uuid = serial.strip_prefix("urn:uuid:").unwrap();
    assert_eq!((uuid.len(), &uuid[14..15]), (36, "5"), "{serial}");
    assert!("89ab".contains(&uuid[19..20]), "{serial}");
}

#[test]
fn purls_locations_and_licenses() {
    assert_eq!(purl::cargo("wasi", "0.11.0+wasi"), "pkg:cargo/wasi@0.11.0%2Bwasi");
    assert_eq!(purl::deb("libcap2", "1:2.66-4", "armhf"), "pkg:deb/debian/libcap2@1:2.66-4?arch=armhf");
    assert_eq!(purl::golang("github.com/BurntSushi/toml", "v1.3.2"), "pkg:golang/github.com/BurntSushi/toml@v1.3.2");
    let base = |r: &str, d: Option<&str>| BaseImage { reference: r.into(), digest: d.map(Into::into) };
    let d = format!("sha256:{}", h(1));
    assert_eq!(purl::oci(&base("distroless/static", Some(&d))), Some(format!("pkg:oci/static@{d}")));
    assert_eq!(purl::oci(&base("distroless/static", None)), None);
    assert_eq!(
        purl::oci(&base(&format!("registry.example:5000/Team/Base:1.2@{d}"), None)),
        Some(format!("pkg:oci/base@{d}?repository_url=registry.example:5000/Team/Base"))
    );
    assert_eq!(purl::oci(&base("oci-layout:vendor/base/", Some(&d))), Some(format!("pkg:oci/base@{d}")));

    let located = |source: Option<&str>| purl::crate_location(&krate("a", "1.0.0", None, source, API));
    assert_eq!(located(CRATES_IO), Some(("https://static.crates.io/crates/a/a-1.0.0.crate".into(), false)));
    assert_eq!(located(Some("sparse+https://index.crates.io/")).map(|l| l.1), Some(false));
    assert_eq!(
        located(Some("git+https://x.example/a?branch=m#abc")),
        Some(("git+https://x.example/a@abc".into(), true))
    );
    assert_eq!(located(Some("sparse+https://other.example/index/")), None);
    assert_eq!(located(None), None);

    assert_eq!(purl::license("MIT/Apache-2.0").as_deref(), Some("MIT OR Apache-2.0"));
    assert_eq!(purl::license(" MIT OR Apache-2.0 ").as_deref(), Some("MIT OR Apache-2.0"));
    assert_eq!(purl::license("see LICENSE, please"), None);
    assert_eq!(purl::license(""), None);
}

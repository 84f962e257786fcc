//! The CycloneDX 1.6 JSON document of an inventory (<https://cyclonedx.org/docs/1.6/json/>),
//! valid by the strict JSON schema of cyclonedx-python-lib.
//!
//! The serial number must be a UUID, and the same inventory must give the same bytes, so it is
//! no random one: the first 16 bytes of the inventory's sha256 with the version (5, name-based)
//! and RFC 4122 variant bits set. The image is the metadata's component; crates, Go modules
//! and Debian packages are libraries, binaries applications, C sources and added files files,
//! the base a container. Paths in the image go in `evidence.occurrences`, what has no field of
//! its own (go.sum hashes, source packages, sizes) in `kiln:` properties. The dependency graph
//! has the image depend on its binaries, Debian packages and base, and each binary on the
//! crates, modules and C sources it is made of.

use super::graph::{Graph, Part};
use super::purl;
use super::{BaseImage, Binary, Crate, DebPackage, FileItem, GoModule, Inventory, SourceFile, fingerprint};
use crate::oci::digest::hex;
use serde_json::{Map, Value, json};

/// The document, as a JSON value (the caller writes its canonical bytes).
pub(super) fn document(inv: &Inventory) -> Value {
    let g = Graph::of(inv);
    let components: Vec<Value> = g.parts.iter().map(|(id, part)| component(id, *part)).collect();

    let mut image_deps: Vec<&str> = g
        .contains
        .iter()
        .filter(|id| matches!(g.parts.get(*id), Some(Part::Binary(_) | Part::Deb(_))))
        .map(String::as_str)
        .collect();
    image_deps.extend(g.base.as_deref());
    image_deps.sort_unstable();
    let mut dependencies = vec![json!({"ref": g.image, "dependsOn": image_deps})];
    for (id, part) in &g.parts {
        if let Part::Binary(_) = part {
            dependencies.push(json!({"ref": id, "dependsOn": g.links_of(id)}));
        }
    }

    let (name, version) = super::tool_parts(&inv.tool);
    let mut tool = json!({"type": "application", "name": name});
    if let Some(v) = version {
        tool["version"] = v.into();
    }
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", uuid(&fingerprint(inv))),
        "version": 1,
        "metadata": {
            "timestamp": inv.created,
            "tools": {"components": [tool]},
            "component": {
                "type": "container",
                "bom-ref": g.image,
                "name": inv.image,
                "version": inv.platform,
                "description": format!("the {} image {} built by {}", inv.platform, inv.image, inv.tool),
            },
        },
        "components": components,
        "dependencies": dependencies,
    })
}

/// A UUID from the first 16 bytes of a sha256, with version 5 and RFC 4122 variant bits.
fn uuid(digest: &[u8; 32]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The fields every component has.
fn common(kind: &str, id: &str, name: &str) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("type".into(), kind.into());
    c.insert("bom-ref".into(), id.into());
    c.insert("name".into(), name.into());
    c
}

fn set(c: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    c.insert(key.to_string(), value.into());
}

fn sha256(c: &mut Map<String, Value>, hex: &str) {
    set(c, "hashes", json!([{"alg": "SHA-256", "content": hex}]));
}

fn at(c: &mut Map<String, Value>, path: &str) {
    set(c, "evidence", json!({"occurrences": [{"location": path}]}));
}

/// `kiln:NAME` properties, sorted by name.
fn properties(c: &mut Map<String, Value>, mut props: Vec<(&str, String)>) {
    if props.is_empty() {
        return;
    }
    props.sort();
    let props: Vec<Value> = props.into_iter().map(|(n, v)| json!({"name": format!("kiln:{n}"), "value": v})).collect();
    set(c, "properties", props);
}

fn component(id: &str, part: Part<'_>) -> Value {
    Value::Object(match part {
        Part::Binary(b) => binary(id, b),
        Part::Crate(c) => krate(id, c),
        Part::Go(m) => go(id, m),
        Part::Source(s) => source(id, s),
        Part::Deb(d) => deb(id, d),
        Part::File(f) => file(id, f),
        Part::Base(b) => base(id, b),
    })
}

fn binary(id: &str, b: &Binary) -> Map<String, Value> {
    let mut c = common("application", id, &b.package);
    if let Some(v) = &b.version {
        set(&mut c, "version", v.as_str());
    }
    sha256(&mut c, &b.sha256);
    at(&mut c, &b.path);
    set(&mut c, "description", format!("a {} program compiled by kiln", b.language));
    c
}

fn krate(id: &str, k: &Crate) -> Map<String, Value> {
    let mut c = common("library", id, &k.name);
    set(&mut c, "version", k.version.as_str());
    set(&mut c, "purl", purl::cargo(&k.name, &k.version));
    if let Some(sum) = &k.checksum {
        sha256(&mut c, sum);
    }
    if let Some(expr) = k.license.as_deref().and_then(purl::license) {
        set(&mut c, "licenses", json!([{"expression": expr}]));
    }
    if let Some((url, vcs)) = purl::crate_location(k) {
        let kind = if vcs { "vcs" } else { "distribution" };
        set(&mut c, "externalReferences", json!([{"type": kind, "url": url}]));
    }
    properties(&mut c, k.source.iter().map(|s| ("cargo:source", s.clone())).collect());
    c
}

fn go(id: &str, m: &GoModule) -> Map<String, Value> {
    let mut c = common("library", id, &m.path);
    set(&mut c, "version", m.version.as_str());
    set(&mut c, "purl", purl::golang(&m.path, &m.version));
    properties(&mut c, m.sum.iter().map(|s| ("go:sum", s.clone())).collect());
    c
}

fn source(id: &str, s: &SourceFile) -> Map<String, Value> {
    let mut c = common("file", id, &s.path);
    sha256(&mut c, &s.sha256);
    c
}

fn deb(id: &str, d: &DebPackage) -> Map<String, Value> {
    let mut c = common("library", id, &d.name);
    set(&mut c, "version", d.version.as_str());
    set(&mut c, "purl", purl::deb(&d.name, &d.version, &d.architecture));
    sha256(&mut c, &d.sha256);
    properties(&mut c, d.source.iter().map(|s| ("deb:source", s.clone())).collect());
    c
}

fn file(id: &str, f: &FileItem) -> Map<String, Value> {
    let mut c = common("file", id, &f.path);
    sha256(&mut c, &f.sha256);
    at(&mut c, &f.path);
    properties(&mut c, vec![("size", f.size.to_string())]);
    c
}

fn base(id: &str, b: &BaseImage) -> Map<String, Value> {
    let mut c = common("container", id, &b.reference);
    if let Some(digest) = purl::base_digest(b) {
        set(&mut c, "version", digest);
        if let Some(hex) = digest.strip_prefix("sha256:") {
            sha256(&mut c, hex);
        }
    }
    if let Some(oci) = purl::oci(b) {
        set(&mut c, "purl", oci);
    }
    c
}

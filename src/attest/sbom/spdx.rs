//! The SPDX 2.3 JSON document of an inventory (<https://spdx.github.io/spdx-spec/v2.3/>),
//! valid by `pyspdxtools`, the SPDX project's own validator.
//!
//! Everything is a package, files included. SPDX 2.3 requires a SHA1 checksum on every `files`
//! entry, and kiln knows only the sha256 of what it adds (a SHA1 would mean reading every file
//! again, with a hash kiln otherwise never needs, to satisfy a field nobody should trust).
//! Packages need no SHA1, and 2.3's `primaryPackagePurpose` says what each one is: FILE for a
//! file kiln added (its path as `name` and `packageFileName`, its SHA256 as checksum), SOURCE
//! for a C source, APPLICATION for a binary, LIBRARY for a crate or Go module, INSTALL for a
//! Debian package (the .deb its SHA256 is of, named in `packageFileName`), CONTAINER for the
//! image and its base. No package claims analysed files (`filesAnalyzed: false`).
//!
//! Relationships: the document DESCRIBES the image; the image CONTAINS its binaries, files and
//! Debian packages and is a DESCENDANT_OF its base; a binary has a STATIC_LINK to each crate and
//! Go module in it and is GENERATED_FROM its C sources.
//!
//! A crate's `licenseDeclared` is the expression of its Cargo.toml; `licenseConcluded` is
//! NOASSERTION, since kiln reads no licence text and so concludes nothing.

use super::graph::{Graph, Link, Part};
use super::purl;
use super::{BaseImage, Binary, Crate, DebPackage, FileItem, GoModule, Inventory, SourceFile, fingerprint, slug};
use crate::oci::digest::hex;
use serde_json::{Map, Value, json};

const NOASSERTION: &str = "NOASSERTION";

fn spdx_id(id: &str) -> String {
    format!("SPDXRef-{id}")
}

/// The document, as a JSON value (the caller writes its canonical bytes).
pub(super) fn document(inv: &Inventory) -> Value {
    let g = Graph::of(inv);
    let mut packages = vec![image(inv, &g.image)];
    packages.extend(g.parts.iter().map(|(id, part)| package(id, *part)));
    packages.sort_by(|a, b| a["SPDXID"].as_str().cmp(&b["SPDXID"].as_str()));

    let mut rels = vec![("SPDXRef-DOCUMENT".to_string(), "DESCRIBES", spdx_id(&g.image))];
    rels.extend(g.contains.iter().map(|id| (spdx_id(&g.image), "CONTAINS", spdx_id(id))));
    rels.extend(g.base.iter().map(|id| (spdx_id(&g.image), "DESCENDANT_OF", spdx_id(id))));
    rels.extend(g.links.iter().map(|(from, how, to)| {
        let kind = match how {
            Link::Linked => "STATIC_LINK",
            Link::CompiledFrom => "GENERATED_FROM",
        };
        (spdx_id(from), kind, spdx_id(to))
    }));
    rels.sort();
    let relationships: Vec<Value> = rels
        .into_iter()
        .map(|(a, kind, b)| json!({"spdxElementId": a, "relationshipType": kind, "relatedSpdxElement": b}))
        .collect();

    let creator = match super::tool_parts(&inv.tool) {
        (name, Some(version)) => format!("Tool: {name}-{version}"),
        (name, None) => format!("Tool: {name}"),
    };
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} {}", inv.image, inv.platform),
        "documentNamespace": format!(
            "https://kiln.invalid/spdx/{}/{}/{}",
            slug(&inv.image),
            slug(&inv.platform),
            hex(&fingerprint(inv))
        ),
        "creationInfo": {"created": inv.created, "creators": [creator]},
        "packages": packages,
        "relationships": relationships,
    })
}

/// The fields every package has: its id, name, purpose, and no claim about its files.
fn common(id: &str, name: &str, purpose: &str) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("SPDXID".into(), spdx_id(id).into());
    p.insert("name".into(), name.into());
    p.insert("downloadLocation".into(), NOASSERTION.into());
    p.insert("filesAnalyzed".into(), false.into());
    p.insert("primaryPackagePurpose".into(), purpose.into());
    p
}

fn set(p: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    p.insert(key.to_string(), value.into());
}

fn sha256(p: &mut Map<String, Value>, hex: &str) {
    set(p, "checksums", json!([{"algorithm": "SHA256", "checksumValue": hex}]));
}

fn purl(p: &mut Map<String, Value>, purl: String) {
    set(
        p,
        "externalRefs",
        json!([{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}]),
    );
}

fn image(inv: &Inventory, id: &str) -> Value {
    let mut p = common(id, &inv.image, "CONTAINER");
    set(&mut p, "versionInfo", inv.platform.as_str());
    set(&mut p, "comment", format!("the {} image {} built by {}", inv.platform, inv.image, inv.tool));
    Value::Object(p)
}

fn package(id: &str, part: Part<'_>) -> Value {
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
    let mut p = common(id, &b.package, "APPLICATION");
    if let Some(v) = &b.version {
        set(&mut p, "versionInfo", v.as_str());
    }
    set(&mut p, "packageFileName", b.path.as_str());
    sha256(&mut p, &b.sha256);
    set(&mut p, "comment", format!("a {} program compiled by kiln", b.language));
    p
}

fn krate(id: &str, c: &Crate) -> Map<String, Value> {
    let mut p = common(id, &c.name, "LIBRARY");
    set(&mut p, "versionInfo", c.version.as_str());
    if let Some((location, _)) = purl::crate_location(c) {
        set(&mut p, "downloadLocation", location);
    }
    if let Some(sum) = &c.checksum {
        sha256(&mut p, sum);
    }
    set(&mut p, "licenseConcluded", NOASSERTION);
    set(&mut p, "licenseDeclared", c.license.as_deref().and_then(purl::license).unwrap_or(NOASSERTION.into()));
    if let Some(source) = &c.source {
        set(&mut p, "sourceInfo", format!("Cargo.lock source {source}"));
    }
    purl(&mut p, purl::cargo(&c.name, &c.version));
    p
}

fn go(id: &str, m: &GoModule) -> Map<String, Value> {
    let mut p = common(id, &m.path, "LIBRARY");
    set(&mut p, "versionInfo", m.version.as_str());
    if let Some(sum) = &m.sum {
        set(&mut p, "comment", format!("go.sum {sum}"));
    }
    purl(&mut p, purl::golang(&m.path, &m.version));
    p
}

fn source(id: &str, s: &SourceFile) -> Map<String, Value> {
    let mut p = common(id, &s.path, "SOURCE");
    set(&mut p, "packageFileName", s.path.as_str());
    sha256(&mut p, &s.sha256);
    p
}

fn deb(id: &str, d: &DebPackage) -> Map<String, Value> {
    let mut p = common(id, &d.name, "INSTALL");
    set(&mut p, "versionInfo", d.version.as_str());
    // Debian's pool names files without the epoch.
    let upstream = d.version.split_once(':').map_or(d.version.as_str(), |(_, v)| v);
    set(&mut p, "packageFileName", format!("{}_{}_{}.deb", d.name, upstream, d.architecture));
    sha256(&mut p, &d.sha256);
    if let Some(src) = &d.source {
        set(&mut p, "sourceInfo", format!("built from the Debian source package {src}"));
    }
    purl(&mut p, purl::deb(&d.name, &d.version, &d.architecture));
    p
}

fn file(id: &str, f: &FileItem) -> Map<String, Value> {
    let mut p = common(id, &f.path, "FILE");
    set(&mut p, "packageFileName", f.path.as_str());
    sha256(&mut p, &f.sha256);
    set(&mut p, "comment", format!("{} bytes, added by kiln", f.size));
    p
}

fn base(id: &str, b: &BaseImage) -> Map<String, Value> {
    let mut p = common(id, &b.reference, "CONTAINER");
    if let Some(digest) = purl::base_digest(b) {
        set(&mut p, "versionInfo", digest);
        if let Some(hex) = digest.strip_prefix("sha256:") {
            sha256(&mut p, hex);
        }
    }
    if let Some(oci) = purl::oci(b) {
        purl(&mut p, oci);
    }
    p
}

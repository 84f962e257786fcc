//! The inventory as one graph both writers walk, so SPDX and CycloneDX name the same elements
//! with the same ids and draw the same edges.
//!
//! Each crate, module or source is listed once however many binaries link it (the inventory
//! lists it per binary), with an edge from each of those binaries. A file that is a binary
//! (same path, same sha256) is described by its binary and not listed again.

use super::{BaseImage, Binary, Crate, DebPackage, FileItem, GoModule, Inventory, SourceFile, element_id};
use std::collections::{BTreeMap, BTreeSet};

/// One element of the SBOM other than the image.
#[derive(Debug, Clone, Copy)]
pub(super) enum Part<'a> {
    Binary(&'a Binary),
    Crate(&'a Crate),
    Go(&'a GoModule),
    Source(&'a SourceFile),
    Deb(&'a DebPackage),
    File(&'a FileItem),
    Base(&'a BaseImage),
}

/// How a binary relates to a part: linked into it, or compiled from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Link {
    Linked,
    CompiledFrom,
}

#[derive(Debug)]
pub(super) struct Graph<'a> {
    /// The image's id.
    pub image: String,
    /// Every other element by its id.
    pub parts: BTreeMap<String, Part<'a>>,
    /// The ids of what the image holds: binaries, files, Debian packages.
    pub contains: BTreeSet<String>,
    /// (binary id, link, part id).
    pub links: BTreeSet<(String, Link, String)>,
    /// The id of the base, if any.
    pub base: Option<String>,
}

impl<'a> Graph<'a> {
    pub(super) fn of(inv: &'a Inventory) -> Graph<'a> {
        let mut g = Graph {
            image: element_id("image", &inv.image, &(&inv.image, &inv.platform)),
            parts: BTreeMap::new(),
            contains: BTreeSet::new(),
            links: BTreeSet::new(),
            base: None,
        };
        let mut binaries: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for b in &inv.binaries {
            let id = element_id("binary", &b.package, b);
            binaries.entry(b.path.as_str()).or_default().push(id.clone());
            g.hold(id, Part::Binary(b));
        }
        for c in &inv.crates {
            let key = (&c.name, &c.version, &c.license, &c.source, &c.checksum);
            let id = element_id("crate", &format!("{}-{}", c.name, c.version), &key);
            g.link(&binaries, &c.binary, Link::Linked, id, Part::Crate(c));
        }
        for m in &inv.go_modules {
            let id = element_id("go", &format!("{}-{}", m.path, m.version), &(&m.path, &m.version, &m.sum));
            g.link(&binaries, &m.binary, Link::Linked, id, Part::Go(m));
        }
        for s in &inv.c_sources {
            let id = element_id("source", &s.path, &(&s.path, &s.sha256));
            g.link(&binaries, &s.binary, Link::CompiledFrom, id, Part::Source(s));
        }
        for d in &inv.debian {
            g.hold(element_id("deb", &format!("{}-{}", d.name, d.version), d), Part::Deb(d));
        }
        for f in &inv.files {
            if !inv.binaries.iter().any(|b| b.path == f.path && b.sha256 == f.sha256) {
                g.hold(element_id("file", &f.path, f), Part::File(f));
            }
        }
        if let Some(base) = &inv.base {
            let id = element_id("base", &base.reference, base);
            g.parts.insert(id.clone(), Part::Base(base));
            g.base = Some(id);
        }
        g
    }

    /// Lists a part the image holds.
    fn hold(&mut self, id: String, part: Part<'a>) {
        self.contains.insert(id.clone());
        self.parts.entry(id).or_insert(part);
    }

    /// Lists a part and links it to the binaries at `binary` (none when no binary is there).
    fn link(&mut self, binaries: &BTreeMap<&str, Vec<String>>, binary: &str, how: Link, id: String, part: Part<'a>) {
        for b in binaries.get(binary).into_iter().flatten() {
            self.links.insert((b.clone(), how, id.clone()));
        }
        self.parts.entry(id).or_insert(part);
    }

    /// The ids `from` links to, in order.
    pub(super) fn links_of(&self, from: &str) -> Vec<&str> {
        self.links.iter().filter(|(b, _, _)| b == from).map(|(_, _, to)| to.as_str()).collect()
    }
}

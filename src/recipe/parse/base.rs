//! An image's `base`: scratch, a distroless flavour kiln builds (with `libstdcxx=` for `cc`),
//! an OCI layout on disk, or a registry image by digest.

use super::Parser;
use super::node::props;
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::inputs::debian::Flavour;
use crate::recipe::{Base, Spanned};
use kdl::{KdlNode, KdlValue};
use miette::SourceSpan;

const BASES: &str =
    "\"scratch\", \"distroless/static\", \"distroless/base\", \"distroless/cc\", \"oci-layout:PATH[:TAG]\"";

impl Parser {
    /// The base a `base` node names, or Scratch where it names none kiln can use.
    pub(super) fn base(&mut self, child: &KdlNode) -> Spanned<Base> {
        self.no_children(child);
        self.no_props(child, &["libstdcxx"]);
        let libstdcxx = self.libstdcxx(child);
        let Some(s) = self.arity(child, 1, "base \"scratch\"").and_then(|a| self.string(a[0])) else {
            return Spanned::new(Base::Scratch, child.span());
        };
        let parsed = self.base_value(&s, libstdcxx.is_some_and(|(b, _)| b));
        if let (Some((_, span)), Some(b)) = (libstdcxx, &parsed)
            && !matches!(b, Base::Distroless(Flavour::Cc { .. }))
        {
            self.problem(
                Problem::new(Code::RecipeProperty, span, "`libstdcxx` only applies to \"distroless/cc\"")
                    .label("not for this base"),
            );
        }
        // An invalid base is reported above; Scratch stands in so no second error follows.
        Spanned::new(parsed.unwrap_or(Base::Scratch), s.span)
    }

    /// `libstdcxx=#true|#false`, with where it is written.
    fn libstdcxx(&mut self, child: &KdlNode) -> Option<(bool, SourceSpan)> {
        let e = props(child).into_iter().find(|(k, _)| *k == "libstdcxx").map(|(_, e)| e)?;
        match e.value() {
            KdlValue::Bool(b) => Some((*b, e.span())),
            _ => {
                self.wrong_type(e, "#true or #false");
                None
            }
        }
    }

    fn base_value(&mut self, s: &Spanned<String>, libstdcxx: bool) -> Option<Base> {
        match s.value.as_str() {
            "scratch" => Some(Base::Scratch),
            "distroless/static" => Some(Base::Distroless(Flavour::Static)),
            "distroless/base" => Some(Base::Distroless(Flavour::Base)),
            "distroless/cc" => Some(Base::Distroless(Flavour::Cc { libstdcxx })),
            v if v.starts_with("oci-layout:") => self.oci_layout(s, &v["oci-layout:".len()..]),
            v if v.contains("@sha256:") || registry_host(v) => match crate::oci::reference::Reference::parse(v) {
                Ok(_) => Some(Base::Registry(v.to_string())),
                Err(e) => {
                    self.problem(
                        Problem::new(Code::RecipeBase, s.span, e.to_string())
                            .label("not an image reference")
                            .help("write base \"HOST/REPOSITORY@sha256:DIGEST\""),
                    );
                    None
                }
            },
            other => {
                self.problem(
                    Problem::new(Code::RecipeBase, s.span, format!("unsupported base `{other}`"))
                        .label("not a base kiln can use")
                        .help(format!("bases: {BASES}, or \"host/repo@sha256:…\"")),
                );
                None
            }
        }
    }

    /// `oci-layout:PATH[:TAG]`, given what follows `oci-layout:`.
    fn oci_layout(&mut self, s: &Spanned<String>, rest: &str) -> Option<Base> {
        let (path, tag) = match rest.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') && !p.is_empty() => (p.to_string(), Some(t.to_string())),
            _ => (rest.to_string(), None),
        };
        if path.is_empty() {
            self.problem(
                Problem::new(Code::RecipeBase, s.span, "`oci-layout:` needs a path")
                    .label("no path")
                    .help("write base \"oci-layout:path/to/layout[:tag]\""),
            );
            return None;
        }
        Some(Base::OciLayout { path, tag })
    }
}

/// Whether a base names a registry host first (`registry.example/…`, `host:5000/…`,
/// `localhost/…`), as references do.
fn registry_host(v: &str) -> bool {
    v.split_once('/').is_some_and(|(h, _)| h.contains(['.', ':']) || h == "localhost")
}

//! The `rust` node: which binary of which cargo package, built with which features and
//! profile, for which target triples, installed where.

use super::Parser;
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::oci::platform::Platform;
use crate::recipe::{RustSpec, Spanned};
use kdl::KdlNode;
use std::collections::BTreeMap;

const RUST_NODES: &str = "bin, features, no-default-features, profile, dest, manifest, target";

impl Parser {
    pub(super) fn rust(&mut self, node: &KdlNode) -> Option<RustSpec> {
        self.no_props(node, &[]);
        let package = self.arity(node, 1, "rust \"PACKAGE\" { … }").and_then(|a| self.string(a[0]));
        let mut spec = RustSpec {
            package: package.clone().unwrap_or_else(|| Spanned::new(String::new(), node.span())),
            bin: None,
            features: Vec::new(),
            no_default_features: false,
            profile: "release".into(),
            dest: None,
            manifest: None,
            targets: Vec::new(),
            span: node.span(),
        };
        let mut seen = BTreeMap::new();
        for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
            let n = child.name().value();
            if n != "target" && n != "features" && !self.once(&mut seen, child) {
                continue;
            }
            self.rust_child(child, &mut spec);
        }
        package?;
        Some(spec)
    }

    /// One child of a `rust` block, read into the spec.
    fn rust_child(&mut self, child: &KdlNode, spec: &mut RustSpec) {
        match child.name().value() {
            "bin" => spec.bin = self.single_string(child, "bin \"NAME\""),
            "features" => spec.features.extend(self.strings(child)),
            "no-default-features" => {
                self.no_children(child);
                self.no_props(child, &[]);
                self.arity(child, 0, "no-default-features");
                spec.no_default_features = true;
            }
            "profile" => {
                if let Some(p) = self.profile(child) {
                    spec.profile = p;
                }
            }
            "dest" => {
                spec.dest = self
                    .single_string(child, "dest \"/usr/local/bin/NAME\"")
                    .and_then(|d| self.image_path(&d, "destination"));
                if let Some(d) = &spec.dest {
                    self.file_dest(d, "dest");
                }
            }
            "manifest" => {
                spec.manifest =
                    self.single_string(child, "manifest \"path/Cargo.toml\"").filter(|m| self.printable(m, "manifest"))
            }
            "target" => spec.targets.extend(self.target(child)),
            _ => self.unknown(child, "`rust`", RUST_NODES),
        }
    }

    /// `profile "NAME"`: a cargo profile's name.
    fn profile(&mut self, child: &KdlNode) -> Option<String> {
        let p = self.single_string(child, "profile \"release\"")?;
        if !p.value.is_empty() && p.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Some(p.value);
        }
        self.problem(
            Problem::new(Code::RecipeProfile, p.span, format!("invalid cargo profile `{}`", p.value))
                .label("not a profile name"),
        );
        None
    }

    /// `target "PLATFORM" "TRIPLE"`: the target triple one platform is built for.
    fn target(&mut self, child: &KdlNode) -> Option<(Platform, Spanned<String>)> {
        self.no_children(child);
        self.no_props(child, &[]);
        let a = self.arity(child, 2, "target \"linux/arm/v7\" \"TRIPLE\"")?;
        let (p, t) = (self.string(a[0]), self.string(a[1]));
        let (p, t) = (p?, t?);
        match Platform::parse(&p.value) {
            Some(platform) => Some((platform, t)),
            None => {
                self.problem(
                    Problem::new(Code::RecipePlatform, p.span, format!("unknown platform `{}`", p.value))
                        .label("not a supported platform")
                        .help("supported platforms: linux/amd64, linux/arm64, linux/arm/v7"),
                );
                None
            }
        }
    }
}

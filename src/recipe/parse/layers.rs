//! The `layers` block: the layer budget, the smallest shared layer, and named layers that gather the files under some
//! paths, with how often they change.

use super::Parser;
use super::node::props;
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::recipe::{LayerRules, Spanned};
use crate::recipe::{NamedLayer, Volatility};
use kdl::KdlNode;

impl Parser {
    pub(super) fn layers(&mut self, node: &KdlNode) -> LayerRules {
        let mut rules = LayerRules::default();
        self.no_props(node, &[]);
        let Some(children) = node.children() else { return rules };
        for child in children.nodes() {
            match child.name().value() {
                "budget" => {
                    if let Some(budget) = self.budget(child) {
                        rules.budget = Some(budget);
                    }
                }
                "share-min" => {
                    self.no_children(child);
                    self.no_props(child, &[]);
                    if let Some(a) = self.arity(child, 1, "share-min 16384")
                        && let Some(v) = self.uint(a[0], 1 << 40, "share-min")
                    {
                        rules.share_min = Some(v.value);
                    }
                }
                "layer" => {
                    if let Some(layer) = self.layer(child, &rules.named) {
                        rules.named.push(layer);
                    }
                }
                _ => self.unknown(child, "`layers`", "budget, share-min, layer"),
            }
        }
        rules
    }

    /// `budget N`: at most N layers per image, 1 to 127.
    fn budget(&mut self, child: &KdlNode) -> Option<usize> {
        self.no_children(child);
        self.no_props(child, &[]);
        let a = self.arity(child, 1, "budget 64")?;
        let v = self.uint(a[0], 127, "layer budget")?;
        if v.value == 0 {
            self.problem(
                Problem::new(Code::RecipeRange, v.span, "layer budget out of range").label("must be between 1 and 127"),
            );
            return None;
        }
        Some(v.value as usize)
    }

    /// `layer "NAME" volatility="…" { path "/prefix/" … }`, unless a layer of that name is
    /// already among `named`.
    fn layer(&mut self, child: &KdlNode, named: &[NamedLayer]) -> Option<NamedLayer> {
        self.no_props(child, &["volatility"]);
        let name = self
            .arity(child, 1, "layer \"NAME\" volatility=\"rare\" { path \"/prefix/\" }")
            .and_then(|a| self.string(a[0]))
            .filter(|n| self.printable(n, "layer name"))?;
        let volatility = self.volatility(child);
        let paths = self.layer_paths(child, &name.value);
        if named.iter().any(|n| n.name == name.value) {
            self.problem(
                Problem::new(Code::RecipeDuplicateNode, name.span, format!("layer `{}` defined twice", name.value))
                    .label("second definition"),
            );
            return None;
        }
        Some(NamedLayer { name: name.value, paths, volatility })
    }

    /// `volatility="rare"|"normal"|"often"`; normal (data) when not given or not understood.
    fn volatility(&mut self, child: &KdlNode) -> Volatility {
        let Some(e) = props(child).into_iter().find(|(k, _)| *k == "volatility").map(|(_, e)| e) else {
            return Volatility::Data;
        };
        match self.string(e).map(|s| s.value) {
            Some(v) if v == "rare" => Volatility::Rare,
            Some(v) if v == "normal" => Volatility::Data,
            Some(v) if v == "often" => Volatility::Often,
            Some(v) => {
                self.problem(
                    Problem::new(Code::RecipeVolatility, e.span(), format!("unknown volatility `{v}`"))
                        .label("not a volatility")
                        .help("use \"rare\", \"normal\" or \"often\""),
                );
                Volatility::Data
            }
            None => Volatility::Data,
        }
    }

    /// The `path` children of layer `name`, normalised; a layer must name at least one.
    fn layer_paths(&mut self, child: &KdlNode, name: &str) -> Vec<String> {
        let (mut paths, mut given) = (Vec::new(), 0);
        for p in child.children().map(|c| c.nodes()).unwrap_or_default() {
            if p.name().value() != "path" {
                self.unknown(p, "`layer`", "path");
                continue;
            }
            for s in self.strings(p) {
                // A refused path is reported as such, not as a missing one.
                given += 1;
                if let Some(n) = self.image_path(&Spanned::new(s, p.span()), "layer path") {
                    paths.push(n.value);
                }
            }
        }
        if given == 0 {
            self.problem(
                Problem::new(Code::RecipeMissingNode, child.span(), format!("layer `{name}` names no path"))
                    .label("needs `path \"/prefix/\"`"),
            );
        }
        paths
    }
}

//! The `layers` block: the layer budget, and named layers that gather the files under some
//! paths, with how often they change.

use super::Parser;
use super::node::props;
use crate::diag::Problem;
use crate::plan::layering::{NamedLayer, Volatility};
use crate::recipe::{LayerRules, Spanned};
use kdl::KdlNode;

impl Parser {
    pub(super) fn layers(&mut self, node: &KdlNode) -> LayerRules {
        let mut rules = LayerRules::default();
        self.no_props(node, &[]);
        let Some(children) = node.children() else { return rules };
        for child in children.nodes() {
            match child.name().value() {
                "budget" => {
                    self.no_children(child);
                    self.no_props(child, &[]);
                    if let Some(a) = self.arity(child, 1, "budget 64")
                        && let Some(v) = self.uint(a[0], 127, "layer budget")
                    {
                        if v.value == 0 {
                            self.problem(
                                Problem::new("kiln::recipe::range", v.span, "layer budget out of range")
                                    .label("must be between 1 and 127"),
                            );
                        } else {
                            rules.budget = Some(v.value as usize);
                        }
                    }
                }
                "layer" => {
                    self.no_props(child, &["volatility"]);
                    let Some(name) = self
                        .arity(child, 1, "layer \"NAME\" volatility=\"rare\" { path \"/prefix/\" }")
                        .and_then(|a| self.string(a[0]))
                        .filter(|n| self.printable(n, "layer name"))
                    else {
                        continue;
                    };
                    let volatility = match props(child).into_iter().find(|(k, _)| *k == "volatility").map(|(_, e)| e) {
                        None => Volatility::Data,
                        Some(e) => match self.string(e).map(|s| s.value) {
                            Some(v) if v == "rare" => Volatility::Rare,
                            Some(v) if v == "normal" => Volatility::Data,
                            Some(v) if v == "often" => Volatility::Often,
                            Some(v) => {
                                self.problem(
                                    Problem::new(
                                        "kiln::recipe::volatility",
                                        e.span(),
                                        format!("unknown volatility `{v}`"),
                                    )
                                    .label("not a volatility")
                                    .help("use \"rare\", \"normal\" or \"often\""),
                                );
                                Volatility::Data
                            }
                            None => Volatility::Data,
                        },
                    };
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
                            Problem::new(
                                "kiln::recipe::missing_node",
                                child.span(),
                                format!("layer `{}` names no path", name.value),
                            )
                            .label("needs `path \"/prefix/\"`"),
                        );
                    }
                    if rules.named.iter().any(|n| n.name == name.value) {
                        self.problem(
                            Problem::new(
                                "kiln::recipe::duplicate_node",
                                name.span,
                                format!("layer `{}` defined twice", name.value),
                            )
                            .label("second definition"),
                        );
                        continue;
                    }
                    rules.named.push(NamedLayer { name: name.value, paths, volatility });
                }
                _ => self.unknown(child, "`layers`", "budget, layer"),
            }
        }
        rules
    }
}

//! The shape every node is checked for: its arguments, properties and block, a name among the
//! valid ones (with the closest one suggested for a slip), and nodes that may be given once.

use super::Parser;
use crate::diag::codes::Code;
use crate::diag::{Problem, shown};
use kdl::{KdlEntry, KdlNode};
use miette::SourceSpan;
use std::collections::BTreeMap;

/// The valid name closest to `name`, if it is close enough to be a slip.
fn closest<'a>(name: &str, valid: &'a str) -> Option<&'a str> {
    let n = name.chars().count();
    if n > 40 {
        return None;
    }
    let limit = (n / 3).max(1);
    valid
        .split(", ")
        .filter(|v| v.len().abs_diff(name.len()) <= limit)
        .map(|v| (strsim::osa_distance(&name.to_lowercase(), v), v))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

pub(super) fn args(node: &KdlNode) -> Vec<&KdlEntry> {
    node.entries().iter().filter(|e| e.name().is_none()).collect()
}

pub(super) fn props(node: &KdlNode) -> Vec<(&str, &KdlEntry)> {
    node.entries().iter().filter_map(|e| e.name().map(|n| (n.value(), e))).collect()
}

pub(super) fn name_span(node: &KdlNode) -> SourceSpan {
    node.name().span()
}

impl Parser {
    pub(super) fn no_children(&mut self, node: &KdlNode) {
        if let Some(children) = node.children() {
            self.problem(
                Problem::new(
                    Code::RecipeChildren,
                    children.span(),
                    format!("`{}` takes no block", node.name().value()),
                )
                .label("unexpected block"),
            );
        }
    }

    pub(super) fn no_props(&mut self, node: &KdlNode, allowed: &[&str]) {
        for (name, e) in props(node) {
            if !allowed.contains(&name) {
                let help = if allowed.is_empty() {
                    format!("`{}` takes no properties", node.name().value())
                } else {
                    format!("`{}` accepts: {}", node.name().value(), allowed.join(", "))
                };
                let label = match closest(name, &allowed.join(", ")) {
                    Some(close) if !allowed.is_empty() => format!("did you mean `{close}`?"),
                    _ => "unknown property".into(),
                };
                self.problem(
                    Problem::new(Code::RecipeProperty, e.span(), format!("unknown property `{}`", shown(name)))
                        .label(label)
                        .help(help),
                );
            }
        }
    }

    /// Exactly `n` positional arguments.
    pub(super) fn arity<'n>(&mut self, node: &'n KdlNode, n: usize, usage: &str) -> Option<Vec<&'n KdlEntry>> {
        let a = args(node);
        if a.len() == n {
            return Some(a);
        }
        let span = if a.len() > n { a[n].span() } else { node.span() };
        self.problem(
            Problem::new(
                Code::RecipeArguments,
                span,
                format!(
                    "`{}` takes {n} argument{}, found {}",
                    node.name().value(),
                    if n == 1 { "" } else { "s" },
                    a.len()
                ),
            )
            .label(if a.len() > n { "unexpected argument" } else { "missing argument" })
            .help(format!("usage: {usage}")),
        );
        None
    }

    pub(super) fn unknown(&mut self, node: &KdlNode, within: &str, valid: &str) {
        let name = node.name().value();
        let label = match closest(name, valid) {
            Some(close) => format!("did you mean `{close}`?"),
            None => "not a recipe node here".into(),
        };
        self.problem(
            Problem::new(
                Code::RecipeUnknownNode,
                name_span(node),
                format!("unknown node `{}` in {within}", shown(name)),
            )
            .label(label)
            .help(format!("valid nodes in {within}: {valid}")),
        );
    }

    pub(super) fn once(&mut self, seen: &mut BTreeMap<String, SourceSpan>, node: &KdlNode) -> bool {
        let name = node.name().value().to_string();
        if let Some(first) = seen.get(&name) {
            let (first, span) = (*first, name_span(node));
            self.problem(
                Problem::new(Code::RecipeDuplicateNode, span, format!("`{name}` given twice"))
                    .label("second one here")
                    .help(format!("the first `{name}` is at byte {}; keep one", first.offset())),
            );
            return false;
        }
        seen.insert(name, name_span(node));
        true
    }
}

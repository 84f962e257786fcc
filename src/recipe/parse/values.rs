//! Values: strings, integers in a range, lists of strings, key-value pairs, platforms, ports
//! and modes, each refused with the type or range it should have had.

use super::Parser;
use super::node::{args, props};
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::oci::platform::Platform;
use crate::recipe::Spanned;
use kdl::{KdlEntry, KdlNode, KdlValue};

fn kind(v: &KdlValue) -> &'static str {
    match v {
        KdlValue::String(_) => "a string",
        KdlValue::Integer(_) => "an integer",
        KdlValue::Float(_) => "a number",
        KdlValue::Bool(_) => "a boolean",
        KdlValue::Null => "null",
    }
}

impl Parser {
    pub(super) fn wrong_type(&mut self, e: &KdlEntry, expected: &str) {
        self.problem(
            Problem::new(Code::RecipeType, e.span(), format!("expected {expected}, found {}", kind(e.value())))
                .label(format!("expected {expected}")),
        );
    }

    pub(super) fn string(&mut self, e: &KdlEntry) -> Option<Spanned<String>> {
        match e.value() {
            KdlValue::String(s) => Some(Spanned::new(s.clone(), e.span())),
            _ => {
                self.wrong_type(e, "a string");
                None
            }
        }
    }

    pub(super) fn uint(&mut self, e: &KdlEntry, max: u64, what: &str) -> Option<Spanned<u64>> {
        match e.value() {
            KdlValue::Integer(i) if *i >= 0 && (*i as u128) <= max as u128 => Some(Spanned::new(*i as u64, e.span())),
            KdlValue::Integer(_) => {
                self.problem(
                    Problem::new(Code::RecipeRange, e.span(), format!("{what} out of range"))
                        .label(format!("must be between 0 and {max}")),
                );
                None
            }
            _ => {
                self.wrong_type(e, "an integer");
                None
            }
        }
    }

    pub(super) fn strings(&mut self, node: &KdlNode) -> Vec<String> {
        self.no_props(node, &[]);
        self.no_children(node);
        args(node).into_iter().filter_map(|e| self.string(e)).map(|s| s.value).collect()
    }

    pub(super) fn single_string(&mut self, node: &KdlNode, usage: &str) -> Option<Spanned<String>> {
        self.no_children(node);
        self.no_props(node, &[]);
        let a = self.arity(node, 1, usage)?;
        self.string(a[0])
    }

    pub(super) fn key_values(&mut self, node: &KdlNode, usage: &str) -> Vec<(String, String)> {
        self.no_children(node);
        let a = args(node);
        let p = props(node);
        let mut out = Vec::new();
        if !a.is_empty()
            && let Some(a) = self.arity(node, 2, usage)
            && let (Some(k), Some(v)) = (self.string(a[0]), self.string(a[1]))
        {
            out.push((k.value, v.value));
        }
        for (k, e) in p {
            if let Some(v) = self.string(e) {
                out.push((k.to_string(), v.value));
            }
        }
        if out.is_empty() && a.is_empty() && props(node).is_empty() {
            self.problem(
                Problem::new(
                    Code::RecipeArguments,
                    node.span(),
                    format!("`{}` needs a key and a value", node.name().value()),
                )
                .label("nothing given")
                .help(format!("usage: {usage}")),
            );
        }
        out
    }

    pub(super) fn platforms(&mut self, node: &KdlNode) -> Option<Vec<Spanned<Platform>>> {
        self.no_children(node);
        self.no_props(node, &[]);
        let a = args(node);
        if a.is_empty() {
            self.problem(
                Problem::new(Code::RecipeArguments, node.span(), "`platforms` needs at least one platform")
                    .label("no platform given")
                    .help("for example: platforms \"linux/amd64\" \"linux/arm64\" \"linux/arm/v7\""),
            );
            return None;
        }
        let mut out: Vec<Spanned<Platform>> = Vec::new();
        for e in a {
            let Some(s) = self.string(e) else { continue };
            match Platform::parse(&s.value) {
                Some(p) if out.iter().any(|o| o.value == p) => self.problem(
                    Problem::new(Code::RecipeDuplicatePlatform, s.span, format!("platform `{p}` listed twice"))
                        .label("repeated"),
                ),
                Some(p) => out.push(Spanned::new(p, s.span)),
                None => self.problem(
                    Problem::new(Code::RecipePlatform, s.span, format!("unknown platform `{}`", s.value))
                        .label("not a supported platform")
                        .help("supported platforms: linux/amd64, linux/arm64, linux/arm/v7"),
                ),
            }
        }
        Some(out)
    }

    pub(super) fn port(&mut self, e: &KdlEntry) -> Option<String> {
        let bad = |p: &mut Self, span| {
            p.problem(
                Problem::new(Code::RecipePort, span, "invalid port")
                    .label("expected a port such as 8080, \"8080/tcp\" or \"53/udp\"")
                    .help("ports are 1-65535; protocols tcp, udp or sctp"),
            );
            None
        };
        match e.value() {
            KdlValue::Integer(i) if (1..=65535).contains(i) => Some(format!("{i}/tcp")),
            KdlValue::String(s) => {
                let (num, proto) = s.split_once('/').unwrap_or((s.as_str(), "tcp"));
                match (num.parse::<u16>(), proto) {
                    (Ok(n), "tcp" | "udp" | "sctp") if n > 0 => Some(format!("{n}/{proto}")),
                    _ => bad(self, e.span()),
                }
            }
            _ => bad(self, e.span()),
        }
    }

    /// `mode=644` is a decimal number (0o1204): almost always a slip for 0o644. Reports it, and
    /// says whether it did.
    pub(super) fn decimal_mode(&mut self, e: &KdlEntry) -> bool {
        let written = e.format().map(|f| f.value_repr.trim().to_string()).unwrap_or_default();
        let slip = matches!(e.value(), KdlValue::Integer(_))
            && !written.is_empty()
            && written != "0"
            && !written.starts_with("0o");
        if slip {
            self.problem(
                Problem::new(Code::RecipeMode, e.span(), format!("mode `{written}` is not written in octal"))
                    .label("write modes as octal numbers")
                    .help(format!("write mode=0o{written}: KDL reads {written} as a decimal number")),
            );
        }
        slip
    }
}

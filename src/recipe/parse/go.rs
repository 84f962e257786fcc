//! The `go` node: a main package of a Go module (its `go.mod` is found upward from the
//! package's directory), its build tags, extra linker flags and where the program goes.

use super::Parser;
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::recipe::{GoSpec, Spanned};
use kdl::KdlNode;
use std::collections::BTreeMap;

const GO_NODES: &str = "dest, tags, ldflags";

/// Whether `-ldflags` words are ones kiln passes on: `-s`, `-w`, and `-X importpath.name=value`
/// (the value without spaces or quotes). Nothing that names a file or changes the linker.
pub fn go_ldflags_ok(flags: &str) -> bool {
    let mut words = flags.split(' ').filter(|w| !w.is_empty());
    let mut any = false;
    while let Some(w) = words.next() {
        any = true;
        let ok = match w {
            "-s" | "-w" | "-buildid=" => true,
            "-X" => words.next().is_some_and(|v| {
                v.split_once('=').is_some_and(|(name, _)| !name.is_empty() && !name.starts_with('-'))
                    && !v.contains(['\'', '"', '\0'])
            }),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    any
}

impl Parser {
    pub(super) fn go(&mut self, node: &KdlNode) -> Option<GoSpec> {
        self.no_props(node, &[]);
        let package =
            self.arity(node, 1, "go \"./cmd/NAME\" { dest \"/usr/local/bin/NAME\" }").and_then(|a| self.string(a[0]));
        let package = package.and_then(|p| {
            let escapes = p.value.starts_with('/') || p.value.split('/').any(|c| c == "..");
            if !self.printable(&p, "package") {
                return None;
            }
            if escapes || p.value.is_empty() {
                self.problem(
                    Problem::new(
                        Code::RecipeSourceOutside,
                        p.span,
                        format!("package `{}` is not a directory inside the recipe's", p.value),
                    )
                    .label("absolute, empty, or climbs out with `..`")
                    .help("name the main package's directory relative to kiln.kdl: `go \"./cmd/agent\"`"),
                );
                return None;
            }
            Some(p)
        });
        let mut spec = GoSpec {
            package: package.clone().unwrap_or_else(|| Spanned::new(String::new(), node.span())),
            dest: None,
            tags: Vec::new(),
            ldflags: Vec::new(),
            span: node.span(),
        };
        let mut seen = BTreeMap::new();
        for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
            if !self.once(&mut seen, child) {
                continue;
            }
            match child.name().value() {
                "dest" => spec.dest = self.binary_dest(child),
                "tags" => {
                    for t in self.spanned_strings(child) {
                        if self.go_word(&t, "build tag", |c| c.is_ascii_alphanumeric() || "._".contains(c)) {
                            spec.tags.push(t.value);
                        }
                    }
                }
                "ldflags" => {
                    for f in self.spanned_strings(child) {
                        if go_ldflags_ok(&f.value) && self.printable(&f, "linker flag") {
                            spec.ldflags.push(f.value);
                        } else if !f.value.chars().any(char::is_control) {
                            self.problem(
                                Problem::new(
                                    Code::RecipeGoFlag,
                                    f.span,
                                    format!("`{}` is not a linker flag kiln passes to go", f.value),
                                )
                                .label("only -s, -w and -X NAME=VALUE")
                                .help(
                                    "set variables with \"-X main.version=1.2\"; kiln already passes -s -w -buildid=",
                                ),
                            );
                        }
                    }
                }
                _ => self.unknown(child, "`go`", GO_NODES),
            }
        }
        package?;
        Some(spec)
    }

    /// A tag or an `-ldflags` word: non-empty, and only the characters `ok` allows. An
    /// `ldflags` value may hold spaces (`"-X main.version=1.2"`): they split words.
    fn go_word(&mut self, s: &Spanned<String>, what: &str, ok: impl Fn(char) -> bool) -> bool {
        if !self.printable(s, what) {
            return false;
        }
        let words: Vec<&str> = s.value.split(' ').filter(|w| !w.is_empty()).collect();
        if !words.is_empty() && words.iter().all(|w| w.chars().all(&ok)) {
            return true;
        }
        self.problem(
            Problem::new(Code::RecipeGoFlag, s.span, format!("`{}` is not a {what} kiln passes to go", s.value))
                .label(format!("not a {what}"))
                .help("tags are words such as \"netgo\"; ldflags are words without quotes, such as \"-X main.version=1.2\""),
        );
        false
    }
}

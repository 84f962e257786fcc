//! The `c` node: the sources of one C program (files or glob patterns), what is taken out of
//! them, include directories, macros, flags, libraries and where the program goes.

use super::Parser;
use super::node::args;
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::recipe::{CSpec, Spanned};
use kdl::KdlNode;
use std::collections::BTreeMap;

const C_NODES: &str = "sources, exclude, include, define, flags, libs, dest";

/// Flags that would bring files from outside the recipe's directory into a compile, or undo
/// what kiln sets: paths have their own nodes (`include`, `libs`).
const REFUSED_FLAGS: &[&str] = &[
    "-I",
    "-L",
    "-B",
    "-isystem",
    "-iquote",
    "-idirafter",
    "-include",
    "-imacros",
    "-isysroot",
    "--sysroot",
    "-fplugin",
    "-specs",
    "-o",
    "-target",
    "--target",
    "-M",
    "-shared",
    "-dynamic",
    "-l",
    "-D",
];

/// Why a `c` node may not pass `flag` to the compiler, or `None` when it may: a flag names
/// no path (paths have their own nodes) and does not undo what kiln sets.
pub fn refused_c_flag(flag: &str) -> Option<String> {
    let refused = REFUSED_FLAGS.iter().find(|r| flag == **r || flag.starts_with(*r));
    match refused {
        _ if !flag.starts_with('-') || flag == "-" || flag == "--" => {
            Some("a flag starts with `-`; sources go in `sources`".to_string())
        }
        Some(r) => Some(format!(
            "kiln sets `{r}` itself or takes it from its own node: use `include`, `define`, `libs` or `dest`"
        )),
        None if flag.contains(['/', '@', '\0'])
            || flag.starts_with("-Wl,")
            || flag.starts_with("-Xlinker")
            || flag.starts_with("-Wp,")
            || flag.starts_with("-Xpreprocessor")
            || flag.starts_with("-Xclang") =>
        {
            Some("a flag may not name a path or pass options to the linker or preprocessor".to_string())
        }
        None => None,
    }
}

/// Whether a define is one a `c` node may pass: `NAME` or `NAME=value`.
pub fn c_define_ok(d: &str) -> bool {
    let name = d.split('=').next().unwrap_or_default();
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !d.chars().any(char::is_control)
}

/// Whether a library name is one a `c` node may link.
pub fn c_lib_ok(l: &str) -> bool {
    !l.is_empty() && !l.starts_with('-') && l.chars().all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c))
}

impl Parser {
    pub(super) fn c(&mut self, node: &KdlNode) -> Option<CSpec> {
        self.no_props(node, &[]);
        let name = self.arity(node, 1, "c \"NAME\" { sources \"src/*.c\" … }").and_then(|a| self.string(a[0]));
        let name = name.filter(|n| self.program_name(n));
        let mut spec = CSpec {
            name: name.clone().unwrap_or_else(|| Spanned::new(String::new(), node.span())),
            sources: Vec::new(),
            exclude: Vec::new(),
            include: Vec::new(),
            define: Vec::new(),
            flags: Vec::new(),
            libs: Vec::new(),
            dest: None,
            span: node.span(),
        };
        let mut seen = BTreeMap::new();
        for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
            if child.name().value() == "dest" && !self.once(&mut seen, child) {
                continue;
            }
            self.c_child(child, &mut spec);
        }
        let named_sources = node.children().is_some_and(|c| c.nodes().iter().any(|n| n.name().value() == "sources"));
        if !named_sources && name.is_some() {
            self.problem(
                Problem::new(
                    Code::RecipeMissingNode,
                    node.span(),
                    format!("`c \"{}\"` names no sources", spec.name.value),
                )
                .label("no `sources` in this block")
                .help("add `sources \"src/*.c\"`: files or glob patterns, relative to the recipe"),
            );
            return None;
        }
        name?;
        (!spec.sources.is_empty()).then_some(spec)
    }

    /// One child of a `c` block, read into the spec.
    fn c_child(&mut self, child: &KdlNode, spec: &mut CSpec) {
        match child.name().value() {
            "sources" => {
                let patterns = self.relative_paths(child, "source pattern");
                spec.sources.extend(patterns.into_iter().filter(|p| self.glob(p)));
            }
            "exclude" => {
                let patterns = self.relative_paths(child, "exclude pattern");
                spec.exclude.extend(patterns.into_iter().filter(|p| self.glob(p)));
            }
            "include" => spec.include.extend(self.relative_paths(child, "include directory")),
            "define" => {
                for d in self.spanned_strings(child) {
                    let ok = self.printable(&d, "define") && c_define_ok(&d.value);
                    if ok {
                        spec.define.push(d.value);
                    } else if !d.value.chars().any(char::is_control) {
                        self.problem(
                            Problem::new(Code::RecipeCFlag, d.span, format!("`{}` is not a macro definition", d.value))
                                .label("expected NAME or NAME=value")
                                .help("for example: define \"NDEBUG\" \"VERSION=\\\"1.2\\\"\""),
                        );
                    }
                }
            }
            "flags" => {
                for f in self.spanned_strings(child) {
                    if self.c_flag(&f) {
                        spec.flags.push(f.value);
                    }
                }
            }
            "libs" => {
                for l in self.spanned_strings(child) {
                    if !c_lib_ok(&l.value) {
                        self.problem(
                            Problem::new(Code::RecipeCFlag, l.span, format!("`{}` is not a library name", l.value))
                                .label("expected a name such as \"m\"")
                                .help("`libs \"m\"` links libm (`-lm`), statically"),
                        );
                    } else {
                        spec.libs.push(l.value);
                    }
                }
            }
            "dest" => spec.dest = self.binary_dest(child),
            _ => self.unknown(child, "`c`", C_NODES),
        }
    }

    /// A compiler flag the recipe may pass: one that names no path and does not undo what
    /// kiln sets.
    fn c_flag(&mut self, f: &Spanned<String>) -> bool {
        if !self.printable(f, "flag") {
            return false;
        }
        let Some(help) = refused_c_flag(&f.value) else { return true };
        self.problem(
            Problem::new(Code::RecipeCFlag, f.span, format!("flag `{}` is not allowed in a `c` node", f.value))
                .label("refused flag")
                .help(help),
        );
        false
    }

    /// A glob pattern globset takes (`*`, `?`, `[…]`, `{a,b}`, `**`).
    fn glob(&mut self, p: &Spanned<String>) -> bool {
        let Err(e) = globset::Glob::new(&p.value) else { return true };
        self.problem(
            Problem::new(Code::RecipeGlob, p.span, format!("`{}` is not a glob pattern: {}", p.value, e.kind()))
                .label("bad pattern")
                .help("patterns use `*`, `?`, `[abc]`, `{a,b}` and `**` for any directories"),
        );
        false
    }

    /// A program's name: letters, digits, `.`, `_`, `-`.
    pub(super) fn program_name(&mut self, n: &Spanned<String>) -> bool {
        let ok = !n.value.is_empty()
            && !n.value.starts_with('.')
            && n.value.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !ok && self.printable(n, "name") {
            self.problem(
                Problem::new(Code::RecipeSource, n.span, format!("`{}` is not a program name", n.value))
                    .label("not a file name")
                    .help("use letters, digits, `.`, `_` and `-`"),
            );
        }
        ok
    }

    /// `dest "/usr/local/bin/NAME"` of a compiled node.
    pub(super) fn binary_dest(&mut self, child: &KdlNode) -> Option<Spanned<String>> {
        let d =
            self.single_string(child, "dest \"/usr/local/bin/NAME\"").and_then(|d| self.image_path(&d, "destination"));
        if let Some(d) = &d {
            self.file_dest(d, "dest");
        }
        d
    }

    /// A node's string arguments with their spans, at least one.
    pub(super) fn spanned_strings(&mut self, node: &KdlNode) -> Vec<Spanned<String>> {
        self.no_props(node, &[]);
        self.no_children(node);
        let a = args(node);
        if a.is_empty() {
            self.problem(
                Problem::new(
                    Code::RecipeArguments,
                    node.span(),
                    format!("`{}` needs at least one value", node.name().value()),
                )
                .label("no value given"),
            );
        }
        a.into_iter().filter_map(|e| self.string(e)).collect()
    }

    /// Paths or patterns relative to the recipe: not absolute, not climbing out with `..`.
    pub(super) fn relative_paths(&mut self, node: &KdlNode, what: &str) -> Vec<Spanned<String>> {
        let mut out = Vec::new();
        for p in self.spanned_strings(node) {
            if !self.printable(&p, what) {
                continue;
            }
            let escapes = p.value.starts_with('/') || p.value.split('/').any(|c| c == "..");
            if p.value.is_empty() || escapes {
                self.problem(
                    Problem::new(
                        Code::RecipeSourceOutside,
                        p.span,
                        format!("{what} `{}` is not inside the recipe's directory", p.value),
                    )
                    .label(if p.value.is_empty() { "empty" } else { "absolute, or climbs out with `..`" })
                    .help("name files relative to kiln.kdl, inside its directory"),
                );
                continue;
            }
            out.push(p);
        }
        out
    }
}

//! What puts files into an image from the recipe's directory or the recipe itself: `copy`
//! (with its `exclude` patterns), `file`, and the `mode=`, `uid=`, `gid=` they take.

use super::Parser;
use super::node::{args, props};
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::recipe::{Content, Perms, Spanned};
use kdl::KdlNode;

impl Parser {
    pub(super) fn copy(&mut self, node: &KdlNode) -> Option<Content> {
        self.no_props(node, &["mode", "uid", "gid"]);
        let perms = self.perms(node);
        let exclude = self.excludes(node);
        let a =
            self.arity(node, 2, "copy \"SRC\" \"/DEST\" [mode=0o644] [uid=0] [gid=0] [{ exclude \"PATTERN\" … }]")?;
        let src = self.string(a[0]);
        let dest = self.string(a[1]).and_then(|d| self.image_path(&d, "destination"));
        let src = src.filter(|s| self.printable(s, "source"));
        if let Some(src) = &src
            && src.value.is_empty()
        {
            self.problem(Problem::new(Code::RecipeSource, src.span, "empty source path").label("names no file"));
        }
        Some(Content::Copy { src: src?, dest: dest?, perms, exclude: exclude?, span: node.span() })
    }

    /// A `copy` node's block: `exclude "PATTERN" …`, any number of times. `None` when one of
    /// them is refused.
    fn excludes(&mut self, node: &KdlNode) -> Option<Vec<Spanned<String>>> {
        let mut out = Vec::new();
        let mut ok = true;
        for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
            if child.name().value() != "exclude" {
                self.unknown(child, "`copy`", "exclude");
                ok = false;
                continue;
            }
            self.no_props(child, &[]);
            self.no_children(child);
            let a = args(child);
            if a.is_empty() {
                self.problem(
                    Problem::new(Code::RecipeArguments, child.span(), "`exclude` needs at least one pattern")
                        .label("no pattern given")
                        .help("for example: exclude \"target/\" \"*.log\""),
                );
                ok = false;
            }
            for e in a {
                match self.string(e).filter(|p| self.printable(p, "exclude pattern")) {
                    Some(p) if p.value.trim().trim_start_matches('!').trim().is_empty() => {
                        self.problem(
                            Problem::new(Code::RecipeExcludePattern, p.span, "empty exclude pattern")
                                .label("matches nothing")
                                .help("write a path pattern such as \"target/\" or \"*.log\"; `!` before one re-includes what it matches"),
                        );
                        ok = false;
                    }
                    Some(p) => out.push(p),
                    None => ok = false,
                }
            }
        }
        ok.then_some(out)
    }

    pub(super) fn perms(&mut self, node: &KdlNode) -> Perms {
        let mut p = Perms::default();
        for (name, e) in props(node) {
            match name {
                // A mode written in decimal is reported and leaves the mode as it was.
                "mode" if self.decimal_mode(e) => {}
                "mode" => p.mode = self.uint(e, 0o7777, "mode").map(|v| v.value as u32),
                "uid" => p.uid = self.uint(e, u32::MAX as u64, "uid").map(|v| v.value as u32),
                "gid" => p.gid = self.uint(e, u32::MAX as u64, "gid").map(|v| v.value as u32),
                _ => {}
            }
        }
        p
    }

    /// `file "/DEST" "content"`: a file written from the recipe itself.
    pub(super) fn file(&mut self, child: &KdlNode) -> Option<Content> {
        self.no_children(child);
        self.no_props(child, &["mode", "uid", "gid"]);
        let perms = self.perms(child);
        let a = self.arity(child, 2, "file \"/DEST\" \"content\" [mode=0o644]")?;
        let dest = self.string(a[0]).and_then(|d| self.image_path(&d, "destination"));
        let content = self.string(a[1]);
        if let Some(d) = &dest {
            self.file_dest(d, "file");
        }
        Some(Content::File { dest: dest?, content: content?.value, perms, span: child.span() })
    }
}

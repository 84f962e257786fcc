//! Paths: names and paths free of control characters, and absolute paths inside an image,
//! normalised without climbing above `/`.

use super::Parser;
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::recipe::Spanned;

impl Parser {
    /// Paths name files in tar headers, layer keys and listings: control characters (a newline
    /// from a stray escape, a tab) are refused rather than carried into all of them.
    pub(super) fn printable(&mut self, s: &Spanned<String>, what: &str) -> bool {
        let Some(c) = s.value.chars().find(|c| c.is_control()) else { return true };
        self.problem(
            Problem::new(
                Code::RecipeControlCharacter,
                s.span,
                format!("{what} {:?} holds the control character {:?}", s.value, c),
            )
            .label("control character")
            .help("remove it: names and paths may hold any character but control characters (newlines, tabs, …)"),
        );
        false
    }

    /// An absolute path inside the image, normalised; `..` may not climb above `/`.
    pub(super) fn image_path(&mut self, s: &Spanned<String>, what: &str) -> Option<Spanned<String>> {
        if !self.printable(s, what) {
            return None;
        }
        if !s.value.starts_with('/') {
            self.problem(
                Problem::new(Code::RecipeRelativePath, s.span, format!("{what} `{}` is not absolute", s.value))
                    .label("must start with `/`")
                    .help(format!("write `/{}`", s.value.trim_start_matches("./"))),
            );
            return None;
        }
        let mut parts: Vec<&str> = Vec::new();
        for c in s.value.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        self.problem(
                            Problem::new(
                                Code::RecipePathEscape,
                                s.span,
                                format!("{what} `{}` escapes the image root", s.value),
                            )
                            .label("`..` climbs above `/`")
                            .help("paths inside an image cannot leave its root; remove the `..`"),
                        );
                        return None;
                    }
                }
                c => parts.push(c),
            }
        }
        let mut norm = format!("/{}", parts.join("/"));
        if s.value.ends_with('/') && norm != "/" {
            norm.push('/');
        }
        Some(Spanned::new(norm, s.span))
    }

    /// A destination that must name a file, not a directory: refused when it ends with `/`.
    /// `node` is the node that gives it (`file`, `dest`).
    pub(super) fn file_dest(&mut self, d: &Spanned<String>, node: &str) {
        if d.value.ends_with('/') {
            self.problem(
                Problem::new(Code::RecipeFileDest, d.span, format!("`{node}` needs a file path, not a directory"))
                    .label("ends with `/`"),
            );
        }
    }
}

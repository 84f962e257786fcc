//! KDL text to [`Recipe`], collecting every problem instead of stopping at the first.
//!
//! This file holds the entry points and the [`Parser`] that gathers the problems; the nodes are
//! read one family to a file: the top-level nodes and `defaults` (`top.rs`), `image` and its
//! children (`image.rs`, `base.rs`), what puts files into an image (`content.rs`, `rust.rs`, `c.rs`,
//! `go.rs`),
//! `layers` (`layers.rs`), and the pieces they share: a node's shape (`node.rs`), values
//! (`values.rs`), paths (`paths.rs`) and the KDL parser's own diagnostics (`diagnostics.rs`).

mod base;
pub(super) mod c;
mod content;
mod diagnostics;
pub(super) mod go;
mod image;
mod layers;
mod node;
mod paths;
mod rust;
#[cfg(test)]
mod tests;
mod top;
mod values;

use super::{Recipe, multiline};
use crate::diag::{Problem, RecipeErrors};
pub use c::{c_define_ok, c_lib_ok, refused_c_flag};
pub use go::go_ldflags_ok;
use kdl::KdlDocument;

/// Parses a recipe. `name` is how the file is shown in errors (usually its path).
pub fn parse(name: &str, text: &str) -> Result<Recipe, RecipeErrors> {
    match parse_partial(text) {
        (Some(recipe), problems) if problems.is_empty() => Ok(recipe),
        (_, problems) => Err(RecipeErrors::new(name, text, problems)),
    }
}

/// Parses as much as can be parsed: the recipe without its faulty nodes (none when the text
/// is not KDL at all, or is refused before parsing: too long, nested too deep) and every
/// problem found. Lets later checks report their problems in the same run.
///
/// The KDL parser recurses once for each block it reads, and while it recovers from an error
/// it may read a `{` that the scan took for part of a comment as a block: so the scan bounds
/// the `{` of a recipe ([`super::scan::MAX_BRACES`]) and the parse runs on a thread of its own
/// with [`PARSE_STACK`] of stack, well beyond what that many levels take.
pub fn parse_partial(text: &str) -> (Option<Recipe>, Vec<Problem>) {
    std::thread::scope(|s| {
        let thread = std::thread::Builder::new().name("kiln-recipe".into()).stack_size(PARSE_STACK);
        match thread.spawn_scoped(s, || parse_here(text)) {
            Ok(parsing) => parsing.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            // No thread to be had: parse here, on the caller's stack.
            Err(_) => parse_here(text),
        }
    })
}

/// The parse's stack: a level took about 16 KiB in a debug build and 6 KiB optimised, so
/// [`super::scan::MAX_BRACES`] levels take at most 128 MiB.
/// Only the pages used are ever committed.
const PARSE_STACK: usize = 256 << 20;

fn parse_here(text: &str) -> (Option<Recipe>, Vec<Problem>) {
    match document(text) {
        Ok(doc) => {
            let mut p = Parser::default();
            let recipe = p.recipe(&doc);
            (Some(recipe), p.problems)
        }
        Err(problems) => (None, problems),
    }
}

/// What kiln refuses before the KDL parser sees the text: a recipe or line too long, nesting
/// too deep, a malformed string or comment, too many syntax errors. `parse_partial` reports it
/// as its only problem.
pub fn refusal(text: &str) -> Option<Problem> {
    super::scan::scan(text).err().map(|p| *p)
}

/// The recipe as a KDL document, read behind the scan's guard, with multi-line strings read
/// by kiln (see `multiline.rs`); or the problems that make it unreadable.
pub fn document(text: &str) -> Result<KdlDocument, Vec<Problem>> {
    let found = super::scan::scan(text).map_err(|refused| vec![*refused])?;
    let mut values = Vec::new();
    let mut problems = Vec::new();
    for m in &found.multiline {
        match multiline::decode(text, m) {
            Ok(v) => values.push(v),
            Err(p) => problems.push(*p),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let masked = if found.multiline.is_empty() { None } else { Some(multiline::mask(text, &found.multiline)) };
    match KdlDocument::parse_v2(masked.as_deref().unwrap_or(text)) {
        Ok(mut doc) => {
            multiline::patch(&mut doc, &found.multiline, &values);
            Ok(doc)
        }
        Err(err) => Err(diagnostics::syntax_problems(text, &err, found.values)),
    }
}

/// Reads a parsed document node by node; every problem found is kept, in the order found.
#[derive(Default)]
struct Parser {
    problems: Vec<Problem>,
}

impl Parser {
    fn problem(&mut self, p: Problem) {
        self.problems.push(p);
    }
}

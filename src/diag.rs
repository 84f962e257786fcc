//! Recipe and plan diagnostics.
//!
//! Every problem found in a recipe becomes a [`Problem`]: a stable code, a message, the span it
//! points at, a label and help. All problems are collected and reported together as one
//! [`RecipeErrors`], which the CLI renders with line and column through `miette`.

use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
use std::fmt;

/// One problem in a recipe.
#[derive(Debug, Clone)]
pub struct Problem {
    pub code: &'static str,
    pub message: String,
    pub span: SourceSpan,
    pub label: String,
    pub help: Option<String>,
    /// A second place that takes part in the problem (the first of two duplicates, say).
    pub also: Option<(SourceSpan, String)>,
}

impl Problem {
    pub fn new(code: &'static str, span: SourceSpan, message: impl Into<String>) -> Self {
        Problem { code, message: message.into(), span, label: "here".into(), help: None, also: None }
    }

    pub fn also(mut self, span: SourceSpan, label: impl Into<String>) -> Self {
        self.also = Some((span, label.into()));
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl Diagnostic for Problem {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let first = LabeledSpan::new_with_span(Some(self.label.clone()), self.span);
        let also = self.also.as_ref().map(|(span, label)| LabeledSpan::new_with_span(Some(label.clone()), *span));
        Some(Box::new(std::iter::once(first).chain(also)))
    }
}

/// All problems of one recipe, with the recipe's text so spans render as line:column.
#[derive(Debug)]
pub struct RecipeErrors {
    pub source: NamedSource<String>,
    pub problems: Vec<Problem>,
}

impl RecipeErrors {
    /// Wraps problems with the recipe text, sorted by where they occur.
    pub fn new(name: &str, text: &str, mut problems: Vec<Problem>) -> Self {
        problems.sort_by_key(|p| p.span.offset());
        RecipeErrors { source: NamedSource::new(name, text.to_string()).with_language("kdl"), problems }
    }

    /// The codes of all problems, in report order (used by tests and `--json`).
    pub fn codes(&self) -> Vec<&'static str> {
        self.problems.iter().map(|p| p.code).collect()
    }
}

impl fmt::Display for RecipeErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(f, "recipe {} has {} problem{}", self.source.name(), n, if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for RecipeErrors {}

impl Diagnostic for RecipeErrors {
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        Some(Box::new(self.problems.iter().map(|p| p as &dyn Diagnostic)))
    }
}

/// Line and column (1-based) of a byte offset, for messages that are not rendered by miette.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    #[test]
    fn line_col_counts_from_one() {
        let t = "ab\ncd\nef";
        assert_eq!(super::line_col(t, 0), (1, 1));
        assert_eq!(super::line_col(t, 4), (2, 2));
        assert_eq!(super::line_col(t, 6), (3, 1));
    }
}

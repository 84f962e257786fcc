//! Recipe and plan diagnostics, and the stable error codes ([`codes`]).
//!
//! Every problem found in a recipe becomes a [`Problem`]: a stable code, a message, the span it
//! points at, a label and help. All problems are collected and reported together as one
//! [`RecipeErrors`], which the CLI renders with line and column through `miette`.

pub mod codes;

pub use codes::Code;
use miette::{Diagnostic, LabeledSpan, NamedSource, SourceSpan};
use std::fmt;

/// One problem in a recipe.
#[derive(Debug, Clone)]
pub struct Problem {
    pub code: Code,
    pub message: String,
    pub span: SourceSpan,
    pub label: String,
    pub help: Option<String>,
    /// A second place that takes part in the problem (the first of two duplicates, say).
    pub also: Option<(SourceSpan, String)>,
}

impl Problem {
    pub fn new(code: Code, span: SourceSpan, message: impl Into<String>) -> Self {
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

/// The largest recipe kiln reads, in bytes (256 KiB): a recipe is a few kilobytes, and the KDL
/// parser takes about 3 µs a byte.
pub const MAX_RECIPE_BYTES: usize = 1 << 18;
/// The longest line kiln reads, in bytes. miette cannot draw a label past column 65,535, and
/// draws a tab four columns wide.
pub const MAX_LINE_BYTES: usize = 16_000;
/// Problems rendered in one report, the first in source order; the others are counted.
pub const MAX_SHOWN: usize = 50;
/// Characters kept of a message, label or help, and of a value quoted in one.
const MAX_TEXT: usize = 1_000;
const MAX_QUOTED: usize = 60;
/// Bytes of a line shown where the recipe is cut off for being too long.
const CLIP_BYTES: usize = 80;

/// A value from the recipe as a message quotes it: control and invisible characters escaped,
/// cut after 60 characters.
pub fn shown(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == MAX_QUOTED {
            out.push('…');
            break;
        }
        match c {
            '\\' | '"' | '\'' => out.push(c),
            c => out.extend(c.escape_debug()),
        }
    }
    out
}

/// How many bytes of the line at `at` to show when the recipe is cut off there.
pub fn clip_len(text: &str, at: usize) -> usize {
    let line = text.get(at..).unwrap_or("").split('\n').next().unwrap_or("");
    let mut n = line.len().min(CLIP_BYTES);
    while !line.is_char_boundary(n) {
        n -= 1;
    }
    n
}

/// All problems of one recipe, with the recipe's text so spans render as line:column.
#[derive(Debug)]
pub struct RecipeErrors {
    /// The text as rendered: the recipe, cut off where a line or the whole grows too long.
    pub source: NamedSource<String>,
    pub problems: Vec<Problem>,
    more: Option<More>,
}

impl RecipeErrors {
    /// Wraps problems with the recipe text, sorted by where they occur. Spans are fitted to
    /// what miette renders quickly and without panicking: within the shown text, on character
    /// boundaries, on one line (a span over many lines is narrowed to where it starts).
    pub fn new(name: &str, text: &str, mut problems: Vec<Problem>) -> Self {
        let text = &text[..renderable(text, &problems)];
        for p in &mut problems {
            p.span = fit(p.span, text);
            if let Some((span, label)) = &mut p.also {
                *span = fit(*span, text);
                cut(label);
            }
            cut(&mut p.message);
            cut(&mut p.label);
            if let Some(h) = &mut p.help {
                cut(h);
            }
        }
        problems.sort_by_key(|p| p.span.offset());
        let more = (problems.len() > MAX_SHOWN).then(|| More(problems.len() - MAX_SHOWN));
        RecipeErrors { source: NamedSource::new(name, text.to_string()).with_language("kdl"), problems, more }
    }

    /// The codes of all problems, in report order (used by tests and `--json`).
    pub fn codes(&self) -> Vec<Code> {
        self.problems.iter().map(|p| p.code).collect()
    }
}

/// The length of the longest prefix of `text` that miette can render: up to the first line
/// longer than [`MAX_LINE_BYTES`] or past [`MAX_RECIPE_BYTES`], of which the start is kept, as
/// far as the problems on it reach.
fn renderable(text: &str, problems: &[Problem]) -> usize {
    let mut start = 0;
    for line in text.split('\n') {
        let end = start + line.len();
        if line.len() > MAX_LINE_BYTES || end > MAX_RECIPE_BYTES {
            let reach = problems.iter().map(|p| p.span.offset() + p.span.len()).filter(|&e| e > start && e <= end);
            let mut keep = reach.max().map_or(0, |e| e - start).min(MAX_LINE_BYTES).max(clip_len(text, start));
            while !line.is_char_boundary(keep) {
                keep -= 1;
            }
            return start + keep;
        }
        start = end + 1;
    }
    text.len()
}

fn fit(span: SourceSpan, text: &str) -> SourceSpan {
    let mut start = span.offset().min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = span.offset().saturating_add(span.len()).clamp(start, text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    if let Some(n) = text[start..end].find('\n') {
        end = start + n;
    }
    (start, end - start).into()
}

fn cut(s: &mut String) {
    if let Some((i, _)) = s.char_indices().nth(MAX_TEXT) {
        s.truncate(i);
        s.push('…');
    }
}

/// The line that ends a report holding more than [`MAX_SHOWN`] problems.
#[derive(Debug)]
struct More(usize);

impl fmt::Display for More {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        write!(f, "{n} more problem{} not shown: fix the ones above and run kiln again", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for More {}

impl Diagnostic for More {
    fn severity(&self) -> Option<miette::Severity> {
        Some(miette::Severity::Advice)
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
        let shown = self.problems.iter().take(MAX_SHOWN).map(|p| p as &dyn Diagnostic);
        Some(Box::new(shown.chain(self.more.iter().map(|m| m as &dyn Diagnostic))))
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
    use super::*;

    fn render(e: &RecipeErrors) -> String {
        let theme = miette::GraphicalTheme {
            characters: miette::ThemeCharacters::ascii(),
            styles: miette::ThemeStyles::none(),
        };
        let mut out = String::new();
        miette::GraphicalReportHandler::new_themed(theme).with_width(100).render_report(&mut out, e).unwrap();
        out
    }

    #[test]
    fn reports_show_the_first_50_problems_then_count_the_rest() {
        let text = "x\n".repeat(60);
        let problems = (0..60)
            .rev()
            .map(|i| Problem::new(Code::RecipeSyntax, (i * 2, 1).into(), format!("problem {i}")))
            .collect();
        let out = render(&RecipeErrors::new("k", &text, problems));
        assert!(out.contains("problem 0") && out.contains("problem 49") && !out.contains("problem 50"), "{out}");
        assert!(out.trim_end().ends_with("10 more problems not shown: fix the ones above and run kiln again"), "{out}");
    }

    #[test]
    fn spans_are_fitted_to_one_line_and_to_characters() {
        let text = "a é\nb\nc\n";
        let e = RecipeErrors::new(
            "k",
            text,
            vec![
                Problem::new(Code::RecipeSyntax, (0, text.len()).into(), "whole file"),
                Problem::new(Code::RecipeSyntax, (3, 1).into(), "inside é"),
                Problem::new(Code::RecipeSyntax, (100, 5).into(), "past the end"),
            ],
        );
        let spans: Vec<(usize, usize)> = e.problems.iter().map(|p| (p.span.offset(), p.span.len())).collect();
        assert_eq!(spans, [(0, 4), (2, 2), (text.len(), 0)]);
        render(&e);
    }

    #[test]
    fn long_lines_are_cut_off_before_miette_sees_them() {
        // miette panics on a label past column 65,535, and draws a tab 4 columns wide.
        let text = format!("a\n{}x\n", "\t".repeat(MAX_LINE_BYTES));
        let e = RecipeErrors::new(
            "k",
            &text,
            vec![Problem::new(Code::RecipeSyntax, (2 + MAX_LINE_BYTES, 1).into(), "far")],
        );
        assert!(render(&e).len() < 70_000);
        let text = format!("a\n{}x\n", "\t".repeat(MAX_LINE_BYTES - 1));
        render(&RecipeErrors::new(
            "k",
            &text,
            vec![Problem::new(Code::RecipeSyntax, (text.len() - 2, 1).into(), "far")],
        ));
        let e = RecipeErrors::new(
            "k",
            &"y".repeat(100_000),
            vec![Problem::new(Code::RecipeSyntax, (0, 80).into(), "long")],
        );
        assert_eq!(e.source.inner().len(), 80);
    }

    #[test]
    fn quoted_values_are_short_and_visible() {
        assert_eq!(shown("a\nb\u{202E}c"), "a\\nb\\u{202e}c");
        assert_eq!(shown(&"x".repeat(100)).chars().count(), 61);
    }

    #[test]
    fn line_col_counts_from_one() {
        let t = "ab\ncd\nef";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 4), (2, 2));
        assert_eq!(line_col(t, 6), (3, 1));
    }
}

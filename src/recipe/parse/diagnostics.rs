//! The KDL parser's own diagnostics turned into recipe problems: spans moved onto the value
//! that went wrong, and the scan's explanation of a malformed value put in the parser's place.

use crate::diag::codes::Code;
use crate::diag::{Problem, shown};
use miette::SourceSpan;

/// Turns the KDL parser's own diagnostics into recipe problems. Where one falls on a value the
/// scan found malformed (a number such as `0o999`, a keyword without `#`), the scan's
/// explanation replaces the parser's words, and the parser's other complaints, often echoes of
/// the same value, are dropped.
pub(super) fn syntax_problems(text: &str, err: &kdl::KdlError, values: Vec<Problem>) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut explained = vec![false; values.len()];
    for d in &err.diagnostics {
        let (start, end) = (d.span.offset(), d.span.offset() + d.span.len());
        // For a property's value the parser's span starts at the top of the file and ends
        // where the value went wrong.
        let words = [d.message.as_deref(), d.label.as_deref()];
        let property = words.iter().flatten().any(|w| w.contains("property value"));
        let hit = values.iter().position(|v| {
            let (vs, ve) = (v.span.offset(), v.span.offset() + v.span.len());
            if property { vs <= end && end <= ve } else { start < ve && end > vs }
        });
        match hit {
            Some(i) => explained[i] = true,
            None => out.push(kdl_problem(text, d, property)),
        }
    }
    if explained.contains(&true) {
        return values.into_iter().zip(explained).filter(|(_, e)| *e).map(|(v, _)| v).collect();
    }
    if out.is_empty() {
        out.push(Problem::new(Code::RecipeSyntax, (0, 0).into(), format!("invalid KDL: {err}")));
    }
    out
}

fn kdl_problem(text: &str, d: &kdl::KdlDiagnostic, property: bool) -> Problem {
    let span = if property { value_at(text, d.span.offset() + d.span.len()) } else { d.span };
    if property && text.get(span.offset()..span.offset() + span.len()) == Some("=") {
        let key = text[..span.offset()].rsplit(|c: char| c.is_whitespace()).next().unwrap_or_default();
        return Problem::new(Code::RecipeSyntax, span, format!("invalid KDL: property `{}` has no value", shown(key)))
            .label("a value must follow `=`")
            .help("write the value right after `=`, such as mode=0o644 or name=\"text\"");
    }
    let message = d.message.clone().unwrap_or_else(|| "syntax error".into());
    let mut problem = Problem::new(Code::RecipeSyntax, span, format!("invalid KDL: {message}"));
    if let Some(label) = &d.label {
        problem = problem.label(label.clone());
    }
    if let Some(help) = &d.help {
        problem = problem.help(help.clone());
    }
    problem
}

/// The value around byte `at`, or the `=` before it when there is none.
fn value_at(text: &str, at: usize) -> SourceSpan {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let part = |c: char| !(c.is_whitespace() || "\\/(){};[]\"#=".contains(c));
    let start = text[..at].rfind(|c| !part(c)).map_or(0, |i| i + text[i..].chars().next().map_or(1, char::len_utf8));
    let end = text[at..].find(|c| !part(c)).map_or(text.len(), |i| at + i);
    if start == end && text[..at].ends_with('=') {
        return (at - 1, 1).into();
    }
    (start, end - start).into()
}

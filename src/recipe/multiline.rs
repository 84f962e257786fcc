//! Multi-line strings (`"""` and `#"""`), read by kiln itself.
//!
//! The KDL parser first tries to read the lines of a multi-line string as nodes, before it
//! settles on a string: a few hundred `{` in a `file` node's multi-line content overflow its
//! stack. So the parser is given the recipe with each multi-line string replaced by a harmless
//! one of the same length (`"""`, a line of `x`, `"""`: every span stays where it was), and
//! the values are decoded here, as KDL 2 specifies, and put back into the parsed document.

use crate::diag::Problem;
use crate::diag::codes::Code;
use kdl::{KdlDocument, KdlIdentifier, KdlValue};
use std::collections::BTreeMap;

/// Where a multi-line string is: `start` at its first `#` or `"`, `end` past its last.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MultiLine {
    pub start: usize,
    pub end: usize,
    pub hashes: usize,
}

/// `text` with every multi-line string's content replaced.
pub(crate) fn mask(text: &str, strings: &[MultiLine]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for m in strings {
        out.push_str(&text[at..m.start]);
        let quotes = format!("{}\"\"\"", "#".repeat(m.hashes));
        let closing = format!("\"\"\"{}", "#".repeat(m.hashes));
        let inner = m.end - m.start - quotes.len() - closing.len();
        out.push_str(&quotes);
        // A line break, `x`s, a line break: or just one line break for the shortest strings.
        out.push('\n');
        if inner >= 2 {
            out.push_str(&"x".repeat(inner - 2));
            out.push('\n');
        }
        out.push_str(&closing);
        at = m.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The value of the multi-line string at `m`.
pub(crate) fn decode(text: &str, m: &MultiLine) -> Result<String, Box<Problem>> {
    let body_start = m.start + m.hashes + 3;
    let body_end = m.end - m.hashes - 3;
    let raw = m.hashes > 0;
    let body = &text[body_start..body_end];
    // Whitespace escapes first, then line breaks as LF, then the indentation, then escapes.
    let joined = if raw { body.to_string() } else { join_escaped_lines(body) };
    let joined = joined.replace("\r\n", "\n");
    let lines: Vec<&str> = joined.strip_prefix('\n').unwrap_or(&joined).split('\n').collect();
    let (prefix, content) = lines.split_last().unwrap_or((&"", &[]));
    if !prefix.chars().all(super::scan::space) {
        return Err(Box::new(syntax(
            (body_end, 3),
            "the closing `\"\"\"` of a multi-line string must be on a line of its own",
            "text before the closing quotes",
            "put the closing quotes on a line of their own (an escaped line break before them joins the lines)",
        )));
    }
    let mut value = Vec::with_capacity(content.len());
    for line in content {
        if line.chars().all(super::scan::space) {
            value.push("");
        } else if let Some(rest) = line.strip_prefix(prefix) {
            value.push(rest);
        } else {
            return Err(Box::new(syntax(
                misindented(body, body_start, prefix).unwrap_or((m.start, 3)),
                "a line of this multi-line string is indented less than its closing `\"\"\"`",
                "the closing quotes set the indentation",
                "start every line of the string with the same spaces or tabs as the line of the closing `\"\"\"`",
            )));
        }
    }
    let value = value.join("\n");
    if raw {
        return Ok(value);
    }
    unescape(&value).ok_or_else(|| {
        Box::new(syntax(
            (m.start, 3),
            "this multi-line string holds an invalid escape",
            "invalid escape in this string",
            "the escapes are \\n \\r \\t \\\\ \\\" \\b \\f \\s and \\u{…}; write a backslash as \\\\",
        ))
    })
}

/// The first line of `body` (at `offset`) with text that does not start with `prefix`, as
/// written; `None` when only escapes make one so.
fn misindented(body: &str, offset: usize, prefix: &str) -> Option<(usize, usize)> {
    let mut at = offset;
    for (i, line) in body.split('\n').enumerate() {
        let text = line.trim_end_matches('\r');
        if i > 0 && !text.chars().all(super::scan::space) && !text.starts_with(prefix) {
            return Some((at, text.len()));
        }
        at += line.len() + 1;
    }
    None
}

fn syntax(span: (usize, usize), message: &str, label: &str, help: &str) -> Problem {
    Problem::new(Code::RecipeSyntax, span.into(), format!("invalid KDL: {message}")).label(label).help(help)
}

/// Removes each `\` followed by whitespace or line breaks, with them; keeps other escapes.
fn join_escaped_lines(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some(&n) if super::scan::space(n) || n == '\n' || n == '\r' => {
                while chars.peek().is_some_and(|&n| super::scan::space(n) || n == '\n' || n == '\r') {
                    chars.next();
                }
            }
            Some(&n) => {
                out.push(c);
                out.push(n);
                chars.next();
            }
            None => out.push(c),
        }
    }
    out
}

/// Resolves `\n`, `\u{…}` and the other escapes of KDL 2; `None` for an invalid one.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            '\\' => '\\',
            '"' => '"',
            'b' => '\u{8}',
            'f' => '\u{C}',
            's' => ' ',
            'u' => {
                let rest = chars.as_str().strip_prefix('{')?;
                let close = rest.find('}')?;
                let hex = &rest[..close];
                if hex.is_empty() || hex.len() > 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    return None;
                }
                chars = rest[close + 1..].chars();
                char::from_u32(u32::from_str_radix(hex, 16).ok()?)?
            }
            _ => return None,
        });
    }
    Some(out)
}

/// Puts decoded values back: strings are found by where they start (names, keys, types) or
/// end (an entry's span ends with its value).
pub(crate) fn patch(doc: &mut KdlDocument, strings: &[MultiLine], values: &[String]) {
    let starts: BTreeMap<usize, &str> = strings.iter().zip(values).map(|(m, v)| (m.start, v.as_str())).collect();
    let ends: BTreeMap<usize, &str> = strings.iter().zip(values).map(|(m, v)| (m.end, v.as_str())).collect();
    patch_nodes(doc, &starts, &ends);
}

fn patch_nodes(doc: &mut KdlDocument, starts: &BTreeMap<usize, &str>, ends: &BTreeMap<usize, &str>) {
    let ident = |i: &mut KdlIdentifier| {
        if let Some(v) = starts.get(&i.span().offset()) {
            i.set_value(*v);
        }
    };
    for node in doc.nodes_mut() {
        ident(node.name_mut());
        if let Some(t) = node.ty_mut() {
            ident(t);
        }
        for e in node.entries_mut() {
            if let Some(k) = e.name_mut() {
                ident(k);
            }
            if let Some(t) = e.ty_mut() {
                ident(t);
            }
            let end = e.span().offset() + e.span().len();
            if let (Some(v), KdlValue::String(_)) = (ends.get(&end), e.value()) {
                *e.value_mut() = KdlValue::String(v.to_string());
            }
        }
        if let Some(children) = node.children_mut() {
            patch_nodes(children, starts, ends);
        }
    }
}

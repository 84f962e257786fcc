//! The guard in front of the KDL parser: one linear pass over the recipe's text that refuses
//! what would crash the parser or the renderer before either sees it.
//!
//! The `kdl` crate parses recursively: every nested block, nested `/* */` comment and `/-` in a
//! row takes stack, and so does every syntax error it recovers from. A few kilobytes of `a{`
//! or of `a =` lines overflow the stack and abort the process. miette, which renders errors,
//! panics on a column past 65,535. So before parsing, this scan
//!
//! - refuses recipes over [`MAX_RECIPE_BYTES`] and lines over [`MAX_LINE_BYTES`];
//! - lexes strings (quoted with escapes, multi-line, raw with any number of `#`) and comments
//!   (`//`, nested `/* */`) exactly, and refuses any string or comment that is not well formed,
//!   since past one the parser's idea of what is text and what is code may differ from ours;
//! - counts nesting outside strings and comments and refuses more than [`MAX_DEPTH`] levels;
//! - follows the node grammar closely enough to count syntax errors, and refuses more than
//!   [`MAX_SYNTAX_ERRORS`], or a string or comment that holds a `{` or a line break on the line
//!   of an error (where the parser's recovery may read it as code).
//!
//! When unsure it refuses: a recipe needs 3 or 4 levels and no syntax error. What it learns about
//! malformed numbers and keywords explains the parser's terser errors (see
//! `parse/diagnostics.rs`). This file holds the scanner's core, which reads code and checks the
//! limits; strings and comments are lexed in `lexer.rs`.

use crate::diag::codes::Code;
mod lexer;

use super::grammar::{Grammar, Tok};
use super::multiline::MultiLine;
use crate::diag::{MAX_LINE_BYTES, MAX_RECIPE_BYTES, Problem};

/// Levels of nesting read: blocks, `/-` in a row and `/* */` comments inside each other.
pub(crate) const MAX_DEPTH: usize = 32;
/// Commented-out blocks (`/- node { … }`, `node /- { … }`) inside each other. The parser's
/// time doubles with each one inside another: the limit keeps the worst recipe within a few
/// times the time of a plain one.
pub(crate) const MAX_COMMENTED_DEPTH: usize = 3;
/// `{` in a recipe, counted everywhere (comments and strings too): each may be a level of the
/// KDL parser's recursion (see `parse_partial`), so their number bounds the stack it needs.
pub(crate) const MAX_BRACES: usize = 8192;

/// Syntax errors tolerated before the KDL parser (which recovers from each recursively).
pub(crate) const MAX_SYNTAX_ERRORS: usize = 32;

/// What the scan found in a recipe it lets through: malformed values, to explain the parser's
/// errors about them.
#[derive(Debug, Default)]
pub(crate) struct Findings {
    pub values: Vec<Problem>,
    /// Every multi-line string, in order, for `multiline.rs` to read.
    pub multiline: Vec<MultiLine>,
}

/// Scans `text`; a refusal is the one problem that stops it.
pub(crate) fn scan(text: &str) -> Result<Findings, Box<Problem>> {
    let mut s = Scanner::new(text);
    s.run()?;
    if s.g.count > MAX_SYNTAX_ERRORS {
        let (at, len, what) = s.g.errors[0];
        return Err(Box::new(syntax((at, len), what).label("the first of many syntax errors").help(format!(
            "kiln stops reading a recipe with more than {MAX_SYNTAX_ERRORS} syntax errors; is this file a KDL recipe?"
        ))));
    }
    // After the scan, whose own refusals (nesting, say) say more about the recipe.
    if let Some((at, _)) = text.match_indices('{').nth(MAX_BRACES) {
        return Err(Box::new(too_many_braces(at)));
    }
    Ok(Findings { values: s.values, multiline: s.multiline })
}

fn syntax(span: (usize, usize), message: &str) -> Problem {
    Problem::new(Code::RecipeSyntax, span.into(), format!("invalid KDL: {message}"))
}

struct Scanner<'t> {
    text: &'t str,
    b: &'t [u8],
    pos: usize,
    line_start: usize,
    line: usize,
    g: Grammar,
    values: Vec<Problem>,
    multiline: Vec<MultiLine>,
}

type Step = Result<(), Box<Problem>>;

impl<'t> Scanner<'t> {
    fn new(text: &'t str) -> Self {
        Scanner {
            text,
            b: text.as_bytes(),
            pos: 0,
            line_start: 0,
            line: 1,
            g: Grammar::new(),
            values: Vec::new(),
            multiline: Vec::new(),
        }
    }

    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    fn starts(&self, s: &str) -> bool {
        self.b[self.pos..].starts_with(s.as_bytes())
    }

    fn char_at(&self, i: usize) -> char {
        self.text[i..].chars().next().unwrap_or('\0')
    }

    /// Moves past one character, checking the limits and the characters KDL or kiln refuse.
    fn bump(&mut self) -> Step {
        let c = self.char_at(self.pos);
        let start = self.pos;
        if start >= MAX_RECIPE_BYTES {
            return Err(Box::new(self.too_big()));
        }
        match c {
            '\n' => {
                self.pos += 1;
                self.line += 1;
                self.line_start = self.pos;
                return Ok(());
            }
            '\r' if self.at(start + 1) == b'\n' => {}
            '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => {
                return Err(Box::new(
                    Problem::new(
                        Code::RecipeLineBreak,
                        (start, c.len_utf8()).into(),
                        format!(
                            "the recipe has a line break kiln does not read ({})",
                            crate::diag::shown(&c.to_string())
                        ),
                    )
                    .label("unsupported line break")
                    .help("kiln reads recipes whose lines end with LF or CRLF; save the file with those"),
                ));
            }
            '\u{FEFF}' if start == 0 => {}
            c if disallowed(c) => {
                return Err(Box::new(
                    syntax((start, c.len_utf8()), &format!("the character U+{:04X} is not allowed in KDL", c as u32))
                        .label("not allowed")
                        .help("remove it; write it in a quoted string as an escape such as \\u{1b} if it is meant"),
                ));
            }
            _ => {}
        }
        self.pos += c.len_utf8();
        if self.pos - self.line_start > MAX_LINE_BYTES {
            return Err(Box::new(self.too_wide()));
        }
        Ok(())
    }

    fn too_wide(&self) -> Problem {
        let end = self.text[self.line_start..].find('\n').map_or(self.text.len(), |n| self.line_start + n);
        Problem::new(
            Code::RecipeTooLong,
            (self.line_start, crate::diag::clip_len(self.text, self.line_start)).into(),
            format!("line {} is {} bytes long", self.line, end - self.line_start),
        )
        .label(format!("longer than {MAX_LINE_BYTES} bytes"))
        .help(format!(
            "kiln reads lines of up to {MAX_LINE_BYTES} bytes; split a long value over several lines with a multi-line string (\"\"\")"
        ))
    }

    fn too_big(&self) -> Problem {
        Problem::new(
            Code::RecipeTooLong,
            (self.line_start, crate::diag::clip_len(self.text, self.line_start)).into(),
            format!("the recipe is {} bytes long", self.text.len()),
        )
        .label(format!("the limit of {MAX_RECIPE_BYTES} bytes is reached on this line"))
        .help(format!("kiln reads recipes of up to {MAX_RECIPE_BYTES} bytes (256 KiB)"))
    }

    fn run(&mut self) -> Step {
        if self.text.starts_with('\u{FEFF}') {
            self.bump()?;
        }
        while self.pos < self.b.len() {
            let start = self.pos;
            let c = self.at(start);
            let tok = match c {
                b'\n' | b'\r' => {
                    self.newline()?;
                    Tok::Newline
                }
                b'"' | b'#' => self.string_or_keyword()?,
                b'/' if self.at(start + 1) == b'/' => {
                    self.line_comment()?;
                    Tok::Newline
                }
                b'/' if self.at(start + 1) == b'*' => {
                    self.block_comment()?;
                    Tok::Space
                }
                b'/' if self.at(start + 1) == b'-' => {
                    self.bump()?;
                    self.bump()?;
                    Tok::Slashdash
                }
                b'\\' => self.escline()?,
                b'{' | b'}' | b'(' | b')' | b'=' | b';' | b'[' | b']' | b'/' => {
                    self.bump()?;
                    match c {
                        b'{' => Tok::Open,
                        b'}' => Tok::Close,
                        b'(' => Tok::Paren,
                        b')' => Tok::Unparen,
                        b'=' => Tok::Equals,
                        b';' => Tok::Semi,
                        _ => Tok::Junk,
                    }
                }
                _ if space(self.char_at(start)) => {
                    self.bump()?;
                    Tok::Space
                }
                _ => self.bare()?,
            };
            self.g.token(tok, start, self.pos - start)?;
        }
        Ok(())
    }

    fn newline(&mut self) -> Step {
        if self.at(self.pos) == b'\r' {
            self.bump()?;
        }
        self.bump()
    }

    /// A line break (LF or CRLF) at the current position?
    fn at_newline(&self) -> bool {
        let c = self.at(self.pos);
        c == b'\n' || (c == b'\r' && self.at(self.pos + 1) == b'\n')
    }

    /// `\` outside strings: a line continuation, which must end the line.
    fn escline(&mut self) -> Result<Tok, Box<Problem>> {
        let start = self.pos;
        self.bump()?;
        while self.pos < self.b.len() && space(self.char_at(self.pos)) {
            self.bump()?;
        }
        if self.pos >= self.b.len() {
            return Ok(Tok::Space);
        }
        if self.at_newline() {
            self.newline()?;
            return Ok(Tok::Space);
        }
        self.g.error(start, 1, "`\\` continues a node on the next line and must end its line");
        Ok(Tok::Junk)
    }

    /// A run of identifier characters: an identifier, a number or a misspelt keyword.
    fn bare(&mut self) -> Result<Tok, Box<Problem>> {
        let start = self.pos;
        while self.pos < self.b.len() && ident_char(self.char_at(self.pos)) {
            self.bump()?;
        }
        if self.pos == start {
            // A character KDL allows nowhere in code (bump refused the rest).
            self.bump()?;
            return Ok(Tok::Junk);
        }
        let word = &self.text[start..self.pos];
        if looks_numeric(word) {
            if let Some(p) = super::number::check(word, start) {
                self.values.push(p);
            }
            return Ok(Tok::Value);
        }
        if matches!(word, "true" | "false" | "null" | "inf" | "-inf" | "nan") {
            self.values.push(
                syntax((start, word.len()), &format!("`{word}` is a keyword and needs a `#`"))
                    .label(format!("write #{word}"))
                    .help(format!("KDL 2 writes keywords with a `#`: #{word}; or quote it if it is text: \"{word}\"")),
            );
        }
        Ok(Tok::Str)
    }
}

/// Unicode spaces of KDL 2 (not line breaks).
pub(crate) fn space(c: char) -> bool {
    matches!(c, '\t' | ' ' | '\u{A0}' | '\u{1680}' | '\u{2000}'..='\u{200A}' | '\u{202F}' | '\u{205F}' | '\u{3000}')
}

/// Code points KDL 2 allows nowhere in a document (line breaks are handled on their own).
fn disallowed(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{8}' | '\u{E}'..='\u{1F}' | '\u{7F}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

fn ident_char(c: char) -> bool {
    !(space(c)
        || disallowed(c)
        || matches!(c, '\\' | '/' | '(' | ')' | '{' | '}' | ';' | '[' | ']' | '"' | '#' | '=' | '\n' | '\r')
        || matches!(c, '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'))
}

pub(crate) fn too_deep_commented(at: usize) -> Problem {
    Problem::new(
        Code::RecipeTooDeep,
        (at, 1).into(),
        format!("the recipe has commented-out blocks nested more than {MAX_COMMENTED_DEPTH} levels deep"),
    )
    .label(format!("commented-out block {} starts here", MAX_COMMENTED_DEPTH + 1))
    .help(format!(
        "kiln reads up to {MAX_COMMENTED_DEPTH} commented-out (`/-`) blocks inside each other; delete the inner ones, or comment out only the outermost"
    ))
}

/// Words KDL reads as numbers: a digit first, after an optional sign and dot.
fn looks_numeric(w: &str) -> bool {
    let w = w.strip_prefix(['+', '-']).unwrap_or(w);
    let w = w.strip_prefix('.').unwrap_or(w);
    w.starts_with(|c: char| c.is_ascii_digit())
}

/// More `{` than [`MAX_BRACES`]: the first one past the limit.
fn too_many_braces(at: usize) -> Problem {
    Problem::new(Code::RecipeTooDeep, (at, 1).into(), format!("the recipe has more than {MAX_BRACES} `{{`"))
        .label(format!("`{{` number {} is here", MAX_BRACES + 1))
        .help(format!(
            "kiln reads recipes with up to {MAX_BRACES} `{{`, counted everywhere (comments and strings too); recipes need a few dozen"
        ))
}

pub(crate) fn too_deep(at: usize, len: usize) -> Problem {
    Problem::new(Code::RecipeTooDeep, (at, len).into(), format!("the recipe is nested more than {MAX_DEPTH} levels deep"))
        .label(format!("level {} starts here", MAX_DEPTH + 1))
        .help(format!(
            "kiln reads recipes nested up to {MAX_DEPTH} levels (blocks, `/-` in a row and `/* */` comments inside each other all count); recipes need 3 or 4"
        ))
}

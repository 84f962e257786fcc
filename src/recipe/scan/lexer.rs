//! The scan's lexer for text that is not code: comments (`//`, nested `/* */`) and strings
//! (quoted with escapes, multi-line, raw with any number of `#`), and `#` keywords. Each is
//! read exactly and refused when not well formed; a string or comment that the parser's
//! recovery might read as code, on the line of a syntax error, is refused too.

use super::{MAX_DEPTH, Scanner, Step, ident_char, space, syntax, too_deep};
use crate::diag::Problem;
use crate::recipe::grammar::Tok;
use crate::recipe::multiline::MultiLine;

impl<'t> Scanner<'t> {
    pub(super) fn line_comment(&mut self) -> Step {
        while self.pos < self.b.len() && !self.at_newline() {
            self.bump()?;
        }
        if self.pos < self.b.len() {
            self.newline()?;
        }
        Ok(())
    }

    /// `/* … */`, nested; no strings inside, as KDL reads them.
    pub(super) fn block_comment(&mut self) -> Step {
        let open = self.pos;
        let line = self.line;
        let mut depth = 0;
        let mut brace = false;
        while self.pos < self.b.len() {
            if self.starts("/*") {
                depth += 1;
                if self.g.depth() + depth > MAX_DEPTH {
                    return Err(Box::new(too_deep(self.pos, 2)));
                }
                self.bump()?;
            } else if self.starts("*/") {
                depth -= 1;
                self.bump()?;
                if depth == 0 {
                    self.bump()?;
                    return self.check_suspect(open, brace || self.line != line);
                }
            } else {
                brace |= self.at(self.pos) == b'{';
            }
            self.bump()?;
        }
        Err(Box::new(
            syntax((open, 2), "this comment is never closed")
                .label("`/*` without its `*/`")
                .help("close the comment with `*/`; comments nest, so each `/*` inside it needs its own `*/`"),
        ))
    }

    /// A string or comment that the parser might read as code, after a syntax error on its line.
    fn check_suspect(&self, _open: usize, risky: bool) -> Step {
        match self.g.suspect {
            true if risky => {
                let (at, len, what) = self.g.errors[self.g.errors.len() - 1];
                Err(Box::new(
                    syntax((at, len), what)
                        .label("here")
                        .help("fix this error first: kiln reads no further on a line with a syntax error"),
                ))
            }
            _ => Ok(()),
        }
    }

    /// `"…"`, `"""…"""`, `#"…"#` (any number of `#`), or a keyword such as `#true`.
    pub(super) fn string_or_keyword(&mut self) -> Result<Tok, Box<Problem>> {
        let open = self.pos;
        let hashes = self.b[open..].iter().take_while(|&&c| c == b'#').count();
        if hashes > 0 && self.at(open + hashes) != b'"' {
            return self.keyword(open);
        }
        let safe = matches!(
            self.g.prev,
            Tok::Space
                | Tok::Newline
                | Tok::Semi
                | Tok::Open
                | Tok::Paren
                | Tok::Unparen
                | Tok::Equals
                | Tok::Slashdash
        ) && !self.g.prev_bad;
        if !safe {
            return Err(Box::new(
                syntax((open, hashes + 1), "a string must be separated from what comes before it")
                    .label("no space before this string")
                    .help("put a space before the string, or quote the whole value"),
            ));
        }
        let line = self.line;
        let multi = self.b[open + hashes..].starts_with(b"\"\"\"")
            && (hashes == 0 || matches!(self.at(open + hashes + 3), b'\n' | b'\r'));
        let brace = match (hashes, multi) {
            (0, false) => self.quoted(open)?,
            (0, true) => self.multi_quoted(open)?,
            (n, false) => self.raw(open, n)?,
            (n, true) => self.multi_raw(open, n)?,
        };
        self.check_suspect(open, brace || self.line != line)?;
        Ok(Tok::Str)
    }

    fn keyword(&mut self, open: usize) -> Result<Tok, Box<Problem>> {
        self.bump()?;
        while self.pos < self.b.len() && ident_char(self.char_at(self.pos)) {
            self.bump()?;
        }
        let word = &self.text[open..self.pos];
        if !matches!(word, "#true" | "#false" | "#null" | "#inf" | "#-inf" | "#nan") {
            let what = format!("`{}` is not a KDL keyword", crate::diag::shown(word));
            self.values.push(
                syntax((open, word.len()), &what)
                    .label("not a keyword")
                    .help("the keywords are #true, #false, #null, #inf, #-inf and #nan; quote text: \"…\""),
            );
            self.g.error(open, word.len(), "`#` starts a keyword (#true, #false, #null) or a raw string (#\"…\"#)");
        }
        Ok(Tok::Value)
    }

    fn unclosed(&self, open: usize, len: usize, message: &str, help: &str) -> Problem {
        let end = self.text[open..].find('\n').map_or(self.text.len(), |n| open + n);
        syntax((open, len.max(end - open).min(crate::diag::clip_len(self.text, open))), message)
            .label("not closed on this line")
            .help(help.to_string())
    }

    /// A single-line quoted string; returns whether it holds a `{`.
    fn quoted(&mut self, open: usize) -> Result<bool, Box<Problem>> {
        self.bump()?;
        let mut brace = false;
        loop {
            if self.pos >= self.b.len() || self.at_newline() {
                return Err(Box::new(self.unclosed(open, 1, "this string is not closed on its line", QUOTED_HELP)));
            }
            match self.at(self.pos) {
                b'"' => {
                    self.bump()?;
                    return Ok(brace);
                }
                b'\\' => {
                    self.bump()?;
                    self.escape()?;
                }
                c => {
                    brace |= c == b'{';
                    self.bump()?;
                }
            }
        }
    }

    /// After a `\` in a quoted string: the escaped character, or all the spaces and line breaks
    /// of a whitespace escape (the only way a single-line string crosses a line).
    fn escape(&mut self) -> Step {
        if self.pos >= self.b.len() {
            return Ok(());
        }
        if !self.at_newline() && !space(self.char_at(self.pos)) {
            return self.bump();
        }
        while self.pos < self.b.len() && (self.at_newline() || space(self.char_at(self.pos))) {
            if self.at_newline() { self.newline()? } else { self.bump()? }
        }
        Ok(())
    }

    /// `"""` and a line break, up to the first `"""` not escaped; `multiline.rs` checks the
    /// rest (the closing quotes alone on their line, the indentation) and reads the value.
    fn multi_quoted(&mut self, open: usize) -> Result<bool, Box<Problem>> {
        for _ in 0..3 {
            self.bump()?;
        }
        if !self.at_newline() {
            // A line break kiln does not read is refused as such.
            if self.pos < self.b.len() {
                self.bump()?;
            }
            return Err(Box::new(
                syntax((open, 3), "a multi-line string starts with `\"\"\"` and a line break")
                    .label("text after the opening `\"\"\"`")
                    .help("start the text on the next line, or use a single-line string: \"…\""),
            ));
        }
        let mut brace = false;
        while self.pos < self.b.len() {
            match self.at(self.pos) {
                b'"' if self.starts("\"\"\"") => {
                    for _ in 0..3 {
                        self.bump()?;
                    }
                    self.multiline.push(MultiLine { start: open, end: self.pos, hashes: 0 });
                    return Ok(brace);
                }
                b'\\' => {
                    self.bump()?;
                    self.escape()?;
                }
                b'\r' | b'\n' => self.newline()?,
                c => {
                    brace |= c == b'{';
                    self.bump()?;
                }
            }
        }
        Err(Box::new(self.unclosed(open, 3, "this multi-line string is never closed", MULTI_HELP)))
    }

    /// `#"…"#` with `n` hashes, on one line.
    fn raw(&mut self, open: usize, n: usize) -> Result<bool, Box<Problem>> {
        for _ in 0..=n {
            self.bump()?;
        }
        let mut brace = false;
        loop {
            if self.pos >= self.b.len() || self.at_newline() {
                return Err(Box::new(self.unclosed(
                    open,
                    n + 1,
                    "this raw string is not closed on its line",
                    RAW_HELP,
                )));
            }
            let c = self.at(self.pos);
            if c == b'"' && self.closes(self.pos + 1, n) {
                for _ in 0..=n {
                    self.bump()?;
                }
                return Ok(brace);
            }
            brace |= c == b'{';
            self.bump()?;
        }
    }

    /// `#"""` and a line break, up to the first `"""#` (as many `#` as it opened with).
    fn multi_raw(&mut self, open: usize, n: usize) -> Result<bool, Box<Problem>> {
        for _ in 0..n + 3 {
            self.bump()?;
        }
        let mut brace = false;
        while self.pos < self.b.len() {
            if self.at_newline() {
                self.newline()?;
                continue;
            }
            if self.starts("\"\"\"") && self.closes(self.pos + 3, n) {
                for _ in 0..n + 3 {
                    self.bump()?;
                }
                self.multiline.push(MultiLine { start: open, end: self.pos, hashes: n });
                return Ok(brace);
            }
            brace |= self.at(self.pos) == b'{';
            self.bump()?;
        }
        Err(Box::new(self.unclosed(open, n + 3, "this raw multi-line string is never closed", MULTI_HELP)))
    }

    /// `n` hashes at `i`?
    fn closes(&self, i: usize, n: usize) -> bool {
        self.b.len() >= i + n && self.b[i..i + n].iter().all(|&c| c == b'#')
    }
}

const QUOTED_HELP: &str = "close it with `\"` on the same line; a string over several lines starts with `\"\"\"` and a line break and ends with `\"\"\"` on a line of its own";
const RAW_HELP: &str = "close it with `\"` and as many `#` as it starts with, on the same line";
const MULTI_HELP: &str = "end it with `\"\"\"` (and the opening number of `#`) alone on a line";

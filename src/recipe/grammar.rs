//! The node grammar of KDL 2, followed token by token for the scan in front of the parser
//! (`scan/`): it counts nesting and syntax errors, which is what costs the parser stack.
//!
//! It is not a parser: it keeps no values, only where it is within the current node, and after
//! an error it carries on as the parser would, one node later.

use super::scan::{MAX_COMMENTED_DEPTH, MAX_DEPTH, too_deep, too_deep_commented};
use crate::diag::Problem;

/// The kind of token the lexer hands over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Tok {
    Space,
    /// A line break or a `//` comment.
    Newline,
    Semi,
    Open,
    Close,
    Paren,
    Unparen,
    Equals,
    Slashdash,
    /// A string: identifier, quoted or raw.
    Str,
    /// A number or keyword (`#true`): a value that cannot be a name.
    Value,
    Junk,
}

/// Where the grammar is, within the current block.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Between nodes.
    Line,
    /// After a node's name or an entry; `key` when that entry may be a property's key.
    Entries {
        spaced: bool,
        key: bool,
    },
    /// After `=`: the property's value.
    Value,
    /// Inside `(…)`: the type's name, then `)`; `node` when it annotates a node.
    TypeName {
        node: bool,
    },
    TypeClose {
        node: bool,
    },
    /// After `(type)`: what it annotates.
    Typed {
        node: bool,
    },
    /// After a node's `{ … }`.
    AfterBlock,
}

/// An open block: the nesting it adds, the `/-` in front of its node, and whether it is
/// commented out (its node or the block itself follows a `/-`).
struct Block {
    weight: usize,
    node_chain: usize,
    commented: bool,
}

pub(crate) struct Grammar {
    state: State,
    blocks: Vec<Block>,
    nesting: usize,
    /// Open blocks that are commented out. The parser reads a commented-out block twice, so
    /// each one inside another doubles the time it takes over what they hold.
    commented: usize,
    /// `/-` in a row, and those in front of the current node (held while its block is open).
    chain: usize,
    node_chain: usize,
    /// A `/-` waits for what it comments out.
    slashdash: bool,
    /// A `/-` was seen in the current node, even where an error followed it: the parser may
    /// still read the node's block as commented out, so the scan counts it as such.
    node_slashdash: bool,
    /// The token before the current one, and whether it was an error.
    pub prev: Tok,
    pub prev_bad: bool,
    /// A syntax error on this line.
    pub suspect: bool,
    /// The first syntax errors (one more than are tolerated), with where they are.
    pub errors: Vec<(usize, usize, &'static str)>,
    pub count: usize,
}

impl Grammar {
    pub fn new() -> Self {
        Grammar {
            state: State::Line,
            blocks: Vec::new(),
            nesting: 0,
            commented: 0,
            chain: 0,
            node_chain: 0,
            slashdash: false,
            node_slashdash: false,
            prev: Tok::Newline,
            prev_bad: false,
            suspect: false,
            errors: Vec::new(),
            count: 0,
        }
    }

    /// Nesting so far, `/-` in a row included.
    pub fn depth(&self) -> usize {
        self.nesting + self.chain
    }

    pub fn error(&mut self, at: usize, len: usize, what: &'static str) {
        self.suspect = true;
        self.count += 1;
        if self.errors.len() <= super::scan::MAX_SYNTAX_ERRORS {
            self.errors.push((at, len, what));
        }
    }

    pub fn token(&mut self, tok: Tok, at: usize, len: usize) -> Result<(), Box<Problem>> {
        let before = self.count;
        if tok == Tok::Newline {
            self.suspect = false;
        }
        self.step(tok, at, len)?;
        self.prev = tok;
        self.prev_bad = self.count > before;
        Ok(())
    }

    fn step(&mut self, tok: Tok, at: usize, len: usize) -> Result<(), Box<Problem>> {
        use State::*;
        if tok == Tok::Slashdash {
            return self.slashdash(at, len);
        }
        let blank = matches!(tok, Tok::Space | Tok::Newline);
        if blank && self.slashdash {
            return Ok(());
        }
        let chain = if blank { 0 } else { std::mem::take(&mut self.chain) };
        let commented = !blank && std::mem::take(&mut self.slashdash);
        match (self.state, tok) {
            (_, Tok::Open) => return self.open(at, chain, commented),
            (_, Tok::Close) => self.close(at),
            (Line, Tok::Space | Tok::Newline | Tok::Semi) => {}
            (Line, Tok::Str | Tok::Value | Tok::Paren) => {
                self.node_chain = chain;
                self.state = match tok {
                    Tok::Paren => TypeName { node: true },
                    _ => Entries { spaced: false, key: false },
                };
                if tok == Tok::Value {
                    self.error(at, len, "a node's name must be a string");
                }
            }
            (Line, _) => self.error(at, len, "a node must start with its name"),
            (Entries { .. } | AfterBlock, Tok::Newline | Tok::Semi) => self.end_node(),
            (Entries { key, .. }, Tok::Space) => self.state = Entries { spaced: true, key },
            (Entries { spaced, .. }, Tok::Str | Tok::Value | Tok::Paren) => {
                if !spaced && !commented {
                    self.error(at, len, "entries of a node are separated by spaces");
                }
                self.state = match tok {
                    Tok::Paren => TypeName { node: false },
                    _ => Entries { spaced: false, key: tok == Tok::Str },
                };
            }
            (Entries { key: true, .. }, Tok::Equals) if !commented => self.state = Value,
            (Entries { .. }, _) => {
                self.error(at, len, "unexpected here; a property is written key=value");
                self.state = Entries { spaced: false, key: false };
            }
            (Value, Tok::Space) => {}
            (Value, Tok::Str | Tok::Value) => self.state = Entries { spaced: false, key: false },
            (Value, Tok::Paren) => self.state = TypeName { node: false },
            (Value, _) => self.recover(tok, at, len, "`=` must be followed by the property's value")?,
            (TypeName { .. } | TypeClose { .. } | Typed { .. }, Tok::Space) => {}
            (TypeName { node }, Tok::Str) => self.state = TypeClose { node },
            (TypeClose { node }, Tok::Unparen) => self.state = Typed { node },
            (TypeName { .. } | TypeClose { .. }, _) => {
                self.recover(tok, at, len, "a type annotation is a name in parentheses: (name)")?
            }
            (Typed { node: false }, Tok::Str | Tok::Value) | (Typed { node: true }, Tok::Str) => {
                self.state = Entries { spaced: false, key: false }
            }
            (Typed { .. }, _) => {
                self.recover(tok, at, len, "a type annotation must be followed by what it annotates")?
            }
            (AfterBlock, Tok::Space) => {}
            (AfterBlock, _) => self.error(at, len, "a node's block comes after its arguments and properties"),
        }
        Ok(())
    }

    /// Counts an error, then reads the token as the next entry of the node.
    fn recover(&mut self, tok: Tok, at: usize, len: usize, what: &'static str) -> Result<(), Box<Problem>> {
        self.error(at, len, what);
        self.state = State::Entries { spaced: true, key: false };
        if matches!(tok, Tok::Str | Tok::Value | Tok::Paren | Tok::Equals) {
            self.state = State::Entries { spaced: false, key: false };
            return Ok(());
        }
        self.step(tok, at, len)
    }

    fn slashdash(&mut self, at: usize, len: usize) -> Result<(), Box<Problem>> {
        self.chain += 1;
        if self.depth() > MAX_DEPTH {
            return Err(Box::new(too_deep(at, len)));
        }
        match self.state {
            State::Line | State::AfterBlock | State::Entries { spaced: true, .. } => {}
            State::Entries { .. } => self.error(at, len, "`/-` must be separated from what comes before it"),
            _ => self.error(at, len, "`/-` cannot stand here"),
        }
        if let State::Entries { .. } = self.state {
            self.state = State::Entries { spaced: true, key: false };
        }
        self.slashdash = true;
        self.node_slashdash = true;
        Ok(())
    }

    fn open(&mut self, at: usize, chain: usize, commented: bool) -> Result<(), Box<Problem>> {
        match self.state {
            State::Entries { .. } => {}
            State::AfterBlock if commented => {}
            State::AfterBlock => self.error(at, 1, "a node has one block; comment out others with /-"),
            State::Line => self.error(at, 1, "a block must follow a node's name"),
            _ => self.error(at, 1, "a block cannot stand here"),
        }
        let weight = 1 + chain + self.node_chain;
        if self.nesting + weight > MAX_DEPTH {
            return Err(Box::new(too_deep(at, 1)));
        }
        let is_commented = commented || chain > 0 || self.node_chain > 0 || std::mem::take(&mut self.node_slashdash);
        if is_commented {
            if self.commented + 1 > MAX_COMMENTED_DEPTH {
                return Err(Box::new(too_deep_commented(at)));
            }
            self.commented += 1;
        }
        self.nesting += weight;
        self.blocks.push(Block { weight, node_chain: self.node_chain, commented: is_commented });
        self.state = State::Line;
        self.node_chain = 0;
        Ok(())
    }

    fn close(&mut self, at: usize) {
        if !matches!(self.state, State::Line | State::Entries { .. } | State::AfterBlock) {
            self.error(at, 1, "the node ends before it is complete");
        }
        // After an error on this line the parser may skip this `}`: nesting is kept, not undone.
        if self.suspect {
            self.state = State::AfterBlock;
            return;
        }
        match self.blocks.pop() {
            Some(b) => {
                self.nesting -= b.weight;
                self.commented -= usize::from(b.commented);
                self.node_chain = b.node_chain;
                self.state = State::AfterBlock;
            }
            None => {
                self.error(at, 1, "`}` without a `{` before it");
                self.state = State::Line;
            }
        }
    }

    fn end_node(&mut self) {
        self.state = State::Line;
        self.node_chain = 0;
        self.node_slashdash = false;
    }
}

//! The recipe: `kiln.kdl` parsed into typed values that keep their source spans.
//!
//! This stage only checks what can be checked from the text alone (node names, value types,
//! arity, platforms, paths). Everything that needs the file system (missing sources, duplicate
//! destinations after expanding directories) is checked when the plan is resolved, with the
//! same spans, so all problems are still reported together.

mod grammar;
mod multiline;
mod number;
mod parse;
mod scan;

pub use parse::{c_define_ok, c_lib_ok, document, go_ldflags_ok, parse, parse_partial, refusal, refused_c_flag};

use crate::oci::platform::Platform;
use miette::SourceSpan;
use std::collections::BTreeMap;

/// The latest build epoch kiln accepts: 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
pub const MAX_EPOCH: u64 = 253_402_300_799;

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: SourceSpan,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: SourceSpan) -> Self {
        Spanned { value, span }
    }
}

/// Layer compression, recorded in every image so its digests stay explainable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "algorithm")]
pub enum Compression {
    Gzip {
        level: u32,
        #[serde(default, skip_serializing_if = "Encoder::is_stream")]
        encoder: Encoder,
    },
    Zstd {
        level: i32,
        #[serde(default, skip_serializing_if = "Encoder::is_stream")]
        encoder: Encoder,
    },
}

/// How a layer is fed to its compressor. Each writes other bytes, so each is part of the
/// compression's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoder {
    /// One stream on one thread: kiln's first encoder, kept so that images made with it
    /// rebuild to the same bytes (and the plans that name it keep their layer ids).
    #[default]
    Stream,
    /// On every core, with bytes that do not depend on how many: gzip in independent 1 MiB
    /// blocks joined into one member, zstd in its multi-worker format.
    Parallel,
}

impl Encoder {
    pub fn is_stream(&self) -> bool {
        *self == Encoder::Stream
    }
}

impl Compression {
    pub const DEFAULT: Compression = Compression::Gzip { level: 6, encoder: Encoder::Parallel };

    /// `gzip;level=6;blocks=1MiB`, the form written to the `dev.kiln.compression` annotation:
    /// `gzip;level=6` and `zstd;level=3` name the stream encoder, `;blocks=1MiB` (gzip) and
    /// `;workers` (zstd) the parallel one.
    pub fn describe(self) -> String {
        match self {
            Compression::Gzip { level, encoder: Encoder::Stream } => format!("gzip;level={level}"),
            Compression::Gzip { level, encoder: Encoder::Parallel } => format!("gzip;level={level};blocks=1MiB"),
            Compression::Zstd { level, encoder: Encoder::Stream } => format!("zstd;level={level}"),
            Compression::Zstd { level, encoder: Encoder::Parallel } => format!("zstd;level={level};workers"),
        }
    }

    /// The compression [`Compression::describe`] wrote as `s`, when it is one.
    pub fn parse(s: &str) -> Option<Compression> {
        let (kind, rest) = s.split_once(";level=")?;
        let (level, encoder) = match rest.split_once(';') {
            None => (rest, Encoder::Stream),
            Some((level, "blocks=1MiB")) if kind == "gzip" => (level, Encoder::Parallel),
            Some((level, "workers")) if kind == "zstd" => (level, Encoder::Parallel),
            Some(_) => return None,
        };
        match kind {
            "gzip" => Some(Compression::Gzip { level: level.parse().ok()?, encoder }),
            "zstd" => Some(Compression::Zstd { level: level.parse().ok()?, encoder }),
            _ => None,
        }
    }

    pub fn encoder(self) -> Encoder {
        match self {
            Compression::Gzip { encoder, .. } | Compression::Zstd { encoder, .. } => encoder,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Defaults {
    /// `debian mirror="…" suite="…"`: where distroless bases' packages come from.
    pub debian_mirror: Option<Spanned<String>>,
    pub debian_suite: Option<Spanned<String>>,
    pub platforms: Option<Vec<Spanned<Platform>>>,
    pub compression: Option<Spanned<Compression>>,
    pub epoch: Option<Spanned<u64>>,
}

/// What an image starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum Base {
    Scratch,
    /// Built by kiln from pinned Debian packages.
    Distroless(crate::inputs::debian::Flavour),
    /// An image in an OCI layout on disk (path relative to the recipe), by tag or the only one.
    OciLayout {
        path: String,
        tag: Option<String>,
    },
    /// An image in a registry, by digest (`host/repo@sha256:…`).
    Registry(String),
}

/// Ownership and permissions given in the recipe (`mode=`, `uid=`, `gid=`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Perms {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

/// One node that puts files into an image.
#[derive(Debug, Clone)]
pub enum Content {
    /// `copy SRC DEST { exclude … }`: a file or a directory tree; SRC may hold `{arch}` and
    /// friends. `exclude` holds dockerignore patterns, relative to SRC, applied when planning.
    Copy { src: Spanned<String>, dest: Spanned<String>, perms: Perms, exclude: Vec<Spanned<String>>, span: SourceSpan },
    /// `file DEST "content"`: a file written from the recipe itself.
    File { dest: Spanned<String>, content: String, perms: Perms, span: SourceSpan },
    /// `rust "PACKAGE" { … }`: a binary cross-compiled from a cargo package.
    Rust(RustSpec),
    /// `c "NAME" { sources … }`: a C program compiled and linked statically with zig.
    C(CSpec),
    /// `go "./cmd/NAME" { … }`: a Go main package built with `CGO_ENABLED=0`.
    Go(GoSpec),
}

/// A `c` node: the sources of one C program and how to compile it.
#[derive(Debug, Clone)]
pub struct CSpec {
    /// The program's name: its default destination is `/usr/local/bin/<name>`.
    pub name: Spanned<String>,
    /// Files or glob patterns, relative to the recipe.
    pub sources: Vec<Spanned<String>>,
    /// Glob patterns taken out of what `sources` match.
    pub exclude: Vec<Spanned<String>>,
    /// Include directories (`-I`), relative to the recipe.
    pub include: Vec<Spanned<String>>,
    /// `-D` macros: `NAME` or `NAME=value`.
    pub define: Vec<String>,
    /// Further compiler flags; none may name a path.
    pub flags: Vec<String>,
    /// Libraries linked statically (`-l`).
    pub libs: Vec<String>,
    pub dest: Option<Spanned<String>>,
    pub span: SourceSpan,
}

/// A `go` node: one main package of a Go module.
#[derive(Debug, Clone)]
pub struct GoSpec {
    /// The package's directory, relative to the recipe (`./cmd/agent`).
    pub package: Spanned<String>,
    pub dest: Option<Spanned<String>>,
    pub tags: Vec<String>,
    /// Added after kiln's own `-s -w -buildid=`.
    pub ldflags: Vec<String>,
    pub span: SourceSpan,
}

/// A `rust` node: which binary of which cargo package, built how, installed where.
#[derive(Debug, Clone)]
pub struct RustSpec {
    pub package: Spanned<String>,
    pub bin: Option<Spanned<String>>,
    pub features: Vec<String>,
    pub no_default_features: bool,
    pub profile: String,
    /// Defaults to `/usr/local/bin/<bin>`, decided once the binary's name is known.
    pub dest: Option<Spanned<String>>,
    /// `Cargo.toml` relative to the recipe; defaults to the recipe's directory.
    pub manifest: Option<Spanned<String>>,
    /// Per-platform target triple overrides.
    pub targets: Vec<(Platform, Spanned<String>)>,
    pub span: SourceSpan,
}

impl Content {
    /// Where the node writes, and the span to point at for it.
    pub fn dest_span(&self) -> SourceSpan {
        match self {
            Content::Copy { dest, .. } | Content::File { dest, .. } => dest.span,
            Content::Rust(r) => r.dest.as_ref().map(|d| d.span).unwrap_or(r.package.span),
            Content::C(c) => c.dest.as_ref().map(|d| d.span).unwrap_or(c.name.span),
            Content::Go(g) => g.dest.as_ref().map(|d| d.span).unwrap_or(g.package.span),
        }
    }
}

/// One `image "NAME" { … }` block.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub name: Spanned<String>,
    pub base: Spanned<Base>,
    pub platforms: Option<Vec<Spanned<Platform>>>,
    pub contents: Vec<Content>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    /// In recipe order; a later `env` of the same name replaces an earlier one.
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    /// Where `user` is written, for problems with it.
    pub user_span: Option<SourceSpan>,
    pub workdir: Option<String>,
    /// `8080/tcp` form, sorted and de-duplicated.
    pub expose: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub span: SourceSpan,
}

impl Recipe {
    pub fn debian_mirror(&self) -> &str {
        self.defaults.debian_mirror.as_ref().map(|m| m.value.as_str()).unwrap_or(crate::inputs::debian::DEFAULT_MIRROR)
    }
    pub fn debian_suite(&self) -> &str {
        self.defaults.debian_suite.as_ref().map(|m| m.value.as_str()).unwrap_or(crate::inputs::debian::DEFAULT_SUITE)
    }
}

/// The recipe's `layers { budget N; share-min BYTES; layer "NAME" { path …; volatility … } }` block.
#[derive(Debug, Clone, Default)]
pub struct LayerRules {
    pub budget: Option<usize>,
    /// The fewest bytes of files that images hold alike for kiln to give them a shared layer.
    pub share_min: Option<u64>,
    pub named: Vec<NamedLayer>,
}

/// A whole recipe.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub schema: u32,
    pub defaults: Defaults,
    pub layers: LayerRules,
    pub images: Vec<ImageSpec>,
}

/// How often a layer is expected to change; the stacking order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Volatility {
    Base,
    Rare,
    Data,
    Platform,
    Binary,
    Often,
    Config,
}

/// A `layer "NAME" { path "/prefix/" … }` from the recipe's `layers` block.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedLayer {
    pub name: String,
    pub paths: Vec<String>,
    pub volatility: Volatility,
}

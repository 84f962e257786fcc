//! The top level of a recipe: `kiln` (the schema version), `defaults` with its `platforms`,
//! `compression`, `epoch` and `debian`, `layers`, and the `image` blocks, each checked for
//! being given once where that applies, and for the nodes a recipe cannot go without.

use super::Parser;
use super::node::{args, name_span, props};
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::recipe::{Compression, Defaults, Encoder, ImageSpec, LayerRules, MAX_EPOCH, Recipe, Spanned};
use kdl::{KdlDocument, KdlNode};
use std::collections::BTreeMap;

const TOP_NODES: &str = "kiln, defaults, layers, image";
const DEFAULTS_NODES: &str = "platforms, compression, epoch, debian";

impl Parser {
    pub(super) fn recipe(&mut self, doc: &KdlDocument) -> Recipe {
        let mut schema = None;
        let mut defaults = Defaults::default();
        let mut images: Vec<ImageSpec> = Vec::new();
        let mut layers = LayerRules::default();
        let mut seen = BTreeMap::new();
        for node in doc.nodes() {
            match node.name().value() {
                "kiln" => {
                    if self.once(&mut seen, node) {
                        schema = self.schema(node);
                    }
                }
                "defaults" => {
                    if self.once(&mut seen, node) {
                        defaults = self.defaults(node);
                    }
                }
                "layers" => {
                    if self.once(&mut seen, node) {
                        layers = self.layers(node);
                    }
                }
                "image" => self.add_image(&mut images, node),
                _ => self.unknown(node, "a recipe", TOP_NODES),
            }
        }
        self.required_nodes(doc, seen.contains_key("kiln"));
        Recipe { schema: schema.unwrap_or(1), defaults, layers, images }
    }

    /// `kiln N`: the schema version the recipe is written for (any, though only 1 is read).
    fn schema(&mut self, node: &KdlNode) -> Option<u32> {
        self.no_children(node);
        self.no_props(node, &[]);
        let a = self.arity(node, 1, "kiln 1")?;
        let v = self.uint(a[0], u32::MAX as u64, "schema version")?;
        if v.value != 1 {
            self.problem(
                Problem::new(Code::RecipeSchema, v.span, format!("unsupported recipe schema {}", v.value))
                    .label("this kiln reads schema 1")
                    .help("write `kiln 1`"),
            );
        }
        Some(v.value as u32)
    }

    /// An `image` block, added to `images` unless one of that name is there already.
    fn add_image(&mut self, images: &mut Vec<ImageSpec>, node: &KdlNode) {
        let Some(image) = self.image(node) else { return };
        if images.iter().any(|i| i.name.value == image.name.value) {
            self.problem(
                Problem::new(
                    Code::RecipeDuplicateImage,
                    image.name.span,
                    format!("image `{}` defined twice", image.name.value),
                )
                .label("second definition")
                .help("image names must be unique within a recipe"),
            );
        } else {
            images.push(image);
        }
    }

    /// The nodes no recipe goes without: `kiln` (unless `has_kiln`) and at least one `image`.
    fn required_nodes(&mut self, doc: &KdlDocument, has_kiln: bool) {
        if !has_kiln {
            let span = doc.nodes().first().map(name_span).unwrap_or_else(|| (0, 0).into());
            self.problem(
                Problem::new(Code::RecipeMissingNode, span, "missing required node `kiln`")
                    .label("the recipe should start with `kiln 1`")
                    .help("add `kiln 1` as the first line: it names the recipe schema version"),
            );
        }
        if !doc.nodes().iter().any(|n| n.name().value() == "image") {
            let span = doc.nodes().last().map(|n| n.span()).unwrap_or_else(|| (0, 0).into());
            self.problem(
                Problem::new(Code::RecipeMissingNode, span, "the recipe defines no image")
                    .label("expected an `image \"NAME\" { … }` block")
                    .help("add `image \"app\" { base \"scratch\" … }`"),
            );
        }
    }

    fn defaults(&mut self, node: &KdlNode) -> Defaults {
        let mut d = Defaults::default();
        self.no_props(node, &[]);
        if !args(node).is_empty() {
            self.problem(
                Problem::new(Code::RecipeArguments, args(node)[0].span(), "`defaults` takes a block, not arguments")
                    .label("unexpected argument"),
            );
        }
        let Some(children) = node.children() else {
            return d;
        };
        let mut seen = BTreeMap::new();
        for child in children.nodes() {
            match child.name().value() {
                "platforms" if self.once(&mut seen, child) => d.platforms = self.platforms(child),
                "compression" if self.once(&mut seen, child) => d.compression = self.compression(child),
                "epoch" if self.once(&mut seen, child) => {
                    self.no_children(child);
                    self.no_props(child, &[]);
                    if let Some(a) = self.arity(child, 1, "epoch 1700000000") {
                        d.epoch = self.uint(a[0], MAX_EPOCH, "epoch");
                    }
                }
                "debian" if self.once(&mut seen, child) => self.debian(child, &mut d),
                "platforms" | "compression" | "epoch" | "debian" => {}
                _ => self.unknown(child, "`defaults`", DEFAULTS_NODES),
            }
        }
        d
    }

    /// `debian mirror="…" suite="…"`: where distroless bases' packages come from.
    fn debian(&mut self, child: &KdlNode, d: &mut Defaults) {
        self.no_children(child);
        self.no_props(child, &["mirror", "suite"]);
        self.arity(child, 0, "debian mirror=\"http://deb.debian.org/debian\" suite=\"bookworm\"");
        for (k, e) in props(child) {
            let v = self.string(e);
            match k {
                "mirror" => {
                    if let Some(m) = &v
                        && !(m.value.starts_with("http://") || m.value.starts_with("https://"))
                    {
                        self.problem(
                            Problem::new(Code::RecipeMirror, m.span, "the mirror must be an http:// or https:// URL")
                                .label("not a URL"),
                        );
                    }
                    d.debian_mirror = v;
                }
                "suite" => d.debian_suite = v,
                _ => {}
            }
        }
    }

    fn compression(&mut self, node: &KdlNode) -> Option<Spanned<Compression>> {
        self.no_children(node);
        self.no_props(node, &["level", "encoder"]);
        let a = self.arity(node, 1, "compression \"gzip\"|\"zstd\" level=N")?;
        let algo = self.string(a[0])?;
        let level = props(node).into_iter().find(|(n, _)| *n == "level").map(|(_, e)| e);
        let encoder = match props(node).into_iter().find(|(n, _)| *n == "encoder") {
            None => Encoder::Parallel,
            Some((_, e)) => {
                let v = self.string(e)?;
                match v.value.as_str() {
                    "parallel" => Encoder::Parallel,
                    "stream" => Encoder::Stream,
                    _ => {
                        self.problem(
                            Problem::new(Code::RecipeProperty, v.span, format!("unknown encoder `{}`", v.value))
                                .label("not an encoder")
                                .help("use \"parallel\" (the default: every core) or \"stream\" (one thread, kiln's first encoder)"),
                        );
                        return None;
                    }
                }
            }
        };
        let c = match algo.value.as_str() {
            "gzip" => {
                let level = match level {
                    Some(e) => match self.uint(e, 9, "gzip level") {
                        Some(v) if v.value >= 1 => v.value as u32,
                        Some(v) => {
                            self.problem(
                                Problem::new(Code::RecipeRange, v.span, "gzip level out of range")
                                    .label("must be between 1 and 9"),
                            );
                            return None;
                        }
                        None => return None,
                    },
                    None => 6,
                };
                Compression::Gzip { level, encoder }
            }
            "zstd" => {
                let level = match level {
                    Some(e) => match self.uint(e, 19, "zstd level") {
                        Some(v) if v.value >= 1 => v.value as i32,
                        Some(v) => {
                            self.problem(
                                Problem::new(Code::RecipeRange, v.span, "zstd level out of range")
                                    .label("must be between 1 and 19"),
                            );
                            return None;
                        }
                        None => return None,
                    },
                    None => 3,
                };
                Compression::Zstd { level, encoder }
            }
            other => {
                self.problem(
                    Problem::new(Code::RecipeCompression, algo.span, format!("unknown compression `{other}`"))
                        .label("not a supported compression")
                        .help("use \"gzip\" (most compatible) or \"zstd\""),
                );
                return None;
            }
        };
        Some(Spanned::new(c, node.span()))
    }
}

//! An `image` block and its children: name, base (in `base.rs`), platforms, the nodes that put
//! files into it, and its config (entrypoint, cmd, env, user, workdir, exposed ports, labels,
//! annotations).

use super::Parser;
use super::node::args;
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::oci::platform::Platform;
use crate::recipe::{Base, Content, ImageSpec, Spanned};
use kdl::{KdlNode, KdlValue};
use miette::SourceSpan;
use std::collections::BTreeMap;

const IMAGE_NODES: &str =
    "base, platforms, copy, file, rust, c, go, entrypoint, cmd, env, user, workdir, expose, label, annotation";

/// What an image block's children have given so far; an [`ImageSpec`] once the image has a
/// name and a base.
#[derive(Default)]
struct Gathered {
    base: Option<Spanned<Base>>,
    platforms: Option<Vec<Spanned<Platform>>>,
    contents: Vec<Content>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Vec<(String, String)>,
    user: Option<String>,
    user_span: Option<SourceSpan>,
    workdir: Option<String>,
    expose: Vec<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

impl Gathered {
    fn into_spec(self, name: Spanned<String>, base: Spanned<Base>, span: SourceSpan) -> ImageSpec {
        ImageSpec {
            name,
            base,
            platforms: self.platforms,
            contents: self.contents,
            entrypoint: self.entrypoint,
            cmd: self.cmd,
            env: self.env,
            user: self.user,
            user_span: self.user_span,
            workdir: self.workdir,
            expose: self.expose,
            labels: self.labels,
            annotations: self.annotations,
            span,
        }
    }
}

impl Parser {
    pub(super) fn image(&mut self, node: &KdlNode) -> Option<ImageSpec> {
        self.no_props(node, &[]);
        let name = self.image_name(node);
        let mut g = Gathered::default();
        let mut seen = BTreeMap::new();
        let Some(children) = node.children() else {
            self.problem(
                Problem::new(Code::RecipeMissingNode, node.span(), "image has no block")
                    .label("expected `{ base \"scratch\" … }`")
                    .help("an image needs at least a `base`"),
            );
            return None;
        };
        for child in children.nodes() {
            let n = child.name().value();
            let single = matches!(n, "base" | "platforms" | "entrypoint" | "cmd" | "user" | "workdir");
            if single && !self.once(&mut seen, child) {
                continue;
            }
            self.image_child(child, &mut g);
        }
        g.expose.sort();
        g.expose.dedup();
        let name = name?;
        let Some(base) = g.base.take() else {
            self.problem(
                Problem::new(Code::RecipeMissingNode, name.span, format!("image `{}` has no `base`", name.value))
                    .label("this image needs a base")
                    .help("add `base \"scratch\"` to the image block"),
            );
            return None;
        };
        Some(g.into_spec(name, base, node.span()))
    }

    /// The image's name, reported when it is not one a registry takes (and kept all the same).
    fn image_name(&mut self, node: &KdlNode) -> Option<Spanned<String>> {
        let name = self.arity(node, 1, "image \"NAME\" { … }").and_then(|a| self.string(a[0]));
        if let Some(n) = &name {
            let ok = !n.value.is_empty()
                && n.value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c));
            if !ok {
                self.problem(
                    Problem::new(Code::RecipeImageName, n.span, format!("invalid image name `{}`", n.value))
                        .label("not a valid image name")
                        .help("use lowercase letters, digits, `.`, `_`, `-` and `/`"),
                );
            }
        }
        name
    }

    /// One child of an image block, read into what the block has gathered.
    fn image_child(&mut self, child: &KdlNode, g: &mut Gathered) {
        match child.name().value() {
            "base" => g.base = Some(self.base(child)),
            "platforms" => g.platforms = self.platforms(child),
            "copy" => g.contents.extend(self.copy(child)),
            "file" => g.contents.extend(self.file(child)),
            "rust" => {
                if let Some(r) = self.rust(child) {
                    g.contents.push(Content::Rust(r));
                }
            }
            "c" => g.contents.extend(self.c(child).map(Content::C)),
            "go" => g.contents.extend(self.go(child).map(Content::Go)),
            "entrypoint" => g.entrypoint = Some(self.strings(child)),
            "cmd" => g.cmd = Some(self.strings(child)),
            "env" => self.env(child, &mut g.env),
            "user" => {
                if let Some((span, user)) = self.user(child) {
                    g.user_span = Some(span);
                    g.user = user;
                }
            }
            "workdir" => g.workdir = self.workdir(child),
            "expose" => g.expose.extend(self.expose(child)),
            "label" => g.labels.extend(self.key_values(child, "label \"key\" \"value\"")),
            "annotation" => self.annotations(child, &mut g.annotations),
            _ => self.unknown(child, "`image`", IMAGE_NODES),
        }
    }

    /// `env NAME="value"` or `env "NAME" "value"`: a later value of a name replaces an earlier one.
    fn env(&mut self, child: &KdlNode, env: &mut Vec<(String, String)>) {
        for (k, v) in self.key_values(child, "env NAME=\"value\" or env \"NAME\" \"value\"") {
            if k.is_empty() || k.contains('=') {
                self.problem(
                    Problem::new(Code::RecipeEnv, child.span(), format!("invalid variable name `{k}`"))
                        .label("bad name"),
                );
                continue;
            }
            env.retain(|(old, _)| *old != k);
            env.push((k, v));
        }
    }

    /// `user "name"` or `user 65532`: where the argument is written, and the user when it is one.
    fn user(&mut self, child: &KdlNode) -> Option<(SourceSpan, Option<String>)> {
        self.no_children(child);
        self.no_props(child, &[]);
        let a = self.arity(child, 1, "user \"65532\" or user \"name\"")?;
        let user = match a[0].value() {
            KdlValue::String(s) if !s.is_empty() => Some(s.clone()),
            KdlValue::Integer(i) if *i >= 0 && *i <= u32::MAX as i128 => Some(i.to_string()),
            _ => {
                self.wrong_type(a[0], "a user name or uid");
                None
            }
        };
        Some((a[0].span(), user))
    }

    /// `workdir "/path"`: normalised, without a trailing `/` (but `/` itself).
    fn workdir(&mut self, child: &KdlNode) -> Option<String> {
        self.no_children(child);
        self.no_props(child, &[]);
        let s = self.arity(child, 1, "workdir \"/path\"").and_then(|a| self.string(a[0]))?;
        self.image_path(&s, "workdir")
            .map(|p| p.value.trim_end_matches('/').to_string())
            .map(|p| if p.is_empty() { "/".into() } else { p })
    }

    /// `expose 8080 "53/udp" …`: the ports in `8080/tcp` form.
    fn expose(&mut self, child: &KdlNode) -> Vec<String> {
        self.no_children(child);
        self.no_props(child, &[]);
        args(child).into_iter().filter_map(|e| self.port(e)).collect()
    }

    /// `annotation "key" "value"`; the `dev.kiln.*` keys are kiln's own.
    fn annotations(&mut self, child: &KdlNode, annotations: &mut BTreeMap<String, String>) {
        for (k, v) in self.key_values(child, "annotation \"key\" \"value\"") {
            if k.starts_with("dev.kiln.") {
                self.problem(
                    Problem::new(
                        Code::RecipeReservedAnnotation,
                        child.span(),
                        format!("annotation `{k}` is kiln's own"),
                    )
                    .label("reserved")
                    .help("kiln writes the dev.kiln.* annotations itself; choose another key"),
                );
            } else {
                annotations.insert(k, v);
            }
        }
    }
}

//! An `image` block and its children: name, base, platforms, the nodes that put files into it,
//! and its config (entrypoint, cmd, env, user, workdir, exposed ports, labels, annotations).

use super::Parser;
use super::node::{args, props};
use crate::debian::Flavour;
use crate::diag::Problem;
use crate::recipe::{Base, Content, ImageSpec, Spanned};
use kdl::{KdlNode, KdlValue};
use std::collections::BTreeMap;

const BASES: &str =
    "\"scratch\", \"distroless/static\", \"distroless/base\", \"distroless/cc\", \"oci-layout:PATH[:TAG]\"";
const IMAGE_NODES: &str =
    "base, platforms, copy, file, rust, entrypoint, cmd, env, user, workdir, expose, label, annotation";

impl Parser {
    pub(super) fn image(&mut self, node: &KdlNode) -> Option<ImageSpec> {
        self.no_props(node, &[]);
        let name = self.arity(node, 1, "image \"NAME\" { … }").and_then(|a| self.string(a[0]));
        if let Some(n) = &name {
            let ok = !n.value.is_empty()
                && n.value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c));
            if !ok {
                self.problem(
                    Problem::new("kiln::recipe::image_name", n.span, format!("invalid image name `{}`", n.value))
                        .label("not a valid image name")
                        .help("use lowercase letters, digits, `.`, `_`, `-` and `/`"),
                );
            }
        }
        let mut base = None;
        let mut platforms = None;
        let mut contents = Vec::new();
        let (mut entrypoint, mut cmd, mut user, mut workdir) = (None, None, None, None);
        let mut user_span = None;
        let mut env: Vec<(String, String)> = Vec::new();
        let mut expose = Vec::new();
        let mut labels = BTreeMap::new();
        let mut annotations = BTreeMap::new();
        let mut seen = BTreeMap::new();
        let Some(children) = node.children() else {
            self.problem(
                Problem::new("kiln::recipe::missing_node", node.span(), "image has no block")
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
            match n {
                "base" => {
                    self.no_children(child);
                    self.no_props(child, &["libstdcxx"]);
                    let libstdcxx = props(child).into_iter().find(|(k, _)| *k == "libstdcxx").map(|(_, e)| e);
                    let libstdcxx = match libstdcxx {
                        Some(e) => match e.value() {
                            KdlValue::Bool(b) => Some((*b, e.span())),
                            _ => {
                                self.wrong_type(e, "#true or #false");
                                None
                            }
                        },
                        None => None,
                    };
                    if let Some(s) = self.arity(child, 1, "base \"scratch\"").and_then(|a| self.string(a[0])) {
                        let parsed = match s.value.as_str() {
                            "scratch" => Some(Base::Scratch),
                            "distroless/static" => Some(Base::Distroless(Flavour::Static)),
                            "distroless/base" => Some(Base::Distroless(Flavour::Base)),
                            "distroless/cc" => {
                                Some(Base::Distroless(Flavour::Cc { libstdcxx: libstdcxx.is_some_and(|(b, _)| b) }))
                            }
                            v if v.starts_with("oci-layout:") => {
                                let rest = &v["oci-layout:".len()..];
                                let (path, tag) = match rest.rsplit_once(':') {
                                    Some((p, t)) if !t.contains('/') && !p.is_empty() => {
                                        (p.to_string(), Some(t.to_string()))
                                    }
                                    _ => (rest.to_string(), None),
                                };
                                if path.is_empty() {
                                    self.problem(
                                        Problem::new("kiln::recipe::base", s.span, "`oci-layout:` needs a path")
                                            .label("no path")
                                            .help("write base \"oci-layout:path/to/layout[:tag]\""),
                                    );
                                    None
                                } else {
                                    Some(Base::OciLayout { path, tag })
                                }
                            }
                            v if v.contains("@sha256:") => Some(Base::Registry(v.to_string())),
                            other => {
                                self.problem(
                                    Problem::new("kiln::recipe::base", s.span, format!("unsupported base `{other}`"))
                                        .label("not a base kiln can use")
                                        .help(format!("bases: {BASES}, or \"host/repo@sha256:…\"")),
                                );
                                None
                            }
                        };
                        if let (Some((_, span)), Some(b)) = (libstdcxx, &parsed)
                            && !matches!(b, Base::Distroless(Flavour::Cc { .. }))
                        {
                            self.problem(
                                Problem::new(
                                    "kiln::recipe::property",
                                    span,
                                    "`libstdcxx` only applies to \"distroless/cc\"",
                                )
                                .label("not for this base"),
                            );
                        }
                        // An invalid base is reported above; Scratch stands in so no second error follows.
                        base = Some(Spanned::new(parsed.unwrap_or(Base::Scratch), s.span));
                    } else {
                        base = Some(Spanned::new(Base::Scratch, child.span()));
                    }
                }
                "platforms" => platforms = self.platforms(child),
                "copy" => contents.extend(self.copy(child)),
                "file" => {
                    self.no_children(child);
                    self.no_props(child, &["mode", "uid", "gid"]);
                    let perms = self.perms(child);
                    if let Some(a) = self.arity(child, 2, "file \"/DEST\" \"content\" [mode=0o644]") {
                        let dest = self.string(a[0]).and_then(|d| self.image_path(&d, "destination"));
                        let content = self.string(a[1]);
                        if let Some(d) = &dest
                            && d.value.ends_with('/')
                        {
                            self.problem(
                                Problem::new(
                                    "kiln::recipe::file_dest",
                                    d.span,
                                    "`file` needs a file path, not a directory",
                                )
                                .label("ends with `/`"),
                            );
                        }
                        if let (Some(dest), Some(content)) = (dest, content) {
                            contents.push(Content::File { dest, content: content.value, perms, span: child.span() });
                        }
                    }
                }
                "rust" => {
                    if let Some(r) = self.rust(child) {
                        contents.push(Content::Rust(r));
                    }
                }
                "entrypoint" => entrypoint = Some(self.strings(child)),
                "cmd" => cmd = Some(self.strings(child)),
                "env" => {
                    for (k, v) in self.key_values(child, "env NAME=\"value\" or env \"NAME\" \"value\"") {
                        if k.is_empty() || k.contains('=') {
                            self.problem(
                                Problem::new("kiln::recipe::env", child.span(), format!("invalid variable name `{k}`"))
                                    .label("bad name"),
                            );
                            continue;
                        }
                        env.retain(|(old, _)| *old != k);
                        env.push((k, v));
                    }
                }
                "user" => {
                    self.no_children(child);
                    self.no_props(child, &[]);
                    if let Some(a) = self.arity(child, 1, "user \"65532\" or user \"name\"") {
                        user_span = Some(a[0].span());
                        user = match a[0].value() {
                            KdlValue::String(s) if !s.is_empty() => Some(s.clone()),
                            KdlValue::Integer(i) if *i >= 0 && *i <= u32::MAX as i128 => Some(i.to_string()),
                            _ => {
                                self.wrong_type(a[0], "a user name or uid");
                                None
                            }
                        };
                    }
                }
                "workdir" => {
                    self.no_children(child);
                    self.no_props(child, &[]);
                    if let Some(s) = self.arity(child, 1, "workdir \"/path\"").and_then(|a| self.string(a[0])) {
                        workdir = self
                            .image_path(&s, "workdir")
                            .map(|p| p.value.trim_end_matches('/').to_string())
                            .map(|p| if p.is_empty() { "/".into() } else { p });
                    }
                }
                "expose" => {
                    self.no_children(child);
                    self.no_props(child, &[]);
                    for e in args(child) {
                        if let Some(port) = self.port(e) {
                            expose.push(port);
                        }
                    }
                }
                "label" => labels.extend(self.key_values(child, "label \"key\" \"value\"")),
                "annotation" => {
                    for (k, v) in self.key_values(child, "annotation \"key\" \"value\"") {
                        if k.starts_with("dev.kiln.") {
                            self.problem(
                                Problem::new(
                                    "kiln::recipe::reserved_annotation",
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
                _ => self.unknown(child, "`image`", IMAGE_NODES),
            }
        }
        expose.sort();
        expose.dedup();
        let name = name?;
        let Some(base) = base else {
            self.problem(
                Problem::new("kiln::recipe::missing_node", name.span, format!("image `{}` has no `base`", name.value))
                    .label("this image needs a base")
                    .help("add `base \"scratch\"` to the image block"),
            );
            return None;
        };
        Some(ImageSpec {
            name,
            base,
            platforms,
            contents,
            entrypoint,
            cmd,
            env,
            user,
            user_span,
            workdir,
            expose,
            labels,
            annotations,
            span: node.span(),
        })
    }
}

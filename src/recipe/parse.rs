//! KDL text to [`Recipe`], collecting every problem instead of stopping at the first.

use super::multiline;
use super::{Base, Compression, Content, Defaults, ImageSpec, LayerRules, Perms, Recipe, RustSpec, Spanned};
use crate::debian::Flavour;
use crate::diag::{Problem, RecipeErrors, shown};
use crate::plan::layering::{NamedLayer, Volatility};
use crate::platform::Platform;
use kdl::{KdlDocument, KdlEntry, KdlNode, KdlValue};
use miette::SourceSpan;
use std::collections::BTreeMap;

const TOP_NODES: &str = "kiln, defaults, layers, image";
const DEFAULTS_NODES: &str = "platforms, compression, epoch, debian";
const BASES: &str =
    "\"scratch\", \"distroless/static\", \"distroless/base\", \"distroless/cc\", \"oci-layout:PATH[:TAG]\"";
const IMAGE_NODES: &str =
    "base, platforms, copy, file, rust, entrypoint, cmd, env, user, workdir, expose, label, annotation";
const RUST_NODES: &str = "bin, features, no-default-features, profile, dest, manifest, target";

/// Parses a recipe. `name` is how the file is shown in errors (usually its path).
pub fn parse(name: &str, text: &str) -> Result<Recipe, RecipeErrors> {
    match parse_partial(text) {
        (Some(recipe), problems) if problems.is_empty() => Ok(recipe),
        (_, problems) => Err(RecipeErrors::new(name, text, problems)),
    }
}

/// Parses as much as can be parsed: the recipe without its faulty nodes (none when the text
/// is not KDL at all, or is refused before parsing: too long, nested too deep) and every
/// problem found. Lets later checks report their problems in the same run.
pub fn parse_partial(text: &str) -> (Option<Recipe>, Vec<Problem>) {
    match document(text) {
        Ok(doc) => {
            let mut p = Parser::default();
            let recipe = p.recipe(&doc);
            (Some(recipe), p.problems)
        }
        Err(problems) => (None, problems),
    }
}

/// What kiln refuses before the KDL parser sees the text: a recipe or line too long, nesting
/// too deep, a malformed string or comment, too many syntax errors. `parse_partial` reports it
/// as its only problem.
pub fn refusal(text: &str) -> Option<Problem> {
    super::scan::scan(text).err().map(|p| *p)
}

/// The recipe as a KDL document, read behind the scan's guard, with multi-line strings read
/// by kiln (see `multiline.rs`); or the problems that make it unreadable.
pub fn document(text: &str) -> Result<KdlDocument, Vec<Problem>> {
    let found = super::scan::scan(text).map_err(|refused| vec![*refused])?;
    let mut values = Vec::new();
    let mut problems = Vec::new();
    for m in &found.multiline {
        match multiline::decode(text, m) {
            Ok(v) => values.push(v),
            Err(p) => problems.push(*p),
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let masked = if found.multiline.is_empty() { None } else { Some(multiline::mask(text, &found.multiline)) };
    match KdlDocument::parse_v2(masked.as_deref().unwrap_or(text)) {
        Ok(mut doc) => {
            multiline::patch(&mut doc, &found.multiline, &values);
            Ok(doc)
        }
        Err(err) => Err(syntax_problems(text, &err, found.values)),
    }
}

/// Turns the KDL parser's own diagnostics into recipe problems. Where one falls on a value the
/// scan found malformed (a number such as `0o999`, a keyword without `#`), the scan's
/// explanation replaces the parser's words, and the parser's other complaints, often echoes of
/// the same value, are dropped.
fn syntax_problems(text: &str, err: &kdl::KdlError, values: Vec<Problem>) -> Vec<Problem> {
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
        out.push(Problem::new("kiln::recipe::syntax", (0, 0).into(), format!("invalid KDL: {err}")));
    }
    out
}

fn kdl_problem(text: &str, d: &kdl::KdlDiagnostic, property: bool) -> Problem {
    let span = if property { value_at(text, d.span.offset() + d.span.len()) } else { d.span };
    if property && text.get(span.offset()..span.offset() + span.len()) == Some("=") {
        let key = text[..span.offset()].rsplit(|c: char| c.is_whitespace()).next().unwrap_or_default();
        return Problem::new(
            "kiln::recipe::syntax",
            span,
            format!("invalid KDL: property `{}` has no value", shown(key)),
        )
        .label("a value must follow `=`")
        .help("write the value right after `=`, such as mode=0o644 or name=\"text\"");
    }
    let message = d.message.clone().unwrap_or_else(|| "syntax error".into());
    let mut problem = Problem::new("kiln::recipe::syntax", span, format!("invalid KDL: {message}"));
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

/// The valid name closest to `name`, if it is close enough to be a slip.
fn closest<'a>(name: &str, valid: &'a str) -> Option<&'a str> {
    let n = name.chars().count();
    if n > 40 {
        return None;
    }
    let limit = (n / 3).max(1);
    valid
        .split(", ")
        .filter(|v| v.len().abs_diff(name.len()) <= limit)
        .map(|v| (strsim::osa_distance(&name.to_lowercase(), v), v))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

#[derive(Default)]
struct Parser {
    problems: Vec<Problem>,
}

fn kind(v: &KdlValue) -> &'static str {
    match v {
        KdlValue::String(_) => "a string",
        KdlValue::Integer(_) => "an integer",
        KdlValue::Float(_) => "a number",
        KdlValue::Bool(_) => "a boolean",
        KdlValue::Null => "null",
    }
}

fn args(node: &KdlNode) -> Vec<&KdlEntry> {
    node.entries().iter().filter(|e| e.name().is_none()).collect()
}

fn props(node: &KdlNode) -> Vec<(&str, &KdlEntry)> {
    node.entries().iter().filter_map(|e| e.name().map(|n| (n.value(), e))).collect()
}

fn name_span(node: &KdlNode) -> SourceSpan {
    node.name().span()
}

impl Parser {
    fn problem(&mut self, p: Problem) {
        self.problems.push(p);
    }

    fn wrong_type(&mut self, e: &KdlEntry, expected: &str) {
        self.problem(
            Problem::new("kiln::recipe::type", e.span(), format!("expected {expected}, found {}", kind(e.value())))
                .label(format!("expected {expected}")),
        );
    }

    fn string(&mut self, e: &KdlEntry) -> Option<Spanned<String>> {
        match e.value() {
            KdlValue::String(s) => Some(Spanned::new(s.clone(), e.span())),
            _ => {
                self.wrong_type(e, "a string");
                None
            }
        }
    }

    fn uint(&mut self, e: &KdlEntry, max: u64, what: &str) -> Option<Spanned<u64>> {
        match e.value() {
            KdlValue::Integer(i) if *i >= 0 && (*i as u128) <= max as u128 => Some(Spanned::new(*i as u64, e.span())),
            KdlValue::Integer(_) => {
                self.problem(
                    Problem::new("kiln::recipe::range", e.span(), format!("{what} out of range"))
                        .label(format!("must be between 0 and {max}")),
                );
                None
            }
            _ => {
                self.wrong_type(e, "an integer");
                None
            }
        }
    }

    fn no_children(&mut self, node: &KdlNode) {
        if let Some(children) = node.children() {
            self.problem(
                Problem::new(
                    "kiln::recipe::children",
                    children.span(),
                    format!("`{}` takes no block", node.name().value()),
                )
                .label("unexpected block"),
            );
        }
    }

    fn no_props(&mut self, node: &KdlNode, allowed: &[&str]) {
        for (name, e) in props(node) {
            if !allowed.contains(&name) {
                let help = if allowed.is_empty() {
                    format!("`{}` takes no properties", node.name().value())
                } else {
                    format!("`{}` accepts: {}", node.name().value(), allowed.join(", "))
                };
                let label = match closest(name, &allowed.join(", ")) {
                    Some(close) if !allowed.is_empty() => format!("did you mean `{close}`?"),
                    _ => "unknown property".into(),
                };
                self.problem(
                    Problem::new("kiln::recipe::property", e.span(), format!("unknown property `{}`", shown(name)))
                        .label(label)
                        .help(help),
                );
            }
        }
    }

    /// Exactly `n` positional arguments.
    fn arity<'n>(&mut self, node: &'n KdlNode, n: usize, usage: &str) -> Option<Vec<&'n KdlEntry>> {
        let a = args(node);
        if a.len() == n {
            return Some(a);
        }
        let span = if a.len() > n { a[n].span() } else { node.span() };
        self.problem(
            Problem::new(
                "kiln::recipe::arguments",
                span,
                format!(
                    "`{}` takes {n} argument{}, found {}",
                    node.name().value(),
                    if n == 1 { "" } else { "s" },
                    a.len()
                ),
            )
            .label(if a.len() > n { "unexpected argument" } else { "missing argument" })
            .help(format!("usage: {usage}")),
        );
        None
    }

    fn strings(&mut self, node: &KdlNode) -> Vec<String> {
        self.no_props(node, &[]);
        self.no_children(node);
        args(node).into_iter().filter_map(|e| self.string(e)).map(|s| s.value).collect()
    }

    fn unknown(&mut self, node: &KdlNode, within: &str, valid: &str) {
        let name = node.name().value();
        let label = match closest(name, valid) {
            Some(close) => format!("did you mean `{close}`?"),
            None => "not a recipe node here".into(),
        };
        self.problem(
            Problem::new(
                "kiln::recipe::unknown_node",
                name_span(node),
                format!("unknown node `{}` in {within}", shown(name)),
            )
            .label(label)
            .help(format!("valid nodes in {within}: {valid}")),
        );
    }

    fn once(&mut self, seen: &mut BTreeMap<String, SourceSpan>, node: &KdlNode) -> bool {
        let name = node.name().value().to_string();
        if let Some(first) = seen.get(&name) {
            let (first, span) = (*first, name_span(node));
            self.problem(
                Problem::new("kiln::recipe::duplicate_node", span, format!("`{name}` given twice"))
                    .label("second one here")
                    .help(format!("the first `{name}` is at byte {}; keep one", first.offset())),
            );
            return false;
        }
        seen.insert(name, name_span(node));
        true
    }

    fn recipe(&mut self, doc: &KdlDocument) -> Recipe {
        let mut schema = None;
        let mut defaults = Defaults::default();
        let mut images: Vec<ImageSpec> = Vec::new();
        let mut layers = LayerRules::default();
        let mut seen = BTreeMap::new();
        for node in doc.nodes() {
            match node.name().value() {
                "kiln" => {
                    if !self.once(&mut seen, node) {
                        continue;
                    }
                    self.no_children(node);
                    self.no_props(node, &[]);
                    if let Some(a) = self.arity(node, 1, "kiln 1")
                        && let Some(v) = self.uint(a[0], u32::MAX as u64, "schema version")
                    {
                        if v.value != 1 {
                            self.problem(
                                Problem::new(
                                    "kiln::recipe::schema",
                                    v.span,
                                    format!("unsupported recipe schema {}", v.value),
                                )
                                .label("this kiln reads schema 1")
                                .help("write `kiln 1`"),
                            );
                        }
                        schema = Some(v.value as u32);
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
                "image" => {
                    if let Some(image) = self.image(node) {
                        if images.iter().any(|i| i.name.value == image.name.value) {
                            self.problem(
                                Problem::new(
                                    "kiln::recipe::duplicate_image",
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
                }
                _ => self.unknown(node, "a recipe", TOP_NODES),
            }
        }
        if !seen.contains_key("kiln") {
            let span = doc.nodes().first().map(name_span).unwrap_or_else(|| (0, 0).into());
            self.problem(
                Problem::new("kiln::recipe::missing_node", span, "missing required node `kiln`")
                    .label("the recipe should start with `kiln 1`")
                    .help("add `kiln 1` as the first line: it names the recipe schema version"),
            );
        }
        if !doc.nodes().iter().any(|n| n.name().value() == "image") {
            let span = doc.nodes().last().map(|n| n.span()).unwrap_or_else(|| (0, 0).into());
            self.problem(
                Problem::new("kiln::recipe::missing_node", span, "the recipe defines no image")
                    .label("expected an `image \"NAME\" { … }` block")
                    .help("add `image \"app\" { base \"scratch\" … }`"),
            );
        }
        Recipe { schema: schema.unwrap_or(1), defaults, layers, images }
    }

    fn platforms(&mut self, node: &KdlNode) -> Option<Vec<Spanned<Platform>>> {
        self.no_children(node);
        self.no_props(node, &[]);
        let a = args(node);
        if a.is_empty() {
            self.problem(
                Problem::new("kiln::recipe::arguments", node.span(), "`platforms` needs at least one platform")
                    .label("no platform given")
                    .help("for example: platforms \"linux/amd64\" \"linux/arm64\" \"linux/arm/v7\""),
            );
            return None;
        }
        let mut out: Vec<Spanned<Platform>> = Vec::new();
        for e in a {
            let Some(s) = self.string(e) else { continue };
            match Platform::parse(&s.value) {
                Some(p) if out.iter().any(|o| o.value == p) => self.problem(
                    Problem::new("kiln::recipe::duplicate_platform", s.span, format!("platform `{p}` listed twice"))
                        .label("repeated"),
                ),
                Some(p) => out.push(Spanned::new(p, s.span)),
                None => self.problem(
                    Problem::new("kiln::recipe::platform", s.span, format!("unknown platform `{}`", s.value))
                        .label("not a supported platform")
                        .help("supported platforms: linux/amd64, linux/arm64, linux/arm/v7"),
                ),
            }
        }
        Some(out)
    }

    fn layers(&mut self, node: &KdlNode) -> LayerRules {
        let mut rules = LayerRules::default();
        self.no_props(node, &[]);
        let Some(children) = node.children() else { return rules };
        for child in children.nodes() {
            match child.name().value() {
                "budget" => {
                    self.no_children(child);
                    self.no_props(child, &[]);
                    if let Some(a) = self.arity(child, 1, "budget 64")
                        && let Some(v) = self.uint(a[0], 127, "layer budget")
                    {
                        if v.value == 0 {
                            self.problem(
                                Problem::new("kiln::recipe::range", v.span, "layer budget out of range")
                                    .label("must be between 1 and 127"),
                            );
                        } else {
                            rules.budget = Some(v.value as usize);
                        }
                    }
                }
                "layer" => {
                    self.no_props(child, &["volatility"]);
                    let Some(name) = self
                        .arity(child, 1, "layer \"NAME\" volatility=\"rare\" { path \"/prefix/\" }")
                        .and_then(|a| self.string(a[0]))
                        .filter(|n| self.printable(n, "layer name"))
                    else {
                        continue;
                    };
                    let volatility = match props(child).into_iter().find(|(k, _)| *k == "volatility").map(|(_, e)| e) {
                        None => Volatility::Data,
                        Some(e) => match self.string(e).map(|s| s.value) {
                            Some(v) if v == "rare" => Volatility::Rare,
                            Some(v) if v == "normal" => Volatility::Data,
                            Some(v) if v == "often" => Volatility::Often,
                            Some(v) => {
                                self.problem(
                                    Problem::new(
                                        "kiln::recipe::volatility",
                                        e.span(),
                                        format!("unknown volatility `{v}`"),
                                    )
                                    .label("not a volatility")
                                    .help("use \"rare\", \"normal\" or \"often\""),
                                );
                                Volatility::Data
                            }
                            None => Volatility::Data,
                        },
                    };
                    let (mut paths, mut given) = (Vec::new(), 0);
                    for p in child.children().map(|c| c.nodes()).unwrap_or_default() {
                        if p.name().value() != "path" {
                            self.unknown(p, "`layer`", "path");
                            continue;
                        }
                        for s in self.strings(p) {
                            // A refused path is reported as such, not as a missing one.
                            given += 1;
                            if let Some(n) = self.image_path(&Spanned::new(s, p.span()), "layer path") {
                                paths.push(n.value);
                            }
                        }
                    }
                    if given == 0 {
                        self.problem(
                            Problem::new(
                                "kiln::recipe::missing_node",
                                child.span(),
                                format!("layer `{}` names no path", name.value),
                            )
                            .label("needs `path \"/prefix/\"`"),
                        );
                    }
                    if rules.named.iter().any(|n| n.name == name.value) {
                        self.problem(
                            Problem::new(
                                "kiln::recipe::duplicate_node",
                                name.span,
                                format!("layer `{}` defined twice", name.value),
                            )
                            .label("second definition"),
                        );
                        continue;
                    }
                    rules.named.push(NamedLayer { name: name.value, paths, volatility });
                }
                _ => self.unknown(child, "`layers`", "budget, layer"),
            }
        }
        rules
    }

    fn defaults(&mut self, node: &KdlNode) -> Defaults {
        let mut d = Defaults::default();
        self.no_props(node, &[]);
        if !args(node).is_empty() {
            self.problem(
                Problem::new(
                    "kiln::recipe::arguments",
                    args(node)[0].span(),
                    "`defaults` takes a block, not arguments",
                )
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
                        d.epoch = self.uint(a[0], super::MAX_EPOCH, "epoch");
                    }
                }
                "debian" if self.once(&mut seen, child) => {
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
                                        Problem::new(
                                            "kiln::recipe::mirror",
                                            m.span,
                                            "the mirror must be an http:// or https:// URL",
                                        )
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
                "platforms" | "compression" | "epoch" | "debian" => {}
                _ => self.unknown(child, "`defaults`", DEFAULTS_NODES),
            }
        }
        d
    }

    fn compression(&mut self, node: &KdlNode) -> Option<Spanned<Compression>> {
        self.no_children(node);
        self.no_props(node, &["level"]);
        let a = self.arity(node, 1, "compression \"gzip\"|\"zstd\" level=N")?;
        let algo = self.string(a[0])?;
        let level = props(node).into_iter().find(|(n, _)| *n == "level").map(|(_, e)| e);
        let c = match algo.value.as_str() {
            "gzip" => {
                let level = match level {
                    Some(e) => match self.uint(e, 9, "gzip level") {
                        Some(v) if v.value >= 1 => v.value as u32,
                        Some(v) => {
                            self.problem(
                                Problem::new("kiln::recipe::range", v.span, "gzip level out of range")
                                    .label("must be between 1 and 9"),
                            );
                            return None;
                        }
                        None => return None,
                    },
                    None => 6,
                };
                Compression::Gzip { level }
            }
            "zstd" => {
                let level = match level {
                    Some(e) => match self.uint(e, 19, "zstd level") {
                        Some(v) if v.value >= 1 => v.value as i32,
                        Some(v) => {
                            self.problem(
                                Problem::new("kiln::recipe::range", v.span, "zstd level out of range")
                                    .label("must be between 1 and 19"),
                            );
                            return None;
                        }
                        None => return None,
                    },
                    None => 3,
                };
                Compression::Zstd { level }
            }
            other => {
                self.problem(
                    Problem::new("kiln::recipe::compression", algo.span, format!("unknown compression `{other}`"))
                        .label("not a supported compression")
                        .help("use \"gzip\" (most compatible) or \"zstd\""),
                );
                return None;
            }
        };
        Some(Spanned::new(c, node.span()))
    }

    fn perms(&mut self, node: &KdlNode) -> Perms {
        let mut p = Perms::default();
        for (name, e) in props(node) {
            match name {
                "mode" => {
                    // `mode=644` is a decimal number (0o1204): almost always a slip for 0o644.
                    let written = e.format().map(|f| f.value_repr.trim().to_string()).unwrap_or_default();
                    if matches!(e.value(), KdlValue::Integer(_))
                        && !written.is_empty()
                        && written != "0"
                        && !written.starts_with("0o")
                    {
                        self.problem(
                            Problem::new(
                                "kiln::recipe::mode",
                                e.span(),
                                format!("mode `{written}` is not written in octal"),
                            )
                            .label("write modes as octal numbers")
                            .help(format!("write mode=0o{written}: KDL reads {written} as a decimal number")),
                        );
                    } else {
                        p.mode = self.uint(e, 0o7777, "mode").map(|v| v.value as u32);
                    }
                }
                "uid" => p.uid = self.uint(e, u32::MAX as u64, "uid").map(|v| v.value as u32),
                "gid" => p.gid = self.uint(e, u32::MAX as u64, "gid").map(|v| v.value as u32),
                _ => {}
            }
        }
        p
    }

    /// Paths name files in tar headers, layer keys and listings: control characters (a newline
    /// from a stray escape, a tab) are refused rather than carried into all of them.
    fn printable(&mut self, s: &Spanned<String>, what: &str) -> bool {
        let Some(c) = s.value.chars().find(|c| c.is_control()) else { return true };
        self.problem(
            Problem::new(
                "kiln::recipe::control_character",
                s.span,
                format!("{what} {:?} holds the control character {:?}", s.value, c),
            )
            .label("control character")
            .help("remove it: names and paths may hold any character but control characters (newlines, tabs, …)"),
        );
        false
    }

    /// An absolute path inside the image, normalised; `..` may not climb above `/`.
    fn image_path(&mut self, s: &Spanned<String>, what: &str) -> Option<Spanned<String>> {
        if !self.printable(s, what) {
            return None;
        }
        if !s.value.starts_with('/') {
            self.problem(
                Problem::new("kiln::recipe::relative_path", s.span, format!("{what} `{}` is not absolute", s.value))
                    .label("must start with `/`")
                    .help(format!("write `/{}`", s.value.trim_start_matches("./"))),
            );
            return None;
        }
        let mut parts: Vec<&str> = Vec::new();
        for c in s.value.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        self.problem(
                            Problem::new(
                                "kiln::recipe::path_escape",
                                s.span,
                                format!("{what} `{}` escapes the image root", s.value),
                            )
                            .label("`..` climbs above `/`")
                            .help("paths inside an image cannot leave its root; remove the `..`"),
                        );
                        return None;
                    }
                }
                c => parts.push(c),
            }
        }
        let mut norm = format!("/{}", parts.join("/"));
        if s.value.ends_with('/') && norm != "/" {
            norm.push('/');
        }
        Some(Spanned::new(norm, s.span))
    }

    fn key_values(&mut self, node: &KdlNode, usage: &str) -> Vec<(String, String)> {
        self.no_children(node);
        let a = args(node);
        let p = props(node);
        let mut out = Vec::new();
        if !a.is_empty()
            && let Some(a) = self.arity(node, 2, usage)
            && let (Some(k), Some(v)) = (self.string(a[0]), self.string(a[1]))
        {
            out.push((k.value, v.value));
        }
        for (k, e) in p {
            if let Some(v) = self.string(e) {
                out.push((k.to_string(), v.value));
            }
        }
        if out.is_empty() && a.is_empty() && props(node).is_empty() {
            self.problem(
                Problem::new(
                    "kiln::recipe::arguments",
                    node.span(),
                    format!("`{}` needs a key and a value", node.name().value()),
                )
                .label("nothing given")
                .help(format!("usage: {usage}")),
            );
        }
        out
    }

    fn image(&mut self, node: &KdlNode) -> Option<ImageSpec> {
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

    fn copy(&mut self, node: &KdlNode) -> Option<Content> {
        self.no_props(node, &["mode", "uid", "gid"]);
        let perms = self.perms(node);
        let exclude = self.excludes(node);
        let a =
            self.arity(node, 2, "copy \"SRC\" \"/DEST\" [mode=0o644] [uid=0] [gid=0] [{ exclude \"PATTERN\" … }]")?;
        let src = self.string(a[0]);
        let dest = self.string(a[1]).and_then(|d| self.image_path(&d, "destination"));
        let src = src.filter(|s| self.printable(s, "source"));
        if let Some(src) = &src
            && src.value.is_empty()
        {
            self.problem(Problem::new("kiln::recipe::source", src.span, "empty source path").label("names no file"));
        }
        Some(Content::Copy { src: src?, dest: dest?, perms, exclude: exclude?, span: node.span() })
    }

    /// A `copy` node's block: `exclude "PATTERN" …`, any number of times. `None` when one of
    /// them is refused.
    fn excludes(&mut self, node: &KdlNode) -> Option<Vec<Spanned<String>>> {
        let mut out = Vec::new();
        let mut ok = true;
        for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
            if child.name().value() != "exclude" {
                self.unknown(child, "`copy`", "exclude");
                ok = false;
                continue;
            }
            self.no_props(child, &[]);
            self.no_children(child);
            let a = args(child);
            if a.is_empty() {
                self.problem(
                    Problem::new("kiln::recipe::arguments", child.span(), "`exclude` needs at least one pattern")
                        .label("no pattern given")
                        .help("for example: exclude \"target/\" \"*.log\""),
                );
                ok = false;
            }
            for e in a {
                match self.string(e).filter(|p| self.printable(p, "exclude pattern")) {
                    Some(p) if p.value.trim().trim_start_matches('!').trim().is_empty() => {
                        self.problem(
                            Problem::new("kiln::recipe::exclude_pattern", p.span, "empty exclude pattern")
                                .label("matches nothing")
                                .help("write a path pattern such as \"target/\" or \"*.log\"; `!` before one re-includes what it matches"),
                        );
                        ok = false;
                    }
                    Some(p) => out.push(p),
                    None => ok = false,
                }
            }
        }
        ok.then_some(out)
    }

    fn single_string(&mut self, node: &KdlNode, usage: &str) -> Option<Spanned<String>> {
        self.no_children(node);
        self.no_props(node, &[]);
        let a = self.arity(node, 1, usage)?;
        self.string(a[0])
    }

    fn rust(&mut self, node: &KdlNode) -> Option<RustSpec> {
        self.no_props(node, &[]);
        let package = self.arity(node, 1, "rust \"PACKAGE\" { … }").and_then(|a| self.string(a[0]));
        let mut spec = RustSpec {
            package: package.clone().unwrap_or_else(|| Spanned::new(String::new(), node.span())),
            bin: None,
            features: Vec::new(),
            no_default_features: false,
            profile: "release".into(),
            dest: None,
            manifest: None,
            targets: Vec::new(),
            span: node.span(),
        };
        let mut seen = BTreeMap::new();
        for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
            let n = child.name().value();
            if n != "target" && n != "features" && !self.once(&mut seen, child) {
                continue;
            }
            match n {
                "bin" => spec.bin = self.single_string(child, "bin \"NAME\""),
                "features" => spec.features.extend(self.strings(child)),
                "no-default-features" => {
                    self.no_children(child);
                    self.no_props(child, &[]);
                    self.arity(child, 0, "no-default-features");
                    spec.no_default_features = true;
                }
                "profile" => {
                    if let Some(p) = self.single_string(child, "profile \"release\"") {
                        let ok = !p.value.is_empty()
                            && p.value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
                        if ok {
                            spec.profile = p.value;
                        } else {
                            self.problem(
                                Problem::new(
                                    "kiln::recipe::profile",
                                    p.span,
                                    format!("invalid cargo profile `{}`", p.value),
                                )
                                .label("not a profile name"),
                            );
                        }
                    }
                }
                "dest" => {
                    spec.dest = self
                        .single_string(child, "dest \"/usr/local/bin/NAME\"")
                        .and_then(|d| self.image_path(&d, "destination"));
                    if let Some(d) = &spec.dest
                        && d.value.ends_with('/')
                    {
                        self.problem(
                            Problem::new(
                                "kiln::recipe::file_dest",
                                d.span,
                                "`dest` needs a file path, not a directory",
                            )
                            .label("ends with `/`"),
                        );
                    }
                }
                "manifest" => {
                    spec.manifest = self
                        .single_string(child, "manifest \"path/Cargo.toml\"")
                        .filter(|m| self.printable(m, "manifest"))
                }
                "target" => {
                    self.no_children(child);
                    self.no_props(child, &[]);
                    if let Some(a) = self.arity(child, 2, "target \"linux/arm/v7\" \"TRIPLE\"") {
                        let (p, t) = (self.string(a[0]), self.string(a[1]));
                        if let (Some(p), Some(t)) = (p, t) {
                            match Platform::parse(&p.value) {
                                Some(platform) => spec.targets.push((platform, t)),
                                None => self.problem(
                                    Problem::new(
                                        "kiln::recipe::platform",
                                        p.span,
                                        format!("unknown platform `{}`", p.value),
                                    )
                                    .label("not a supported platform")
                                    .help("supported platforms: linux/amd64, linux/arm64, linux/arm/v7"),
                                ),
                            }
                        }
                    }
                }
                _ => self.unknown(child, "`rust`", RUST_NODES),
            }
        }
        package?;
        Some(spec)
    }

    fn port(&mut self, e: &KdlEntry) -> Option<String> {
        let bad = |p: &mut Self, span| {
            p.problem(
                Problem::new("kiln::recipe::port", span, "invalid port")
                    .label("expected a port such as 8080, \"8080/tcp\" or \"53/udp\"")
                    .help("ports are 1-65535; protocols tcp, udp or sctp"),
            );
            None
        };
        match e.value() {
            KdlValue::Integer(i) if (1..=65535).contains(i) => Some(format!("{i}/tcp")),
            KdlValue::String(s) => {
                let (num, proto) = s.split_once('/').unwrap_or((s.as_str(), "tcp"));
                match (num.parse::<u16>(), proto) {
                    (Ok(n), "tcp" | "udp" | "sctp") if n > 0 => Some(format!("{n}/{proto}")),
                    _ => bad(self, e.span()),
                }
            }
            _ => bad(self, e.span()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(text: &str) -> Vec<&'static str> {
        match parse("kiln.kdl", text) {
            Ok(_) => vec![],
            Err(e) => e.codes(),
        }
    }

    #[test]
    fn minimal_recipe_parses() {
        let r = parse("kiln.kdl", "kiln 1\nimage \"app\" {\n base \"scratch\"\n file \"/etc/x\" \"hi\" mode=0o600\n expose 8080 \"53/udp\"\n env A=\"1\" B=\"2\"\n}\n").unwrap();
        assert_eq!(r.images.len(), 1);
        let i = &r.images[0];
        assert_eq!(i.expose, vec!["53/udp".to_string(), "8080/tcp".to_string()]);
        assert_eq!(i.env, vec![("A".into(), "1".into()), ("B".into(), "2".into())]);
        match &i.contents[0] {
            Content::File { perms, .. } => assert_eq!(perms.mode, Some(0o600)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reports_all_problems_at_once() {
        let c = codes(
            "kiln 1\nfrob 1\nimage \"app\" {\n base \"scratch\"\n platforms \"linux/amd46\"\n copy \"a\" \"rel/x\"\n}\n",
        );
        assert_eq!(c, vec!["kiln::recipe::unknown_node", "kiln::recipe::platform", "kiln::recipe::relative_path"]);
    }

    #[test]
    fn rejects_escaping_and_missing_nodes() {
        assert_eq!(
            codes("kiln 1\nimage \"a\" {\n base \"scratch\"\n copy \"x\" \"/../etc\"\n}"),
            vec!["kiln::recipe::path_escape"]
        );
        assert_eq!(codes("image \"a\" { base \"scratch\"; }"), vec!["kiln::recipe::missing_node"]);
        assert_eq!(codes("kiln 1\nimage \"a\" { user \"x\"; }"), vec!["kiln::recipe::missing_node"]);
        assert_eq!(codes("kiln 1\nimage \"a\" { base 1; }"), vec!["kiln::recipe::type"]);
    }

    #[test]
    fn rust_node_parses_every_child() {
        let r = parse(
            "k",
            "kiln 1\nimage \"a\" {\n base \"scratch\"\n rust \"api\" {\n  bin \"server\"\n  features \"x\" \"y\"\n  no-default-features\n  profile \"dist\"\n  dest \"/app\"\n  manifest \"svc/Cargo.toml\"\n  target \"linux/arm/v7\" \"armv7-unknown-linux-musleabihf\"\n }\n}\n",
        )
        .unwrap();
        let Content::Rust(spec) = &r.images[0].contents[0] else { panic!("not a rust node") };
        assert_eq!(spec.package.value, "api");
        assert_eq!(spec.bin.as_ref().unwrap().value, "server");
        assert_eq!(spec.features, vec!["x".to_string(), "y".to_string()]);
        assert!(spec.no_default_features);
        assert_eq!(spec.profile, "dist");
        assert_eq!(spec.dest.as_ref().unwrap().value, "/app");
        assert_eq!(spec.manifest.as_ref().unwrap().value, "svc/Cargo.toml");
        assert_eq!(spec.targets[0].0, Platform::LinuxArmV7);
        assert_eq!(spec.targets[0].1.value, "armv7-unknown-linux-musleabihf");
        assert_eq!(
            codes("kiln 1\nimage \"a\" { base \"scratch\"; rust \"x\" { target \"linux/mips\" \"t\"; binn \"y\"; }; }"),
            vec!["kiln::recipe::platform", "kiln::recipe::unknown_node"]
        );
    }

    #[test]
    fn refuses_control_characters_in_paths() {
        assert_eq!(
            codes("kiln 1\nimage \"a\" { base \"scratch\"; copy \"x\\ny\" \"/a\\tb\"; }"),
            vec!["kiln::recipe::control_character", "kiln::recipe::control_character"]
        );
    }

    #[test]
    fn refuses_kilns_own_annotations() {
        assert_eq!(
            codes("kiln 1\nimage \"a\" { base \"scratch\"; annotation \"dev.kiln.layers\" \"x\"; }"),
            vec!["kiln::recipe::reserved_annotation"]
        );
    }

    #[test]
    fn a_refused_layer_path_is_not_also_missing() {
        assert_eq!(
            codes("kiln 1\nlayers { layer \"ui\" { path \"rel/\"; }; }\nimage \"a\" { base \"scratch\"; }"),
            vec!["kiln::recipe::relative_path"]
        );
    }

    #[test]
    fn normalises_paths() {
        let r = parse("k", "kiln 1\nimage \"a\" { base \"scratch\"; copy \"x\" \"/usr/./lib/../bin/\"; }").unwrap();
        match &r.images[0].contents[0] {
            Content::Copy { dest, .. } => assert_eq!(dest.value, "/usr/bin/"),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn first(text: &str) -> Problem {
        match parse("kiln.kdl", text) {
            Ok(_) => panic!("parses: {text:?}"),
            Err(e) => e.problems[0].clone(),
        }
    }

    const OK: &str = "kiln 1\nimage \"a\" { base \"scratch\"; }\n";

    #[test]
    fn nesting_is_refused_past_32_levels_at_the_brace() {
        let blocks = |n: usize| format!("{}{}", "x{".repeat(n), "}".repeat(n));
        assert!(
            parse("k", &format!("{OK}{}", blocks(32)))
                .unwrap_err()
                .codes()
                .iter()
                .all(|c| *c == "kiln::recipe::unknown_node")
        );
        // A `/-` in front of a node counts with its block: 32 blocks under it make 33 levels.
        let text = format!("{OK}/-{}", blocks(32));
        let p = first(&text);
        assert_eq!((p.code, &text[p.span.offset()..p.span.offset() + 2]), ("kiln::recipe::too_deep", "{}"));
        let p = first(&format!("{OK}{}", "a{".repeat(5000)));
        assert_eq!((p.code, p.span.offset()), ("kiln::recipe::too_deep", OK.len() + 65));
        assert_eq!(first(&format!("{OK}{}", "/*".repeat(40))).code, "kiln::recipe::too_deep");
        assert_eq!(first(&format!("{OK}a {}b", "/- ".repeat(40))).code, "kiln::recipe::too_deep");
    }

    #[test]
    fn braces_in_strings_and_comments_do_not_nest() {
        let braces = "{".repeat(100);
        for value in [
            format!("\"{braces}\\\"\""),
            format!("\"x\\\n   {braces}\""),
            format!("#\"{braces}\"#"),
            format!("##\"\"#{braces}\"##"),
            format!("\"\"\"\n  {braces}\n  \"\"\""),
            format!("#\"\"\"\n\"\"\"{braces}\n\"\"\"#"),
        ] {
            let text = format!(
                "kiln 1\nimage \"a\" {{ base \"scratch\"; file \"/x\" {value} /* {braces} /* */ */ }} // {braces}\n"
            );
            let r = parse("k", &text).unwrap_or_else(|e| panic!("{value}: {:?}", e.problems));
            assert!(matches!(&r.images[0].contents[0], Content::File { content, .. } if content.contains(&braces)));
        }
    }

    #[test]
    fn malformed_strings_and_comments_are_refused_before_the_parser() {
        let braces = "{".repeat(400);
        // Each of these once let the KDL parser read the braces as blocks and overflow its stack.
        for (text, at) in [
            (format!("a \"x\n{braces}\"\n"), 2),
            (format!("a \"x\\\\\n{braces}\"\n"), 2),
            (format!("a \"\"\"x {braces} \"\"\"\n"), 2),
            (format!("a \"\"\" \n{braces}\n\"\"\"\n"), 2),
            (format!("a #\"x\n{braces}\"#\n"), 2),
            (format!("a #\"\"\"\n{braces}\"\"\"#\n"), 407),
            (format!("foo\"bar {braces} \"\n"), 3),
            (format!("a \"unclosed {braces}"), 2),
            (format!("a /* unclosed\n{braces}"), 2),
        ] {
            let p = first(&text);
            assert_eq!((p.code, p.span.offset()), ("kiln::recipe::syntax", at), "{text:.20}: {}", p.message);
        }
    }

    #[test]
    fn many_syntax_errors_stop_at_the_first() {
        for text in ["}\n".repeat(5000), "a =\n".repeat(5000), "(t)\n".repeat(5000), "a \\ ".repeat(3000)] {
            let p = first(&text);
            assert_eq!(p.code, "kiln::recipe::syntax");
            assert!(p.help.unwrap().contains("more than 32 syntax errors"), "{text:.10}");
        }
        // A few go to the KDL parser, which explains them.
        assert_eq!(first("kiln 1\n}\n").message, "invalid KDL: Expected end of document");
        // After an error, a string holding a brace on the same line is not read.
        assert!(first("a = \"{\"\n").message.contains("a property is written key=value"));
    }

    #[test]
    fn long_lines_and_files_are_refused() {
        let p = first(&format!("kiln 1\n{}\n", "x".repeat(20_000)));
        assert_eq!(
            (p.code, p.message.as_str(), p.span.offset()),
            ("kiln::recipe::too_long", "line 2 is 20000 bytes long", 7)
        );
        let line = format!("/- x \"{}\"\n", "y".repeat(1000));
        let p = first(&line.repeat(2000));
        assert_eq!(p.code, "kiln::recipe::too_long");
        assert!(p.message.starts_with("the recipe is 2016000 bytes long"), "{}", p.message);
        assert_eq!(p.span.offset() % line.len(), 0);
        assert!(parse("k", &format!("{OK}/- x \"{}\"\n", "y".repeat(15_980))).is_ok());
    }

    #[test]
    fn unusual_line_breaks_and_control_characters_are_refused() {
        assert_eq!(first("kiln 1\rimage").code, "kiln::recipe::line_break");
        assert_eq!(first("kiln 1\nimage \"a\u{2028}\"").code, "kiln::recipe::line_break");
        assert_eq!(first("\"\"\"\r\"\"\"").code, "kiln::recipe::line_break");
        let p = first("kiln 1\nimage \"a\u{1}\"");
        assert_eq!((p.code, p.span.offset()), ("kiln::recipe::syntax", 15));
        assert!(parse("k", &OK.replace('\n', "\r\n")).is_ok());
        assert!(parse("k", &format!("\u{FEFF}{OK}")).is_ok());
    }

    #[test]
    fn malformed_numbers_are_explained_where_they_are() {
        let text = "kiln 1\nimage \"a\" {\n base \"scratch\"\n copy \"a\" \"/a\" mode=0o999\n}\n";
        let p = first(text);
        assert_eq!(p.message, "invalid KDL: `0o999` is not an octal number");
        assert_eq!(&text[p.span.offset()..p.span.offset() + p.span.len()], "0o999");
        let p = first("kiln 1\nimage \"a\" { base \"scratch\"; expose 0x1g; }");
        assert_eq!(p.message, "invalid KDL: `0x1g` is not a hexadecimal number");
        let p = first("kiln 1\nimage \"a\" { base \"scratch\"; copy \"a\" \"/a\" mode=\n}");
        assert_eq!((p.message.as_str(), p.span.len()), ("invalid KDL: property `mode` has no value", 1));
        assert!(first("kiln 1\nimage \"a\" { user true; }").message.contains("needs a `#`"));
    }

    #[test]
    fn unknown_nodes_suggest_the_closest_valid_one() {
        let label = |text: &str| {
            let e = parse("k", text).unwrap_err();
            e.problems.iter().find(|p| p.code != "kiln::recipe::missing_node").unwrap().label.clone()
        };
        assert_eq!(label("kiln 1\ndefualts {}\nimage \"a\" { base \"scratch\"; }"), "did you mean `defaults`?");
        assert_eq!(
            label(&format!("kiln 1\ndefaults {{ platfroms \"linux/amd64\"; }}\n{OK}")),
            "did you mean `platforms`?"
        );
        assert_eq!(label("kiln 1\nimage \"a\" { base \"scratch\"; coppy \"a\" \"/a\"; }"), "did you mean `copy`?");
        assert_eq!(
            label("kiln 1\nimage \"a\" { base \"scratch\"; rust \"x\" { featurs \"a\"; }; }"),
            "did you mean `features`?"
        );
        assert_eq!(label("kiln 1\nlayers { buget 3; }\nimage \"a\" { base \"scratch\"; }"), "did you mean `budget`?");
        assert_eq!(
            label("kiln 1\nlayers { layer \"x\" { paht \"/a\"; }; }\nimage \"a\" { base \"scratch\"; }"),
            "did you mean `path`?"
        );
        assert_eq!(label("kiln 1\nimage \"a\" { base \"scratch\"; colour \"blue\"; }"), "not a recipe node here");
        assert_eq!(
            label("kiln 1\nimage \"a\" { base \"scratch\"; copy \"a\" \"/a\" mdoe=0o644; }"),
            "did you mean `mode`?"
        );
    }

    #[test]
    fn copy_takes_exclude_patterns() {
        let r = parse("k", "kiln 1\nimage \"a\" { base \"scratch\"; copy \".\" \"/app/\" { exclude \"target/\" \"*.log\"; exclude \"!keep.log\"; }; }").unwrap();
        let Content::Copy { exclude, .. } = &r.images[0].contents[0] else { panic!("not a copy") };
        let patterns: Vec<&str> = exclude.iter().map(|p| p.value.as_str()).collect();
        assert_eq!(patterns, ["target/", "*.log", "!keep.log"]);
        assert_eq!(
            codes(
                "kiln 1\nimage \"a\" { base \"scratch\"; copy \".\" \"/app/\" { exclude \"\" \"!\" \"a\\nb\"; exclude; exclude 1; skip \"x\"; }; }"
            ),
            vec![
                "kiln::recipe::exclude_pattern",
                "kiln::recipe::exclude_pattern",
                "kiln::recipe::control_character",
                "kiln::recipe::arguments",
                "kiln::recipe::type",
                "kiln::recipe::unknown_node"
            ]
        );
    }

    /// The same values as the KDL parser reads from the same text, or an error where it has one.
    #[test]
    fn multi_line_strings_read_as_kdl_reads_them() {
        let cases = [
            "\"\"\"\n  foo \\\nbar\n  baz\n  \\   \"\"\"",
            "\"\"\"\n  foo\n \n\n  bar\n  \"\"\"",
            "\"\"\"\n\tfoo\n  \"\"\"",
            "\"\"\"\r\n  foo\r\n  bar\r\n  \"\"\"",
            "\"\"\"\n  bar\\\n  \"\"\"",
            "\"\"\"\n  foo\n bar\n  \"\"\"",
            "\"\"\"\n\"\"\"",
            "\"\"\"\n\n\"\"\"",
            "\"\"\"\n  \\n\\t\\u{1F600}\\s\\\"\\\\\n  \"\"\"",
            "\"\"\"\n  \\q\n  \"\"\"",
            "\"\"\"\n  \\u{D800}\n  \"\"\"",
            "\"\"\"\n  a\\   b\n  \"\"\"",
            "\"\"\"\n  a\\\n\n  b\n  \"\"\"",
            "\"\"\"\n  a \"\" b \"\n  \"\"\"",
            "\"\"\"\n  x\n  \\\n  \"\"\"",
            "\"\"\"\n   \n  x\n  \"\"\"",
            "\"\"\"\n  x \"\"\" y\n  \"\"\"",
            "\"\"\"\n\u{3000}x\n\u{3000}\"\"\"",
            "#\"\"\"\n  x\n  \"\"\"#",
            "#\"\"\"\n  x\\n \"\"\" y\n  \"\"\"#",
            "#\"\"\"\n  x \"\"\"# y\n  \"\"\"#",
            "##\"\"\"\n  \"\"\"#\n  \"\"\"##",
        ];
        let value = |d: &KdlDocument| d.nodes()[0].entries()[0].value().clone();
        for case in cases {
            let text = format!("a {case} k=1\n");
            match (document(&text), KdlDocument::parse_v2(&text)) {
                (Ok(ours), Ok(theirs)) => assert_eq!(value(&ours), value(&theirs), "{case}"),
                (Err(_), Err(_)) => {}
                (ours, theirs) => {
                    panic!("{case}: kiln {:?}, kdl {:?}", ours.map(|d| value(&d)), theirs.map(|d| value(&d)))
                }
            }
        }
        // As a node's name, a property's key and a type.
        let d = document("\"\"\"\n  n\n  \"\"\" (\"\"\"\nt\n\"\"\")1 \"\"\"\nk\n\"\"\"=\"\"\"\n  v\n \"\"\" { c; }")
            .unwrap();
        let n = &d.nodes()[0];
        assert_eq!(n.name().value(), "n");
        assert_eq!((n.entries()[0].ty().unwrap().value(), n.entries()[1].name().unwrap().value()), ("t", "k"));
        assert_eq!(n.entries()[1].value(), &KdlValue::String(" v".into()));
        assert_eq!(n.children().unwrap().nodes()[0].name().value(), "c");
    }

    #[test]
    fn multi_line_strings_with_many_braces_stay_text() {
        // The KDL parser alone overflows its stack on these.
        let json = "{\"a\": [{\"b\": {}}]}\n".repeat(2000);
        let text = format!("kiln 1\nimage \"a\" {{\n base \"scratch\"\n file \"/x.json\" \"\"\"\n{json}\"\"\"\n}}\n");
        let r = parse("k", &text).unwrap();
        assert!(matches!(&r.images[0].contents[0], Content::File { content, .. } if content.len() == json.len() - 1));
        let p = first("kiln 1\na \"\"\"\n  ok\n x\n  \"\"\"\n");
        assert_eq!(
            (p.message.as_str(), p.span.offset()),
            ("invalid KDL: a line of this multi-line string is indented less than its closing `\"\"\"`", 18)
        );
    }
}

//! Imports between the top-level modules of `src/` run one way (DESIGN.md, "The house"): this
//! test reads every source file, maps it to its top-level module (`src/plan/resolve/copy.rs` is
//! `plan`, `src/walk.rs` is `walk`), collects its `crate::X` references to other top-level
//! modules, and fails with the cycle spelled out when the graph has one.
//!
//! The cycles today's code still has are tolerated through [`ALLOWED`], a short list of
//! backward edges, each with why it is there: the graph without those edges must have no cycle,
//! so any new backward import fails. An allowed edge the code no longer has fails too, so the
//! list only shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Backward edges tolerated for now, as (from, to, why). Each closes a cycle the code still
/// has; the way out is named beside it.
const ALLOWED: &[(&str, &str, &str)] = &[
    // recipe -> plan -> recipe: the recipe parser names `plan::layering::{NamedLayer,
    // Volatility}`. Out: move those two types to a shared module and import them from there in
    // src/recipe/ (plan::layering can re-export them).
    ("recipe", "plan", "the recipe parser builds plan::layering's NamedLayer and Volatility"),
    // plan -> toolchain -> plan: resolving a `rust` node probes the toolchain and asks cargo
    // for the package (toolchain::rust), and the toolchain runs the plan's RustBuild. Out: the
    // probe and cargo_metadata facts gathered before planning and handed to `resolve`.
    ("plan", "toolchain", "resolve probes rustc and cargo; the toolchain runs plan::RustBuild"),
    // plan -> base -> plan: resolving a base asks `base` for distroless layers and a layout's
    // config, and `base` fills the plan's ConfigPlan. Out: ConfigPlan (with UserSource and
    // the default PATH and user) moved to a shared module like `entry`.
    ("plan", "base", "resolve asks base for layers; base fills plan::ConfigPlan"),
    // debian -> toolchain -> plan -> recipe -> debian: the Debian index check finds `gpgv`
    // with toolchain::which. Out: a small shared module for finding host programs.
    ("debian", "toolchain", "the Release signature check finds gpgv with toolchain::which"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut items: Vec<PathBuf> =
        std::fs::read_dir(dir).expect("src/ is readable").filter_map(Result::ok).map(|e| e.path()).collect();
    items.sort();
    for p in items {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to: `plan/resolve/copy.rs` -> `plan`, `walk.rs` ->
/// `walk`. The crate roots (`lib.rs`, `main.rs`) belong to none.
fn top_module(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The code of a file without its comment lines (docs name modules without importing them).
fn code(text: &str) -> String {
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The top-level modules a piece of code names through `crate::X`, `use crate::{X, Y::Z}`.
fn references(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        let after = &rest[at + "crate::".len()..];
        rest = after;
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            // Top-level items of the group: split at commas outside nested braces.
            let (mut depth, mut start) = (0usize, 0usize);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident(group[start..i].trim()));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(group[start..i].trim()));
                        start = i + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(after));
        }
    }
    out.remove("");
    out.remove("self");
    out
}

fn module_graph() -> Graph {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph = Graph::new();
    for f in &files {
        let rel = f.strip_prefix(&src).expect("under src/");
        let Some(top) = top_module(rel) else { continue };
        let text = std::fs::read_to_string(f).expect("source is UTF-8");
        let refs = references(&code(&text));
        graph.entry(top.clone()).or_default().extend(refs.into_iter().filter(|r| *r != top));
    }
    graph
}

/// Every cycle a depth-first search meets, each spelled `a -> b -> a`, in a stable order.
fn cycles(graph: &Graph) -> Vec<String> {
    fn visit(n: &str, g: &Graph, stack: &mut Vec<String>, done: &mut BTreeSet<String>, out: &mut Vec<String>) {
        if let Some(at) = stack.iter().position(|s| s == n) {
            let mut path = stack[at..].to_vec();
            path.push(n.to_string());
            out.push(path.join(" -> "));
            return;
        }
        if done.contains(n) {
            return;
        }
        stack.push(n.to_string());
        for next in g.get(n).into_iter().flatten() {
            visit(next, g, stack, done, out);
        }
        stack.pop();
        done.insert(n.to_string());
    }
    let (mut done, mut out) = (BTreeSet::new(), Vec::new());
    for n in graph.keys() {
        visit(n, graph, &mut Vec::new(), &mut done, &mut out);
    }
    out
}

fn without_allowed(mut graph: Graph) -> Graph {
    for (from, to, _) in ALLOWED {
        if let Some(edges) = graph.get_mut(*from) {
            edges.remove(*to);
        }
    }
    graph
}

#[test]
fn top_level_modules_import_one_way() {
    let found = cycles(&without_allowed(module_graph()));
    assert!(
        found.is_empty(),
        "imports between top-level modules form a cycle; move the shared item down to a \
         module both can use:\n  {}",
        found.join("\n  ")
    );
}

#[test]
fn every_allowed_backward_edge_still_exists() {
    let graph = module_graph();
    let gone: Vec<String> = ALLOWED
        .iter()
        .filter(|(from, to, _)| !graph.get(*from).is_some_and(|e| e.contains(*to)))
        .map(|(from, to, _)| format!("{from} -> {to}"))
        .collect();
    assert!(gone.is_empty(), "these allowed edges are gone; remove them from ALLOWED: {}", gone.join(", "));
}

#[test]
fn the_checker_finds_a_cycle_and_reads_grouped_imports() {
    let refs =
        references("use crate::plan::{Entry, X};\nuse crate::{walk::{self, a}, image};\nx::crate::no; $crate::no");
    assert_eq!(refs, BTreeSet::from(["plan".into(), "walk".into(), "image".into()]));
    let edges = |list: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in list {
            g.entry(a.to_string()).or_default().insert(b.to_string());
        }
        g
    };
    assert_eq!(cycles(&edges(&[("plan", "toolchain"), ("toolchain", "plan")])), ["plan -> toolchain -> plan"]);
    assert!(cycles(&edges(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
    assert_eq!(top_module(Path::new("plan/resolve/copy.rs")).as_deref(), Some("plan"));
    assert_eq!(top_module(Path::new("walk.rs")).as_deref(), Some("walk"));
}

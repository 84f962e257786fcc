//! Imports between the top-level modules of `src/` run one way (DESIGN.md, "The house"): this
//! test reads every source file, maps it to its top-level module (`src/plan/resolve/copy.rs` is
//! `plan`, `src/host.rs` is `host`) and collects its `crate::X` references to other top-level
//! modules. It fails with the cycle spelled out when the graph has one, and with the import
//! named when it reaches up the house's floors ([`FLOORS`]), cycle or not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The house's floors, lowest first (DESIGN.md, "The house"): a module may import from its own
/// floor or below, never from above. Within a floor the cycle check keeps imports one way. A
/// new top-level module must be given its floor here before the suite passes.
const FLOORS: &[&[&str]] = &[
    // Shared vocabulary: digests, platforms, entries, configs; errors and their codes; finding
    // host programs; progress reports; locks; ignore patterns.
    &["oci", "error", "diag", "host", "progress", "lock", "ignore"],
    // Reading and writing blobs; fetching pinned inputs (Debian packages).
    &["store", "inputs"],
    // KDL -> Recipe.
    &["recipe"],
    // What a base image holds, read from its packages or its layout.
    &["base", "baseview"],
    // Recipe + facts -> Plan: pure.
    &["plan"],
    // Runs the plan's build steps: the only code that spawns compilers.
    &["toolchain"],
    // Layers, images, and the publishers beyond the layout directory.
    &["layer", "image", "publish", "attest", "remote_cache"],
    // Executes a plan.
    &["build"],
    // Features that read what build wrote.
    &["update", "inspect", "doctor", "init", "verify", "merge"],
    // The command line, and the tests that drive the whole pipeline.
    &["cli", "pipeline_tests"],
];

fn named(floor: Option<usize>) -> String {
    floor.map_or("no floor".into(), |f| format!("floor {f}"))
}

fn floor(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

/// Every import that reaches up a floor (or names a module with no floor), spelled
/// `from (floor 1) -> to (floor 2)`.
fn upward(graph: &Graph) -> Vec<String> {
    let mut out = Vec::new();
    for (from, tos) in graph {
        for to in tos {
            match (floor(from), floor(to)) {
                (Some(a), Some(b)) if b <= a => {}
                (a, b) => out.push(format!("{from} ({}) -> {to} ({})", named(a), named(b))),
            }
        }
    }
    out
}

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

#[test]
fn top_level_modules_import_one_way() {
    let graph = module_graph();
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "imports between top-level modules form a cycle; move the shared item down to a \
         module both can use:\n  {}",
        found.join("\n  ")
    );
    let up = upward(&graph);
    assert!(
        up.is_empty(),
        "these imports reach up the house's floors (FLOORS in this file); move the shared item \
         down, or give a new module its floor:\n  {}",
        up.join("\n  ")
    );
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
    assert_eq!(top_module(Path::new("host.rs")).as_deref(), Some("host"));
    assert_eq!(upward(&edges(&[("plan", "recipe"), ("recipe", "oci")])), Vec::<String>::new());
    assert_eq!(upward(&edges(&[("recipe", "plan")])), ["recipe (floor 2) -> plan (floor 4)"]);
    assert_eq!(upward(&edges(&[("newthing", "oci")])), ["newthing (no floor) -> oci (floor 0)"]);
}

/// No source file over about 400 lines (the house rules; clippy's `too_many_lines`, set to 80
/// in clippy.toml, keeps functions short): a file past it holds two ideas.
#[test]
fn no_source_file_is_over_400_lines() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let long: Vec<String> = files
        .iter()
        .map(|f| (f, std::fs::read_to_string(f).expect("source is UTF-8").lines().count()))
        .filter(|(_, n)| *n > 400)
        .map(|(f, n)| format!("{} ({n} lines)", f.strip_prefix(&root).unwrap_or(f).display()))
        .collect();
    assert!(long.is_empty(), "split these files by idea: {}", long.join(", "));
}

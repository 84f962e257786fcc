//! Docs and examples are tests: every `kdl` block in the book and every recipe in `templates/`
//! parses, and every recipe in `examples/` resolves to a plan against its own files.

use std::path::{Path, PathBuf};

fn files_named(dir: &Path, pred: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut items: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
    items.sort();
    for p in items {
        if p.is_dir() {
            files_named(&p, pred, out);
        } else if pred(&p) {
            out.push(p);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The ```kdl fenced blocks of a Markdown file, with the line each starts on.
fn kdl_blocks(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        let t = line.trim_start();
        match &mut current {
            None if t.starts_with("```kdl") => current = Some((n + 1, String::new())),
            Some(_) if t.starts_with("```") => out.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn every_kdl_block_in_the_book_parses() {
    let mut md = Vec::new();
    files_named(&root().join("book/src"), &|p| p.extension().is_some_and(|e| e == "md"), &mut md);
    files_named(&root(), &|p| p.file_name().is_some_and(|n| n == "README.md") && p.parent() == Some(&root()), &mut md);
    let mut blocks = 0;
    let mut failures = Vec::new();
    for file in &md {
        let text = std::fs::read_to_string(file).unwrap();
        for (line, block) in kdl_blocks(&text) {
            blocks += 1;
            // A block that shows a mistake on purpose says so on its first line.
            let expect_error = block.lines().next().is_some_and(|l| l.contains("error:"));
            let name = format!("{}:{line}", file.display());
            match (kiln::recipe::parse(&name, &block), expect_error) {
                (Ok(_), false) | (Err(_), true) => {}
                (Ok(_), true) => failures.push(format!("{name}: block marked `error:` parses")),
                (Err(e), false) => {
                    failures.push(format!("{name}: {:?}", e.problems.iter().map(|p| &p.message).collect::<Vec<_>>()))
                }
            }
        }
    }
    assert!(blocks >= 5, "expected the book to hold recipe examples, found {blocks} kdl blocks");
    assert!(failures.is_empty(), "kdl blocks that do not parse:\n{}", failures.join("\n"));
}

#[test]
fn every_template_parses_and_every_example_plans() {
    let mut recipes = Vec::new();
    files_named(&root().join("templates"), &|p| p.extension().is_some_and(|e| e == "kdl"), &mut recipes);
    let templates = recipes.len();
    assert!(templates >= 1, "templates/ holds no recipe");
    for r in &recipes {
        // Templates are parsed as `kiln init` fills them.
        let text = kiln::init::fill(&std::fs::read_to_string(r).unwrap(), "demo", "demo", "demo");
        if let Err(e) = kiln::recipe::parse(&r.display().to_string(), &text) {
            panic!("{}: {:?}", r.display(), e.problems);
        }
    }
    let mut examples = Vec::new();
    files_named(&root().join("examples"), &|p| p.file_name().is_some_and(|n| n == "kiln.kdl"), &mut examples);
    assert!(!examples.is_empty(), "examples/ holds no recipe");
    for r in &examples {
        let text = std::fs::read_to_string(r).unwrap();
        let recipe = kiln::recipe::parse(&r.display().to_string(), &text)
            .unwrap_or_else(|e| panic!("{}: {:?}", r.display(), e.problems));
        let mut opts = kiln::plan::PlanOptions { root: r.parent().unwrap().to_path_buf(), ..Default::default() };
        opts.facts = kiln::toolchain::facts::gather(
            &opts.root,
            &crate::common::cargo_home(),
            &kiln::plan::needs(&recipe, &opts),
        );
        let plan = kiln::plan::resolve(&recipe, &opts).unwrap_or_else(|p| panic!("{}: {:?}", r.display(), p));
        assert!(!plan.images.is_empty());
    }
}

//! The planner on arbitrary recipes over a small fixed project: resolving copies, placeholders,
//! layers, bases and `rust`, `c` and `go` nodes must never panic. The toolchain facts are
//! kiln's stand-in ones (`toolchain::fake`), given for every package and target a recipe asks
//! about, and a stand-in zig and go, so no compiler runs.
#![no_main]

#[path = "render.rs"]
mod render;

use std::path::PathBuf;
use std::sync::OnceLock;

/// A project with files, a directory, per-platform sources and links, made once per process.
fn root() -> &'static PathBuf {
    static ROOT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &ROOT
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let p = dir.path().to_path_buf();
            let write = |rel: &str, body: &str| {
                let f = p.join(rel);
                std::fs::create_dir_all(f.parent().expect("parent")).expect("mkdir");
                std::fs::write(f, body).expect("write");
            };
            write("a.txt", "a\n");
            write("site/index.html", "<p>hi</p>\n");
            write("site/css/x.css", "p{}\n");
            write(".kilnignore", "*.tmp\n");
            write("Cargo.toml", "[package]\nname = \"app\"\nversion = \"0.1.0\"\n");
            write("Cargo.lock", "version = 4\n");
            write("src/main.rs", "fn main() {}\n");
            write("site/junk.tmp", "tmp\n");
            write("src/probe.c", "#include \"probe.h\"\nint main(void) { return 0; }\n");
            write("src/probe.h", "#define X 1\n");
            write("include/shared.h", "#define Y 1\n");
            write("agent/go.mod", "module example.com/agent\n\ngo 1.19\n");
            write("agent/main.go", "package main\n\nfunc main() {}\n");
            for arch in ["amd64", "arm64", "arm"] {
                write(&format!("dist/{arch}/app"), arch);
            }
            let _ = std::os::unix::fs::symlink("a.txt", p.join("link"));
            let _ = std::os::unix::fs::symlink("/etc", p.join("site/etc"));
            (dir, p)
        })
        .1
}

/// The stand-in facts for the fixed project, answering every need: each manifest and package
/// is the project's `app` (binaries `app` and `tool`), each named triple a stand-in target.
fn facts(needs: &kiln::plan::facts::Needs) -> kiln::plan::facts::Facts {
    use kiln::plan::facts::{Go, Zig};
    let mut facts = kiln::toolchain::fake::facts(root(), "app", &["app", "tool"]);
    facts.zig = Some(Ok(Zig { path: "/fake/zig".into(), version: "0.17.0".into(), sha256: "a".repeat(64) }));
    let go = "go version go1.19.8 linux/amd64".to_string();
    facts.go = Some(Ok(Go { path: "/fake/go".into(), version: go, sha256: "b".repeat(64) }));
    let package = facts.packages.values().next().cloned().expect("the fake package");
    for need in &needs.rust {
        facts.packages.insert((need.manifest.clone(), need.package.clone()), package.clone());
        if let (Some(triple), Some(Ok(target))) = (&need.triple, facts.targets.get(&(need.platform, None)).cloned()) {
            let target = kiln::plan::facts::Target { triple: triple.clone(), ..target };
            facts.targets.insert((need.platform, Some(triple.clone())), Ok(target));
        }
    }
    facts
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    render::keep_last(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (Some(recipe), problems) = kiln::recipe::parse_partial(text) else { return };
    let mut opts = kiln::plan::PlanOptions { root: root().clone(), ..Default::default() };
    opts.facts = facts(&kiln::plan::needs(&recipe, &opts));
    match kiln::plan::resolve(&recipe, &opts) {
        // A plan kiln writes (from a recipe without problems) reads back as itself: what
        // `kiln build --plan` relies on.
        Ok(plan) if problems.is_empty() => {
            let json = plan.to_json();
            let back =
                kiln::plan::Plan::from_json(&json).unwrap_or_else(|e| panic!("the plan does not read back: {e}"));
            assert!(back == plan && back.to_json() == json, "the plan read back differs");
            let _ = kiln::plan::render_text(&plan);
        }
        Ok(plan) => {
            let _ = (plan.to_json(), kiln::plan::render_text(&plan));
        }
        Err(more) => {
            let all: Vec<_> = problems.into_iter().chain(more).collect();
            let _ = render::render(&kiln::diag::RecipeErrors::new("kiln.kdl", text, all));
        }
    }
});

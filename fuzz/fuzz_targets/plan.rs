//! The planner on arbitrary recipes over a small fixed project: resolving copies, placeholders,
//! layers and bases must never panic. Recipes with a `rust` node are skipped: they run cargo.
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
            write("site/junk.tmp", "tmp\n");
            for arch in ["amd64", "arm64", "arm"] {
                write(&format!("dist/{arch}/app"), arch);
            }
            let _ = std::os::unix::fs::symlink("a.txt", p.join("link"));
            let _ = std::os::unix::fs::symlink("/etc", p.join("site/etc"));
            (dir, p)
        })
        .1
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (Some(recipe), problems) = kiln::recipe::parse_partial(text) else { return };
    if recipe.images.iter().any(|i| i.contents.iter().any(|c| matches!(c, kiln::recipe::Content::Rust(_)))) {
        return;
    }
    let opts = kiln::plan::PlanOptions { root: root().clone(), ..Default::default() };
    match kiln::plan::resolve(&recipe, &opts) {
        Ok(plan) => {
            let _ = plan.to_json();
            let _ = kiln::plan::render_text(&plan);
        }
        Err(more) => {
            let all: Vec<_> = problems.into_iter().chain(more).collect();
            let _ = render::render(&kiln::diag::RecipeErrors::new("kiln.kdl", text, all));
        }
    }
});

//! The `go` node: the main package's directory (inside the recipe's), its module (the nearest
//! `go.mod` upward, no higher than the recipe's directory), the module's files hashed, and one
//! `go build` per platform recorded with its environment's choices.

use super::rust::{binary_entry, relative};
use super::{Placed, Resolver};
use crate::diag::Problem;
use crate::diag::codes::Code;
use crate::oci::platform::Platform;
use crate::plan::GoBuild;
use crate::recipe::GoSpec;
use std::path::{Path, PathBuf};

/// kiln's own `-ldflags`: no symbol table, no DWARF, no build id.
pub(crate) const GO_LDFLAGS: &str = "-s -w -buildid=";

fn goarch(platform: Platform) -> (&'static str, Option<&'static str>) {
    match platform {
        Platform::LinuxAmd64 => ("amd64", None),
        Platform::LinuxArm64 => ("arm64", None),
        Platform::LinuxArmV7 => ("arm", Some("7")),
    }
}

/// The directory of the nearest `go.mod` at or above `dir`, no higher than `top`.
fn module_root(dir: &Path, top: &Path) -> Option<PathBuf> {
    let mut at = Some(dir);
    while let Some(d) = at {
        if d.join("go.mod").is_file() {
            return Some(d.to_path_buf());
        }
        if d == top {
            break;
        }
        at = d.parent();
    }
    None
}

/// The local directories a `go.mod` replaces modules with (`replace a => ../b`, alone or in a
/// `replace ( … )` block): Go reads them as they are unless the module is vendored.
fn local_replacements(go_mod: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in go_mod.lines() {
        let line = line.split("//").next().unwrap_or_default().trim();
        let spec = if in_block {
            if line == ")" {
                in_block = false;
                continue;
            }
            line
        } else if let Some(rest) = line.strip_prefix("replace") {
            let rest = rest.trim();
            if rest == "(" {
                in_block = true;
                continue;
            }
            rest
        } else {
            continue;
        };
        if let Some((_, target)) = spec.split_once("=>") {
            let path = target.split_whitespace().next().unwrap_or_default().trim_matches('"');
            if path.starts_with("./") || path.starts_with("../") || path.starts_with('/') || path == "." || path == ".."
            {
                out.push(path.to_string());
            }
        }
    }
    out
}

/// What of a module leads outside its own directory: a local `replace` (when not vendored) or
/// a symbolic link that resolves outside the recipe's directory.
fn escapes(module: &Path, real_root: &Path, vendored: bool) -> Option<String> {
    if !vendored {
        let go_mod = std::fs::read_to_string(module.join("go.mod")).unwrap_or_default();
        for path in local_replacements(&go_mod) {
            let real = std::fs::canonicalize(module.join(&path)).unwrap_or_else(|_| module.join(&path));
            if !real.starts_with(module) {
                return Some(format!("go.mod replaces a module with `{path}`, outside the module's directory"));
            }
        }
    }
    let walk = walkdir::WalkDir::new(module)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for e in walk.filter_map(Result::ok).filter(|e| e.path_is_symlink()) {
        let real = std::fs::canonicalize(e.path()).unwrap_or_else(|_| e.path().to_path_buf());
        if !real.starts_with(real_root) {
            return Some(format!(
                "{} is a link to {}, outside the recipe's directory",
                e.path().display(),
                real.display()
            ));
        }
    }
    None
}

impl Resolver<'_> {
    /// A `go` node for one platform.
    pub(super) fn go(&mut self, spec: &GoSpec, platform: Platform) -> Option<Placed> {
        let span = spec.package.span;
        let dir = self.inside(&spec.package.value, span, "package")?;
        if !dir.is_dir() {
            let p = Problem::new(
                Code::PlanMissingSource,
                span,
                format!("package `{}` is not a directory", spec.package.value),
            )
            .label("a Go package is a directory")
            .help("name the main package's directory: `go \"./cmd/agent\"`");
            self.once(format!("notdir:{}", spec.package.value), span, p);
            return None;
        }
        let Some(module) = module_root(&dir, &self.real_root) else {
            let p = Problem::new(
                Code::PlanMissingGoMod,
                span,
                format!("no go.mod at or above `{}` inside the recipe's directory", spec.package.value),
            )
            .label("not in a Go module")
            .help("run `go mod init NAME` in the module's directory (inside the recipe's), and commit go.mod");
            self.once(format!("gomod:{}", spec.package.value), span, p);
            return None;
        };
        let vendored = module.join("vendor").is_dir();
        if let Some(why) = escapes(&module, &self.real_root, vendored) {
            let p = Problem::new(Code::RecipeSourceOutside, span, format!("the module of `{}`: {why}", spec.package.value))
                .label("its module reads files from outside")
                .help("a Go build may read only the module's own files: vendor the module (`go mod vendor`) or move what it needs inside");
            self.once(format!("goescape:{}", module.display()), span, p);
            return None;
        }
        let go = match self.facts.go() {
            Ok(g) => g,
            Err(m) => {
                let p = Problem::new(m.code, span, m.message.clone()).label("needed here").help(m.help);
                self.once(format!("{}", m.code), span, p);
                return None;
            }
        };
        let go_desc = format!("{} (sha256 {})", go.version, go.sha256);
        let (source_files, sources_sha256) = self.module_sources(&module, span)?;
        let rel_in_module = dir.strip_prefix(&module).unwrap_or(&dir).to_string_lossy().into_owned();
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "main".into());
        let (arch, arm) = goarch(platform);
        let mut ldflags = GO_LDFLAGS.to_string();
        for f in &spec.ldflags {
            ldflags.push(' ');
            ldflags.push_str(f);
        }
        let mut build = GoBuild {
            id: String::new(),
            name,
            package: spec.package.value.clone(),
            module: relative(self.root, &module),
            target: if rel_in_module.is_empty() { ".".into() } else { format!("./{rel_in_module}") },
            platform,
            goarch: arch.into(),
            goarm: arm.map(str::to_string),
            go: go_desc,
            mod_mode: if vendored { "vendor" } else { "readonly" }.into(),
            tags: spec.tags.clone(),
            ldflags,
            source_files,
            sources_sha256,
            network: self.isolation(),
        };
        build.id = crate::plan::steps::seal(&build, self.epoch);
        let dest =
            spec.dest.as_ref().map(|d| d.value.clone()).unwrap_or_else(|| format!("/usr/local/bin/{}", build.name));
        let layer =
            (format!("go {}", spec.package.value), format!("kiln: go build {} GOARCH={arch}", spec.package.value));
        let entry = binary_entry(dest, build.id.clone());
        if !self.go.iter().any(|b| b.id == build.id) {
            self.go.push(build);
        }
        Some(Placed { entries: vec![entry], layer: Some(layer), share: None })
    }

    /// The number and hash of a module's files, hashed once per module.
    fn module_sources(&mut self, module: &Path, span: miette::SourceSpan) -> Option<(usize, String)> {
        if let Some(h) = self.sources.get(module) {
            return Some(h.clone());
        }
        let skip: Vec<PathBuf> = self.real_cache.iter().cloned().collect();
        match crate::plan::facts::hash_sources(module, &skip, self.fingerprints) {
            Ok(h) => {
                self.sources.insert(module.to_path_buf(), h.clone());
                Some(h)
            }
            Err(e) => {
                let p = Problem::new(
                    Code::PlanUnreadableSource,
                    span,
                    format!("cannot read the module {}: {e}", module.display()),
                )
                .label("its module")
                .help("check the files' permissions");
                self.once(format!("module:{}", module.display()), span, p);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_replacements_are_found_alone_and_in_blocks() {
        let go_mod = "module a\n\nreplace example.com/x => ../x // local\nreplace example.com/y v1.0.0 => example.com/z v1.2.0\nreplace (\n\texample.com/w => ./w\n\t\"example.com/v\" => /abs/v\n)\n";
        assert_eq!(super::local_replacements(go_mod), ["../x", "./w", "/abs/v"]);
    }
}

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
            mod_mode: if module.join("vendor").is_dir() { "vendor" } else { "readonly" }.into(),
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
        Some(Placed { entries: vec![entry], layer: Some(layer) })
    }

    /// The number and hash of a module's files, hashed once per module.
    fn module_sources(&mut self, module: &Path, span: miette::SourceSpan) -> Option<(usize, String)> {
        if let Some(h) = self.sources.get(module) {
            return Some(h.clone());
        }
        let skip: Vec<PathBuf> = self.real_cache.iter().cloned().collect();
        match crate::plan::facts::hash_sources(module, &skip) {
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

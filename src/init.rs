//! `kiln init`: a starting `kiln.kdl` from a template, filled in for the cargo project in the
//! current directory.

use crate::error::BuildError;
use std::path::Path;

/// Templates shipped with kiln: name, what it is for, text.
pub const TEMPLATES: &[(&str, &str, &str)] = &[
    (
        "rust-scratch",
        "a Rust binary of this cargo project on scratch",
        include_str!("../templates/rust-scratch/kiln.kdl"),
    ),
    ("prebuilt", "prebuilt per-platform binaries on scratch", include_str!("../templates/prebuilt/kiln.kdl")),
];

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InitError {
    #[error("unknown template `{0}`")]
    #[diagnostic(code(kiln::init::template), help("templates: rust-scratch, prebuilt"))]
    Template(String),
    #[error("kiln.kdl already exists in {0}")]
    #[diagnostic(code(kiln::init::exists), help("pass --force to replace it"))]
    Exists(String),
    #[error("no cargo project here: {0}")]
    #[diagnostic(code(kiln::init::no_project), help("run kiln init where Cargo.toml is, or use --template prebuilt"))]
    NoProject(String),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Io(#[from] BuildError),
}

/// Fills a template's `{{image}}`, `{{package}}` and `{{bin}}`.
pub fn fill(template: &str, image: &str, package: &str, bin: &str) -> String {
    template.replace("{{image}}", image).replace("{{package}}", package).replace("{{bin}}", bin)
}

/// The package and binary kiln would build for the project in `dir`.
fn detect(dir: &Path) -> Result<(String, String), InitError> {
    let meta = cargo_metadata::MetadataCommand::new()
        .current_dir(dir)
        .no_deps()
        .exec()
        .map_err(|e| InitError::NoProject(e.to_string().trim().to_string()))?;
    let here = dir.join("Cargo.toml");
    let package = meta
        .packages
        .iter()
        .find(|p| p.manifest_path.as_std_path() == here)
        .or_else(|| meta.packages.iter().find(|p| p.targets.iter().any(|t| t.is_bin())))
        .ok_or_else(|| InitError::NoProject("the workspace has no package with a binary".into()))?;
    let bins: Vec<&str> = package.targets.iter().filter(|t| t.is_bin()).map(|t| t.name.as_str()).collect();
    let bin = package
        .default_run
        .clone()
        .or_else(|| bins.first().map(|b| b.to_string()))
        .ok_or_else(|| InitError::NoProject(format!("package `{}` has no binary", package.name)))?;
    Ok((package.name.to_string(), bin))
}

/// Writes `dir/kiln.kdl`; returns a line saying what was written.
pub fn init(dir: &Path, template: Option<&str>, force: bool) -> Result<String, InitError> {
    let name = template.unwrap_or("rust-scratch");
    let (_, _, text) = TEMPLATES.iter().find(|(n, _, _)| *n == name).ok_or_else(|| InitError::Template(name.into()))?;
    let path = dir.join("kiln.kdl");
    if path.exists() && !force {
        return Err(InitError::Exists(dir.display().to_string()));
    }
    let (package, bin) = if text.contains("{{package}}") { detect(dir)? } else { ("app".into(), "app".into()) };
    let image: String = package
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
        .collect();
    let recipe = fill(text, &image, &package, &bin);
    let tmp = tempfile::NamedTempFile::new_in(dir).map_err(BuildError::io("create a file in", dir))?;
    std::fs::write(tmp.path(), &recipe).map_err(BuildError::io("write", tmp.path()))?;
    tmp.persist(&path).map_err(|e| BuildError::Io { action: "write", path: path.clone(), source: e.error })?;
    Ok(format!(
        "wrote {} from template {name} (package {package}, bin {bin}); next: kiln plan, kiln build",
        path.display()
    ))
}

//! `kiln init`: a starting `kiln.kdl` from a template, picked for and filled in from the
//! project in the current directory (a cargo package, a Go module or a C source tree), and
//! `out/` (kiln's default output) in the project's `.gitignore`; or, with `--ci`, a CI workflow
//! that plans, builds the plan's shards in a matrix of jobs, merges them and pushes.

use crate::error::BuildError;
use crate::inputs::debian::lock::StagedFile;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Templates shipped with kiln: name, what it is for, text.
pub const TEMPLATES: &[(&str, &str, &str)] = &[
    (
        "rust-scratch",
        "a Rust binary of this cargo project on scratch",
        include_str!("../templates/rust-scratch/kiln.kdl"),
    ),
    ("go-scratch", "a Go program of this module on scratch", include_str!("../templates/go-scratch/kiln.kdl")),
    ("c-scratch", "a C program of this source tree on scratch", include_str!("../templates/c-scratch/kiln.kdl")),
    ("prebuilt", "prebuilt per-platform binaries on scratch", include_str!("../templates/prebuilt/kiln.kdl")),
];

/// CI workflows `kiln init --ci` writes: the CI system, the file it reads in the project, text.
pub const CI_WORKFLOWS: &[(&str, &str, &str)] = &[
    ("github", ".github/workflows/kiln.yml", include_str!("../templates/ci/github.yml")),
    ("gitlab", ".gitlab-ci.yml", include_str!("../templates/ci/gitlab.yml")),
];

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum InitError {
    #[error("unknown template `{0}`")]
    #[diagnostic(code(kiln::init::template), help("templates: rust-scratch, go-scratch, c-scratch, prebuilt"))]
    Template(String),
    #[error("kiln.kdl already exists in {0}")]
    #[diagnostic(code(kiln::init::exists), help("pass --force to replace it"))]
    Exists(String),
    #[error("no project kiln can build here: {0}")]
    #[diagnostic(
        code(kiln::init::no_project),
        help("run kiln init where Cargo.toml, go.mod or the C sources are, or use --template prebuilt")
    )]
    NoProject(String),
    #[error("unknown CI system `{0}`")]
    #[diagnostic(code(kiln::init::ci), help("CI systems: github, gitlab"))]
    Ci(String),
    #[error("{0} already exists")]
    #[diagnostic(code(kiln::init::ci_exists), help("pass --force to replace it"))]
    CiExists(String),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Io(#[from] BuildError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Write(#[from] crate::error::InputsError),
}

/// Fills a template's `{{image}}`, `{{package}}` (a cargo package, a Go package's directory,
/// or a C program's source pattern) and `{{bin}}`.
pub fn fill(template: &str, image: &str, package: &str, bin: &str) -> String {
    template.replace("{{image}}", image).replace("{{package}}", package).replace("{{bin}}", bin)
}

/// The template for the project in `dir`: a cargo package, else a Go module, else C sources.
fn pick(dir: &Path) -> Result<&'static str, InitError> {
    if dir.join("Cargo.toml").is_file() {
        Ok("rust-scratch")
    } else if dir.join("go.mod").is_file() {
        Ok("go-scratch")
    } else if c_sources(dir).is_some() {
        Ok("c-scratch")
    } else {
        Err(InitError::NoProject(format!("{} has no Cargo.toml, go.mod or C sources (*.c, src/*.c)", dir.display())))
    }
}

/// The pattern of a C source tree's sources: `src/*.c`, else `*.c`.
fn c_sources(dir: &Path) -> Option<&'static str> {
    let has_c = |d: &Path| {
        std::fs::read_dir(d)
            .is_ok_and(|rd| rd.filter_map(Result::ok).any(|e| e.path().extension().is_some_and(|x| x == "c")))
    };
    if has_c(&dir.join("src")) {
        Some("src/*.c")
    } else if has_c(dir) {
        Some("*.c")
    } else {
        None
    }
}

/// The directory's name as a program name.
fn dir_name(dir: &Path) -> String {
    let name = std::fs::canonicalize(dir).ok().and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()));
    let name: String = name
        .unwrap_or_default()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
        .collect();
    let name = name.trim_start_matches(['.', '-']).to_string();
    if name.is_empty() { "app".into() } else { name }
}

/// The main package of the Go module in `dir`: the module's root when its Go files are
/// `package main`, else the first directory under `cmd/` that is; and its program name.
fn detect_go(dir: &Path) -> Result<(String, String), InitError> {
    let is_main = |d: &Path| {
        std::fs::read_dir(d).is_ok_and(|rd| {
            rd.filter_map(Result::ok).any(|e| {
                e.path().extension().is_some_and(|x| x == "go")
                    && std::fs::read_to_string(e.path()).is_ok_and(|t| t.lines().any(|l| l.trim() == "package main"))
            })
        })
    };
    if is_main(dir) {
        return Ok((".".into(), dir_name(dir)));
    }
    let mut cmds: Vec<_> = std::fs::read_dir(dir.join("cmd"))
        .map(|rd| rd.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir()).collect())
        .unwrap_or_default();
    cmds.sort();
    match cmds.into_iter().find(|p| is_main(p)) {
        Some(p) => {
            let name = dir_name(&p);
            Ok((format!("./cmd/{name}"), name))
        }
        None => Err(InitError::NoProject("the Go module has no `package main` here or under cmd/".into())),
    }
}

/// What a template's placeholders are filled with for the project in `dir`.
fn detect_for(template: &str, dir: &Path) -> Result<(String, String), InitError> {
    match template {
        "rust-scratch" => detect(dir),
        "go-scratch" => detect_go(dir),
        "c-scratch" => match c_sources(dir) {
            Some(p) => Ok((p.into(), dir_name(dir))),
            None => Err(InitError::NoProject(format!("{} has no C sources (*.c, src/*.c)", dir.display()))),
        },
        _ => Ok(("app".into(), "app".into())),
    }
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

/// Writes `dir/kiln.kdl` and makes the project's `.gitignore` ignore kiln's output; returns
/// lines saying what was written. Both files are written in full before either is put in place.
pub fn init(dir: &Path, template: Option<&str>, force: bool) -> Result<String, InitError> {
    let name = match template {
        Some(t) => t,
        None => pick(dir)?,
    };
    let (_, _, text) = TEMPLATES.iter().find(|(n, _, _)| *n == name).ok_or_else(|| InitError::Template(name.into()))?;
    let path = dir.join("kiln.kdl");
    if path.exists() && !force {
        return Err(InitError::Exists(dir.display().to_string()));
    }
    let (package, bin) = detect_for(name, dir)?;
    let image: String = if name == "rust-scratch" { package.clone() } else { bin.clone() };
    let image: String = image
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
        .collect();
    let mut text = fill(text, &image, &package, &bin);
    if name == "c-scratch" && dir.join("include").is_dir() {
        let sources = format!("sources \"{package}\"");
        text = text.replace(&sources, &format!("{sources}\n        include \"include/\""));
    }
    let recipe = StagedFile::new(&path, text.as_bytes(), None)?;
    let (ignore, said) = ignore_output(dir)?;
    recipe.commit()?;
    if let Some(ignore) = ignore {
        ignore.commit()?;
    }
    Ok(format!(
        "wrote {} from template {name} ({package}, program {bin}); next: kiln plan, kiln build\n{said}",
        path.display()
    ))
}

/// Writes the workflow of CI system `system` into `dir` (creating its directories), in full
/// before it is put in place; returns a line saying what was written.
pub fn init_ci(dir: &Path, system: &str, force: bool) -> Result<String, InitError> {
    let (_, name, text) =
        CI_WORKFLOWS.iter().find(|(s, _, _)| *s == system).ok_or_else(|| InitError::Ci(system.into()))?;
    let path = dir.join(name);
    if (path.exists() || path.is_symlink()) && !force {
        return Err(InitError::CiExists(path.display().to_string()));
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(BuildError::io("create", parent))?;
    }
    StagedFile::new(&path, text.as_bytes(), None)?.commit()?;
    Ok(format!(
        "wrote {}: set KILN_GIT and KILN_REV at its top (where kiln is built from), then commit it",
        path.display()
    ))
}

/// The `.gitignore` line for kiln's default output directory (`kiln build --out out`).
const IGNORE_OUT: &str = "out/";

/// The project's `.gitignore` with `out/` added, staged, unless a line already ignores it,
/// and what that does.
fn ignore_output(dir: &Path) -> Result<(Option<StagedFile>, String), BuildError> {
    let named = dir.join(".gitignore");
    // A .gitignore that is a symbolic link is updated where it points.
    let path = std::fs::canonicalize(&named).unwrap_or_else(|_| named.clone());
    let (mut text, mode) = match std::fs::read(&path) {
        Ok(text) => {
            let mode = std::fs::metadata(&path).map_err(BuildError::io("read", &path))?.permissions().mode();
            (text, Some(mode & 0o7777))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), None),
        Err(e) => return Err(BuildError::io("read", path)(e)),
    };
    if text.split(|b| *b == b'\n').any(ignores_out) {
        return Ok((None, format!("{} already ignores {IGNORE_OUT}", named.display())));
    }
    if !text.is_empty() && !text.ends_with(b"\n") {
        text.push(b'\n');
    }
    text.extend_from_slice(format!("{IGNORE_OUT}\n").as_bytes());
    let staged = StagedFile::new(&path, &text, mode)?;
    let said = match mode {
        Some(_) => format!("added {IGNORE_OUT} to {}: kiln build writes there by default", named.display()),
        None => format!("created {} with {IGNORE_OUT}: kiln build writes there by default", named.display()),
    };
    Ok((Some(staged), said))
}

/// Whether a `.gitignore` line already ignores `out/`: `out/`, `/out/`, `out` or `/out` (git
/// drops trailing spaces; a line with a leading `!` un-ignores, so it does not count).
fn ignores_out(line: &[u8]) -> bool {
    let line = line.trim_ascii_end();
    [&b"out"[..], b"out/", b"/out", b"/out/"].contains(&line)
}

//! The `kiln` command line: parses arguments, runs the library's stages and renders errors.
//! Exit codes: 0 success, 1 a check failed, 2 an error (bad recipe, bad arguments, I/O).

use clap::{Parser, Subcommand};
use kiln::diag::RecipeErrors;
use kiln::plan::{Plan, PlanOptions};
use kiln::platform::Platform;
use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme, ThemeCharacters, ThemeStyles};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "kiln", version, about = "Deterministic multi-platform OCI images from a KDL recipe")]
struct Cli {
    /// Print nothing but errors (and what --json asks for).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Select {
    /// The recipe file.
    #[arg(short = 'f', long = "file", default_value = "kiln.kdl")]
    file: PathBuf,
    /// Only this platform (repeatable), e.g. linux/arm64.
    #[arg(long = "platform", value_name = "P")]
    platforms: Vec<String>,
    /// Only this image (repeatable).
    #[arg(long = "image", value_name = "NAME")]
    images: Vec<String>,
}

/// What plan and build take beyond the selection; fetch does not take it.
#[derive(clap::Args)]
struct Layering {
    /// The previous release's OCI layout: keep its layer order where the content allows.
    #[arg(long, value_name = "OCI-LAYOUT")]
    previous: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the resolved plan: every image, platform, layer and entry.
    Plan {
        #[command(flatten)]
        select: Select,
        #[command(flatten)]
        layering: Layering,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Build the recipe's images into an OCI image layout.
    Build {
        #[command(flatten)]
        select: Select,
        #[command(flatten)]
        layering: Layering,
        /// The OCI layout directory to write (replaced as a whole when the build succeeds).
        #[arg(long, short, default_value = "out")]
        out: PathBuf,
        /// Print a JSON summary of the digests written.
        #[arg(long)]
        json: bool,
    },
    /// Resolve the Debian packages of the recipe's distroless bases and pin them in kiln.lock.
    Lock {
        /// The recipe file.
        #[arg(short = 'f', long = "file", default_value = "kiln.kdl")]
        file: PathBuf,
    },
    /// Fetch the dependencies of every Rust build (the one step that uses the network).
    Fetch {
        #[command(flatten)]
        select: Select,
    },
    /// List what each platform needs to build Rust binaries, and what is installed.
    Doctor,
    /// Write a starting kiln.kdl for the project in the current directory.
    Init {
        /// The template: rust-scratch (default for a cargo project) or prebuilt.
        #[arg(long)]
        template: Option<String>,
        /// Replace an existing kiln.kdl.
        #[arg(long)]
        force: bool,
    },
    /// What a device holding OLD downloads to get NEW, per image and platform.
    Diff {
        /// The layout the device holds.
        old: PathBuf,
        /// The new release's layout.
        new: PathBuf,
        /// Only this platform (repeatable).
        #[arg(long = "platform", value_name = "P")]
        platforms: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Exit 1 when the download is larger than this (e.g. 2MiB, 500kB, 123456).
        #[arg(long, value_name = "SIZE")]
        budget: Option<String>,
    },
    /// Write a tar with exactly what a device holding --have lacks to hold --want.
    Bundle {
        /// The layout the device holds (the release it runs now).
        #[arg(long, value_name = "OCI-LAYOUT")]
        have: PathBuf,
        /// The new release's layout, which the device should hold after `kiln apply`.
        #[arg(long, value_name = "OCI-LAYOUT")]
        want: PathBuf,
        /// The bundle to write (replaced only when it is complete).
        #[arg(short, long, value_name = "FILE.tar")]
        output: PathBuf,
        /// Only this platform (repeatable): what a device running it needs.
        #[arg(long = "platform", value_name = "P")]
        platforms: Vec<String>,
    },
    /// Apply a bundle to a layout (on the device); the layout is unchanged if anything fails.
    Apply {
        /// The bundle written by `kiln bundle`.
        bundle: PathBuf,
        /// The device's OCI layout, which the bundle updates in place.
        #[arg(long, value_name = "OCI-LAYOUT")]
        to: PathBuf,
        /// Keep the blobs the new release no longer uses (by default they are removed).
        #[arg(long)]
        keep_unused: bool,
    },
    /// Show the images, platforms and layers of an OCI layout, and what they share.
    Inspect {
        /// The OCI layout directory.
        dir: PathBuf,
        /// Only this image.
        #[arg(long)]
        image: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// An error ready to render, with the exit code it maps to.
enum Failure {
    Diagnostic(Box<dyn Diagnostic + Send + Sync>),
}

impl<E: Diagnostic + Send + Sync + 'static> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Diagnostic(Box::new(e))
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
enum CliError {
    #[error("cannot read recipe {}: {source}", path.display())]
    #[diagnostic(code(kiln::cli::recipe_unreadable))]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
        #[help]
        help: &'static str,
    },
    #[error("unknown platform `{0}` given with --platform")]
    #[diagnostic(code(kiln::cli::platform), help("supported platforms: linux/amd64, linux/arm64, linux/arm/v7"))]
    Platform(String),
    #[error("the recipe has no image named `{0}`")]
    #[diagnostic(code(kiln::cli::image), help("images in this recipe: {1}"))]
    Image(String, String),
    #[error("`{0}` is not a size")]
    #[diagnostic(code(kiln::cli::size), help("write bytes, or a number with kB, MB, GB, KiB, MiB or GiB"))]
    Size(String),
    #[error("SOURCE_DATE_EPOCH must be a whole number of seconds up to 253402300799, found `{0}`")]
    #[diagnostic(code(kiln::cli::source_date_epoch))]
    Epoch(String),
}

/// The recipe's text, or why it cannot be had; a recipe that is not there yet points to `kiln init`.
fn read_recipe(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| {
        let help = if source.kind() == std::io::ErrorKind::NotFound {
            "run `kiln init` to write a starting kiln.kdl here, or pass the recipe with -f FILE"
        } else {
            "pass the recipe with -f FILE, or run kiln where kiln.kdl is"
        };
        CliError::Unreadable { path: path.to_path_buf(), source, help }
    })
}

/// Whether the message already states every cause in the error's chain. kiln's messages do
/// (`cannot read kiln.kdl: No such file or directory (os error 2)`), and thiserror still makes a
/// field named `source` the cause, which miette would print a second time under the message.
fn states_its_causes(d: &dyn Diagnostic) -> bool {
    let message = d.to_string();
    std::iter::successors(d.source(), |e| e.source()).all(|cause| message.contains(&cause.to_string()))
}

fn render(d: &dyn Diagnostic) -> String {
    let theme = if std::io::stderr().is_terminal() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme { characters: ThemeCharacters::ascii(), styles: ThemeStyles::none() }
    };
    let mut handler = GraphicalReportHandler::new_themed(theme).with_width(100);
    if states_its_causes(d) {
        // A cause the message does not state is still printed, below it.
        handler = handler.without_cause_chain();
    }
    let mut out = String::new();
    if handler.render_report(&mut out, d).is_err() {
        out = format!("error: {d}");
    }
    out
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(Failure::Diagnostic(d)) => {
            eprint!("{}", render(d.as_ref()));
            ExitCode::from(2)
        }
    }
}

/// The lock and unpacked packages distroless bases need, or the problems that stop them.
/// A missing lock is left to planning, which reports it at the `base` that needs it.
fn debian_inputs(
    recipe: &kiln::recipe::Recipe,
    select: &Select,
    platforms: &[Platform],
    progress: &dyn kiln::progress::Progress,
) -> Result<Result<Option<kiln::base::DebianInputs>, Vec<kiln::diag::Problem>>, Failure> {
    let needs = kiln::base::needs(recipe, platforms, &select.images);
    if needs.is_empty() {
        return Ok(Ok(None));
    }
    let lock_path = recipe_root(&select.file).join("kiln.lock");
    let lock = match kiln::debian::lock::Lock::read(&lock_path) {
        Ok(Some(lock)) => lock,
        Ok(None) => return Ok(Ok(None)),
        Err(source) => return Err(kiln::error::BuildError::Io { action: "read", path: lock_path, source }.into()),
    };
    let mut problems = Vec::new();
    let stale = |span, msg: String| {
        kiln::diag::Problem::new("kiln::plan::stale_lock", span, msg)
            .label("needs packages kiln.lock does not pin")
            .help("run `kiln lock` again to pin what the recipe asks for")
    };
    if lock.mirror != recipe.debian_mirror().trim_end_matches('/') || lock.suite != recipe.debian_suite() {
        problems.push(stale(
            needs[0].1,
            format!(
                "kiln.lock pins {} {}, the recipe asks for {} {}",
                lock.mirror,
                lock.suite,
                recipe.debian_mirror(),
                recipe.debian_suite()
            ),
        ));
    }
    let mut packages = Vec::new();
    for ((name, arch), span) in &needs {
        match lock.find(name, arch) {
            Some(p) => packages.push(p),
            None if problems.is_empty() => problems.push(stale(*span, format!("kiln.lock pins no {name} for {arch}"))),
            None => {}
        }
    }
    if !problems.is_empty() {
        return Ok(Err(problems));
    }
    let contents = kiln::debian::store::ensure(&cache_dir(), &packages, progress)?;
    Ok(Ok(Some(kiln::base::DebianInputs { lock, contents })))
}

/// Reads, parses and resolves the recipe into a plan (laid out after `previous` when given).
fn load_plan(
    select: &Select,
    previous: Option<&Path>,
    progress: &dyn kiln::progress::Progress,
) -> Result<Plan, Failure> {
    let text = read_recipe(&select.file)?;
    let name = select.file.display().to_string();
    let (recipe, mut problems) = kiln::recipe::parse_partial(&text);
    let fail = |problems| Failure::from(RecipeErrors::new(&name, &text, problems));
    let Some(recipe) = recipe else {
        return Err(fail(problems));
    };
    let mut platforms = Vec::new();
    for p in &select.platforms {
        platforms.push(Platform::parse(p).ok_or_else(|| CliError::Platform(p.clone()))?);
    }
    for i in &select.images {
        if !recipe.images.iter().any(|r| &r.name.value == i) && problems.is_empty() {
            let names: Vec<&str> = recipe.images.iter().map(|r| r.name.value.as_str()).collect();
            return Err(CliError::Image(i.clone(), names.join(", ")).into());
        }
    }
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => match v.trim().parse::<u64>() {
            Ok(e) if e <= kiln::recipe::MAX_EPOCH => Some(e),
            _ => return Err(CliError::Epoch(v).into()),
        },
        _ => None,
    };
    let debian = match debian_inputs(&recipe, select, &platforms, progress)? {
        Ok(d) => d,
        Err(more) => {
            problems.extend(more);
            None
        }
    };
    let previous = match previous {
        Some(dir) => Some(kiln::inspect::layer_keys(dir)?),
        None => None,
    };
    let opts = PlanOptions {
        previous,
        debian,
        root: recipe_root(&select.file),
        source_date_epoch,
        platforms,
        images: select.images.clone(),
        cache_dir: Some(cache_dir()),
    };
    // Resolve even a recipe with problems, so file-system problems are reported in the same run.
    match kiln::plan::resolve(&recipe, &opts) {
        Ok(plan) if problems.is_empty() => Ok(plan),
        Ok(_) => Err(fail(problems)),
        Err(more) => {
            // A stale lock was reported already; planning sees no lock and would say so too.
            let stale = problems.iter().any(|p| p.code == "kiln::plan::stale_lock");
            problems.extend(more.into_iter().filter(|p| !(stale && p.code == "kiln::plan::missing_lock")));
            Err(fail(problems))
        }
    }
}

/// `--platform` values checked and written as the layout writes them (`linux/arm/v7`).
fn platform_names(given: &[String]) -> Result<Vec<String>, CliError> {
    given
        .iter()
        .map(|p| Platform::parse(p).map(|p| p.to_string()).ok_or_else(|| CliError::Platform(p.clone())))
        .collect()
}

/// kiln's cache: `KILN_CACHE_DIR`, else `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`. Never a
/// directory beside the recipe unless asked for: a cloned repository could ship one.
fn cache_dir() -> PathBuf {
    let var = |name| std::env::var_os(name).filter(|v: &std::ffi::OsString| !v.is_empty()).map(PathBuf::from);
    if let Some(d) = var("KILN_CACHE_DIR") {
        return d;
    }
    if let Some(d) = var("XDG_CACHE_HOME").filter(|d| d.is_absolute()) {
        return d.join("kiln");
    }
    match var("HOME") {
        Some(home) => home.join(".cache/kiln"),
        // No home to keep a cache in: a private directory for this user under the system's temp.
        None => std::env::temp_dir().join(format!("kiln-cache-{}", rustix::process::getuid().as_raw())),
    }
}

fn recipe_root(file: &Path) -> PathBuf {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Plan { select, layering, json } => {
            let progress = kiln::progress::for_terminal(cli.quiet);
            let plan = load_plan(&select, layering.previous.as_deref(), progress.as_ref())?;
            if json {
                print!("{}", plan.to_json());
            } else {
                print!("{}", kiln::plan::render_text(&plan));
            }
        }
        Command::Build { select, layering, out, json } => {
            // --json owns stdout; progress stays on stderr.
            let progress = kiln::progress::for_terminal(cli.quiet);
            let plan = load_plan(&select, layering.previous.as_deref(), progress.as_ref())?;
            let (root, cache) = (recipe_root(&select.file), cache_dir());
            let opts = kiln::build::BuildOptions { root: &root, out: &out, cache: &cache };
            let summary = kiln::build::build(&plan, &opts, progress.as_ref())?;
            if json {
                print!("{}", kiln::canonical::to_pretty(&summary));
            } else if !cli.quiet {
                println!("wrote {} (index.json {})", summary.layout, summary.index_digest);
                for i in &summary.images {
                    let platforms: Vec<&str> = i.platforms.keys().map(String::as_str).collect();
                    println!("  {}  {}  {}", i.name, i.digest, platforms.join(" "));
                }
                for b in &summary.binaries {
                    println!(
                        "  binary {} for {} ({}): {} bytes linked, {} bytes stripped{}",
                        b.bin,
                        b.platform,
                        b.triple,
                        b.unstripped_bytes,
                        b.stripped_bytes,
                        if b.cached { " (cached)" } else { "" }
                    );
                }
                println!("  {} distinct layer(s), {} bytes of blobs", summary.layers, summary.blob_bytes);
            }
        }
        Command::Fetch { select } => {
            let progress = kiln::progress::for_terminal(cli.quiet);
            let plan = load_plan(&select, None, progress.as_ref())?;
            let mut seen = std::collections::BTreeSet::new();
            for b in &plan.rust {
                if seen.insert(b.exec.manifest.clone()) {
                    progress.note(&format!("fetching dependencies of {}", b.package));
                    kiln::toolchain::rust::fetch(b)?;
                }
            }
        }
        Command::Lock { file } => {
            let text = read_recipe(&file)?;
            let name = file.display().to_string();
            let recipe = kiln::recipe::parse(&name, &text)?;
            let needs = kiln::base::needs(&recipe, &[], &[]);
            if needs.is_empty() {
                if !cli.quiet {
                    println!("no image of {name} has a distroless base: nothing to lock");
                }
                return Ok(ExitCode::SUCCESS);
            }
            let progress = kiln::progress::for_terminal(cli.quiet);
            let wanted = needs.into_iter().map(|(w, _)| w).collect();
            let lock = kiln::debian::index::resolve(
                recipe.debian_mirror(),
                recipe.debian_suite(),
                &wanted,
                progress.as_ref(),
            )?;
            let path = recipe_root(&file).join("kiln.lock");
            lock.write(&path)?;
            if !cli.quiet {
                println!(
                    "wrote {}: {} packages from {} {} (Debian {}, Release signature {})",
                    path.display(),
                    lock.packages.len(),
                    lock.mirror,
                    lock.suite,
                    lock.release.version,
                    lock.release.signature
                );
            }
        }
        Command::Doctor => {
            let report = kiln::doctor::check(&std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")));
            print!("{}", report.text);
            if !report.ok {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Init { template, force } => {
            let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            let written = kiln::init::init(&dir, template.as_deref(), force)?;
            if !cli.quiet {
                println!("{written}");
            }
        }
        Command::Diff { old, new, platforms, json, budget } => {
            let platforms = platform_names(&platforms)?;
            let budget = match budget {
                Some(b) => Some(kiln::update::parse_size(&b).ok_or(CliError::Size(b))?),
                None => None,
            };
            let report = kiln::update::diff(&old, &new, &platforms, budget)?;
            if json {
                print!("{}", kiln::canonical::to_pretty(&report));
            } else {
                print!("{}", kiln::update::render_diff(&report));
            }
            if report.over_budget {
                return Ok(ExitCode::from(1));
            }
        }
        Command::Bundle { have, want, output, platforms } => {
            let s = kiln::update::bundle(&have, &want, &platform_names(&platforms)?, &output)?;
            if !cli.quiet {
                println!(
                    "wrote {}: {} blobs ({} bytes) a device holding {} lacks; {} bytes in all",
                    s.file,
                    s.blobs,
                    s.blob_bytes,
                    have.display(),
                    s.bytes
                );
            }
        }
        Command::Apply { bundle, to, keep_unused } => {
            let s = kiln::update::apply(&bundle, &to, keep_unused)?;
            if !cli.quiet {
                println!(
                    "applied {} to {}: {} blobs checked and in place; {} unused blobs ({} bytes) removed",
                    bundle.display(),
                    to.display(),
                    s.added,
                    s.pruned,
                    s.pruned_bytes
                );
            }
        }
        Command::Inspect { dir, image, json } => {
            let report = kiln::inspect::inspect(&dir, image.as_deref())?;
            if json {
                print!("{}", kiln::canonical::to_pretty(&report));
            } else {
                print!("{}", kiln::inspect::render_text(&report));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `kiln verify`: rebuilds the recipe from fresh copies of its directory with empty caches,
//! under varied conditions, and compares the result with a first build or with `--against`
//! (a layout or a registry reference). Exit 0 identical, 1 different, 2 an error.

use super::env::{cargo_home, find_program};
use super::load::load_plan;
use super::{Failure, Select, platform_names, progress};
use kiln::error::VerifyError;
use kiln::inputs::registry::Release;
use kiln::verify::Rebuilder;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// What `verify` takes beyond the selection.
#[derive(clap::Args)]
pub(crate) struct VerifyArgs {
    /// Compare the rebuild with this published release (an OCI layout, or
    /// HOST/REPOSITORY@sha256:… / :TAG) instead of with a first build.
    #[arg(long, value_name = "LAYOUT|REF")]
    against: Option<String>,
    /// Write the files that differ into this new directory, both sides of each, and the
    /// report as report.json.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Keep the varied rebuild's OCI layout here (replaced as a whole, as `kiln build --out`).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: super::push::RegistryArgs,
}

/// The environment the rebuilds keep although `HOME` changes: where cargo and rustup are.
fn kept_env() -> Vec<(String, OsString)> {
    let rustup = std::env::var_os("RUSTUP_HOME")
        .filter(|v| !v.is_empty())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".rustup").into_os_string()));
    let mut env = vec![("CARGO_HOME".to_string(), cargo_home().into_os_string())];
    if let Some(r) = rustup {
        env.push(("RUSTUP_HOME".into(), r));
    }
    env
}

/// `--platform` and `--image` as the rebuilds are given them.
fn select_args(select: &Select) -> Result<Vec<String>, Failure> {
    let mut args = Vec::new();
    for p in platform_names(&select.platforms)? {
        args.extend(["--platform".to_string(), p]);
    }
    for i in &select.images {
        args.extend(["--image".to_string(), i.clone()]);
    }
    Ok(args)
}

pub(crate) fn run(select: &Select, args: &VerifyArgs, quiet: bool) -> Result<ExitCode, Failure> {
    let progress = progress::for_terminal(quiet || args.json);
    let opts = args.registry.options()?;
    // Planning here checks the recipe: its errors point at it before anything is built.
    let loaded = load_plan(select, &super::Layering::default(), &opts, progress.as_ref())?;
    let layouts_needed: Vec<String> = loaded
        .plan
        .images
        .iter()
        .flat_map(|i| i.platforms.iter().flat_map(|p| p.layers.iter()))
        .filter_map(|l| l.prebuilt.as_ref().filter(|b| !b.layout.is_empty()).map(|b| b.layout.clone()))
        .collect();
    let kiln_exe = std::env::current_exe().map_err(VerifyError::io("find", "the kiln executable"))?;
    let work = tempfile::Builder::new()
        .prefix("kiln-verify-")
        .tempdir()
        .map_err(VerifyError::io("create", std::env::temp_dir()))?;
    let disorderfs = find_program("disorderfs").zip(find_program("fusermount").or_else(|| find_program("fusermount3")));
    let rebuilder = Rebuilder {
        kiln: &kiln_exe,
        recipe: &select.file,
        select: select_args(select)?,
        layouts_needed,
        disorderfs,
        keep_env: kept_env(),
        work: work.path(),
        keep: match &args.out {
            Some(o) => Some(std::path::absolute(o).map_err(VerifyError::io("resolve", o))?),
            None => None,
        },
    };
    let against = args.against.as_ref().map(|a| (a.as_str(), Release::parse(a)));
    let platforms = platform_names(&select.platforms)?;
    let report = kiln::verify::verify(
        &rebuilder,
        (against.as_ref().map(|(a, r)| (*a, r)), &opts),
        (&select.images, &platforms),
        &loaded.plan,
        args.report.as_deref(),
        progress.as_ref(),
    )?;
    if args.json {
        print!("{}", kiln::oci::canonical::to_pretty(&report));
    } else {
        print!("{}", kiln::verify::render_text(&report));
    }
    Ok(if report.reproducible { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

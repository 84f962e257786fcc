//! `kiln build`: plans, then builds into the OCI layout `--out`, and says what it wrote.

use super::env::{cache_dir, recipe_root};
use super::load::load_plan;
use super::{Failure, Layering, Select, progress};
use kiln::build::BuildSummary;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(
    select: &Select,
    layering: &Layering,
    out: &Path,
    json: bool,
    quiet: bool,
) -> Result<ExitCode, Failure> {
    // --json owns stdout; progress stays on stderr.
    let progress = progress::for_terminal(quiet);
    let plan = load_plan(select, layering.previous.as_deref(), progress.as_ref())?;
    let (root, cache) = (recipe_root(&select.file), cache_dir());
    let opts = kiln::build::BuildOptions { root: &root, out, cache: &cache };
    let summary = kiln::build::build(&plan, &opts, progress.as_ref())?;
    if json {
        print!("{}", kiln::canonical::to_pretty(&summary));
    } else if !quiet {
        print_summary(&summary);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_summary(summary: &BuildSummary) {
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

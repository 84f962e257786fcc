//! `kiln build`: plans, then builds into the OCI layout `--out`, and says what it wrote.

use super::env::{cache_dir, recipe_root};
use super::load::{load_plan, load_saved};
use super::{Failure, Layering, Select, progress};
use kiln::build::BuildSummary;
use std::path::Path;
use std::process::ExitCode;

pub(crate) fn run(
    select: &Select,
    layering: &Layering,
    saved: Option<&Path>,
    out: &Path,
    json: bool,
    quiet: bool,
) -> Result<ExitCode, Failure> {
    // --json owns stdout; progress stays on stderr.
    let progress = progress::for_terminal(quiet);
    let (root, cache) = (recipe_root(&select.file), cache_dir());
    let loaded = match saved {
        Some(file) => load_saved(file, &root, &cache, progress.as_ref())?,
        None => load_plan(select, layering.previous.as_deref(), progress.as_ref())?,
    };
    let toolchain = kiln::toolchain::Host { root: root.clone(), facts: &loaded.facts };
    let opts = kiln::build::BuildOptions { root: &root, out, cache: &cache, toolchain: &toolchain };
    let summary = kiln::build::build(&loaded.plan, &opts, progress.as_ref())?;
    if json {
        print!("{}", kiln::oci::canonical::to_pretty(&summary));
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

//! `kiln build`: plans, then builds into the OCI layout `--out`, and says what it wrote.

use super::deliver::Deliver;
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
    (out, deliver): (&Path, &Deliver),
    json: bool,
    quiet: bool,
) -> Result<ExitCode, Failure> {
    let (out, outputs) = deliver.layout_and_outputs(out)?;
    let platform = deliver.check_platforms(&outputs, &select.platforms)?;
    // --json owns stdout; progress stays on stderr.
    let progress = progress::for_terminal(quiet);
    let (root, cache) = (recipe_root(&select.file), cache_dir());
    let loaded = match saved {
        Some(file) => load_saved(file, (&root, &cache), &deliver.registry_options()?, progress.as_ref())?,
        None => load_plan(select, layering.previous.as_deref(), &deliver.registry_options()?, progress.as_ref())?,
    };
    if let Some((reference, tags)) = deliver.push_target() {
        let names: Vec<String> = loaded.plan.images.iter().map(|i| i.name.clone()).collect();
        kiln::publish::registry::check_targets(&names, reference, tags)?;
    }
    let toolchain = kiln::toolchain::Host { root: root.clone(), facts: &loaded.facts };
    let opts = kiln::build::BuildOptions {
        root: &root,
        out: &out,
        cache: &cache,
        toolchain: &toolchain,
        tags: deliver.tags(),
    };
    let summary = kiln::build::build(&loaded.plan, &opts, progress.as_ref())?;
    if !json && !quiet {
        print_summary(&summary);
    }
    let delivered = if deliver.any() { Some(deliver.run(&out, &outputs, platform, json, quiet)?) } else { None };
    if json {
        let mut v = serde_json::to_value(&summary).unwrap_or_default();
        if let (Some(obj), Some(serde_json::Value::Object(d))) = (v.as_object_mut(), delivered) {
            obj.extend(d);
        }
        print!("{}", kiln::oci::canonical::to_pretty(&v));
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

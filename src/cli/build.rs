//! `kiln build`: plans, then builds into the OCI layout `--out`, and says what it wrote.

use super::deliver::Deliver;
use super::env::{cache_dir, recipe_root};
use super::load::{load_plan, load_saved};
use super::{Failure, Layering, Select, progress};
use kiln::build::BuildSummary;
use std::path::Path;
use std::process::ExitCode;

/// The attestations a build writes beside its images.
#[derive(clap::Args)]
pub(crate) struct AttestArgs {
    /// Attach an SPDX 2.3 and a CycloneDX 1.6 SBOM to every platform manifest (OCI 1.1
    /// referrers in the layout): crates, Go modules, C sources, Debian packages, files.
    #[arg(long)]
    sbom: bool,
    /// Attach an in-toto statement with SLSA provenance v1 to every platform manifest.
    #[arg(long)]
    provenance: bool,
    /// Also write the SBOMs and provenance as files into this directory (IMAGE.PLATFORM.spdx.json,
    /// .cdx.json, .provenance.json); implies --sbom and --provenance.
    #[arg(long, value_name = "DIR")]
    sbom_out: Option<std::path::PathBuf>,
}

impl AttestArgs {
    fn wanted(&self) -> kiln::attest::write::Wanted {
        let all = self.sbom_out.is_some();
        kiln::attest::write::Wanted { sbom: self.sbom || all, provenance: self.provenance || all }
    }
}

/// The recipe's sha256, and `kiln.lock`'s with its contents when there is one.
fn recipe_inputs(
    file: &Path,
    root: &Path,
) -> Result<(String, Option<(String, kiln::inputs::debian::lock::Lock)>), Failure> {
    let text = std::fs::read(file).map_err(kiln::error::BuildError::io("read", file))?;
    let lock_path = root.join("kiln.lock");
    let lock = match kiln::inputs::debian::lock::Lock::read(&lock_path) {
        Ok(Some(lock)) => {
            let bytes = std::fs::read(&lock_path).map_err(kiln::error::BuildError::io("read", &lock_path))?;
            Some((kiln::oci::digest::sha256_hex(&bytes), lock))
        }
        Ok(None) => None,
        Err(e) => return Err(kiln::error::BuildError::io("read", lock_path)(e).into()),
    };
    Ok((kiln::oci::digest::sha256_hex(&text), lock))
}

/// Writes each document into `dir` (made if missing), each file written beside and renamed.
fn write_documents(dir: &Path, documents: &[(String, Vec<u8>)]) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(kiln::error::BuildError::io("create", dir))?;
    for (name, bytes) in documents {
        let mut tmp =
            tempfile::NamedTempFile::new_in(dir).map_err(kiln::error::BuildError::io("create a file in", dir))?;
        std::io::Write::write_all(&mut tmp, bytes).map_err(kiln::error::BuildError::io("write", dir.join(name)))?;
        // Readable by all, as the layout's own files are (a temporary file starts at 0600).
        let mode = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o644);
        std::fs::set_permissions(tmp.path(), mode)
            .map_err(kiln::error::BuildError::io("set permissions of", dir.join(name)))?;
        tmp.persist(dir.join(name)).map_err(|e| kiln::error::BuildError::io("write", dir.join(name))(e.error))?;
    }
    Ok(())
}

pub(crate) fn run(
    select: &Select,
    layering: &Layering,
    saved: Option<&Path>,
    (out, deliver, attest): (&Path, &Deliver, &AttestArgs),
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
    let wanted = attest.wanted();
    let (recipe_sha, lock) =
        if wanted.sbom || wanted.provenance { recipe_inputs(&select.file, &root)? } else { Default::default() };
    let recipe_name = select.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let opts = kiln::build::BuildOptions {
        root: &root,
        out: &out,
        cache: &cache,
        toolchain: &toolchain,
        tags: deliver.tags(),
        attest: (wanted.sbom || wanted.provenance).then(|| kiln::build::AttestOptions {
            wanted,
            recipe: (&recipe_name, &recipe_sha),
            lock: lock.as_ref().map(|(sha, l)| (sha.as_str(), l)),
        }),
    };
    let summary = kiln::build::build(&loaded.plan, &opts, progress.as_ref())?;
    if let Some(dir) = &attest.sbom_out {
        write_documents(dir, &summary.documents)?;
    }
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

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

/// A shard of the plan instead of all of it, and a cache shared through a registry.
#[derive(clap::Args)]
pub(crate) struct ShardArgs {
    /// Build only this shard of the plan (an id `kiln plan --matrix` prints: its compiles and
    /// layers) into a shard layout at --out; with --push REPOSITORY, upload it there by digest,
    /// untagged. `kiln merge` joins the shards into the images.
    #[arg(long, value_name = "ID")]
    shard: Option<String>,
    /// A registry repository shared as a cache: compiled binaries (by step id) and compressed
    /// layers (by layer id) are taken from it when it holds them, checked before use, and
    /// stored in it when it does not.
    #[arg(long, value_name = "REPOSITORY")]
    cache: Option<String>,
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
    (out, deliver, attest, shard): (&Path, &Deliver, &AttestArgs, &ShardArgs),
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
        None => load_plan(select, layering, &deliver.registry_options()?, progress.as_ref())?,
    };
    if shard.shard.is_some() && (!outputs.is_empty() || !deliver.tags().is_empty() || wanted_any(attest)) {
        let why =
            "a shard is a part of the plan, not images: archives, tags, SBOMs and provenance come with `kiln merge`";
        return Err(super::CliError::Shard("--shard".into(), why.into()).into());
    }
    if let Some((reference, tags)) = deliver.push_target().filter(|_| shard.shard.is_none()) {
        let names: Vec<String> = loaded.plan.images.iter().map(|i| i.name.clone()).collect();
        kiln::publish::registry::check_targets(&names, reference, tags)?;
    }
    let toolchain = kiln::toolchain::Host { root: root.clone(), facts: &loaded.facts };
    let wanted = attest.wanted();
    let (recipe_sha, lock) =
        if wanted.sbom || wanted.provenance { recipe_inputs(&select.file, &root)? } else { Default::default() };
    let recipe_name = select.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let registry = deliver.registry_options()?;
    let remote = match &shard.cache {
        Some(r) => {
            Some(kiln::remote_cache::RemoteCache::open(r, &registry, &cache).map_err(kiln::error::BuildError::from)?)
        }
        None => None,
    };
    let kiln_sha = own_digest(&cache);
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
        remote: remote.as_ref(),
        kiln: kiln_sha.as_deref(),
    };
    if let Some(id) = &shard.shard {
        let mut summary = kiln::build::shard::build_shard(&loaded.plan, id, &opts, progress.as_ref())?;
        if let (Some((reference, _)), Some(s)) = (deliver.push_target(), summary.shard.as_mut()) {
            s.reference = Some(kiln::build::shard::push_shard(&out, reference, &registry, progress.as_ref())?);
        }
        print_shard(&summary, json, quiet);
        return Ok(ExitCode::SUCCESS);
    }
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

/// The kiln executable's sha256, remembered by its metadata as the sources' digests are
/// (in a fingerprints file of its own directory): not read on every run.
fn own_digest(cache: &Path) -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let own = kiln::fingerprint::Fingerprints::open(cache, exe.parent()?, &super::env::current_dir());
    let sha = own.sha256(&exe).ok().map(|(sha, _)| sha);
    own.save();
    sha
}

fn wanted_any(attest: &AttestArgs) -> bool {
    let w = attest.wanted();
    w.sbom || w.provenance
}

/// What `kiln build --shard` says: the shard and where it is, or the JSON `kiln merge` takes.
fn print_shard(summary: &BuildSummary, json: bool, quiet: bool) {
    if json {
        print!("{}", kiln::oci::canonical::to_pretty(summary));
        return;
    }
    if quiet {
        return;
    }
    if let Some(s) = &summary.shard {
        println!("wrote shard {} of {} ({}) to {}", s.id, s.shards.join(" "), s.manifest, s.layout);
        if let Some(r) = &s.reference {
            println!("  pushed {r}");
        }
    }
    print_binaries(summary);
    println!(
        "  {} layer(s), {} from a cache; {} bytes of blobs",
        summary.layers, summary.cached_layers, summary.blob_bytes
    );
}

fn print_summary(summary: &BuildSummary) {
    println!("wrote {} (index.json {})", summary.layout, summary.index_digest);
    for i in &summary.images {
        let platforms: Vec<&str> = i.platforms.keys().map(String::as_str).collect();
        println!("  {}  {}  {}", i.name, i.digest, platforms.join(" "));
    }
    print_binaries(summary);
    println!("  {} distinct layer(s), {} bytes of blobs", summary.layers, summary.blob_bytes);
}

fn print_binaries(summary: &BuildSummary) {
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
}

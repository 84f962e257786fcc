//! The `kiln` command line: the clap types and one file per subcommand. This module is the only
//! code that prints or reads the environment and the working directory; the library below it
//! takes those as values and returns values and typed errors.

mod apply;
mod build;
mod bundle;
mod deliver;
mod diff;
mod doctor;
mod env;
mod fetch;
mod init;
mod inspect;
mod load;
mod lock;
mod merge;
mod plan;
mod progress;
mod push;
pub(crate) mod render;
#[cfg(test)]
mod rules;
mod sign;
mod verify;

use clap::{Parser, Subcommand};
use kiln::oci::platform::Platform;
use miette::Diagnostic;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "kiln", version, about = "Deterministic multi-platform OCI images from a KDL recipe")]
pub(crate) struct Cli {
    /// Print nothing but errors (and what --json asks for).
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
pub(crate) struct Select {
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
#[derive(clap::Args, Default)]
pub(crate) struct Layering {
    /// The previous release (an OCI layout, or a registry reference): keep its layer order
    /// where the content allows.
    #[arg(long, value_name = "LAYOUT|REF")]
    previous: Option<String>,
    /// Compress layers as this identity (what images record in `dev.kiln.compression`) says,
    /// not as the recipe does: `gzip;level=6` rebuilds an image of the stream encoder.
    #[arg(long, value_name = "IDENTITY")]
    compression: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the resolved plan: every image, platform, layer and entry; or the shards a CI
    /// matrix builds it in (--matrix).
    Plan(plan::PlanArgs),
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
        /// Build this saved plan (`kiln plan --json > FILE`) instead of planning the recipe;
        /// its files are read from the recipe's directory and must still match the plan.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["platforms", "images", "previous"])]
        plan: Option<PathBuf>,
        #[command(flatten)]
        deliver: deliver::Deliver,
        #[command(flatten)]
        attest: build::AttestArgs,
        #[command(flatten)]
        shard: build::ShardArgs,
    },
    /// Load one platform of an image into the local docker or podman (as `docker load`).
    Load {
        /// The layout, and the image when it holds several (`out:api`).
        #[arg(value_name = "LAYOUT[:NAME]", default_value = "out")]
        layout: String,
        /// The platform to load (default: this machine's).
        #[arg(long, value_name = "P")]
        platform: Option<String>,
        /// docker or podman (default: docker when it is installed).
        #[arg(long)]
        runtime: Option<String>,
        /// The tag to name the image with (repeatable; default latest).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
    },
    /// Push images of an OCI layout to a registry: only the blobs it lacks, tags last.
    Push {
        /// The layout, and the image when it holds several (`out:api`).
        #[arg(value_name = "LAYOUT[:NAME]")]
        layout: String,
        /// Where to: HOST[:PORT]/REPOSITORY[:TAG]; `{image}` stands for each image's name.
        #[arg(value_name = "REF")]
        reference: String,
        /// A further tag to set (repeatable); `latest` when the reference names none.
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        #[command(flatten)]
        registry: push::RegistryArgs,
        /// Also attach binary deltas against this release (a layout or a reference), which
        /// `kiln pull` takes instead of whole layers.
        #[arg(long, value_name = "LAYOUT|REF")]
        delta_from: Option<String>,
        /// Print what was pushed as JSON (each image's REF@sha256:…).
        #[arg(long)]
        json: bool,
    },
    /// Pin in kiln.lock the Debian packages of the recipe's distroless bases and the digest
    /// each registry base named by tag names now.
    Lock {
        /// The recipe file.
        #[arg(short = 'f', long = "file", default_value = "kiln.kdl")]
        file: PathBuf,
    },
    /// Fetch the dependencies of every Rust and Go build (besides pulling bases, the one step
    /// of a build that uses the network).
    Fetch {
        #[command(flatten)]
        select: Select,
    },
    /// List what each platform needs to build Rust binaries, and what is installed.
    Doctor,
    /// Write a starting kiln.kdl for the project in the current directory.
    Init {
        /// The template: rust-scratch, go-scratch or c-scratch (picked from Cargo.toml, go.mod or C sources when not given), or prebuilt.
        #[arg(long)]
        template: Option<String>,
        /// Replace an existing kiln.kdl.
        #[arg(long)]
        force: bool,
        /// Write a CI workflow instead of a recipe: github (.github/workflows/kiln.yml) or
        /// gitlab (.gitlab-ci.yml), which plan, build the shards in a matrix, merge and push.
        #[arg(long, value_name = "SYSTEM", conflicts_with = "template")]
        ci: Option<String>,
    },
    /// What a device holding OLD downloads to get NEW, per image and platform (layouts or
    /// registry references; of a registry only manifests and configs are fetched).
    Diff {
        /// The release the device holds: a layout, or HOST/REPOSITORY:TAG.
        old: String,
        /// The new release: a layout, or HOST/REPOSITORY:TAG.
        new: String,
        /// Only this platform (repeatable).
        #[arg(long = "platform", value_name = "P")]
        platforms: Vec<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Exit 1 when the download is larger than this (e.g. 2MiB, 500kB, 123456).
        #[arg(long, value_name = "SIZE")]
        budget: Option<String>,
        /// Also report the download with binary deltas (as `kiln bundle --delta` sends it), to
        /// which --budget then applies; reads the layers of both releases.
        #[arg(long)]
        delta: bool,
    },
    /// Write a tar with exactly what a device holding --have lacks to hold --want.
    Bundle {
        /// The release the device holds (a layout, or a registry reference).
        #[arg(long, value_name = "LAYOUT|REF")]
        have: String,
        /// The new release, which the device should hold after `kiln apply` (a layout, or a
        /// registry reference).
        #[arg(long, value_name = "LAYOUT|REF")]
        want: String,
        /// The bundle to write (replaced only when it is complete).
        #[arg(short, long, value_name = "FILE.tar")]
        output: PathBuf,
        /// Only this platform (repeatable): what a device running it needs.
        #[arg(long = "platform", value_name = "P")]
        platforms: Vec<String>,
        /// Send a layer as a binary delta against the layer of the same key the device holds,
        /// when that is smaller (`kiln apply` rebuilds the exact layer and checks its digest).
        #[arg(long)]
        delta: bool,
    },
    /// Pull a release from a registry into a layout (on a device): only the blobs it lacks; a
    /// pull cut off goes on where it stopped; the layout is unchanged if anything fails.
    Pull {
        /// HOST/REPOSITORY:TAG or HOST/REPOSITORY@sha256:….
        #[arg(value_name = "REF")]
        reference: String,
        /// The device's OCI layout (created when it does not exist).
        #[arg(long, value_name = "OCI-LAYOUT")]
        to: PathBuf,
        /// Only this platform (repeatable): what a device running it needs.
        #[arg(long = "platform", value_name = "P")]
        platforms: Vec<String>,
        /// Keep the blobs the new release no longer uses (by default they are removed).
        #[arg(long)]
        keep_unused: bool,
        #[command(flatten)]
        registry: push::RegistryArgs,
        /// Print what was done as JSON.
        #[arg(long)]
        json: bool,
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
        /// Refuse the bundle, changing nothing, unless every image index and manifest it
        /// installs carries a signature by this public key (`kiln sign`).
        #[arg(long, value_name = "PUB.pem")]
        require_signature: Option<PathBuf>,
    },
    /// Rebuild the recipe from fresh copies with empty caches under varied conditions (path,
    /// umask, TZ, locale, HOME, clock, directory order) and compare, file by file, with a first
    /// build or a published image. Exit 0 identical, 1 different.
    Verify {
        #[command(flatten)]
        select: Select,
        #[command(flatten)]
        args: verify::VerifyArgs,
    },
    /// Make an ECDSA P-256 key pair for signing: PREFIX.key (private, mode 0600) and PREFIX.pub.
    Keygen {
        /// The files' prefix.
        #[arg(long, value_name = "PREFIX", default_value = "kiln")]
        out: String,
    },
    /// Sign every image index and platform manifest of a layout (as cosign stores signatures:
    /// referrer artifacts with a simple-signing payload), adding the signatures to the layout.
    Sign(sign::SignArgs),
    /// Check that every image index and platform manifest of a layout carries a signature
    /// by the key. Exit 0 all signed, 1 anything unsigned or wrongly signed.
    VerifySignature(sign::CheckArgs),
    /// Join the shards of a plan (`kiln build --shard`, built anywhere) into its images, with
    /// the digests one `kiln build` of the plan gives; refuses, writing nothing, shards of
    /// different plans, a missing shard or a damaged blob.
    Merge(merge::MergeArgs),
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
pub(crate) enum Failure {
    Diagnostic(Box<dyn Diagnostic + Send + Sync>),
}

impl<E: Diagnostic + Send + Sync + 'static> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Diagnostic(Box::new(e))
    }
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub(crate) enum CliError {
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
    #[error("cannot build the plan {}: {reason}", path.display())]
    #[diagnostic(code(kiln::cli::plan_file), help("write a plan with `kiln plan --json > FILE`"))]
    PlanFile { path: PathBuf, reason: String },
    #[error("the plan {} no longer matches its inputs:\n  {}", path.display(), changes.join("\n  "))]
    #[diagnostic(
        code(kiln::plan::stale),
        help("make the plan again with `kiln plan --json`, or restore the inputs it was made from")
    )]
    StalePlan { path: PathBuf, changes: Vec<String> },
    #[error("--output {0}: {1}")]
    #[diagnostic(
        code(kiln::cli::output),
        help("outputs are oci-layout=DIR, oci-archive=FILE.tar and docker-archive=FILE.tar")
    )]
    Output(String, String),
    #[error("{0}: {1}")]
    #[diagnostic(
        code(kiln::cli::shard),
        help("cut a plan with --by platform, --by step or --shards N; build a shard with --shard ID alone")
    )]
    Shard(String, String),
    #[error("`{0}` is not a duration")]
    #[diagnostic(code(kiln::cli::duration), help("write a duration such as 30s, 2m or 1m30s"))]
    Duration(String),
    #[error("--compression {0}: not a compression kiln writes")]
    #[diagnostic(
        code(kiln::cli::compression),
        help(
            "give an identity as images record it: gzip;level=6;blocks=1MiB, zstd;level=3;workers, gzip;level=6, zstd;level=3"
        )
    )]
    Compression(String),
    #[error("SOURCE_DATE_EPOCH must be a whole number of seconds up to 253402300799, found `{0}`")]
    #[diagnostic(code(kiln::cli::source_date_epoch))]
    Epoch(String),
}

/// The recipe's text, or why it cannot be had; a recipe that is not there yet points to `kiln init`.
pub(crate) fn read_recipe(path: &Path) -> Result<String, CliError> {
    std::fs::read_to_string(path).map_err(|source| {
        let help = if source.kind() == std::io::ErrorKind::NotFound {
            "run `kiln init` to write a starting kiln.kdl here, or pass the recipe with -f FILE"
        } else {
            "pass the recipe with -f FILE, or run kiln where kiln.kdl is"
        };
        CliError::Unreadable { path: path.to_path_buf(), source, help }
    })
}

/// `--platform` values checked and written as the layout writes them (`linux/arm/v7`).
pub(crate) fn platform_names(given: &[String]) -> Result<Vec<String>, CliError> {
    given
        .iter()
        .map(|p| Platform::parse(p).map(|p| p.to_string()).ok_or_else(|| CliError::Platform(p.clone())))
        .collect()
}

/// Runs the subcommand; `Ok` carries the exit code of a command that ran (1: a check failed).
pub(crate) fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Plan(args) => plan::run(&args, quiet),
        Command::Build { select, layering, out, json, plan, deliver, attest, shard } => {
            build::run(&select, &layering, plan.as_deref(), (&out, &deliver, &attest, &shard), json, quiet)
        }
        Command::Load { layout, platform, runtime, tags } => {
            deliver::run_load(&layout, platform.as_deref(), runtime.as_deref(), &tags, quiet)
        }
        Command::Push { layout, reference, tags, registry, delta_from, json } => {
            push::run(&layout, (&reference, delta_from.as_deref()), &tags, &registry, (json, quiet))
        }
        Command::Lock { file } => lock::run(&file, quiet),
        Command::Fetch { select } => fetch::run(&select, quiet),
        Command::Doctor => doctor::run(),
        Command::Init { template, force, ci } => init::run(template.as_deref(), force, ci.as_deref(), quiet),
        Command::Diff { old, new, platforms, json, budget, delta } => {
            diff::run(&old, &new, &platforms, (json, delta), budget)
        }
        Command::Bundle { have, want, output, platforms, delta } => {
            bundle::run(&have, &want, &output, &platforms, delta, quiet)
        }
        Command::Pull { reference, to, platforms, keep_unused, registry, json } => {
            push::run_pull(&reference, &to, (&platforms, keep_unused), &registry, (json, quiet))
        }
        Command::Apply { bundle, to, keep_unused, require_signature } => {
            apply::run(&bundle, &to, (keep_unused, require_signature.as_deref()), quiet)
        }
        Command::Merge(args) => merge::run(&args, quiet),
        Command::Inspect { dir, image, json } => inspect::run(&dir, image.as_deref(), json),
        Command::Verify { select, args } => verify::run(&select, &args, quiet),
        Command::Keygen { out } => sign::run_keygen(&out, quiet),
        Command::Sign(args) => sign::run_sign(&args),
        Command::VerifySignature(args) => sign::run_check(&args),
    }
}

//! `kiln merge SHARD… [--out DIR] [--push REF]`: the shards of a plan joined into its images.

use super::push::{RegistryArgs, report};
use super::{CliError, Failure, progress};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct MergeArgs {
    /// The shards: layouts `kiln build --shard` wrote, references HOST/REPOSITORY@sha256:… it
    /// pushed, or the JSON files it printed with --json. Every shard of the matrix, once.
    #[arg(value_name = "SHARD", required = true)]
    shards: Vec<String>,
    /// The OCI layout to write (replaced as a whole once every shard checked out); `out` when
    /// --push is not given.
    #[arg(long, short, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Push the images to REF (`{image}` stands for each image's name); blobs registry shards
    /// hold are mounted from their repository, not sent again.
    #[arg(long, value_name = "REF")]
    push: Option<String>,
    /// A tag (repeatable): names each image IMAGE:TAG in the layout too, and is set on push.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Print what was merged as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub(crate) fn run(args: &MergeArgs, quiet: bool) -> Result<ExitCode, Failure> {
    if let Some(bad) = args.tags.iter().find(|t| !kiln::oci::reference::tag_ok(t)) {
        let why = "a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`";
        return Err(CliError::Output(format!("--tag {bad}"), why.into()).into());
    }
    let progress = progress::for_terminal(quiet);
    let out = match (&args.out, &args.push) {
        (Some(o), _) => Some(o.clone()),
        (None, None) => Some(PathBuf::from("out")),
        (None, Some(_)) => None,
    };
    let work = super::env::cache_dir();
    let target =
        kiln::merge::MergeTarget { out: out.as_deref(), push: args.push.as_deref(), tags: &args.tags, work: &work };
    let summary = kiln::merge::merge(&args.shards, &target, &args.registry.options()?, progress.as_ref())?;
    if args.json {
        print!("{}", kiln::oci::canonical::to_pretty(&summary));
    } else if !quiet {
        match &summary.layout {
            Some(l) => {
                println!("merged {} shard(s) into {l} (index.json {})", summary.shards.len(), summary.index_digest)
            }
            None => println!("merged {} shard(s)", summary.shards.len()),
        }
        for i in &summary.images {
            let platforms: Vec<&str> = i.platforms.keys().map(String::as_str).collect();
            println!("  {}  {}  {}", i.name, i.digest, platforms.join(" "));
        }
        report(&summary.pushed, false);
    }
    Ok(ExitCode::SUCCESS)
}

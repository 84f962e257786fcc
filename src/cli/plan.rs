//! `kiln plan`: the resolved plan, as text or JSON, on stdout; with `--matrix`, the shards a
//! CI matrix builds it in.

use super::load::load_plan;
use super::{CliError, Failure, Layering, Select, progress};
use kiln::plan::Plan;
use kiln::plan::shard::{MAX_SHARDS, Scheme, shards};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    select: Select,
    #[command(flatten)]
    layering: Layering,
    /// Print the plan as JSON.
    #[arg(long, conflicts_with = "matrix")]
    json: bool,
    /// Print, on one line, the JSON list of shards (`[{"KILN_SHARD":"linux-amd64"},…]`) that
    /// GitHub's `strategy.matrix.include` and GitLab's `parallel:matrix` take; each runner
    /// builds one with `kiln build --plan FILE --shard ID`.
    #[arg(long)]
    matrix: bool,
    /// Cut the plan by platform (the default) or by step (each compiled binary and its layer,
    /// and one shard for the layers without binaries).
    #[arg(long, value_name = "platform|step", requires = "matrix", conflicts_with = "shards")]
    by: Option<String>,
    /// Cut the plan into exactly N shards (ids 1ofN … NofN), balanced by an estimate of their
    /// work; some may be empty.
    #[arg(long, value_name = "N", requires = "matrix")]
    shards: Option<usize>,
    /// Cut this saved plan (`kiln plan --json > FILE`) instead of planning the recipe.
    #[arg(long, value_name = "FILE", requires = "matrix", conflicts_with_all = ["platforms", "images", "previous"])]
    plan: Option<PathBuf>,
}

/// A plan file read back, without checking its inputs: cutting it needs only its shape.
fn read_saved(file: &Path) -> Result<Plan, CliError> {
    let bad = |reason: String| CliError::PlanFile { path: file.to_path_buf(), reason };
    let size = std::fs::metadata(file).map_err(|e| bad(e.to_string()))?.len();
    if size > kiln::plan::MAX_PLAN_BYTES {
        return Err(bad(format!("it is {size} bytes, more than the {} kiln reads", kiln::plan::MAX_PLAN_BYTES)));
    }
    let text = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
    Plan::from_json(&text).map_err(bad)
}

impl PlanArgs {
    fn scheme(&self) -> Result<Scheme, CliError> {
        let bad = |v: String, why: &str| CliError::Shard(v, why.into());
        match (self.by.as_deref(), self.shards) {
            (_, Some(n)) if !(1..=MAX_SHARDS).contains(&n) => {
                Err(bad(format!("--shards {n}"), "kiln cuts a plan into 1 to 200 shards"))
            }
            (_, Some(n)) => Ok(Scheme::Count(n)),
            (None | Some("platform"), None) => Ok(Scheme::Platform),
            (Some("step"), None) => Ok(Scheme::Step),
            (Some(other), None) => Err(bad(format!("--by {other}"), "a plan is cut by platform or by step")),
        }
    }
}

pub(crate) fn run(args: &PlanArgs, quiet: bool) -> Result<ExitCode, Failure> {
    let progress = progress::for_terminal(quiet);
    let scheme = if args.matrix { Some(args.scheme()?) } else { None };
    let plan = match &args.plan {
        Some(file) => read_saved(file)?,
        None => {
            let options = super::push::default_options();
            load_plan(&args.select, &args.layering, &options, progress.as_ref())?.plan
        }
    };
    if let Some(scheme) = scheme {
        let list: Vec<serde_json::Value> =
            shards(&plan, scheme).iter().map(|s| serde_json::json!({ "KILN_SHARD": s.id })).collect();
        println!("{}", serde_json::Value::Array(list));
    } else if args.json {
        print!("{}", plan.to_json());
    } else {
        print!("{}", kiln::plan::render_text(&plan));
    }
    Ok(ExitCode::SUCCESS)
}

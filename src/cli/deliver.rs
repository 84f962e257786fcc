//! What `kiln build` does with the layout it wrote: `--output` archives beside it, `--push`
//! to a registry; and `kiln load`, into the local docker or podman.

use super::push::{RegistryArgs, push, report, split_layout};
use super::{CliError, Failure, platform_names};
use kiln::oci::platform::Platform;
use kiln::publish::{Output, Runtime, load, write_output};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where a build's images go beside its layout.
#[derive(clap::Args)]
pub(crate) struct Deliver {
    /// Also write TYPE=PATH (repeatable): oci-layout=DIR (instead of --out),
    /// oci-archive=FILE.tar (every platform), docker-archive=FILE.tar (one platform, --platform).
    #[arg(long = "output", value_name = "TYPE=PATH")]
    outputs: Vec<String>,
    /// Push the built images to REF once the layout is written (`{image}` stands for each
    /// image's name, e.g. 'registry.example/team/{image}:1.0').
    #[arg(long, value_name = "REF")]
    push: Option<String>,
    /// A tag (repeatable): names each image IMAGE:TAG in the layout too, is set on push, and
    /// names a docker-archive's image.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

impl Deliver {
    /// The outputs, checked, and the layout directory the build writes.
    pub(crate) fn layout_and_outputs(&self, out: &Path) -> Result<(PathBuf, Vec<Output>), CliError> {
        let outputs = self
            .outputs
            .iter()
            .map(|o| Output::parse(o).map_err(|why| CliError::Output(o.clone(), why)))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(bad) = self.tags.iter().find(|t| !kiln::oci::reference::tag_ok(t)) {
            return Err(CliError::Output(
                format!("--tag {bad}"),
                "a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`".into(),
            ));
        }
        let layouts: Vec<&PathBuf> =
            outputs.iter().filter_map(|o| if let Output::Layout(d) = o { Some(d) } else { None }).collect();
        match layouts.as_slice() {
            [] => Ok((out.to_path_buf(), outputs)),
            [one] => Ok(((*one).clone(), outputs)),
            _ => Err(CliError::Output("oci-layout".into(), "give one oci-layout output".into())),
        }
    }

    /// A docker archive holds one platform: the one selected.
    pub(crate) fn check_platforms(
        &self,
        outputs: &[Output],
        platforms: &[String],
    ) -> Result<Option<Platform>, CliError> {
        if !outputs.iter().any(|o| matches!(o, Output::DockerArchive(_))) {
            return Ok(None);
        }
        match platform_names(platforms)?.as_slice() {
            [one] => Ok(Platform::parse(one)),
            _ => Err(CliError::Output(
                "docker-archive".into(),
                "a docker archive holds one platform: add --platform, e.g. --platform linux/amd64".into(),
            )),
        }
    }

    /// Writes the archives and pushes; the JSON of what was done, for `--json`.
    pub(crate) fn run(
        &self,
        layout: &Path,
        outputs: &[Output],
        platform: Option<Platform>,
        json: bool,
        quiet: bool,
    ) -> Result<Value, Failure> {
        let mut written = Vec::new();
        for o in outputs {
            if let Some(s) =
                write_output(layout, o, None, platform, &self.tags).map_err(kiln::error::BuildError::from)?
            {
                if !quiet && !json {
                    println!("wrote {} ({} bytes)", s.file.display(), s.bytes);
                }
                written.push(s);
            }
        }
        let mut pushed = Vec::new();
        if let Some(reference) = &self.push {
            pushed = push(layout, None, reference, &self.tags, &self.registry, quiet)?;
            if !quiet {
                report(&pushed, json);
            }
        }
        Ok(json!({ "archives": written, "pushed": pushed }))
    }

    /// How to talk to registries (pulling bases, pushing).
    pub(crate) fn registry_options(&self) -> Result<kiln::inputs::registry::Options, CliError> {
        self.registry.options()
    }

    /// The `--tag`s.
    pub(crate) fn tags(&self) -> &[String] {
        &self.tags
    }

    /// Whether anything beyond the layout is asked for.
    pub(crate) fn any(&self) -> bool {
        !self.outputs.is_empty() || self.push.is_some()
    }

    /// The push reference and tags, to check against the plan's images before building.
    pub(crate) fn push_target(&self) -> Option<(&str, &[String])> {
        self.push.as_deref().map(|r| (r, self.tags.as_slice()))
    }
}

/// `kiln load`.
pub(crate) fn run_load(
    layout: &str,
    platform: Option<&str>,
    runtime: Option<&str>,
    tags: &[String],
    quiet: bool,
) -> Result<ExitCode, Failure> {
    let (dir, image) = split_layout(layout);
    let platform = match platform {
        Some(p) => Some(Platform::parse(p).ok_or_else(|| CliError::Platform(p.to_string()))?),
        None => None,
    };
    let runtime = match runtime {
        Some("docker") => Runtime::Docker,
        Some("podman") => Runtime::Podman,
        Some(other) => {
            return Err(CliError::Output(other.to_string(), "the runtimes are docker and podman".into()).into());
        }
        None if super::env::find_program("docker").is_some() => Runtime::Docker,
        None => Runtime::Podman,
    };
    let program = super::env::find_program(runtime.program()).ok_or_else(|| {
        CliError::Output(runtime.program().into(), format!("{} is not installed (not on PATH)", runtime.program()))
    })?;
    let (summary, said) =
        load(&dir, image.as_deref(), platform, tags, (runtime, &program)).map_err(kiln::error::BuildError::from)?;
    if !quiet {
        println!("{}", said.trim());
        println!("loaded {} into {} ({} bytes)", summary.tags.join(", "), runtime.program(), summary.bytes);
    }
    Ok(ExitCode::SUCCESS)
}

//! `kiln push LAYOUT[:NAME] REF` and `kiln build --push REF`: images of a layout into a
//! registry. Credentials come from `KILN_REGISTRY_USER`/`KILN_REGISTRY_PASSWORD`, else
//! docker's `config.json`; they are handed to the library here and never printed.

use super::{CliError, Failure, progress};
use kiln::publish::registry::{AuthSource, Credentials, Options, PushSummary, push_layout};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// How kiln talks to registries, for every command that does.
#[derive(clap::Args, Clone)]
pub(crate) struct RegistryArgs {
    /// Speak plain HTTP to the registry (registries on this machine and `http://` references
    /// are spoken to that way anyway).
    #[arg(long)]
    pub insecure: bool,
    /// The longest a connection, or one read or write, may take before kiln tries again.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub timeout: String,
    /// Tries of each request and blob before giving up.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub tries: u32,
    /// Blobs larger than this are sent in chunks of it (e.g. 8MiB on a link that drops often).
    #[arg(long, value_name = "SIZE", default_value = "32MiB")]
    pub chunk_size: String,
}

impl RegistryArgs {
    /// The options the library takes, with the credentials the environment names.
    pub(crate) fn options(&self) -> Result<Options, CliError> {
        let timeout = humantime::parse_duration(&self.timeout).map_err(|_| CliError::Duration(self.timeout.clone()))?;
        let chunk = kiln::update::parse_size(&self.chunk_size)
            .filter(|c| *c >= 1 << 20)
            .ok_or_else(|| CliError::Size(self.chunk_size.clone()))?;
        Ok(Options {
            chunk,
            insecure: self.insecure,
            timeout,
            tries: self.tries.max(1),
            auth: auth_source(),
            cache: Some(super::env::cache_dir()),
            ..Options::default()
        })
    }
}

/// What commands without registry flags (pulling bases while planning) talk to registries
/// with: the defaults, and the environment's credentials.
pub(crate) fn default_options() -> Options {
    Options { auth: auth_source(), cache: Some(super::env::cache_dir()), ..Options::default() }
}

/// `KILN_REGISTRY_USER`/`KILN_REGISTRY_PASSWORD`, and docker's `config.json`.
fn auth_source() -> AuthSource {
    let var = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
    let env = match (var("KILN_REGISTRY_USER"), var("KILN_REGISTRY_PASSWORD")) {
        (Some(user), Some(password)) => Some(Credentials { user, password }),
        _ => None,
    };
    let docker_config = std::env::var_os("DOCKER_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .map(|d| d.join("config.json"));
    AuthSource { env, docker_config }
}

/// `LAYOUT[:NAME]`: a path that is a directory is the layout; otherwise what follows the first
/// `:` after its last `/` names the image (`out:api`, `out:api:1.0`).
pub(crate) fn split_layout(arg: &str) -> (PathBuf, Option<String>) {
    let after_slash = arg.rfind('/').map_or(0, |i| i + 1);
    if !Path::new(arg).is_dir()
        && let Some(at) = arg[after_slash..].find(':').map(|i| i + after_slash)
        && at > 0
    {
        return (PathBuf::from(&arg[..at]), Some(arg[at + 1..].to_string()));
    }
    (PathBuf::from(arg), None)
}

/// Pushes and reports; the summaries, for a caller that prints them in its own JSON.
pub(crate) fn push(
    layout: &Path,
    image: Option<&str>,
    reference: &str,
    tags: &[String],
    args: &RegistryArgs,
    quiet: bool,
) -> Result<Vec<PushSummary>, Failure> {
    let opts = args.options()?;
    let progress = progress::for_terminal(quiet);
    let pushed = push_layout(layout, image, reference, tags, &opts, progress.as_ref())?;
    Ok(pushed)
}

/// Says what a push did, on stderr when stdout is JSON's.
pub(crate) fn report(pushed: &[PushSummary], to_stderr: bool) {
    for p in pushed {
        let line = format!(
            "pushed {} ({} blobs: {} uploaded, {} bytes; {} mounted; {} present)",
            p.reference, p.blobs, p.uploaded, p.uploaded_bytes, p.mounted, p.present
        );
        let tags = p.tags.iter().map(|t| format!("\n  tagged {t}")).collect::<String>();
        if to_stderr {
            eprintln!("{line}{tags}");
        } else {
            println!("{line}{tags}");
        }
    }
}

pub(crate) fn run(
    layout: &str,
    (reference, delta_from): (&str, Option<&str>),
    tags: &[String],
    args: &RegistryArgs,
    (json, quiet): (bool, bool),
) -> Result<ExitCode, Failure> {
    let (dir, image) = split_layout(layout);
    let pushed = push(&dir, image.as_deref(), reference, tags, args, quiet)?;
    let mut deltas = Vec::new();
    if let Some(old) = delta_from {
        let (old, opts) = (kiln::inputs::registry::Release::parse(old), args.options()?);
        for p in &pushed {
            let named = kiln::oci::reference::expand_image(reference, &p.image);
            let target = kiln::oci::reference::Reference::parse(&named).map_err(kiln::error::RegistryError::from)?;
            deltas.push(kiln::update::registry_deltas::push_deltas((&dir, &p.image), &old, &target, &opts)?);
        }
    }
    if json {
        let v = serde_json::json!({ "pushed": pushed, "deltas": deltas });
        print!("{}", kiln::oci::canonical::to_pretty(&v));
    } else if !quiet {
        report(&pushed, false);
        for d in &deltas {
            println!(
                "  attached {} delta(s) in {} artifact(s): {} bytes for {} bytes of layers",
                d.deltas, d.artifacts, d.delta_bytes, d.layer_bytes
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `kiln pull REF --to LAYOUT`.
pub(crate) fn run_pull(
    reference: &str,
    to: &Path,
    (platforms, keep_unused): (&[String], bool),
    args: &RegistryArgs,
    (json, quiet): (bool, bool),
) -> Result<ExitCode, Failure> {
    let platforms = super::platform_names(platforms)?;
    let r = kiln::oci::reference::Reference::parse(reference).map_err(kiln::error::RegistryError::from)?;
    let opts = args.options()?;
    let progress = progress::for_terminal(quiet || json);
    let release = kiln::inputs::registry::Release::Registry(r);
    let s = kiln::update::pull(
        &release,
        to,
        (&platforms, keep_unused),
        (&opts, &super::env::cache_dir()),
        progress.as_ref(),
    )?;
    if json {
        print!("{}", kiln::oci::canonical::to_pretty(&s));
    } else if !quiet {
        println!(
            "pulled {reference} into {}: {} blobs, {} downloaded ({} bytes), {} from an earlier pull, {} held; {} removed",
            to.display(),
            s.blobs,
            s.downloaded,
            s.downloaded_bytes,
            s.resumed,
            s.held,
            s.pruned
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_layout_argument_names_its_image_after_the_directory() {
        let split = |a| super::split_layout(a);
        assert_eq!(split("out:api"), ("out".into(), Some("api".into())));
        assert_eq!(split("/tmp/x/out:api:1.0"), ("/tmp/x/out".into(), Some("api:1.0".into())));
        assert_eq!(split("a:b/out"), ("a:b/out".into(), None));
        assert_eq!(split("out"), ("out".into(), None));
    }
}

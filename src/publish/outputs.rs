//! Where a build's release goes beside its layout: `--output TYPE=PATH` (an oci-layout
//! directory, an oci-archive, a docker-archive of one platform) and `kiln load`, which hands a
//! docker-archive to the local docker or podman.

use super::{ArchiveSummary, write_docker_archive, write_oci_archive};
use crate::error::StoreError;
use crate::oci::platform::Platform;
use crate::store::LayoutDir;
use crate::store::walk::images;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One `--output`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Layout(PathBuf),
    OciArchive(PathBuf),
    DockerArchive(PathBuf),
}

impl Output {
    /// `oci-layout=DIR`, `oci-archive=FILE` or `docker-archive=FILE`.
    pub fn parse(s: &str) -> Result<Output, String> {
        let (kind, path) = s.split_once('=').ok_or_else(|| format!("`{s}` is not TYPE=PATH"))?;
        if path.is_empty() {
            return Err(format!("`{s}` names no path"));
        }
        let path = PathBuf::from(path);
        match kind {
            "oci-layout" => Ok(Output::Layout(path)),
            "oci-archive" => Ok(Output::OciArchive(path)),
            "docker-archive" => Ok(Output::DockerArchive(path)),
            other => Err(format!("`{other}` is not an output type")),
        }
    }
}

/// Writes an archive output from the layout `dir`; `platform` and `tags` are a docker
/// archive's (one platform; `IMAGE:TAG` names).
pub fn write_output(
    dir: &Path,
    output: &Output,
    image: Option<&str>,
    platform: Option<Platform>,
    tags: &[String],
) -> Result<Option<ArchiveSummary>, StoreError> {
    let layout = LayoutDir::new(dir);
    match output {
        Output::Layout(_) => Ok(None),
        Output::OciArchive(file) => write_oci_archive(&layout, file).map(Some),
        Output::DockerArchive(file) => {
            let platform = platform.unwrap_or_else(Platform::host);
            let names = docker_names(&layout, image, tags)?;
            write_docker_archive(&layout, image, platform.as_str(), &names, file).map(Some)
        }
    }
}

/// `IMAGE:TAG` for each tag (`IMAGE:latest` when none is given).
fn docker_names(layout: &LayoutDir, image: Option<&str>, tags: &[String]) -> Result<Vec<String>, StoreError> {
    let all = images(layout, image)?;
    let Some(first) = all.first() else { return Ok(Vec::new()) };
    if all.len() > 1 {
        return Err(StoreError::InvalidLayout {
            path: layout_path(layout),
            reason: format!(
                "it holds {} images; a docker archive holds one: name it (`kiln build --image NAME`, `kiln load LAYOUT:NAME`)",
                all.len()
            ),
        });
    }
    let name = first.name.split(':').next().unwrap_or(&first.name).to_string();
    Ok(if tags.is_empty() {
        vec![format!("{name}:latest")]
    } else {
        tags.iter().map(|t| format!("{name}:{t}")).collect()
    })
}

fn layout_path(layout: &LayoutDir) -> PathBuf {
    crate::store::BlobSource::location(layout).to_path_buf()
}

/// A local container runtime `kiln load` hands images to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Docker,
    Podman,
}

impl Runtime {
    pub fn program(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Podman => "podman",
        }
    }
}

/// Loads one platform of one image of the layout `dir` into `runtime` (`docker load` or
/// `podman load` of a docker archive written to a temporary file); returns the archive's
/// summary and what the runtime said.
pub fn load(
    dir: &Path,
    image: Option<&str>,
    platform: Option<Platform>,
    tags: &[String],
    (runtime, program): (Runtime, &Path),
) -> Result<(ArchiveSummary, String), StoreError> {
    let tmp = tempfile::Builder::new()
        .prefix("kiln-load-")
        .tempdir()
        .map_err(StoreError::io("create", "a temporary directory"))?;
    let file = tmp.path().join("image.tar");
    let out = write_output(dir, &Output::DockerArchive(file.clone()), image, platform, tags)?
        .ok_or_else(|| StoreError::io("write", &file)(std::io::Error::other("no archive was written")))?;
    let o = Command::new(program).arg("load").arg("-i").arg(&file).output().map_err(StoreError::io("run", program))?;
    let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    if !o.status.success() {
        return Err(StoreError::io("load into", runtime.program())(std::io::Error::other(format!(
            "{} load failed ({}): {}",
            program.display(),
            o.status,
            said.trim()
        ))));
    }
    Ok((out, said))
}

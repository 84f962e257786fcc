//! `kiln verify`: is an image reproducible from its sources? The recipe is rebuilt from a
//! fresh checkout with an empty cache under deliberately varied conditions ([`rebuild`]), and
//! the result compared with a first build or with a published image ([`compare`]) in the
//! recipe's terms: image, platform, layer, file, the kind of difference, and the plan's word
//! on what made the file.

pub(crate) mod checkout;
pub mod compare;
pub mod files;
pub mod rebuild;
mod render;

pub use compare::{Comparison, FieldDiff, FileDiff, ImageDiff, LayerDiff, PlatformDiff, compare};
pub use rebuild::{Rebuilder, Side, Variation, build, variations};
pub use render::render_text;

use crate::error::VerifyError;
use crate::inputs::registry::{Options, Release};
use crate::plan::{BuildStep, Plan};
use crate::progress::Progress;
use crate::store::{BlobSource, LayoutDir};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What `kiln verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub reproducible: bool,
    /// What the rebuild was compared with: `a first build`, or the layout or reference given.
    pub against: String,
    pub variations: Vec<Variation>,
    /// Conditions that could not be varied here, and why.
    pub not_varied: Vec<String>,
    pub comparison: Comparison,
    /// With `--report`: where the differing files were written, and how many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_dir: Option<String>,
    pub files_written: usize,
}

/// Who made each file of the plan, by (image, platform, layer key, path): a build step, a
/// copied source, the recipe's `file` node, or the base.
pub fn origins(plan: &Plan) -> BTreeMap<(String, String, String, String), String> {
    let steps: BTreeMap<String, String> = plan.steps().map(|s| (s.id().to_string(), s.describe())).collect();
    let mut out = BTreeMap::new();
    for image in &plan.images {
        for p in &image.platforms {
            for l in &p.layers {
                for e in &l.entries {
                    let why = match (&e.build, &e.source, &e.from) {
                        (Some(id), _, _) => match steps.get(id) {
                            Some(d) => format!("build step {d}"),
                            None => format!("build step {id}"),
                        },
                        (_, Some(src), _) => format!("a copy of {src} (layer {})", l.name),
                        (_, _, Some(from)) => format!("base file from {from}"),
                        _ if e.content.is_some() => format!("the recipe's `file` node (layer {})", l.name),
                        _ => format!("layer {}, which adds it", l.name),
                    };
                    out.insert((image.name.clone(), p.platform.to_string(), l.key.clone(), e.path.clone()), why);
                }
            }
        }
    }
    out
}

/// Writes the differing regular files of every differing layer below `dir`, as
/// `IMAGE/PLATFORM/layer-N/{first,second}/PATH`; returns how many were written.
pub fn write_report(
    cmp: &Comparison,
    (sa, sb): (&dyn BlobSource, &dyn BlobSource),
    dir: &Path,
) -> Result<usize, VerifyError> {
    let mut written = 0;
    for i in &cmp.images {
        for p in &i.platforms {
            for l in &p.layers {
                let paths: BTreeSet<String> = l.files.iter().map(|f| f.path.clone()).collect();
                let at = dir
                    .join(sanitize(&i.name))
                    .join(p.platform.replace('/', "-"))
                    .join(format!("layer-{}", l.position));
                for (src, blob, side) in [(sa, &l.blobs.0, "first"), (sb, &l.blobs.1, "second")] {
                    if let Some(b) = blob {
                        written += files::extract(src, b, &paths, &at.join(side))?;
                    }
                }
            }
        }
    }
    Ok(written)
}

/// An image name as one directory name.
fn sanitize(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with('.') { format!("_{s}") } else { s }
}

/// Rebuilds the recipe under varied conditions and compares the result with a first build,
/// or with `against` (its name as given, and the release); with `report`, the differing
/// files are written into that new directory (made beside it and renamed into place).
pub fn verify(
    r: &Rebuilder<'_>,
    (against, opts): (Option<(&str, &Release)>, &Options),
    select: (&[String], &[String]),
    plan: &Plan,
    report: Option<&Path>,
    progress: &dyn Progress,
) -> Result<VerifyReport, VerifyError> {
    let (variations, not_varied) = variations(r);
    let (first, compression): (Box<dyn BlobSource>, _) = match against {
        Some((_, release)) => {
            let src = release.open(opts)?;
            // The release's own compression: an image made with an earlier encoder is rebuilt
            // with that encoder.
            let recorded = recorded_compression(src.as_ref());
            (src, recorded)
        }
        None => {
            progress.note("verify: the first build, from a fresh copy with an empty cache");
            (Box::new(LayoutDir::new(&build(r, Side::First, None)?)), None)
        }
    };
    progress.note("verify: the second build, varied, from another fresh copy with an empty cache");
    let second = LayoutDir::new(&build(r, Side::Second, compression.as_deref())?);
    let origins = origins(plan);
    let origin = |i: &str, p: &str, key: &str, path: &str| {
        origins.get(&(i.to_string(), p.to_string(), key.to_string(), path.to_string())).cloned()
    };
    let comparison = compare((first.as_ref(), &second), select, &origin)?;
    let mut out = VerifyReport {
        reproducible: comparison.identical,
        against: against.map_or("a first build".into(), |(name, _)| name.to_string()),
        variations,
        not_varied,
        comparison,
        report_dir: None,
        files_written: 0,
    };
    if let Some(dir) = report {
        write_report_dir(dir, &mut out, (first.as_ref(), &second))?;
    }
    Ok(out)
}

/// The `dev.kiln.compression` the release's first image records, when it is one kiln writes.
fn recorded_compression(src: &dyn BlobSource) -> Option<String> {
    let images = crate::store::walk::images(src, None).ok()?;
    let index = images.into_iter().find_map(|i| i.index)?;
    let recorded = index.annotations().as_ref()?.get(crate::oci::annotation::ANNOTATION_COMPRESSION)?.clone();
    crate::recipe::Compression::parse(&recorded).map(|_| recorded)
}

/// Writes the report directory beside `dir` and renames it into place; a directory that is
/// there already is left as it is, and the rename fails.
fn write_report_dir(
    dir: &Path,
    out: &mut VerifyReport,
    sources: (&dyn BlobSource, &dyn BlobSource),
) -> Result<(), VerifyError> {
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".kiln-staging-report-")
        .tempdir_in(parent)
        .map_err(VerifyError::io("create a directory in", parent))?;
    out.files_written = write_report(&out.comparison, sources, tmp.path())?;
    out.report_dir = Some(dir.display().to_string());
    let json = crate::oci::canonical::to_pretty(&*out);
    std::fs::write(tmp.path().join("report.json"), json).map_err(VerifyError::io("write", tmp.path()))?;
    // A temporary directory starts at 0700; the report is for people to read.
    let mode = <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o755);
    std::fs::set_permissions(tmp.path(), mode).map_err(VerifyError::io("set permissions of", tmp.path()))?;
    let staged = tmp.keep();
    std::fs::rename(&staged, dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        VerifyError::io("create", dir)(e)
    })
}

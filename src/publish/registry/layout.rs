//! `kiln push` and `kiln build --push`: the images of a layout on disk, each to the
//! repository its reference names (`{image}` in the reference stands for each image's name).
//! Images pushed later in the run mount the blobs they share with earlier ones.

use super::push::{PushJob, PushSummary, push};
use crate::error::{RegistryError, StoreError};
use crate::inputs::registry::client::{Client, Options};
use crate::oci::digest::Digest;
use crate::oci::reference::{Reference, ReferenceError, expand_image, tag_ok};
use crate::progress::Progress;
use crate::store::LayoutDir;
use crate::store::walk::images;
use std::collections::BTreeMap;
use std::path::Path;

fn refuse(shown: &str, why: impl Into<String>) -> RegistryError {
    RegistryError::Reference(ReferenceError { shown: shown.to_string(), why: why.into() })
}

/// Each image's target and tags, checked before anything is sent.
fn targets(
    names: &[String],
    template: &str,
    extra_tags: &[String],
) -> Result<Vec<(Reference, Vec<String>)>, RegistryError> {
    if names.len() > 1 && !template.contains("{image}") {
        return Err(refuse(
            template,
            format!(
                "the layout holds {} images; put {{image}} in the reference, or push one (LAYOUT:NAME)",
                names.len()
            ),
        ));
    }
    if let Some(bad) = extra_tags.iter().find(|t| !tag_ok(t)) {
        return Err(refuse(bad, "a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`"));
    }
    names
        .iter()
        .map(|name| {
            let r = Reference::parse(&expand_image(template, name))?;
            let mut tags: Vec<String> = r.tag.iter().cloned().chain(extra_tags.iter().cloned()).collect();
            tags.dedup();
            if tags.is_empty() && r.digest.is_none() {
                tags.push("latest".into());
            }
            Ok((r, tags))
        })
        .collect()
}

/// Checks before a build that `template` and `extra_tags` name a target for each of the
/// images `names`.
pub fn check_targets(names: &[String], template: &str, extra_tags: &[String]) -> Result<(), RegistryError> {
    targets(names, template, extra_tags).map(|_| ())
}

/// Pushes `only` (else every image) of the layout `dir` to `template`, with `extra_tags`
/// beside the reference's own tag (`latest` when neither names one and no digest is given).
pub fn push_layout(
    dir: &Path,
    only: Option<&str>,
    template: &str,
    extra_tags: &[String],
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Vec<PushSummary>, RegistryError> {
    let layout = LayoutDir::new(dir);
    let all = images(&layout, only)?;
    push_images(&layout, &all, (template, extra_tags), &[], opts, progress)
}

/// Pushes every image of the release `src` to `template` with `extra_tags`, mounting the
/// blobs `mounts` names (registry, digest, repository) from where they are.
pub fn push_release(
    src: &(dyn crate::store::BlobSource + Sync),
    template: &str,
    extra_tags: &[String],
    mounts: &[(String, Digest, String)],
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Vec<PushSummary>, RegistryError> {
    let all = images(src, None)?;
    push_images(src, &all, (template, extra_tags), mounts, opts, progress)
}

fn push_images(
    src: &(dyn crate::store::BlobSource + Sync),
    all: &[crate::store::walk::Image],
    (template, extra_tags): (&str, &[String]),
    mounts: &[(String, Digest, String)],
    opts: &Options,
    progress: &dyn Progress,
) -> Result<Vec<PushSummary>, RegistryError> {
    let names: Vec<String> = all.iter().map(|i| i.name.clone()).collect();
    let targets = targets(&names, template, extra_tags)?;
    for (image, (r, _)) in all.iter().zip(&targets) {
        if let Some(d) = &r.digest
            && *d != image.blob.digest
        {
            return Err(RegistryError::Store(StoreError::InvalidLayout {
                path: src.location().to_path_buf(),
                reason: format!("image `{}` is {}, not the {d} the reference names", image.name, image.blob.digest),
            }));
        }
    }
    let mut clients: BTreeMap<String, Client> = BTreeMap::new();
    // Per registry: which repository holds each blob pushed so far.
    let mut held: BTreeMap<String, BTreeMap<Digest, String>> = BTreeMap::new();
    let mut out = Vec::new();
    for (image, (r, tags)) in all.iter().zip(&targets) {
        let c = clients.entry(r.registry.clone()).or_insert_with(|| Client::new(r, opts));
        let mount_from = held.entry(r.registry.clone()).or_insert_with(|| {
            let mut hints = opts.cache.as_deref().map(|c| super::hints::load(c, &r.registry)).unwrap_or_default();
            for (_, digest, repo) in mounts.iter().filter(|m| m.0 == r.registry) {
                hints.insert(digest.clone(), repo.clone());
            }
            hints
        });
        let job = PushJob { src, image, target: r, tags, mount_from };
        out.push(push(c, &job, progress)?);
        for p in &image.platforms {
            for b in std::iter::once(&p.config).chain(&p.layers) {
                mount_from.insert(b.digest.clone(), r.repository.clone());
            }
        }
        if let Some(cache) = &opts.cache {
            super::hints::save(cache, &r.registry, mount_from);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_images_need_a_placeholder_and_each_gets_its_tags() {
        let names = vec!["api".to_string(), "agent".to_string()];
        let e = targets(&names, "reg.lan/app:1", &[]).unwrap_err().to_string();
        assert!(e.contains("{image}"), "{e}");
        let t = targets(&names, "reg.lan/p/{image}:1", &["stable".into()]).unwrap();
        assert_eq!(t[1].0.to_string(), "reg.lan/p/agent:1");
        assert_eq!(t[1].1, ["1", "stable"]);
        let latest = targets(&names[..1], "reg.lan/app", &[]).unwrap();
        assert_eq!(latest[0].1, ["latest"]);
        assert!(targets(&names[..1], "reg.lan/app", &["-bad".into()]).is_err());
    }
}

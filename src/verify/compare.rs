//! Two releases compared the way a person asks about them: which image and platform differ,
//! which fields of the index, manifest or config, which layer, and within a layer which files
//! and how (content, mode, owner, mtime, link target, entry order). Images are matched by
//! name (a pair of single-image releases by position), platforms by name, layers by position.

use super::files::{FileFacts, LayerFiles, read_layer};
use crate::error::StoreError;
use crate::oci::digest::Digest;
use crate::store::BlobSource;
use crate::store::walk::{self, Blob, Image, PlatformImage};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;

/// One field of a JSON document that differs; `None` where a side lacks it.
#[derive(Debug, Clone, Serialize)]
pub struct FieldDiff {
    /// `image index`, `manifest` or `config`.
    pub document: String,
    /// A JSON pointer into the document (`/config/Env/1`).
    pub path: String,
    pub first: Option<Value>,
    pub second: Option<Value>,
}

/// One path of a layer that differs.
#[derive(Debug, Clone, Serialize)]
pub struct FileDiff {
    pub path: String,
    /// What differs: `missing`, `kind`, `content`, `mode`, `owner`, `mtime`, `link target`.
    pub differences: Vec<String>,
    pub first: Option<FileFacts>,
    pub second: Option<FileFacts>,
    /// What put the file there, as the plan says (`build step …`, `copied from …`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub made_by: Option<String>,
}

/// A layer position whose blobs differ.
#[derive(Debug, Clone, Serialize)]
pub struct LayerDiff {
    /// 1 for the bottom layer.
    pub position: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub first: Option<Digest>,
    pub second: Option<Digest>,
    /// The same entries stand in another order in the tar.
    pub entry_order: bool,
    pub files: Vec<FileDiff>,
    /// The two layers' descriptors, for reading them again.
    #[serde(skip)]
    pub blobs: (Option<Blob>, Option<Blob>),
}

#[derive(Debug, Clone, Serialize)]
pub struct PlatformDiff {
    pub platform: String,
    /// `first` or `second`: the platform is only in that release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_in: Option<String>,
    pub first: Option<Digest>,
    pub second: Option<Digest>,
    pub fields: Vec<FieldDiff>,
    pub layers: Vec<LayerDiff>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageDiff {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub only_in: Option<String>,
    pub first: Option<Digest>,
    pub second: Option<Digest>,
    pub fields: Vec<FieldDiff>,
    pub platforms: Vec<PlatformDiff>,
}

/// Everything that differs between two releases; empty `images` when they are the same.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub identical: bool,
    pub images_compared: usize,
    pub platforms_compared: usize,
    pub layers_compared: usize,
    pub images: Vec<ImageDiff>,
}

/// What the comparison is told of the recipe: who made a file, by (image, platform, layer
/// key, path).
pub type Origin<'a> = &'a dyn Fn(&str, &str, &str, &str) -> Option<String>;

/// Fields of a document that differ, leaves compared; `skip` names top-level keys covered
/// elsewhere (a manifest's layers, a config's diff_ids).
pub(crate) fn fields(document: &str, a: &Value, b: &Value, skip: &[&str]) -> Vec<FieldDiff> {
    let mut out = Vec::new();
    leaves(document, "", Some(a), Some(b), skip, &mut out);
    out
}

fn leaves(doc: &str, at: &str, a: Option<&Value>, b: Option<&Value>, skip: &[&str], out: &mut Vec<FieldDiff>) {
    if a == b {
        return;
    }
    let key = |k: &str| format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys.into_iter().filter(|k| !(at.is_empty() && skip.contains(&k.as_str()))) {
                leaves(doc, &key(k), x.get(k), y.get(k), &[], out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                leaves(doc, &format!("{at}/{i}"), x.get(i), y.get(i), &[], out);
            }
        }
        _ => out.push(FieldDiff { document: doc.into(), path: at.into(), first: a.cloned(), second: b.cloned() }),
    }
}

fn json(src: &dyn BlobSource, blob: &Blob) -> Result<Value, StoreError> {
    let bytes = src.read_blob(blob)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| StoreError::InvalidLayout { path: src.blob_name(&blob.digest), reason: format!("not JSON: {e}") })
}

/// How two entries of one path differ.
fn differences(a: &FileFacts, b: &FileFacts) -> Vec<String> {
    let mut out = Vec::new();
    let mut say = |differs: bool, what: &str| {
        if differs {
            out.push(what.to_string());
        }
    };
    say(a.kind != b.kind, "kind");
    say(a.sha256 != b.sha256 || a.size != b.size, "content");
    say(a.mode != b.mode, "mode");
    say((a.uid, a.gid) != (b.uid, b.gid), "owner");
    say(a.mtime != b.mtime, "mtime");
    say(a.target != b.target, "link target");
    out
}

/// The files of two layers that differ, and whether their common entries stand in another
/// order.
fn file_diffs(a: &LayerFiles, b: &LayerFiles, made_by: &dyn Fn(&str) -> Option<String>) -> (Vec<FileDiff>, bool) {
    let paths: BTreeSet<&String> = a.files.keys().chain(b.files.keys()).collect();
    let mut out = Vec::new();
    for p in paths {
        let (x, y) = (a.files.get(p), b.files.get(p));
        let differences = match (x, y) {
            (Some(x), Some(y)) => differences(x, y),
            _ => vec!["missing".to_string()],
        };
        if !differences.is_empty() {
            let made_by = made_by(p);
            out.push(FileDiff { path: p.clone(), differences, first: x.cloned(), second: y.cloned(), made_by });
        }
    }
    let common = |l: &LayerFiles, o: &LayerFiles| -> Vec<String> {
        l.order.iter().filter(|p| o.files.contains_key(*p)).cloned().collect()
    };
    (out, common(a, b) != common(b, a))
}

/// One platform of an image in both releases.
fn platform(
    (sa, sb): (&dyn BlobSource, &dyn BlobSource),
    (ia, ib): (&Image, &Image),
    (pa, pb): (&PlatformImage, &PlatformImage),
    origin: Origin<'_>,
) -> Result<(PlatformDiff, usize), StoreError> {
    let mut diff = PlatformDiff {
        platform: pa.platform.clone(),
        only_in: None,
        first: Some(pa.blob.digest.clone()),
        second: Some(pb.blob.digest.clone()),
        fields: Vec::new(),
        layers: Vec::new(),
    };
    let count = pa.layers.len().max(pb.layers.len());
    if pa.blob.digest == pb.blob.digest {
        return Ok((diff, count));
    }
    diff.fields = fields("manifest", &json(sa, &pa.blob)?, &json(sb, &pb.blob)?, &["config", "layers"]);
    if pa.config.digest != pb.config.digest {
        diff.fields.extend(fields("config", &json(sa, &pa.config)?, &json(sb, &pb.config)?, &["rootfs"]));
    }
    let keys = ia.layer_keys(sa, pa)?.0;
    let keys_b = ib.layer_keys(sb, pb)?.0;
    for i in 0..count {
        let (la, lb) = (pa.layers.get(i), pb.layers.get(i));
        if la.map(|l| &l.digest) == lb.map(|l| &l.digest) {
            continue;
        }
        let (fa, fb) = match (la, lb) {
            (Some(la), Some(lb)) => (read_layer(sa, la)?, read_layer(sb, lb)?),
            (Some(la), None) => (read_layer(sa, la)?, LayerFiles::default()),
            (None, Some(lb)) => (LayerFiles::default(), read_layer(sb, lb)?),
            (None, None) => continue,
        };
        let key = keys.get(i).cloned().flatten().or_else(|| keys_b.get(i).cloned().flatten());
        let layer_key = key.clone().unwrap_or_default();
        let made_by = |path: &str| origin(&ia.name, &pa.platform, &layer_key, path);
        let (files, entry_order) = file_diffs(&fa, &fb, &made_by);
        diff.layers.push(LayerDiff {
            position: i + 1,
            key,
            first: la.map(|l| l.digest.clone()),
            second: lb.map(|l| l.digest.clone()),
            entry_order,
            files,
            blobs: (la.cloned(), lb.cloned()),
        });
    }
    Ok((diff, count))
}

fn only(name: &str, side: &str, digest: &Digest) -> ImageDiff {
    let (first, second) = if side == "first" { (Some(digest.clone()), None) } else { (None, Some(digest.clone())) };
    ImageDiff {
        name: name.into(),
        only_in: Some(side.into()),
        first,
        second,
        fields: Vec::new(),
        platforms: Vec::new(),
    }
}

/// Compares one image present in both releases.
fn image(
    (sa, sb): (&dyn BlobSource, &dyn BlobSource),
    (a, b): (&Image, &Image),
    origin: Origin<'_>,
    totals: &mut (usize, usize),
) -> Result<ImageDiff, StoreError> {
    let mut diff = ImageDiff {
        name: a.name.clone(),
        only_in: None,
        first: Some(a.blob.digest.clone()),
        second: Some(b.blob.digest.clone()),
        fields: Vec::new(),
        platforms: Vec::new(),
    };
    if a.blob.digest != b.blob.digest && a.index.is_some() && b.index.is_some() {
        diff.fields = fields("image index", &json(sa, &a.blob)?, &json(sb, &b.blob)?, &["manifests"]);
    }
    let names: BTreeSet<&String> = a.platforms.iter().chain(&b.platforms).map(|p| &p.platform).collect();
    for name in names {
        let (pa, pb) =
            (a.platforms.iter().find(|p| &p.platform == name), b.platforms.iter().find(|p| &p.platform == name));
        match (pa, pb) {
            (Some(pa), Some(pb)) => {
                let (d, layers) = platform((sa, sb), (a, b), (pa, pb), origin)?;
                totals.0 += 1;
                totals.1 += layers;
                if d.first != d.second {
                    diff.platforms.push(d);
                }
            }
            (x, y) => diff.platforms.push(PlatformDiff {
                platform: name.clone(),
                only_in: Some(if x.is_some() { "first" } else { "second" }.into()),
                first: x.map(|p| p.blob.digest.clone()),
                second: y.map(|p| p.blob.digest.clone()),
                fields: Vec::new(),
                layers: Vec::new(),
            }),
        }
    }
    Ok(diff)
}

/// Compares every image of `first` with the image of the same name in `second` (with
/// `images`, only those; with `platforms`, only those platforms' manifests are read).
pub fn compare(
    (sa, sb): (&dyn BlobSource, &dyn BlobSource),
    (images, platforms): (&[String], &[String]),
    origin: Origin<'_>,
) -> Result<Comparison, StoreError> {
    let pick = |v: Vec<Image>| -> Vec<Image> {
        v.into_iter().filter(|i| images.is_empty() || images.contains(&i.name)).collect()
    };
    let a = pick(walk::images_for(sa, None, platforms)?);
    let mut b = pick(walk::images_for(sb, None, platforms)?);
    // A registry reference reads as one image named after it: a pair of single images is
    // one image, whatever each side calls it.
    if let ([one], [other]) = (a.as_slice(), b.as_mut_slice()) {
        other.name = one.name.clone();
    }
    let mut totals = (0, 0);
    let mut out = Vec::new();
    let names: BTreeSet<&String> = a.iter().chain(&b).map(|i| &i.name).collect();
    let by_name = |list: &[Image], n: &str| list.iter().position(|i| i.name == n);
    let mut compared = 0;
    for n in names {
        match (by_name(&a, n).map(|i| &a[i]), by_name(&b, n).map(|i| &b[i])) {
            (Some(x), Some(y)) => {
                compared += 1;
                let d = image((sa, sb), (x, y), origin, &mut totals)?;
                if d.first != d.second || !d.platforms.is_empty() {
                    out.push(d);
                }
            }
            (Some(x), None) => out.push(only(n, "first", &x.blob.digest)),
            (None, Some(y)) => out.push(only(n, "second", &y.blob.digest)),
            (None, None) => {}
        }
    }
    Ok(Comparison {
        identical: out.is_empty(),
        images_compared: compared,
        platforms_compared: totals.0,
        layers_compared: totals.1,
        images: out,
    })
}
